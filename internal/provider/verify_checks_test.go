//go:build !unit

package provider

import (
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

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
	// Through the endpoint the served kubeconfig names, where the cluster
	// can be made to keep accepting tokens.
	kc := servedKubeconfig(t, c)
	dir := configDir(t, map[string]string{"cluster.kubeconfig": string(kc), "main.tf": actionProviders + `
resource "kubecreds_service_account_rotation" "ci" {
  service_accounts = ["` + s.ns + `/deployer"]
  base_kubeconfig  = file("${path.module}/cluster.kubeconfig")
}
`})
	vars := map[string]string{"LINODE_TOKEN": "", "LINODE_URL": "https://127.0.0.1:9/v4"}
	testEnv.Emulator.SetStickyTokens(c.ID, fakelke.StickyTokens{TokensOf: []string{s.ns + "/deployer"}})
	out, err := tfRun(t, dir, vars, "apply", "-auto-approve", "-input=false")
	if err == nil {
		t.Fatalf("the apply succeeded though a token of the account issued before stays accepted:\n%s", out)
	}
	if !wrapped("a token of " + s.ns + "/deployer issued before the re-creation is still accepted").MatchString(out) {
		t.Fatalf("the failed apply does not say which token is still accepted:\n%s", out)
	}
	testEnv.Emulator.SetStickyTokens(c.ID, fakelke.StickyTokens{})
	mustTF(t, dir, vars, "apply", "-auto-approve", "-input=false")
	if out, err := tfRun(t, dir, vars, "plan", "-detailed-exitcode", "-input=false"); err != nil || !strings.Contains(out, "No changes.") {
		t.Fatalf("after the re-run the plan is not empty (%v):\n%s", err, out)
	}
}
