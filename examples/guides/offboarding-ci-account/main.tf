variable "kubeconfig_path" {
  description = "Path to an admin kubeconfig of the cluster the CI account lives on."
  type        = string
}

provider "kubecreds" {
  kubernetes {
    config_path = var.kubeconfig_path
  }
}

# The leaver could mint tokens of the CI account (kubectl create token
# ci/deployer), or copied its token secret. Re-create the account: every
# token it ever had is rejected, its RoleBindings apply to the new one,
# and the workloads running as it are restarted with new tokens.
resource "kubecreds_service_account_rotation" "ci" {
  service_accounts = ["ci/deployer"]

  keepers = {
    last_offboarding = "OPS-4711 jdoe 2026-11-23"
  }

  # The release pipeline reads the legacy token secret ci/deployer-token:
  # create it again, filled with a token of the new account.
  recreate_token_secrets = true
}
