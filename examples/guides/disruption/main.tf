variable "cluster_id" {
  type = number
}

resource "kubecreds_lke_secret_rotation" "production" {
  cluster_id = var.cluster_id
  keepers    = { reason = "token leak INC-2211" }

  # Pods that read a token from a deleted secret keep failing until they
  # restart: roll these workloads once the new credentials are in place.
  restart_workloads {
    namespaces = ["ingress-nginx", "monitoring"]
    kinds      = ["deployment", "daemonset", "statefulset"]
  }

  # Nodes keep credentials of their own (kubelet, cloud controller): replace
  # them all and wait until the new ones are Ready. Slow; use after a leak.
  recycle_nodes = true
}
