variable "cluster_id" {
  type = number
}

# Someone with access to the cluster left: change the value (in a reviewed
# commit) and apply. Any change of keepers replaces the resource, which rotates.
resource "kubecreds_lke_secret_rotation" "production" {
  cluster_id = var.cluster_id

  keepers = {
    last_offboarding = "OPS-4711 jdoe 2026-11-23"
  }

  # Token secrets that people created by hand for CI live here too.
  namespaces = ["kube-system", "ci"]

  # The CI account the leaver could mint tokens of: re-created, so that
  # every token it ever had is rejected. Its RoleBindings keep applying.
  revoke_service_accounts = ["ci/deployer"]
}
