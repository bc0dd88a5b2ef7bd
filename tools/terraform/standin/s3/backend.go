// Package s3 stands in for Terraform's s3 state backend, which this test
// build leaves out.
package s3

import (
	"github.com/hashicorp/terraform/internal/backend"
	"github.com/hashicorp/terraform/internal/legacy/refuse"
)

// New returns a backend that refuses to be configured.
func New() backend.Backend { return refuse.Backend("s3") }
