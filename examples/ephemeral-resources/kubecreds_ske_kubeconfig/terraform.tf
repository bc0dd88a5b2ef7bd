terraform {
  # Ephemeral resources need Terraform 1.10 or later (or OpenTofu 1.11).
  required_version = ">= 1.10"

  required_providers {
    kubecreds = {
      source = "kubecreds/kubecreds"
    }
  }
}
