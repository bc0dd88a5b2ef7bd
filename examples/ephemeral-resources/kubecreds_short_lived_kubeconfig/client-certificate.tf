# A client certificate instead of a token: for a human or a tool that needs a
# user and groups of its own. Certificates cannot be revoked before they
# expire, so keep the ttl short.
ephemeral "kubecreds_short_lived_kubeconfig" "oncall" {
  lke_cluster_id = var.cluster_id
  ttl            = "30m"
  mode           = "client_certificate"
  user           = "oncall-bot"
  groups         = ["oncall"]
}
