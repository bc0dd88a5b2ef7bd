variable "cluster_id" {
  type = number
}

# Rotate every 30 days. Each `terraform apply` (from a CI schedule) compares
# rotated_at with the clock: once 720h have passed, the plan replaces this
# resource and says why, and the apply rotates.
resource "kubecreds_lke_secret_rotation" "monthly" {
  cluster_id   = var.cluster_id
  rotate_every = "720h"
}

output "next_rotation_at" {
  value = kubecreds_lke_secret_rotation.monthly.next_rotation_at
}
