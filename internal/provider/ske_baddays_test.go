//go:build !unit

package provider

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	fakeske "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/ske"
)

// skeBadDays are the SKE bad-days matrix's rows: each a day the SKE API
// (or what stands around it) is not at its best. In every row each apply
// succeeds or fails naming what happened, the next apply converges, SKE
// acts once per phase, and the state is never dropped by a failure that is
// not SKE's own 404 for the cluster.
var skeBadDays = []struct {
	name string
	run  func(t *testing.T)
}{
	{"1 rate limits, gateway pages, dropped connections, lagging status, lost answers", skeBadDayRough},
	{"2 token endpoint 404 while refreshing", skeBadDayTokenEndpoint404},
	{"4 node roll held: unhealthy, then hibernated", skeBadDayRollHeld},
	{"5 start and complete made elsewhere, an unknown phase", skeBadDayMadeElsewhere},
}

// TestAccSKEBadDaysMatrix runs every SKE bad day, each on a cluster of its
// own, and prints how each went.
func TestAccSKEBadDaysMatrix(t *testing.T) {
	t.Parallel() // its rows run beside every other parallel test, each on an SKE cluster of its own
	var mu sync.Mutex
	outcomes := map[string]string{}
	t.Cleanup(func() {
		var b strings.Builder
		passed := 0
		b.WriteString("SKE bad days matrix\n| row | outcome |\n|---|---|\n")
		for _, d := range skeBadDays {
			o := outcomes[d.name]
			if o == "" {
				o = "not run"
			}
			if strings.HasPrefix(o, "pass") {
				passed++
			}
			fmt.Fprintf(&b, "| %s | %s |\n", d.name, o)
		}
		fmt.Fprintf(&b, "%d of %d rows converged\n", passed, len(skeBadDays))
		t.Log("\n" + b.String())
	})
	for _, d := range skeBadDays {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			defer func() {
				o := "FAIL"
				if !t.Failed() {
					o = fmt.Sprintf("pass (%s)", time.Since(start).Round(time.Second))
				}
				mu.Lock()
				outcomes[d.name] = o
				mu.Unlock()
			}()
			d.run(t)
		})
	}
}

// skeBadDayRough: the SKE API answers as it may on a bad day (429 with
// Retry-After, a gateway's HTML pages, dropped connections, a status that
// shows a start or completion only seconds after it happened, and a start
// and a completion it acted on whose answers never arrive), and the two
// phases still end PREPARED, then COMPLETED, with SKE acting exactly once
// on each, the kubeconfig from before rejected, and a kubeconfig issued
// through more bad answers working.
func skeBadDayRough(t *testing.T) {
	c := newSKECluster(t, "bad-days")
	api, err := testEnv.SKE()
	if err != nil {
		t.Fatal(err)
	}
	// Longer than a dropped start takes to be noticed, so the first reads
	// after it show no sign of it.
	c.SetStatusLag(3 * time.Second)
	oldKC, _, err := c.Kubeconfig(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	badReads := []fakeske.Fault{
		{Status: http.StatusTooManyRequests, RetryAfter: time.Second},
		{Status: http.StatusBadGateway, HTML: true},
		{Drop: true},
	}
	// request_timeout bounds the hung completion.
	const prelude = "provider \"kubecreds\" {\n  request_timeout = \"5s\"\n}\n"
	allMet := func(endpoints ...string) error {
		for _, e := range endpoints {
			if n := api.PendingFaults(c, e); n != 0 {
				return fmt.Errorf("%d faults on %s were never met: the test proved nothing about them", n, e)
			}
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					api.InjectFaults(c, fakeske.EndpointGetCluster, badReads...)
					api.InjectFaults(c, fakeske.EndpointStartRotation, fakeske.Fault{Acted: true, Drop: true})
				},
				Config: prelude + skeRotationConfig(c, `  complete_after = "168h"`+"\n"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(skeRotationAddr, tfjsonpath.New("phase"), knownvalue.StringExact("PREPARED")),
				},
				Check: func(*terraform.State) error {
					if starts, _ := c.Rotations(); starts != 1 {
						return fmt.Errorf("SKE acted on %d starts; want exactly 1 (the first one's answer was lost)", starts)
					}
					if err := skeKubeconfigWorks(t.Context(), oldKC); err != nil {
						return fmt.Errorf("the kubeconfig from before stopped working while PREPARED: %w", err)
					}
					return allMet(fakeske.EndpointGetCluster, fakeske.EndpointStartRotation)
				},
			},
			{
				PreConfig: func() {
					api.InjectFaults(c, fakeske.EndpointGetCluster, badReads...)
					api.InjectFaults(c, fakeske.EndpointCompleteRotation, fakeske.Fault{Acted: true, Hang: true})
				},
				Config: prelude + skeRotationConfig(c, `  complete_after = "168h"`+"\n"+`  complete       = true`+"\n"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(skeRotationAddr, tfjsonpath.New("phase"), knownvalue.StringExact("COMPLETED")),
				},
				Check: func(*terraform.State) error {
					if starts, completes := c.Rotations(); starts != 1 || completes != 1 {
						return fmt.Errorf("SKE acted on %d starts and %d completions; want 1 and 1", starts, completes)
					}
					if err := skeKubeconfigWorks(t.Context(), oldKC); err == nil {
						return fmt.Errorf("the kubeconfig from before the rotation still works after it completed")
					}
					return allMet(fakeske.EndpointGetCluster, fakeske.EndpointCompleteRotation)
				},
			},
			{
				Config:           prelude + skeRotationConfig(c, `  complete_after = "168h"`+"\n"+`  complete       = true`+"\n"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})

	// A kubeconfig asked for through a gateway's 503 page, a 429 and a
	// dropped connection still comes, and works.
	api.InjectFaults(c, fakeske.EndpointCreateKubeconfig,
		fakeske.Fault{Status: http.StatusServiceUnavailable, HTML: true},
		fakeske.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second},
		fakeske.Fault{Drop: true})
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   ephemeralVersions,
		ProtoV6ProviderFactories: providersWithEcho(testProviders["kubecreds"]),
		Steps: []resource.TestStep{{
			Config: prelude + skeKubeconfigConfig(c, ""),
			Check: func(s *terraform.State) error {
				if err := skeKubeconfigWorks(t.Context(), []byte(echoed(s)["kubeconfig"])); err != nil {
					return fmt.Errorf("the kubeconfig issued after the bad answers does not work: %w", err)
				}
				return allMet(fakeske.EndpointCreateKubeconfig)
			},
		}},
	})
}
