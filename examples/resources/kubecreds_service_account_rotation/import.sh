# Adopt accounts without rotating them: the id lists them as namespace/name,
# joined with commas. rotated_at stays null until kubecreds rotates them.
terraform import kubecreds_service_account_rotation.ci ci/deployer,ci/reporter
