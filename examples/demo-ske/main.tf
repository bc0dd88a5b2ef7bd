# What `make demo-ske` applies, twice, against the local SKE: the first apply
# starts a credentials rotation and waits until it is PREPARED, and hands a
# kubeconfig issued in between to kubectl; the second (complete = true)
# completes it.
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}

variable "project_id" { type = string }
variable "cluster_name" { type = string }
variable "complete" { type = bool }
variable "report_dir" { type = string }

resource "kubecreds_ske_credentials_rotation" "demo" {
  project_id   = var.project_id
  region       = "eu01"
  cluster_name = var.cluster_name
  complete     = var.complete
}

ephemeral "kubecreds_ske_kubeconfig" "new" {
  project_id   = var.project_id
  region       = "eu01"
  cluster_name = var.cluster_name
  ttl          = "1h"
  depends_on   = [kubecreds_ske_credentials_rotation.demo]
}

# Between the phases: the clients get a kubeconfig issued after the start.
resource "terraform_data" "hand_over" {
  triggers_replace = [kubecreds_ske_credentials_rotation.demo.started_at]
  provisioner "local-exec" {
    command     = "printf '%s' \"$KC\" > \"$DIR/new.kubeconfig\" && kubectl --kubeconfig \"$DIR/new.kubeconfig\" get nodes -o name > \"$DIR/nodes\""
    environment = { KC = ephemeral.kubecreds_ske_kubeconfig.new.kubeconfig, DIR = var.report_dir }
  }
}

output "phase" {
  value = kubecreds_ske_credentials_rotation.demo.phase
}

output "started_at" {
  value = kubecreds_ske_credentials_rotation.demo.started_at
}

output "completed_at" {
  value = kubecreds_ske_credentials_rotation.demo.completed_at
}
