variable "cluster_id" {
  description = "ID of the LKE cluster (linode_lke_cluster.example.id)."
  type        = number
}

# Credentials for this run only: issued when Terraform needs them, valid for
# an hour at most, never written to the state or a plan, and revoked when the
# run ends.
ephemeral "kubecreds_short_lived_kubeconfig" "deploy" {
  lke_cluster_id = var.cluster_id
  ttl            = "1h"
}

# Feed them to the kubernetes provider (the helm provider takes the same three values).
provider "kubernetes" {
  host                   = ephemeral.kubecreds_short_lived_kubeconfig.deploy.host
  cluster_ca_certificate = ephemeral.kubecreds_short_lived_kubeconfig.deploy.cluster_ca_certificate
  token                  = ephemeral.kubecreds_short_lived_kubeconfig.deploy.token
}

resource "kubernetes_namespace_v1" "team" {
  metadata {
    name = "team-a"
  }
}

# Or hand the whole kubeconfig to a script: it goes to a private temporary
# file, removed at once.
resource "terraform_data" "smoke_test" {
  triggers_replace = [kubernetes_namespace_v1.team.id]

  provisioner "local-exec" {
    command     = "f=$(mktemp) && printf '%s' \"$KUBECONFIG_DATA\" > \"$f\" && kubectl --kubeconfig \"$f\" get namespace team-a; rc=$?; rm -f \"$f\"; exit $rc"
    environment = { KUBECONFIG_DATA = ephemeral.kubecreds_short_lived_kubeconfig.deploy.kubeconfig }
  }
}
