# Rotate the SKE cluster's CA, etcd encryption key and service-account
# signing key every 90 days, in SKE's two phases:
#   - the apply that starts a rotation waits until it is PREPARED (the nodes
#     are rolled; old and new credentials both work);
#   - a week later (complete_after), the next scheduled apply completes it:
#     the old credentials stop working. Update your out-of-cluster clients
#     in between. Set complete = true to complete at the next apply instead.
resource "kubecreds_ske_credentials_rotation" "prod" {
  project_id   = var.project_id
  region       = "eu01"
  cluster_name = "prod"

  rotate_every   = "2160h"
  complete_after = "168h"
}

variable "project_id" {
  description = "STACKIT project ID."
  type        = string
}
