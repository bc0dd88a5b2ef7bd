# Start now: terraform apply -invoke=action.kubecreds_ske_start_credentials_rotation.prod
action "kubecreds_ske_start_credentials_rotation" "prod" {
  config {
    project_id   = "8b8d1a3e-5d3c-4d5c-9b8e-2f2a6c1d0e42"
    region       = "eu01"
    cluster_name = "prod"
  }
}
