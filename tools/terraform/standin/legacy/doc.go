// Package legacy stands in for Terraform's internal/legacy module, which
// nothing in the terraform binary imports. Its package refuse holds the
// backend the state-backend stand-ins share.
package legacy
