terraform {
  required_version = ">= 1.10"

  required_providers {
    kubecreds = {
      source = "kubecreds/kubecreds"
    }
    helm = {
      source = "hashicorp/helm"
    }
  }
}
