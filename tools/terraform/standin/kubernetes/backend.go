// Package kubernetes stands in for Terraform's kubernetes state backend, which this test
// build leaves out.
package kubernetes

import (
	"github.com/hashicorp/terraform/internal/backend"
	"github.com/hashicorp/terraform/internal/legacy/refuse"
)

// New returns a backend that refuses to be configured.
func New() backend.Backend { return refuse.Backend("kubernetes") }
