module github.com/hashicorp/terraform/internal/backend/remote-state/azure

go 1.25

require (
	github.com/hashicorp/terraform v1.14.3
	github.com/hashicorp/terraform/internal/legacy v0.0.0-00010101000000-000000000000
)
