// Package refuse is the one state backend the stand-ins return: Terraform's
// in-memory backend, refusing to be configured, so that a configuration
// naming a backend this test build leaves out fails saying so.
package refuse

import (
	"github.com/hashicorp/terraform/internal/backend"
	"github.com/hashicorp/terraform/internal/backend/remote-state/inmem"
	"github.com/hashicorp/terraform/internal/tfdiags"
	"github.com/zclconf/go-cty/cty"
)

// Backend returns the stand-in for the backend called name.
func Backend(name string) backend.Backend { return refused{Backend: inmem.New(), name: name} }

type refused struct {
	backend.Backend
	name string
}

func (r refused) Configure(cty.Value) tfdiags.Diagnostics {
	var diags tfdiags.Diagnostics
	return diags.Append(tfdiags.Sourceless(tfdiags.Error, "Backend not available",
		"The "+r.name+" backend is not built into this test build of Terraform."))
}
