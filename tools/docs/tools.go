//go:build tools

// Package docs pins tfplugindocs, which renders docs/ from templates/ and
// examples/ (`make docs`).
package docs

import _ "github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs"
