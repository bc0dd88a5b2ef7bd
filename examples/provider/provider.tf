# Reach LKE clusters through the Linode API. The token can also come from
# the LINODE_TOKEN environment variable (recommended: keep it out of code).
provider "kubecreds" {
  linode_token = var.linode_token
}

variable "linode_token" {
  type      = string
  sensitive = true
}
