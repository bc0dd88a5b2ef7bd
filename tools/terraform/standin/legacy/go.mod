module github.com/hashicorp/terraform/internal/legacy

go 1.25

require (
	github.com/hashicorp/terraform v1.14.3
	github.com/zclconf/go-cty v1.16.3
)
