//go:build !unit

package lke_test

import (
	"regexp"
	"strconv"
)

func itoa(i int) string { return strconv.Itoa(i) }

var tokenLine = regexp.MustCompile(`(?m)(token:\s*)\S+`)

// redact hides the bearer token of a kubeconfig before a test prints it.
func redact(kubeconfig []byte) string {
	return tokenLine.ReplaceAllString(string(kubeconfig), "${1}REDACTED")
}
