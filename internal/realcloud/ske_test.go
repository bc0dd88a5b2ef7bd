//go:build !unit

package realcloud

import (
	"fmt"
	"os"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// skeCluster skips the test unless the STACKIT real-cloud suite was asked
// for: KUBECREDS_ACC_STACKIT=1, STACKIT credentials
// (STACKIT_SERVICE_ACCOUNT_KEY_PATH or STACKIT_SERVICE_ACCOUNT_TOKEN), and
// KUBECREDS_ACC_STACKIT_PROJECT_ID / _REGION / _CLUSTER naming a cluster
// whose credentials may be rotated (a rotation rolls its nodes).
func skeCluster(t *testing.T) (project, region, name string) {
	t.Helper()
	if os.Getenv("KUBECREDS_ACC_STACKIT") != "1" ||
		(os.Getenv("STACKIT_SERVICE_ACCOUNT_KEY_PATH") == "" && os.Getenv("STACKIT_SERVICE_ACCOUNT_KEY") == "" && os.Getenv("STACKIT_SERVICE_ACCOUNT_TOKEN") == "") {
		t.Skip("STACKIT real-cloud suite: set KUBECREDS_ACC_STACKIT=1, STACKIT credentials and KUBECREDS_ACC_STACKIT_PROJECT_ID, _REGION, _CLUSTER to run it (it rotates a real cluster's credentials)")
	}
	project, region, name = os.Getenv("KUBECREDS_ACC_STACKIT_PROJECT_ID"), os.Getenv("KUBECREDS_ACC_STACKIT_REGION"), os.Getenv("KUBECREDS_ACC_STACKIT_CLUSTER")
	if project == "" || region == "" || name == "" {
		t.Fatal("KUBECREDS_ACC_STACKIT_PROJECT_ID, KUBECREDS_ACC_STACKIT_REGION and KUBECREDS_ACC_STACKIT_CLUSTER must name the SKE cluster to rotate")
	}
	if os.Getenv("STACKIT_SKE_CUSTOM_ENDPOINT") != "" {
		t.Fatal("STACKIT_SKE_CUSTOM_ENDPOINT is set: the real-cloud suite must talk to the real SKE API")
	}
	return project, region, name
}

// TestAccRealCloud_skeTwoPhaseRotation starts a rotation (waiting for
// PREPARED), gets a kubeconfig in between, and completes it.
func TestAccRealCloud_skeTwoPhaseRotation(t *testing.T) {
	project, region, name := skeCluster(t)
	config := func(complete bool) string {
		return fmt.Sprintf(`
resource "kubecreds_ske_credentials_rotation" "r" {
  project_id   = %[1]q
  region       = %[2]q
  cluster_name = %[3]q
  keepers      = { run = "realcloud" }
  complete     = %[4]t
  timeouts {
    create = "60m"
    update = "60m"
  }
}

ephemeral "kubecreds_ske_kubeconfig" "k" {
  project_id   = %[1]q
  region       = %[2]q
  cluster_name = %[3]q
  ttl          = "1h"
  depends_on   = [kubecreds_ske_credentials_rotation.r]
}

resource "terraform_data" "kubectl" {
  provisioner "local-exec" {
    command     = "f=$(mktemp) && printf '%%s' \"$KC\" > \"$f\" && kubectl --kubeconfig \"$f\" get nodes -o name; rc=$?; rm -f \"$f\"; exit $rc"
    environment = { KC = ephemeral.kubecreds_ske_kubeconfig.k.kubeconfig }
  }
}
`, project, region, name, complete)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers,
		Steps: []resource.TestStep{
			{
				Config: config(false),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("kubecreds_ske_credentials_rotation.r", tfjsonpath.New("phase"), knownvalue.StringExact("PREPARED")),
				},
			},
			{
				Config: config(true),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("kubecreds_ske_credentials_rotation.r", tfjsonpath.New("phase"), knownvalue.StringExact("COMPLETED")),
				},
			},
		},
	})
}
