// Package oss stands in for Terraform's oss state backend, which this test
// build leaves out.
package oss

import (
	"github.com/hashicorp/terraform/internal/backend"
	"github.com/hashicorp/terraform/internal/legacy/refuse"
)

// New returns a backend that refuses to be configured.
func New() backend.Backend { return refuse.Backend("oss") }
