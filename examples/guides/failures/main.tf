variable "cluster_id" {
  type = number
}

resource "kubecreds_lke_secret_rotation" "production" {
  cluster_id = var.cluster_id
  keepers    = { reason = "scheduled" }

  # LKE can take minutes to serve a regenerated kubeconfig; give the whole
  # rotation room before it is reported as failed.
  timeouts {
    create = "45m"
  }
}
