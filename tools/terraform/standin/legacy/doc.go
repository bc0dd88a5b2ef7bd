// Package legacy stands in for Terraform's internal/legacy module, which
// nothing in the terraform binary imports.
package legacy
