//go:build !unit

package provider

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
)

// A step of the rotation and the request through which a fault reaches it:
// the Linode API's (emulator) or the Kubernetes API server's (the proxy in
// front of it that the served kubeconfig names).
type faultedStep struct {
	step     string // as errors name it
	endpoint string
	// pass lets this many requests to the endpoint through before the
	// faults: the kubeconfig is fetched once before regeneration and polled
	// after it.
	pass int
	// faults is how many transient faults are played (default 2).
	faults  int
	verify  bool // the step runs only with verify = true
	restart bool
	recycle bool
}

var faultedSteps = []faultedStep{
	{step: lke.StepGetCluster, endpoint: fakelke.EndpointGetCluster},
	{step: lke.StepFetchKubeconfig, endpoint: fakelke.EndpointGetKubeconfig},
	{step: lke.StepCheckAccess, endpoint: fakelke.KubeSelfSubjectReview},
	{step: lke.StepListSecrets, endpoint: fakelke.KubeListSecrets},
	{step: lke.StepDeleteSecrets, endpoint: fakelke.KubeDeleteSecrets},
	// lke-admin's delete, sent with the bridge's token (no bridge is left
	// over to sweep first); TestAccRotation_recreatesTheAdminPastFaultsOnItsCreate
	// faults the create after it.
	{step: lke.StepRecreateServiceAccounts, endpoint: fakelke.KubeDeleteServiceAccount},
	// A regenerate (or recycle, below) that fails may have acted: each
	// failure is watched for its effect (after no answer or a gateway's
	// page: a minute, matrixTimings' 5 s here), so one fault is enough to
	// show the request is sent again only after that.
	{step: lke.StepRegenerate, endpoint: fakelke.EndpointRegenerate, faults: 1},
	{step: lke.StepWaitKubeconfig, endpoint: fakelke.EndpointGetKubeconfig, pass: 1},
	// The batch is one DeleteCollection (kube-system only); then the old
	// kubeconfig's own secret is deleted by name.
	{step: lke.StepDeleteOldSecret, endpoint: fakelke.KubeDeleteSecrets, pass: 1},
	{step: lke.StepVerifyNew, endpoint: fakelke.KubeListNodes, verify: true},
	{step: lke.StepRestartWorkloads, endpoint: fakelke.KubePatchWorkload, restart: true},
	{step: lke.StepRecycleNodes, endpoint: fakelke.EndpointRecycleCluster, recycle: true, faults: 1},
}

var faultKinds = []struct {
	name  string
	fault fakelke.Fault
}{
	{"429 Retry-After", fakelke.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second}},
	{"500", fakelke.Fault{Status: http.StatusInternalServerError}},
	{"502", fakelke.Fault{Status: http.StatusBadGateway}},
	// The CDN's own pages, as it sends every 5xx: HTML, no Linode error
	// list, and no Retry-After that linodego could read (it keeps no
	// response for them: a 502 is special-cased to "Bad Gateway", the
	// others are "Unexpected Content-Type").
	{"500 HTML", fakelke.Fault{Status: http.StatusInternalServerError, HTML: true}},
	{"502 HTML", fakelke.Fault{Status: http.StatusBadGateway, HTML: true}},
	{"503 HTML", fakelke.Fault{Status: http.StatusServiceUnavailable, HTML: true}},
	{"504 HTML", fakelke.Fault{Status: http.StatusGatewayTimeout, HTML: true}},
	{"503", fakelke.Fault{Status: http.StatusServiceUnavailable}},
	{"hang", fakelke.Fault{Hang: true}},
	{"drop", fakelke.Fault{Drop: true}},
}

// faultProvider makes requests give up after 2 s and retries 3 times (1 s,
// 2 s, 4 s apart), so that a persistent fault fails within seconds.
const faultProvider = `
provider "kubecreds" {
  request_timeout = "2s"
  max_retries     = 3
}
`

// matrixProviders run the provider with the rotation's longest waits
// shortened: the watch after a lost regenerate or recycle answer (60 s →
// 5 s) and the kubeconfig poll's budget for failures (1 m → 15 s). The
// matrix tests what the rotation does when they end, 121 times; how long
// they are is the defaults' business (TestAccBadDaysMatrix runs them).
var matrixProviders = map[string]func() (tfprotov6.ProviderServer, error){
	"kubecreds": providerserver.NewProtocol6WithError(newTuned("test", clock.RealClock{}, matrixTimings)()),
}

var matrixTimings = timings{actSettle: 5 * time.Second, kubeconfigFailFor: 15 * time.Second}

func faultConfig(c *fakelke.Cluster, s faultedStep) string {
	return faultConfigWithin(c, s, "3m")
}

// faultConfigWithin is faultConfig with another create timeout.
func faultConfigWithin(c *fakelke.Cluster, s faultedStep, create string) string {
	body := fmt.Sprintf("  verify = %t\n", s.verify)
	if s.restart {
		body += "  restart_workloads {\n    namespaces = [\"fault-apps\"]\n    kinds      = [\"deployment\"]\n  }\n"
	}
	if s.recycle {
		body += "  recycle_nodes = true\n"
	}
	body += "  timeouts {\n    create = \"" + create + "\"\n  }\n"
	return faultProvider + rotationConfig(c.ID, body)
}

// matrix collects the outcome of every case, printed when all have run.
var matrix = struct {
	sync.Mutex
	rows map[string]map[string]string // step -> fault -> outcome
}{rows: map[string]map[string]string{}}

func recordCase(step, fault, outcome string) {
	matrix.Lock()
	defer matrix.Unlock()
	if matrix.rows[step] == nil {
		matrix.rows[step] = map[string]string{}
	}
	matrix.rows[step][fault] = outcome
}

func printMatrix(t *testing.T) {
	matrix.Lock()
	defer matrix.Unlock()
	cols := []string{}
	for _, k := range faultKinds {
		cols = append(cols, k.name)
	}
	cols = append(cols, "persistent 500")
	var b strings.Builder
	fmt.Fprintf(&b, "fault matrix (transient: 2 faults then served, 1 at regenerate and recycle, one apply per fault kind and group of steps that run the same rotation and reach endpoints of their own; persistent: every attempt fails, then the next apply runs clean)\n")
	fmt.Fprintf(&b, "| step | %s |\n|---|%s\n", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
	passed, total := 0, 0
	for _, s := range faultedSteps {
		fmt.Fprintf(&b, "| %s |", s.step)
		for _, c := range cols {
			outcome := matrix.rows[s.step][c]
			if outcome == "" {
				outcome = "not run"
			}
			if outcome == "pass" {
				passed++
			}
			total++
			fmt.Fprintf(&b, " %s |", outcome)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%d of %d cells passed, in %d test cases\n", passed, total, len(faultKinds)*len(faultGroups(faultedSteps))+len(faultedSteps))
	t.Log("\n" + b.String())
}

// TestAccFaultMatrix injects each fault at each step of a rotation. A transient
// fault (twice, then the request is served) is retried and the apply
// succeeds; a persistent one ends the apply with an error naming the step,
// and the next apply converges. After every apply the Linode API serves a
// kubeconfig that works.
//
// The transient cells of one fault kind are played by a few applies, not
// one each: an apply carries the faults of every step of a group
// (faultGroups). The steps of a group run with the settings each has when
// faulted alone, so the rotation sends the same requests as in each step's
// own case, and they reach the API through endpoints of their own, so each
// fault is met by the same request as in that step's own case. A persistent
// fault ends the apply at its step, so each of those has an apply of its own.
func TestAccFaultMatrix(t *testing.T) {
	t.Parallel() // its cases join the pool of parallel tests (takeCluster)
	t.Cleanup(func() { printMatrix(t) })
	for _, k := range faultKinds {
		for _, g := range faultGroups(faultedSteps) {
			t.Run("transient "+k.name+"/"+groupName(g), func(t *testing.T) {
				t.Parallel()
				runTransientFaults(t, g, k.name, k.fault)
			})
		}
	}
	for _, s := range faultedSteps {
		t.Run("persistent 500/"+s.step, func(t *testing.T) {
			t.Parallel()
			runPersistentFault(t, s, fakelke.Fault{Status: http.StatusInternalServerError})
		})
	}
}

// faultGroups splits steps, in their order, into the fewest groups in which
// every step has the same settings (verify, restart, recycle) and no two
// steps share an endpoint. The faults of a step are then the first requests
// to its endpoint after its pass in the same rotation as when it is faulted
// alone; a later step of the rotation that reaches the same endpoint (the
// regenerate watch reads the kubeconfig and lists secrets, verify reviews
// the old token, recycle lists nodes) met them no sooner there either.
func faultGroups(steps []faultedStep) [][]faultedStep {
	var groups [][]faultedStep
next:
	for _, s := range steps {
		for i, g := range groups {
			if settings(g[0]) == settings(s) &&
				!slices.ContainsFunc(g, func(o faultedStep) bool { return o.endpoint == s.endpoint }) {
				groups[i] = append(g, s)
				continue next
			}
		}
		groups = append(groups, []faultedStep{s})
	}
	return groups
}

// groupName names a group by its first and last step ("get cluster …
// recycle nodes, 9 steps"); the matrix printed at the end has every step.
func groupName(g []faultedStep) string {
	if len(g) == 1 {
		return g[0].step
	}
	return fmt.Sprintf("%s … %s, %d steps", g[0].step, g[len(g)-1].step, len(g))
}

// settings is the rotation a step runs in: verify, restart and recycle as
// it asks, nothing else of it.
func settings(s faultedStep) faultedStep {
	return faultedStep{verify: s.verify, restart: s.restart, recycle: s.recycle}
}

func prepareFaultCase(t *testing.T, c *fakelke.Cluster, s faultedStep) {
	t.Helper()
	if s.restart {
		ensureDeployment(t, c, "fault-apps", "web")
	}
	t.Cleanup(func() { testEnv.Emulator.ClearClusterFaults(c.ID) })
}

func injectAfter(c *fakelke.Cluster, s faultedStep, faults ...fakelke.Fault) {
	queue := make([]fakelke.Fault, 0, s.pass+len(faults))
	for range s.pass {
		queue = append(queue, fakelke.Fault{}) // served normally
	}
	testEnv.Emulator.InjectClusterFaults(c.ID, s.endpoint, append(queue, faults...)...)
}

func runTransientFaults(t *testing.T, g []faultedStep, name string, f fakelke.Fault) {
	c := takeCluster(t)
	all := settings(g[0]) // the same for every step of g
	prepareFaultCase(t, c, all)
	outcome := "FAIL"
	defer func() {
		for _, s := range g {
			recordCase(s.step, name, outcome)
		}
	}()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: matrixProviders,
		Steps: []resource.TestStep{{
			PreConfig: func() {
				for _, s := range g {
					n := 2
					if s.faults > 0 {
						n = s.faults
					}
					injectAfter(c, s, slices.Repeat([]fakelke.Fault{f}, n)...)
				}
			},
			// Every step of the group meets its faults, one after the
			// other: 3 minutes each, as when each is faulted alone.
			Config: faultConfigWithin(c, all, fmt.Sprintf("%dm", 3*len(g))),
			ConfigStateChecks: []statecheck.StateCheck{
				rotationAttr("rotated_at", knownvalue.NotNull()),
				servedKubeconfigMatches(t, c),
				rotationCheck(func(rotationValues) error {
					var unmet []string
					for _, s := range g {
						if n := testEnv.Emulator.PendingFaults(c.ID, s.endpoint); n != 0 {
							unmet = append(unmet, fmt.Sprintf("%s: %d of its faults were never met (it did not go through %s)", s.step, n, s.endpoint))
						}
					}
					if len(unmet) > 0 {
						return errors.New(strings.Join(unmet, "; "))
					}
					return nil
				}),
			},
		}},
	})
	if !t.Failed() {
		outcome = "pass"
	}
}

func runPersistentFault(t *testing.T, s faultedStep, f fakelke.Fault) {
	c := takeCluster(t)
	prepareFaultCase(t, c, s)
	outcome := "FAIL"
	defer func() { recordCase(s.step, "persistent 500", outcome) }()
	persistent := make([]fakelke.Fault, 40)
	for i := range persistent {
		persistent[i] = f
	}
	// Once the old credentials are revoked, the wait for the new kubeconfig
	// never gives up on failures (giving up would leave no way in): only
	// the create timeout ends it, 3m by default here; 40s is enough.
	first := faultConfig(c, s)
	if s.step == lke.StepWaitKubeconfig {
		first = faultConfigWithin(c, s, "40s")
	}
	// A regeneration that fails after lke-admin was re-created leaves no
	// working served kubeconfig (the documented gap): the error says so,
	// and the next apply regenerates.
	lockedOut := s.step == lke.StepRegenerate
	wantErr := regexp.QuoteMeta(s.step) + `\s+for\s+cluster\s+` + fmt.Sprint(c.ID) + `:`
	if lockedOut {
		wantErr += `(?s).*lke-admin\s+re-created;\s+the\s+kubeconfig\s+the\s+Linode\s+API\s+serves\s+is\s+rejected\s+until\s+a\s+regenerated\s+one\s+is\s+served`
	}
	var before []byte
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: matrixProviders,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					before = servedKubeconfig(t, c)
					injectAfter(c, s, persistent...)
				},
				Config:      first,
				ExpectError: regexp.MustCompile(wantErr),
			},
			{
				PreConfig: func() {
					testEnv.Emulator.ClearClusterFaults(c.ID)
					if lockedOut {
						if !tokenRejectedWithin(t, c, kubeconfigToken(t, before), 15*time.Second) {
							t.Fatal("after the failed regeneration the old admin kubeconfig still works, though lke-admin was re-created")
						}
						return
					}
					if err := workingKubeconfigFromLinode(t, c); err != nil {
						t.Fatalf("after the failed apply: %v", err)
					}
				},
				Config: faultConfig(c, s),
				ConfigStateChecks: []statecheck.StateCheck{
					rotationAttr("rotated_at", knownvalue.NotNull()),
					servedKubeconfigMatches(t, c),
				},
			},
		},
	})
	if !t.Failed() {
		outcome = "pass"
	}
}

// workingKubeconfigFromLinode asks the Linode API for the cluster's
// kubeconfig (waiting while it answers "not yet available", as after a
// regeneration) and checks that it reaches the cluster.
func workingKubeconfigFromLinode(t *testing.T, c *fakelke.Cluster) error {
	t.Helper()
	lc := testLinodeClient(t)
	var lastErr error
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		kc, err := lc.GetLKEClusterKubeconfig(ctx, c.ID)
		if err != nil {
			lastErr = err
			return false, nil //nolint:nilerr // lastErr keeps the error for the message: keep polling through "not yet available"
		}
		raw, err := base64.StdEncoding.DecodeString(kc.KubeConfig)
		if err != nil {
			return false, err
		}
		lastErr = kubeconfigWorks(t, raw)
		return lastErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the Linode API serves no working kubeconfig for cluster %d: %v", c.ID, lastErr) //nolint:errorlint // lastErr may be nil (the poll ended on a decode error), and %w would print %!w(<nil>)
	}
	return nil
}

// ensureDeployment creates a Deployment (and its namespace) if missing.
func ensureDeployment(t *testing.T, c *fakelke.Cluster, ns, name string) {
	t.Helper()
	cs := adminClient(t, c)
	ctx := t.Context()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// TestAccRotation_gatewayHTMLPagesWhileWaitingForTheKubeconfig: the gateway
// in front of the Linode API answers 502, 503 and 504 with HTML pages while
// the rotation waits for the new kubeconfig, after the secrets were deleted.
// linodego returns these as linodego.Error values (502 "Bad Gateway", the
// others "Unexpected Content-Type"); they are passing failures, and the
// rotation finishes.
func TestAccRotation_gatewayHTMLPagesWhileWaitingForTheKubeconfig(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	s := faultedStep{step: lke.StepWaitKubeconfig, endpoint: fakelke.EndpointGetKubeconfig, pass: 1, verify: true}
	prepareFaultCase(t, c, s)
	oldKC := servedKubeconfig(t, c)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			PreConfig: func() {
				injectAfter(c, s,
					fakelke.Fault{Status: http.StatusBadGateway, HTML: true},
					fakelke.Fault{Status: http.StatusServiceUnavailable, HTML: true},
					fakelke.Fault{Status: http.StatusGatewayTimeout, HTML: true})
			},
			Config: faultConfig(c, s),
			ConfigStateChecks: []statecheck.StateCheck{
				rotationAttr("rotated_at", knownvalue.NotNull()),
				servedKubeconfigMatches(t, c),
				rotationCheck(func(rotationValues) error {
					if n := testEnv.Emulator.PendingFaults(c.ID, s.endpoint); n != 0 {
						return fmt.Errorf("%d of the HTML pages were never served", n)
					}
					return oldTokenRejected(t, oldKC)
				}),
			},
		}},
	})
}

// TestAccRotation_actsOnceWhenTheAnswerIsLost: the Linode API regenerates or
// recycles, then the answer is lost (the connection drops, or the request
// hangs past request_timeout). The rotation finds out that the API acted
// instead of asking again: the request log shows the call exactly once, and
// the rotation finishes.
func TestAccRotation_actsOnceWhenTheAnswerIsLost(t *testing.T) {
	t.Parallel() // its cases join the pool of parallel tests (takeCluster)
	cases := []struct {
		name string
		s    faultedStep
		f    fakelke.Fault
	}{
		{"regenerate, dropped", faultedStep{step: lke.StepRegenerate, endpoint: fakelke.EndpointRegenerate}, fakelke.Fault{Acted: true, Drop: true}},
		{"regenerate, hung", faultedStep{step: lke.StepRegenerate, endpoint: fakelke.EndpointRegenerate}, fakelke.Fault{Acted: true, Hang: true}},
		{"recycle, dropped", faultedStep{step: lke.StepRecycleNodes, endpoint: fakelke.EndpointRecycleCluster, recycle: true}, fakelke.Fault{Acted: true, Drop: true}},
	}
	for _, k := range cases {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			c := takeCluster(t)
			prepareFaultCase(t, c, k.s)
			acted := func() int {
				if k.s.recycle {
					return c.Recycles()
				}
				return c.Regenerations()
			}
			before := acted()
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testProviders,
				Steps: []resource.TestStep{{
					PreConfig: func() { injectAfter(c, k.s, k.f) },
					Config:    faultConfig(c, k.s),
					ConfigStateChecks: []statecheck.StateCheck{
						rotationAttr("rotated_at", knownvalue.NotNull()),
						servedKubeconfigMatches(t, c),
						rotationCheck(func(rotationValues) error {
							if n := testEnv.Emulator.PendingFaults(c.ID, k.s.endpoint); n != 0 {
								return fmt.Errorf("the lost answer was never played")
							}
							if n := acted() - before; n != 1 {
								return fmt.Errorf("the Linode API acted on %s %d times; it had acted on the first request, so once is right", k.s.endpoint, n)
							}
							return nil
						}),
					},
				}},
			})
		})
	}
}
