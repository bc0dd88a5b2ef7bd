//go:build tools

// Package kubernetesprovider pins hashicorp/terraform-provider-kubernetes,
// built from the Go module proxy (the registry is unreachable here), so that
// tests and the demo can feed a short-lived kubeconfig into it for real.
package kubernetesprovider

import _ "github.com/hashicorp/terraform-provider-kubernetes"
