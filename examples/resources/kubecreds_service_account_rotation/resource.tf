# Any Kubernetes cluster (EKS, GKE, AKS, kubeadm, k3s, LKE): the provider's
# kubernetes block reaches it as the kubernetes provider would.
provider "kubecreds" {
  kubernetes {
    config_path    = var.kubeconfig_path
    config_context = "production"
  }
}

variable "kubeconfig_path" {
  description = "Path to a kubeconfig allowed to delete and create the accounts and to patch their workloads."
  type        = string
}

# Re-create the CI accounts every 30 days, and at once when the ticket
# changes: every token they ever had is rejected afterwards.
resource "kubecreds_service_account_rotation" "ci" {
  service_accounts = ["ci/deployer", "ci/reporter"]
  rotate_every     = "720h"

  keepers = {
    # Bump this when a CI credential may have leaked.
    incident = "OPS-1234"
  }

  # Consumers outside the cluster read ci/deployer-token by name: create it
  # again, so that the token controller fills it with a token of the new
  # account.
  recreate_token_secrets = true

  timeouts {
    create = "10m"
  }
}

output "restarted_workloads" {
  value = kubecreds_service_account_rotation.ci.restarted_workloads
}
