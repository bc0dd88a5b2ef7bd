//go:build !unit

package provider

import (
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// portableEnv, set to 1, makes TestAccPortable run portableTests: make
// test-opentofu and make test-terraform14 set it and run only
// TestAccPortable, under OpenTofu and Terraform 1.14.
const portableEnv = "KUBECREDS_PORTABLE"

// portableTests is the subset of the acceptance tests that also runs under
// OpenTofu and Terraform 1.14: it covers the provider configuration and
// every resource, data source and ephemeral resource, and the actions
// (refused by name under OpenTofu). The examples tests run provider
// binaries through terraform's dev_overrides and stay with the terraform on
// PATH. Being function values, the list follows a rename, and a test
// removed from the package cannot stay in it.
var portableTests = []func(*testing.T){
	TestAccAction_onlyWhereTerraformHasActions,
	TestAccSKEKubeconfig_issuesAWorkingShortLivedKubeconfig,
	TestAccSKERotation_twoPhasesAcrossApplies,
	TestAccProvider_linodeSettingsFromEnvironment,
	TestAccServiceAccountTokens_listsChosenNamespacesWithAge,
	TestAccRotation_createRotatesAndProvesIt,
	TestAccRotation_rotateEveryReplacesWhenDue,
	TestAccRotation_importAdoptsWithoutRotating,
	TestAccRotation_failedRegenerationLeavesAWayInAndTheNextApplyFinishes,
	TestAccRotation_resumesWhenTheServedKubeconfigIsAlreadyRejected,
	TestAccShortLived_tokenWorksDuringTheRunAndIsRevokedAfter,
	TestAccShortLived_clientCertificate,
	TestAccShortLived_invalidConfigurationsFailAtValidate,
}

// portableRuns counts the subtests TestAccPortable started; with
// KUBECREDS_PORTABLE=1, TestMain fails a run where it is zero (a -run that
// matched nothing would otherwise pass).
var portableRuns atomic.Int64

// TestAccPortable runs portableTests, each as a subtest named as the test
// is, when the run is for another CLI (KUBECREDS_PORTABLE=1). Each runs as
// it does under its own name: those that call t.Parallel() (12 of the 13)
// run in parallel with each other; those that do not, such as
// TestAccProvider_linodeSettingsFromEnvironment, run first, one at a time.
// TestAccPortable itself is not parallel, so a listed test may use
// t.Setenv as long as it does not call t.Parallel().
func TestAccPortable(t *testing.T) {
	if os.Getenv(portableEnv) != "1" {
		t.Skipf("these %d tests ran under their own names in this run; make test-opentofu and make test-terraform14 run this list (%s=1)", len(portableTests), portableEnv)
	}
	if len(portableTests) == 0 {
		t.Fatal("portableTests is empty")
	}
	for _, test := range portableTests {
		t.Run(testName(test), func(t *testing.T) {
			portableRuns.Add(1)
			test(t)
		})
	}
}

// testName is a test function's name, as go test names it.
func testName(test func(*testing.T)) string {
	name := runtime.FuncForPC(reflect.ValueOf(test).Pointer()).Name()
	return name[strings.LastIndex(name, ".")+1:]
}
