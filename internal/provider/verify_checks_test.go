//go:build !unit

package provider

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

// Every check of verify has a test that fails without it. A healthy API
// server rejects a revoked token anyway, so a dropped check would go
// unnoticed; here the cluster's endpoint keeps accepting the old admin
// token, the short-lived canary and the listed account's canary (as a
// caching authentication webhook would), and the apply must fail naming
// each of the three. Then, with the endpoint healthy again, the same apply
// finishes the job and the next plan is empty.
func TestAccVerify_failsNamingEachCredentialStillAccepted(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	t.Cleanup(func() { testEnv.Emulator.SetStickyTokens(c.ID, fakelke.StickyTokens{}) })
	config := rotationConfig(c.ID, `  revoke_service_accounts = ["ci/deployer"]`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					ciDeployer(t, c)
					testEnv.Emulator.SetStickyTokens(c.ID, fakelke.StickyTokens{
						AdminToken: kubeconfigToken(t, servedKubeconfig(t, c)),
						TokensOf:   []string{"kube-system/default", "ci/deployer"},
					})
				},
				Config: config,
				ExpectError: wrapped("the old admin token and a short-lived token issued before the revocation and " +
					"a token of ci/deployer issued before its re-creation are still accepted"),
			},
			{
				PreConfig: func() { testEnv.Emulator.SetStickyTokens(c.ID, fakelke.StickyTokens{}) },
				Config:    config,
			},
			{Config: config, PlanOnly: true},
		},
	})
}

// The same for kubecreds_service_account_rotation: a token of the account
// issued before its re-creation that stays accepted fails the apply, named.
func TestAccServiceAccountRotation_verifyFailsNamingTheAccountStillAccepted(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	t.Cleanup(func() { testEnv.Emulator.SetStickyTokens(c.ID, fakelke.StickyTokens{}) })
	s := newAccountScene(t, c, "sarot-sticky", false)
	dir := servedAccountDir(t, c, s.ns)
	testEnv.Emulator.SetStickyTokens(c.ID, fakelke.StickyTokens{TokensOf: []string{s.ns + "/deployer"}})
	out, err := tfRun(t, dir, noLinodeAPI, "apply", "-auto-approve", "-input=false")
	if err == nil {
		t.Fatalf("the apply succeeded though a token of the account issued before stays accepted:\n%s", out)
	}
	if !wrapped("a token of " + s.ns + "/deployer issued before the re-creation is still accepted").MatchString(out) {
		t.Fatalf("the failed apply does not say which token is still accepted:\n%s", out)
	}
	testEnv.Emulator.SetStickyTokens(c.ID, fakelke.StickyTokens{})
	mustTF(t, dir, noLinodeAPI, "apply", "-auto-approve", "-input=false")
	mustPlanEmpty(t, dir, noLinodeAPI, "after the re-run")
}

// A run killed with SIGKILL after it deleted the account and before it
// created it again leaves the account missing; the next apply creates it
// from the checkpoint the killed run wrote, and every old token is
// rejected.
func TestAccServiceAccountRotation_killedRunResumes(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	t.Cleanup(func() { testEnv.Emulator.ClearClusterFaults(c.ID) })
	s := newAccountScene(t, c, "sarot-killed", false)
	dir := servedAccountDir(t, c, s.ns)
	// Hold the create that follows the delete, so that the kill lands in
	// between.
	testEnv.Emulator.InjectClusterFaults(c.ID, fakelke.KubeCreateServiceAccount, fakelke.Fault{Delay: time.Minute})
	cs := adminClient(t, c)
	out, err := runKilledWhen(t, dir, nil, func() bool {
		_, errSA := cs.CoreV1().ServiceAccounts(s.ns).Get(t.Context(), "deployer", metav1.GetOptions{})
		_, errCP := cs.CoreV1().ConfigMaps(s.ns).Get(t.Context(), "kubecreds-recreate-deployer", metav1.GetOptions{})
		return apierrors.IsNotFound(errSA) && errCP == nil
	})
	if err != nil {
		t.Fatalf("the apply was not killed between the delete and the create: %v\n%s", err, out)
	}
	testEnv.Emulator.ClearClusterFaults(c.ID)
	if _, err := cs.CoreV1().ServiceAccounts(s.ns).Get(t.Context(), "deployer", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the account is not missing after the kill (%v): the test would prove nothing", err)
	}
	out = mustTF(t, dir, noLinodeAPI, "apply", "-auto-approve", "-input=false")
	if !strings.Contains(out, "created from a stopped run's checkpoint") {
		t.Errorf("the apply after the kill does not say it created the account from the checkpoint:\n%s", out)
	}
	s.checkRevoked(t, c)
	mustPlanEmpty(t, dir, noLinodeAPI, "after the resumed apply")
}
