//go:build tools

// Package opentofu pins OpenTofu, built from the Go module proxy, so that the
// acceptance tests also run under tofu.
package opentofu

import _ "github.com/opentofu/opentofu/cmd/tofu"
