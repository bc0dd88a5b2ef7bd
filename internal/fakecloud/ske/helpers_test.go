//go:build !unit

package ske_test

import (
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"
)

// clientsetFor reaches a cluster with a kubeconfig the SKE API issued (as
// the lke package's tests do with the ones the Linode API serves).
func clientsetFor(t *testing.T, kubeconfig []byte) kubernetes.Interface {
	t.Helper()
	cs, err := fakecloud.Clientset(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
