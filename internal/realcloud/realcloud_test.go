//go:build !unit

// Package realcloud holds the acceptance tests that run against a real Linode
// account. They cost money and rotate a real cluster's credentials, so they
// run only when asked: KUBECREDS_ACC_LINODE=1, LINODE_TOKEN, and
// KUBECREDS_ACC_LINODE_CLUSTER_ID naming a cluster whose credentials may be
// rotated. `make test-realcloud` runs them.
package realcloud

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/provider"
)

var providers = map[string]func() (tfprotov6.ProviderServer, error){
	"kubecreds": providerserver.NewProtocol6WithError(provider.New("realcloud-test")()),
}

// clusterID skips the test unless the real-cloud suite was asked for.
func clusterID(t *testing.T) int {
	t.Helper()
	if os.Getenv("KUBECREDS_ACC_LINODE") != "1" || os.Getenv("LINODE_TOKEN") == "" {
		t.Skip("real-cloud suite: set KUBECREDS_ACC_LINODE=1, LINODE_TOKEN and KUBECREDS_ACC_LINODE_CLUSTER_ID to run it (it rotates a real cluster's credentials)")
	}
	id, err := strconv.Atoi(os.Getenv("KUBECREDS_ACC_LINODE_CLUSTER_ID"))
	if err != nil || id < 1 {
		t.Fatalf("KUBECREDS_ACC_LINODE_CLUSTER_ID must name the LKE cluster to rotate, got %q", os.Getenv("KUBECREDS_ACC_LINODE_CLUSTER_ID"))
	}
	for _, v := range []string{"LINODE_URL", "LINODE_CA"} {
		if os.Getenv(v) != "" {
			t.Fatalf("%s is set: the real-cloud suite must talk to the real Linode API", v)
		}
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl is needed on PATH")
	}
	return id
}

func TestAccRealCloud_tokensRotationAndShortLivedKubeconfig(t *testing.T) {
	id := clusterID(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers,
		Steps: []resource.TestStep{
			{
				Config: fmt.Sprintf(`
data "kubecreds_lke_service_account_tokens" "before" {
  cluster_id = %d
}
`, id),
				Check: resource.TestMatchResourceAttr("data.kubecreds_lke_service_account_tokens.before", "tokens.#", regexp.MustCompile(`^[1-9]`)),
			},
			{
				Config: fmt.Sprintf(`
resource "kubecreds_lke_secret_rotation" "r" {
  cluster_id = %[1]d
  keepers    = { run = "realcloud" }
  timeouts {
    create = "30m"
  }
}

ephemeral "kubecreds_short_lived_kubeconfig" "k" {
  lke_cluster_id = %[1]d
  ttl            = "15m"
  depends_on     = [kubecreds_lke_secret_rotation.r]
}

resource "terraform_data" "kubectl" {
  triggers_replace = [kubecreds_lke_secret_rotation.r.rotated_at]
  provisioner "local-exec" {
    command     = "f=$(mktemp) && printf '%%s' \"$KC\" > \"$f\" && kubectl --kubeconfig \"$f\" get nodes -o name; rc=$?; rm -f \"$f\"; exit $rc"
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig }
  }
}
`, id),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttrSet("kubecreds_lke_secret_rotation.r", "rotated_at"),
					resource.TestMatchResourceAttr("kubecreds_lke_secret_rotation.r", "nodes_verified", regexp.MustCompile(`^[1-9]`)),
					resource.TestMatchResourceAttr("kubecreds_lke_secret_rotation.r", "kubeconfig_sha256", regexp.MustCompile(`^[0-9a-f]{64}$`)),
				),
			},
		},
	})
}
