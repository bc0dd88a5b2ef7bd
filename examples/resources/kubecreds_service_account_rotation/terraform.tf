terraform {
  required_providers {
    kubecreds = {
      source = "kubecreds/kubecreds"
    }
  }
}
