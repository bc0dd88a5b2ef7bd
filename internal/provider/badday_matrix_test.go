//go:build !unit

package provider

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
)

// badDay is one of LKE's bad days (issue: "LKE's bad days"), alone or with
// others: how to bring it about on a cluster, what the rotation's
// configuration adds, and, when the first apply is to fail, the step it
// must name.
type badDay struct {
	name string
	// setup brings the behaviour about before the first apply; the
	// returned provider block, if any, goes into the configuration.
	setup func(t *testing.T, c *fakelke.Cluster) (provider string)
	body  string // added to the rotation's configuration
	// failsAt, when set, is the step the first apply must fail naming
	// (matched as a regexp); clear lets the next apply run.
	failsAt string
	clear   func(c *fakelke.Cluster)
	recycle bool
	// limited: the case must meet the rate limit (else it proves nothing).
	limited bool
}

// Fault queues of one cluster, ready to be injected.
func injectCluster(c *fakelke.Cluster, endpoint string, faults ...fakelke.Fault) {
	testEnv.Emulator.InjectClusterFaults(c.ID, endpoint, faults...)
}

func standardCluster(c *fakelke.Cluster) { c.SetHighAvailability(false) }

func staleWindow(t *testing.T, c *fakelke.Cluster) {
	c.SetStaleWindow(3 * time.Second)
	t.Cleanup(func() { c.SetStaleWindow(0) })
}

func reuseAdminSecret(t *testing.T, c *fakelke.Cluster) {
	c.SetReuseAdminSecret(true)
	t.Cleanup(func() { c.SetReuseAdminSecret(false) })
}

// rateLimitedToken is a token of its own with limits low enough to be met
// by one rotation, which sends no request to learn its scope: 4 requests
// per 10 s window, 2 collection GETs. It goes into the provider block.
func rateLimitedToken(t *testing.T) string {
	token := testEnv.Emulator.ScopedToken(fakelke.ScopeLKEReadWrite)
	testEnv.Emulator.SetTokenRateLimits(token, fakelke.RateLimits{PerMinute: 4, CollectionPerMinute: 2, Window: 10 * time.Second})
	return fmt.Sprintf("provider \"kubecreds\" {\n  linode_token = %q\n}\n", token)
}

const nodeByNodeRecycle = "  recycle_nodes = true\n"

// afterTheFirstFetch queues faults for the wait for the new kubeconfig: two
// requests pass first, the case's own look at the served kubeconfig before
// the apply and the rotation's fetch of the current one.
func afterTheFirstFetch(faults ...fakelke.Fault) []fakelke.Fault {
	return append([]fakelke.Fault{{}, {}}, faults...)
}

var badDays = []badDay{
	// 1: the provider reads nothing from regenerate's answer ({}).
	{name: "1 regenerate answers {}", setup: func(*testing.T, *fakelke.Cluster) string { return "" }},
	// 2: a standard cluster's control plane restarts (503, requests in
	// flight cut); an HA one does not.
	{name: "2 control-plane restart (standard)", setup: func(t *testing.T, c *fakelke.Cluster) string { standardCluster(c); return "" }},
	{name: "2 no restart (high availability)", setup: func(t *testing.T, c *fakelke.Cluster) string {
		c.SetHighAvailability(true)
		t.Cleanup(func() { c.SetHighAvailability(false) })
		return ""
	}},
	{name: "3 stale window", setup: func(t *testing.T, c *fakelke.Cluster) string { staleWindow(t, c); return "" }},
	{name: "4 kubeconfig rebuilt from the existing secret", setup: func(t *testing.T, c *fakelke.Cluster) string { reuseAdminSecret(t, c); return "" }},
	{name: "5 node-by-node recycle", setup: func(*testing.T, *fakelke.Cluster) string { return "" }, body: nodeByNodeRecycle, recycle: true},
	{name: "6 rate limits", setup: func(t *testing.T, _ *fakelke.Cluster) string { return rateLimitedToken(t) }, limited: true},
	// 7: maintenance while the new kubeconfig is awaited is waited out;
	// maintenance before anything changed fails at once, saying so.
	{name: "7 maintenance while waiting", setup: func(t *testing.T, c *fakelke.Cluster) string {
		m := fakelke.Fault{Maintenance: true, RetryAfter: time.Second}
		injectCluster(c, fakelke.EndpointGetKubeconfig, afterTheFirstFetch(m, m, m)...)
		return ""
	}},
	{name: "7 maintenance before the rotation", setup: func(t *testing.T, c *fakelke.Cluster) string {
		injectCluster(c, fakelke.EndpointGetCluster, fakelke.Fault{Maintenance: true, RetryAfter: time.Second})
		return ""
	}, failsAt: regexp.QuoteMeta(lke.StepGetCluster) + `.*under\s+maintenance`},
	// 8: the gateway's HTML pages on regenerate (the API did not act):
	// asked again once it is clear nothing happened.
	{name: "8 gateway HTML on regenerate", setup: func(t *testing.T, c *fakelke.Cluster) string {
		injectCluster(c, fakelke.EndpointRegenerate,
			fakelke.Fault{Status: http.StatusBadGateway, HTML: true}, fakelke.Fault{Status: http.StatusGatewayTimeout, HTML: true})
		return ""
	}},
	{name: "9 token without lke:read_write", setup: func(t *testing.T, c *fakelke.Cluster) string {
		return fmt.Sprintf("provider \"kubecreds\" {\n  linode_token = %q\n}\n", testEnv.Emulator.ScopedToken(fakelke.ScopeLKEReadOnly))
	}, failsAt: regexp.QuoteMeta(lke.StepGetCluster) + `.*OAuth\s+scopes.*lke:read_write.*this\s+run\s+changed\s+nothing`},
	// 10: every cluster's kube-system holds the four token secrets of the
	// LKE guide's listing; checked below in every case.
	// 11: every cluster's API server caps tokens at 24h (the canary is
	// unaffected); the ephemeral resource's tests cover the cap and the
	// CSR-less cluster.
	{name: "12 regenerate acted, answer lost", setup: func(t *testing.T, c *fakelke.Cluster) string {
		injectCluster(c, fakelke.EndpointRegenerate, fakelke.Fault{Acted: true, Drop: true})
		return ""
	}},
	{name: "12 recycle acted, answer timed out", setup: func(t *testing.T, c *fakelke.Cluster) string {
		injectCluster(c, fakelke.EndpointRecycleCluster, fakelke.Fault{Acted: true, Hang: true})
		return "provider \"kubecreds\" {\n  request_timeout = \"5s\"\n}\n"
	}, body: nodeByNodeRecycle, recycle: true},
	// 13 (issue 21.1): answers that linodego alone takes for success. A
	// regenerate answered 500 {} did not happen; a kubeconfig answered
	// 500 {"message": …} or 200 {} is none. Each is a failure to ride out.
	{name: "13 errors that look like success", setup: func(t *testing.T, c *fakelke.Cluster) string {
		injectCluster(c, fakelke.EndpointRegenerate, fakelke.Fault{Status: http.StatusInternalServerError, Body: "{}"})
		injectCluster(c, fakelke.EndpointGetKubeconfig, afterTheFirstFetch(
			fakelke.Fault{Status: http.StatusInternalServerError, Body: `{"message": "Internal Server Error"}`},
			fakelke.Fault{Status: http.StatusOK, Body: "{}"})...)
		return ""
	}},
	// 14 (issue 21.2): the CDN in front of the API fails for 20 s, in time
	// rather than in requests, right after the secrets are deleted: HTML
	// 502 pages, dropped connections, 504 pages asking for Retry-After.
	{name: "14 CDN outage while waiting for the kubeconfig", setup: func(t *testing.T, c *fakelke.Cluster) string {
		injectCluster(c, fakelke.EndpointGetKubeconfig, afterTheFirstFetch(
			fakelke.Fault{Status: http.StatusBadGateway, HTML: true, For: 8 * time.Second},
			fakelke.Fault{Drop: true, For: 4 * time.Second},
			fakelke.Fault{Status: http.StatusGatewayTimeout, HTML: true, RetryAfter: 2 * time.Second, For: 8 * time.Second})...)
		return ""
	}},
	// 15 (issue 21.5): a slower LKE shows a regeneration only after 30 s
	// (the old kubeconfig served, no secret replaced), and the answer to
	// the regenerate is lost: it must not be sent again.
	{name: "15 late regeneration, answer lost", setup: func(t *testing.T, c *fakelke.Cluster) string {
		c.SetActDelay(30 * time.Second)
		t.Cleanup(func() { c.SetActDelay(0) })
		injectCluster(c, fakelke.EndpointRegenerate, fakelke.Fault{Acted: true, Drop: true})
		return ""
	}},
	// The combinations that matter.
	{name: "2+3 restart during a stale window", setup: func(t *testing.T, c *fakelke.Cluster) string {
		standardCluster(c)
		staleWindow(t, c)
		return ""
	}},
	{name: "4+6 rebuilt kubeconfig under rate limits", setup: func(t *testing.T, c *fakelke.Cluster) string {
		reuseAdminSecret(t, c)
		return rateLimitedToken(t)
	}, limited: true},
	{name: "5+12 node-by-node recycle, answer lost", setup: func(t *testing.T, c *fakelke.Cluster) string {
		injectCluster(c, fakelke.EndpointRecycleCluster, fakelke.Fault{Acted: true, Drop: true})
		return ""
	}, body: nodeByNodeRecycle, recycle: true},
}

var badDayOutcomes = struct {
	sync.Mutex
	rows map[string]string
}{rows: map[string]string{}}

// TestAccBadDaysMatrix runs a real rotation through each of LKE's bad days,
// alone and in the combinations that matter. Each case: the apply succeeds
// (or fails naming the step, and the next apply converges); a second apply
// changes nothing; the served kubeconfig works and the old admin token is
// rejected; LKE acted on exactly one regeneration (and one recycle when
// asked), whatever answers were lost; and kube-system's token secrets are
// all new.
func TestAccBadDaysMatrix(t *testing.T) {
	t.Parallel() // its cases join the pool of parallel tests (takeCluster)
	t.Cleanup(func() {
		badDayOutcomes.Lock()
		defer badDayOutcomes.Unlock()
		var b strings.Builder
		b.WriteString("bad days matrix\n| case | outcome |\n|---|---|\n")
		names := make([]string, 0, len(badDays))
		for _, d := range badDays {
			names = append(names, d.name)
		}
		sort.Strings(names)
		passed := 0
		for _, n := range names {
			o := badDayOutcomes.rows[n]
			if o == "" {
				o = "not run"
			}
			if strings.HasPrefix(o, "pass") {
				passed++
			}
			fmt.Fprintf(&b, "| %s | %s |\n", n, o)
		}
		fmt.Fprintf(&b, "%d of %d cases passed\n", passed, len(names))
		t.Log("\n" + b.String())
	})
	for _, d := range badDays {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			runBadDay(t, d)
		})
	}
}

func runBadDay(t *testing.T, d badDay) {
	c := takeCluster(t)
	t.Cleanup(func() { testEnv.Emulator.ClearClusterFaults(c.ID) })
	outcome := "FAIL"
	defer func() {
		badDayOutcomes.Lock()
		badDayOutcomes.rows[d.name] = outcome
		badDayOutcomes.Unlock()
	}()
	var (
		oldKC                       []byte
		regenBefore, recycleBefore  int
		systemBefore                map[string]string
		requestsBefore, limitedSeen int
		start                       time.Time
	)
	provider := d.setup(t, c)
	body := d.body + "  timeouts {\n    create = \"4m\"\n  }\n"
	config := provider + rotationConfig(c.ID, body)
	// The failing apply (if any) and the converging one use the same
	// configuration, except that the scope case's next apply uses the
	// full token, as a user who read the error would.
	converge := config
	if d.failsAt != "" && provider != "" {
		converge = rotationConfig(c.ID, body)
	}
	prepare := func() {
		oldKC = servedKubeconfig(t, c)
		regenBefore, recycleBefore = c.Regenerations(), c.Recycles()
		systemBefore = tokenSecrets(t, c, "kube-system")
		requestsBefore = len(testEnv.Emulator.Requests())
		start = time.Now()
	}
	verify := rotationCheck(func(rotationValues) error {
		if err := oldTokenRejected(t, oldKC); err != nil {
			return err
		}
		if n := c.Regenerations() - regenBefore; n != 1 {
			return fmt.Errorf("LKE acted on %d regenerations; want exactly 1", n)
		}
		wantRecycles := 0
		if d.recycle {
			wantRecycles = 1
		}
		if n := c.Recycles() - recycleBefore; n != wantRecycles {
			return fmt.Errorf("LKE acted on %d recycles; want %d", n, wantRecycles)
		}
		if len(systemBefore) != 4 {
			return fmt.Errorf("kube-system held %d token secrets before; a fresh LKE has the guide's 4", len(systemBefore))
		}
		after := tokenSecrets(t, c, "kube-system")
		for name := range systemBefore {
			if _, ok := after[name]; ok {
				return fmt.Errorf("kube-system token secret %s survived the rotation", name)
			}
		}
		for _, r := range testEnv.Emulator.Requests()[requestsBefore:] {
			if r.ClusterID == c.ID && r.Status == http.StatusTooManyRequests {
				limitedSeen++
			}
		}
		return nil
	})
	steps := []resource.TestStep{}
	if d.failsAt != "" {
		steps = append(steps, resource.TestStep{
			PreConfig:   prepare,
			Config:      config,
			ExpectError: regexp.MustCompile(`(?s)` + d.failsAt),
		}, resource.TestStep{
			PreConfig: func() {
				if d.clear != nil {
					d.clear(c)
				}
				// Nothing was changed by the failed apply.
				if err := kubeconfigWorks(t, oldKC); err != nil {
					t.Fatalf("after the failed apply the old kubeconfig no longer works: %v", err)
				}
			},
			Config:            converge,
			ConfigStateChecks: []statecheck.StateCheck{servedKubeconfigMatches(t, c), verify},
		})
	} else {
		steps = append(steps, resource.TestStep{
			PreConfig:         prepare,
			Config:            config,
			ConfigStateChecks: []statecheck.StateCheck{servedKubeconfigMatches(t, c), verify},
		})
	}
	// A second apply changes nothing.
	steps = append(steps, resource.TestStep{
		Config: converge,
		ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
			plancheck.ExpectEmptyPlan(),
		}},
		ConfigStateChecks: []statecheck.StateCheck{rotationCheck(func(rotationValues) error {
			if n := c.Regenerations() - regenBefore; n != 1 {
				return fmt.Errorf("the second apply regenerated again (%d regenerations)", n)
			}
			return nil
		})},
	})
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: testProviders, Steps: steps})
	if d.limited && limitedSeen == 0 {
		t.Error("the rotation never met the rate limit: the case proves nothing")
	}
	if !t.Failed() {
		outcome = fmt.Sprintf("pass (%s", time.Since(start).Round(time.Second))
		if limitedSeen > 0 {
			outcome += fmt.Sprintf(", %d × 429", limitedSeen)
		}
		outcome += ")"
	}
}
