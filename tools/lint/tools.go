//go:build tools

// Package lint pins golangci-lint, which make lint builds from the module
// proxy (tools/build-cached.sh caches the binary outside the clone).
package lint

import _ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
