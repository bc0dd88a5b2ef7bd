//go:build tools

// Package helmprovider pins hashicorp/terraform-provider-helm, built from the
// Go module proxy, so that the guide's helm example is validated.
package helmprovider

import _ "github.com/hashicorp/terraform-provider-helm"
