// Package oci stands in for Terraform's oci state backend, which this test
// build leaves out.
package oci

import (
	"github.com/hashicorp/terraform/internal/backend"
	"github.com/hashicorp/terraform/internal/legacy/refuse"
)

// New returns a backend that refuses to be configured.
func New() backend.Backend { return refuse.Backend("oci") }
