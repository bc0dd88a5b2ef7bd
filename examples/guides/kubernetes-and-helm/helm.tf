variable "cluster_id" {
  type = number
}

ephemeral "kubecreds_short_lived_kubeconfig" "deploy" {
  lke_cluster_id = var.cluster_id
  ttl            = "1h"
}

provider "helm" {
  kubernetes = {
    host                   = ephemeral.kubecreds_short_lived_kubeconfig.deploy.host
    cluster_ca_certificate = ephemeral.kubecreds_short_lived_kubeconfig.deploy.cluster_ca_certificate
    token                  = ephemeral.kubecreds_short_lived_kubeconfig.deploy.token
  }
}
