variable "cluster_id" {
  description = "ID of the LKE cluster to rotate (linode_lke_cluster.example.id)."
  type        = number
}

# Rotate every 30 days, and at once when the offboarding ticket changes.
resource "kubecreds_lke_secret_rotation" "production" {
  cluster_id   = var.cluster_id
  rotate_every = "720h"

  keepers = {
    # Bump this when someone with cluster access leaves.
    offboarding = "OPS-1234"
  }

  # kube-system, as the LKE runbook does, plus a namespace holding
  # token secrets the CI team created by hand.
  namespaces = ["kube-system", "ci"]

  # Recreate these pods, so that they run with fresh projected service-account
  # tokens (paused deployments are skipped, as kubectl skips them). A pod that
  # needs a deleted legacy token secret cannot start again: the rotation warns.
  restart_workloads {
    namespaces = ["ingress-nginx"]
    kinds      = ["deployment", "daemonset"]
  }

  timeouts {
    create = "30m"
  }
}

output "rotated_at" {
  value = kubecreds_lke_secret_rotation.production.rotated_at
}

output "next_rotation_at" {
  value = kubecreds_lke_secret_rotation.production.next_rotation_at
}

output "deleted_secrets" {
  value = kubecreds_lke_secret_rotation.production.deleted_secrets
}
