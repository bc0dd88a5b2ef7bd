# Adopt an existing cluster without rotating it, by its LKE cluster id.
# rotated_at stays null until kubecreds rotates the cluster.
terraform import kubecreds_lke_secret_rotation.production 123456
