//go:build !unit

package provider

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	fakeske "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/ske"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/ske"
)

// skeClient talks to the local SKE API as the provider does (the token
// flow; its certificate trusted through SSL_CERT_FILE).
func skeClient(t *testing.T, api *fakeske.API) *ske.Client {
	t.Helper()
	hc, err := ske.NewHTTPClient(ske.Credentials{Token: api.Token}, nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &ske.Client{BaseURL: api.URL, HTTP: hc}
}

func skeRef(c *fakeske.Cluster) ske.ClusterRef {
	return ske.ClusterRef{ProjectID: c.ProjectID, Region: c.Region, Name: c.Name}
}

const skeRotationAddr = "kubecreds_ske_credentials_rotation.r"

// newSKECluster starts an SKE cluster of the test's own (a rotation changes
// it for good), with the SKE API set up for the provider.
func newSKECluster(t *testing.T, name string) *fakeske.Cluster {
	t.Helper()
	sharedSKECluster(t)
	c, err := testEnv.AddSKECluster(t.Context(), fakeske.ClusterSpec{ProjectID: "8b8d1a3e-5d3c-4d5c-9b8e-2f2a6c1d0e42", Region: "eu01", Name: name})
	if err != nil {
		t.Fatalf("cannot start an SKE cluster: %v", err)
	}
	return c
}

func skeRotationConfig(c *fakeske.Cluster, body string) string {
	return fmt.Sprintf(`
resource "kubecreds_ske_credentials_rotation" "r" {
  project_id   = %q
  region       = %q
  cluster_name = %q
%s}
`, c.ProjectID, c.Region, c.Name, body)
}

// skeKubeconfigWorks tells whether a kubeconfig still authenticates.
func skeKubeconfigWorks(ctx context.Context, kc []byte) error {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		return err
	}
	cfg.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	_, err = cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	return err
}

// skeClientCertWorks presents the kubeconfig's client certificate over a
// connection that trusts caData.
func skeClientCertWorks(ctx context.Context, kc, caData []byte) error {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		return err
	}
	cfg.CAData, cfg.Timeout = caData, 10*time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	_, err = cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	return err
}

// TestAccSKERotation_twoPhasesAcrossApplies: the apply that creates the
// resource starts a rotation and waits until it is PREPARED (old
// credentials still work); applies after that change nothing until
// `complete = true`, whose plan says the apply moves the cluster to
// COMPLETED; after it the old kubeconfig is rejected and one issued while
// PREPARED works. Import adopts the cluster in its phase.
func TestAccSKERotation_twoPhasesAcrossApplies(t *testing.T) {
	t.Parallel()
	c := newSKECluster(t, "1two-phase")
	oldKC, _, err := c.Kubeconfig(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A service-account token signed before the start.
	admin, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ServiceAccounts("default").Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ci"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := admin.CoreV1().ServiceAccounts("default").CreateToken(t.Context(), "ci", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldToken := tr.Status.Token
	tokenWorks := func() error {
		cfg := c.AdminConfig()
		cfg.BearerToken, cfg.Timeout = oldToken, 10*time.Second
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		_, err = cs.AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		return err
	}
	var preparedKC []byte
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				Config: skeRotationConfig(c, `  complete_after = "168h"`+"\n"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue(skeRotationAddr, tfjsonpath.New("phase"), knownvalue.StringExact("PREPARED")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(skeRotationAddr, tfjsonpath.New("phase"), knownvalue.StringExact("PREPARED")),
					statecheck.ExpectKnownValue(skeRotationAddr, tfjsonpath.New("completed_at"), knownvalue.Null()),
					statecheck.ExpectKnownValue(skeRotationAddr, tfjsonpath.New("started_at"), knownvalue.NotNull()),
					statecheck.ExpectKnownValue(skeRotationAddr, tfjsonpath.New("completes_at"), knownvalue.NotNull()),
				},
				Check: func(*terraform.State) error {
					if err := skeKubeconfigWorks(t.Context(), oldKC); err != nil {
						return fmt.Errorf("the kubeconfig from before the rotation stopped working while PREPARED: %w", err)
					}
					if err := tokenWorks(); err != nil {
						return fmt.Errorf("the service-account token from before the rotation stopped working while PREPARED: %w", err)
					}
					if starts, completes := c.Rotations(); starts != 1 || completes != 0 {
						return fmt.Errorf("%d starts, %d completions; want 1, 0", starts, completes)
					}
					var err error
					if preparedKC, _, err = c.Kubeconfig(time.Hour); err != nil {
						return err
					}
					if err := skeKubeconfigWorks(t.Context(), preparedKC); err != nil {
						return fmt.Errorf("a kubeconfig issued while PREPARED does not work: %w", err)
					}
					return nil
				},
			},
			{
				Config:           skeRotationConfig(c, `  complete_after = "168h"`+"\n"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				Config: skeRotationConfig(c, `  complete_after = "168h"`+"\n"+`  complete       = true`+"\n"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(skeRotationAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(skeRotationAddr, tfjsonpath.New("phase"), knownvalue.StringExact("COMPLETED")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(skeRotationAddr, tfjsonpath.New("phase"), knownvalue.StringExact("COMPLETED")),
					statecheck.ExpectKnownValue(skeRotationAddr, tfjsonpath.New("completed_at"), knownvalue.NotNull()),
					statecheck.ExpectKnownValue(skeRotationAddr, tfjsonpath.New("completes_at"), knownvalue.Null()),
				},
				Check: func(*terraform.State) error {
					if err := skeKubeconfigWorks(t.Context(), oldKC); err == nil {
						return fmt.Errorf("the kubeconfig from before the rotation still works after it completed")
					}
					// Its CA no longer signs the server's certificate; and its
					// client certificate, shown to a server it trusts, gets 401.
					if err := skeClientCertWorks(t.Context(), oldKC, c.AdminConfig().CAData); !apierrors.IsUnauthorized(err) {
						return fmt.Errorf("the client certificate from before the rotation: %v; want 401 after it completed", err) //nolint:errorlint // err is nil when the old certificate still works, and %w would print %!w(<nil>)
					}
					if err := tokenWorks(); !apierrors.IsUnauthorized(err) {
						return fmt.Errorf("the service-account token signed before the rotation: %v; want 401 after it completed", err) //nolint:errorlint // err is nil when the old token still works, and %w would print %!w(<nil>)
					}
					if err := skeKubeconfigWorks(t.Context(), preparedKC); err != nil {
						return fmt.Errorf("the kubeconfig issued while PREPARED does not work after completion: %w", err)
					}
					if starts, completes := c.Rotations(); starts != 1 || completes != 1 {
						return fmt.Errorf("%d starts, %d completions; want 1, 1", starts, completes)
					}
					return nil
				},
			},
			{
				Config:           skeRotationConfig(c, `  complete_after = "168h"`+"\n"+`  complete       = true`+"\n"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				ResourceName:            skeRotationAddr,
				ImportState:             true,
				ImportStateId:           c.ProjectID + "/" + c.Region + "/" + c.Name,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"complete", "complete_after", "completes_at", "timeouts"},
			},
		},
	})
}

// TestAccSKERotation_hibernatedClusterFailsBeforeAnythingChanges.
func TestAccSKERotation_hibernatedClusterFailsBeforeAnythingChanges(t *testing.T) {
	t.Parallel()
	c := newSKECluster(t, "sleepy")
	c.SetAggregated(fakeske.StateHibernated)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config:      skeRotationConfig(c, ""),
			ExpectError: regexp.MustCompile(`(?s)STATE_HIBERNATED.*wake\s+it\s+up.*Nothing\s+was\s+changed`),
		}},
	})
	if starts, _ := c.Rotations(); starts != 0 {
		t.Errorf("%d rotations started on a hibernated cluster", starts)
	}
}

// TestAccSKERotation_phaseUnderWayIsWaitedForNotRestarted: a rotation
// already PREPARING (an apply killed after the start, or someone in the
// portal) is waited for and adopted, with a warning; it is not started again.
func TestAccSKERotation_phaseUnderWayIsWaitedForNotRestarted(t *testing.T) {
	t.Parallel()
	c := newSKECluster(t, "underway")
	c.SetPrepareDuration(6 * time.Second)
	api, _ := testEnv.SKE()
	client := skeClient(t, api)
	if err := client.StartCredentialsRotation(t.Context(), skeRef(c)); err != nil {
		t.Fatal(err)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config: skeRotationConfig(c, ""),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(skeRotationAddr, tfjsonpath.New("phase"), knownvalue.StringExact("PREPARED")),
			},
		}},
	})
	if starts, _ := c.Rotations(); starts != 1 {
		t.Errorf("%d rotations started; the one under way should have been waited for", starts)
	}
}

// TestAccSKERotation_twoWorkspacesAtOnce: two workspaces (no shared state
// lock) apply the same SKE rotation at once, phase by phase, for several
// rounds. The SKE API refuses a second start or complete, so in each phase
// exactly one run acts and the other adopts what it did, with a warning;
// both applies succeed, both states hold the phase, and the next plans are
// empty.
func TestAccSKERotation_twoWorkspacesAtOnce(t *testing.T) {
	t.Parallel()
	c := newSKECluster(t, "twoatonce")
	c.SetPrepareDuration(3 * time.Second)
	config := withKubecreds(`
variable "round" { type = string }
variable "complete" { type = bool }
` + skeRotationConfig(c, "  keepers  = { round = var.round }\n  complete = var.complete\n"))
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		writeConfig(t, dir, config)
	}
	phases := []struct {
		complete bool
		phase    string
		adopted  string
	}{
		{false, fakeske.PhasePrepared, "Credentials rotation adopted"},
		{true, fakeske.PhaseCompleted, "Credentials rotation completed by another run"},
	}
	for round := range 2 {
		for _, p := range phases {
			vars := map[string]string{"TF_VAR_round": fmt.Sprint(round), "TF_VAR_complete": fmt.Sprint(p.complete)}
			starts, completes := c.Rotations()
			outs, errs := make([]string, 2), make([]error, 2)
			var wg sync.WaitGroup
			for i, dir := range dirs {
				wg.Go(func() { outs[i], errs[i] = tfRun(t, dir, vars, "apply", "-auto-approve", "-input=false") })
			}
			wg.Wait()
			for i := range dirs {
				if errs[i] != nil {
					t.Fatalf("round %d, %s: workspace %d failed: %v\n%s", round, p.phase, i, errs[i], outs[i])
				}
			}
			s, cm := c.Rotations()
			if p.complete && (s != starts || cm != completes+1) || !p.complete && (s != starts+1 || cm != completes) {
				t.Errorf("round %d, %s: SKE acted on %d starts and %d completions; want exactly one of the phase's", round, p.phase, s-starts, cm-completes)
			}
			adopted := 0
			for _, out := range outs {
				if wrapped(p.adopted).MatchString(out) {
					adopted++
				}
			}
			if adopted != 1 {
				t.Errorf("round %d, %s: %d of the two applies say %q; want 1:\n%s\n----\n%s", round, p.phase, adopted, p.adopted, outs[0], outs[1])
			}
			if phase, _ := c.Phase(); phase != p.phase {
				t.Errorf("round %d: the cluster is %s; want %s", round, phase, p.phase)
			}
			for i, dir := range dirs {
				if a := stateAttributes(t, dir, skeRotationAddr); a["phase"] != p.phase {
					t.Errorf("round %d: workspace %d's state says phase %v; want %s", round, i, a["phase"], p.phase)
				}
				mustPlanEmpty(t, dir, vars, fmt.Sprintf("of workspace %d after round %d's %s", i, round, p.phase))
			}
		}
	}
}
