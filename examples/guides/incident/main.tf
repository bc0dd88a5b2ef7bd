terraform {
  required_providers {
    kubecreds = {
      source = "kubecreds/kubecreds"
    }
  }
}

variable "cluster_id" {
  type = number
}

# The incident being handled; set it (or change it) to rotate.
variable "incident" {
  type    = string
  default = null
}

# The regular schedule, as before.
resource "kubecreds_lke_secret_rotation" "monthly" {
  cluster_id   = var.cluster_id
  rotate_every = "720h"
}

# Rotate now, by hand: terraform apply -invoke=action.kubecreds_lke_rotate_credentials.now
action "kubecreds_lke_rotate_credentials" "now" {
  config {
    cluster_id = var.cluster_id
  }
}

# Or through review: setting or changing the incident number rotates at
# apply. Without one there is nothing to trigger.
resource "terraform_data" "incident" {
  count = var.incident == null ? 0 : 1
  input = var.incident

  lifecycle {
    action_trigger {
      events  = [after_create, after_update]
      actions = [action.kubecreds_lke_rotate_credentials.now]
    }
  }
}
