# Rotate now: terraform apply -invoke=action.kubecreds_lke_rotate_credentials.now
action "kubecreds_lke_rotate_credentials" "now" {
  config {
    cluster_id = 123456
    namespaces = ["kube-system", "ci"]

    restart_workloads {
      namespaces = ["ci"]
    }

    timeouts {
      invoke = "30m"
    }
  }
}
