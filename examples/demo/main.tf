# The demo `make demo` applies against the local LKE: one rotation of the
# cluster's credentials, then a short-lived kubeconfig used in the same run.

terraform {
  required_version = ">= 1.10"

  required_providers {
    kubecreds = {
      source = "kubecreds/kubecreds"
    }
  }
}

variable "cluster_id" {
  description = "ID of the LKE cluster to rotate."
  type        = number
}

variable "offboarding" {
  description = "Change this to rotate again: someone left."
  type        = string
  default     = "demo"
}

variable "report_dir" {
  description = "Where the demo's smoke test writes what it saw, for the summary. Empty: nowhere."
  type        = string
  default     = ""
}

resource "kubecreds_lke_secret_rotation" "demo" {
  cluster_id = var.cluster_id

  keepers = {
    offboarding = var.offboarding
  }
}

# Opened after the rotation, with the new credentials; revoked when the run ends.
ephemeral "kubecreds_short_lived_kubeconfig" "smoke" {
  lke_cluster_id = var.cluster_id
  ttl            = "1h"

  depends_on = [kubecreds_lke_secret_rotation.demo]
}

resource "terraform_data" "smoke_test" {
  triggers_replace = [kubecreds_lke_secret_rotation.demo.rotated_at]

  provisioner "local-exec" {
    command = <<-EOT
      f=$(mktemp) && printf '%s' "$KUBECONFIG_DATA" > "$f" &&
      kubectl --kubeconfig "$f" get nodes -o name > "$f.nodes"; rc=$?
      if [ -n "$REPORT_DIR" ]; then
        cp "$f.nodes" "$REPORT_DIR/nodes"; printf '%s' "$EXPIRES_AT" > "$REPORT_DIR/expires_at"
        cp "$f" "$REPORT_DIR/short-lived.kubeconfig"
      fi
      rm -f "$f" "$f.nodes"; exit $rc
    EOT
    environment = {
      KUBECONFIG_DATA = ephemeral.kubecreds_short_lived_kubeconfig.smoke.kubeconfig
      EXPIRES_AT      = ephemeral.kubecreds_short_lived_kubeconfig.smoke.expires_at
      REPORT_DIR      = var.report_dir
    }
  }
}

output "deleted_secrets" {
  value = kubecreds_lke_secret_rotation.demo.deleted_secrets
}

output "kubeconfig_sha256" {
  value = kubecreds_lke_secret_rotation.demo.kubeconfig_sha256
}

output "nodes_verified" {
  value = kubecreds_lke_secret_rotation.demo.nodes_verified
}

output "rotated_at" {
  value = kubecreds_lke_secret_rotation.demo.rotated_at
}
