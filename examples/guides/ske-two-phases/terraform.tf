terraform {
  # Ephemeral resources and write-only arguments need Terraform 1.11 or later.
  required_version = ">= 1.11"

  required_providers {
    kubecreds = {
      source = "kubecreds/kubecreds"
    }
    kubernetes = {
      source = "hashicorp/kubernetes"
    }
  }
}
