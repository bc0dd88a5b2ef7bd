// Package gcs stands in for Terraform's gcs state backend, which this test
// build leaves out.
package gcs

import (
	"github.com/hashicorp/terraform/internal/backend"
	"github.com/hashicorp/terraform/internal/legacy/refuse"
)

// New returns a backend that refuses to be configured.
func New() backend.Backend { return refuse.Backend("gcs") }
