# A CI token leaked: terraform apply -invoke=action.kubecreds_rotate_service_account.now
action "kubecreds_rotate_service_account" "now" {
  config {
    service_accounts       = ["ci/deployer"]
    recreate_token_secrets = true

    timeouts {
      invoke = "10m"
    }
  }
}
