# The provider reads STACKIT credentials as terraform-provider-stackit does:
# here from STACKIT_SERVICE_ACCOUNT_KEY_PATH (a service-account key).
provider "kubecreds" {}

# A short-lived admin kubeconfig of an SKE cluster, for this run only: never
# written to the state or a plan. SKE cannot revoke it before it expires
# (only a credentials rotation does), so keep the ttl short.
ephemeral "kubecreds_ske_kubeconfig" "deploy" {
  project_id   = var.project_id
  region       = "eu01"
  cluster_name = var.cluster_name
  ttl          = "1h"
}

resource "terraform_data" "kubectl" {
  provisioner "local-exec" {
    command     = "f=$(mktemp) && printf '%s' \"$KC\" > \"$f\" && kubectl --kubeconfig \"$f\" get nodes; rc=$?; rm -f \"$f\"; exit $rc"
    environment = { KC = ephemeral.kubecreds_ske_kubeconfig.deploy.kubeconfig }
  }
}

variable "project_id" {
  description = "STACKIT project ID."
  type        = string
}

variable "cluster_name" {
  description = "Name of the SKE cluster."
  type        = string
}
