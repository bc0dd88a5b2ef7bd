# STACKIT credentials come from the environment, as for terraform-provider-stackit:
# STACKIT_SERVICE_ACCOUNT_KEY_PATH (or STACKIT_SERVICE_ACCOUNT_TOKEN).
provider "kubecreds" {}

variable "project_id" {
  description = "STACKIT project ID."
  type        = string
}

# Phase one (start) happens at the first apply, and again every 90 days; the
# first apply at least a week after a start completes it (phase two).
resource "kubecreds_ske_credentials_rotation" "prod" {
  project_id   = var.project_id
  region       = "eu01"
  cluster_name = "prod"

  rotate_every   = "2160h"
  complete_after = "168h"
}

# Between the phases, every apply hands a fresh kubeconfig to the clients
# outside the cluster. Issued after the start, it is signed by the new CA and
# keeps working when the rotation completes. depends_on makes it come after
# the rotation in the same apply.
ephemeral "kubecreds_ske_kubeconfig" "ci" {
  project_id   = var.project_id
  region       = "eu01"
  cluster_name = "prod"
  ttl          = "720h"

  depends_on = [kubecreds_ske_credentials_rotation.prod]
}

# Here the clients are a CI system that reads its kubeconfig from a
# Kubernetes Secret in a management cluster (any secret store works the same
# way). The value is write-only: it never enters the state. Bump the version
# to write a new one: here whenever a rotation starts.
provider "kubernetes" {
  alias       = "management"
  config_path = "~/.kube/management"
}

resource "kubernetes_secret_v1" "ci_kubeconfig" {
  provider = kubernetes.management
  metadata {
    name      = "prod-kubeconfig"
    namespace = "ci"
  }
  data_wo = {
    kubeconfig = ephemeral.kubecreds_ske_kubeconfig.ci.kubeconfig
  }
  data_wo_revision = parseint(formatdate("YYYYMMDDhhmmss", kubecreds_ske_credentials_rotation.prod.started_at), 10)
}
