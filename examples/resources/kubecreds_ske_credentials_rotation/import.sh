# Adopt a cluster in whatever credentials-rotation phase it is in:
# project_id/region/cluster_name.
terraform import kubecreds_ske_credentials_rotation.prod 8b8d1a3e-5d3c-4d5c-9b8e-2f2a6c1d0e42/eu01/prod
