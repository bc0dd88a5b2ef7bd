package provider

import "regexp"

// namespacePattern is an RFC 1123 label, what Kubernetes accepts as a namespace name.
var namespacePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
