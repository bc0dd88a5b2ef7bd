// Package lke is the LKE credential-rotation runbook as plain Go: find
// the service-account-token secrets, delete them, regenerate the kubeconfig and
// service token through the Linode API, wait for the new kubeconfig, and prove
// that it works and the old one does not. It knows nothing of Terraform; the
// provider calls it and turns its results and errors into state and diagnostics.
package lke
