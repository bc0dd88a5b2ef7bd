# For clusters not reached through the Linode API (short-lived kubeconfigs
# only), point the kubernetes block at a kubeconfig, as the kubernetes
# provider does. Each attribute falls back to the same KUBE_* variable.
provider "kubecreds" {
  alias = "any_cluster"

  kubernetes {
    config_path    = "~/.kube/config"
    config_context = "production"
  }
}
