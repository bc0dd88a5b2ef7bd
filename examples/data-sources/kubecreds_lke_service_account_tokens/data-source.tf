# What a rotation of cluster 123456 would delete: the service-account-token
# secrets in kube-system and in a namespace holding the team's own tokens.
data "kubecreds_lke_service_account_tokens" "preview" {
  cluster_id = 123456
  namespaces = ["kube-system", "ci"]
}

output "token_secrets" {
  value = [for t in data.kubecreds_lke_service_account_tokens.preview.tokens : "${t.namespace}/${t.name} (${t.service_account}, ${t.age} old)"]
}
