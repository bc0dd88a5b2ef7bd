// Package s3 stands in for Terraform's s3 state backend, which this test
// build of Terraform leaves out: it refuses to be configured.
package s3

import (
	"github.com/hashicorp/terraform/internal/backend"
	"github.com/hashicorp/terraform/internal/backend/remote-state/inmem"
	"github.com/hashicorp/terraform/internal/tfdiags"
	"github.com/zclconf/go-cty/cty"
)

// New returns the stand-in.
func New() backend.Backend { return refused{inmem.New()} }

type refused struct{ backend.Backend }

func (refused) Configure(cty.Value) tfdiags.Diagnostics {
	var diags tfdiags.Diagnostics
	return diags.Append(tfdiags.Sourceless(tfdiags.Error, "Backend not available",
		"The s3 backend is not built into this test build of Terraform."))
}
