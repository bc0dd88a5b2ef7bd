//go:build !unit

package provider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
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

// skeAccountProvider is a provider block that authenticates as a service
// account of the test's own, by the key flow, so that the test can fail
// that account's token requests without disturbing the others.
func skeAccountProvider(t *testing.T, api *fakeske.API) (*fakeske.ServiceAccount, string) {
	t.Helper()
	sa, err := api.NewServiceAccount("kubecreds-test")
	if err != nil {
		t.Fatal(err)
	}
	key, err := sa.Key()
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(t.TempDir(), "sa-key.json")
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return sa, fmt.Sprintf("provider \"kubecreds\" {\n  stackit {\n    service_account_key_path = %q\n  }\n}\n", keyPath)
}

func skePhaseIs(p string) statecheck.StateCheck {
	return statecheck.ExpectKnownValue(skeRotationAddr, tfjsonpath.New("phase"), knownvalue.StringExact(p))
}

// skeBadDayTokenEndpoint404: after a rotation
// COMPLETED, STACKIT's token endpoint answers a gateway's HTML 404 (as a
// wrong token_custom_endpoint would) while Terraform refreshes. That is not
// the SKE API saying the cluster is gone: the refresh fails naming the
// token endpoint, the rotation stays in the state, and once the endpoint
// answers again the next plan is empty; no second rotation is started.
func skeBadDayTokenEndpoint404(t *testing.T) {
	c := newSKECluster(t, "tok-404")
	api, err := testEnv.SKE()
	if err != nil {
		t.Fatal(err)
	}
	sa, prelude := skeAccountProvider(t, api)
	completed := prelude + skeRotationConfig(c, "  complete_after = \"168h\"\n  complete       = true\n")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				Config:            prelude + skeRotationConfig(c, "  complete_after = \"168h\"\n"),
				ConfigStateChecks: []statecheck.StateCheck{skePhaseIs("PREPARED")},
			},
			{
				Config:            completed,
				ConfigStateChecks: []statecheck.StateCheck{skePhaseIs("COMPLETED")},
			},
			{
				PreConfig: func() {
					sa.InjectTokenFaults(fakeske.Fault{Status: http.StatusNotFound, HTML: true, For: 10 * time.Minute})
				},
				Config:      completed,
				ExpectError: regexp.MustCompile(`token\s+endpoint\s+answered\s+404`),
			},
			{
				PreConfig: func() {
					sa.ClearTokenFaults()
				},
				Config:           completed,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check: func(*terraform.State) error {
					if starts, completes := c.Rotations(); starts != 1 || completes != 1 {
						return fmt.Errorf("SKE acted on %d starts and %d completions; want 1 and 1: the failing token endpoint led to a rotation nobody asked for", starts, completes)
					}
					return nil
				},
			},
		},
	})
}

// skeBadDayRollHeld: while the
// nodes roll (PREPARING), the cluster goes STATE_UNHEALTHY with the errors
// SKE lists (status.errors), then hibernates. Each apply that runs out of
// time says what holds the roll (the state and each error), and the next
// one waits for the same rotation instead of calling the cluster "not
// rotatable" and claiming nothing was changed; once the cluster is well
// and awake, the rotation is PREPARED, started once.
//
// Gardener, which SKE runs on, refuses to hibernate a shoot whose
// service-account key rotation is Preparing (validateHibernationUpdate), so
// the hibernation step is the unlikely case; it must still not be misread.
func skeBadDayRollHeld(t *testing.T) {
	c := newSKECluster(t, "stuck-roll")
	c.SetPrepareDuration(3 * time.Second)
	config := skeRotationConfig(c, "  complete_after = \"168h\"\n  timeouts {\n    create = \"12s\"\n  }\n")
	pdb := fakeske.ClusterError{Code: "SKE_NODE_MISCONFIGURED_PDB", Message: "A PodDisruptionBudget allows no disruption: nodes cannot be drained."}
	unready := fakeske.ClusterError{Code: "SKE_UNREADY_NODES", Message: "Not all worker nodes are ready. Please open a support ticket if this error persists."}
	stuck := regexp.MustCompile(`(?s)still\s+PREPARING.*STATE_UNHEALTHY.*SKE_UNREADY_NODES.*SKE_NODE_MISCONFIGURED_PDB.*apply\s+again`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				// The roll meets a blocking PodDisruptionBudget once it started.
				PreConfig: func() {
					go func() {
						for t.Context().Err() == nil {
							if p, _ := c.Phase(); p == fakeske.PhasePreparing {
								c.SetErrors(unready, pdb)
								return
							}
							time.Sleep(50 * time.Millisecond)
						}
					}()
				},
				Config:      config,
				ExpectError: stuck,
			},
			{
				// Still stuck: the next apply waits for the same rotation and
				// says so again.
				Config:      config,
				ExpectError: stuck,
			},
			{
				PreConfig: func() {
					c.Hibernate() // first: the roll must not go on in between
					c.ClearErrors()
				},
				Config:      config,
				ExpectError: regexp.MustCompile(`(?s)still\s+PREPARING.*STATE_HIBERNAT`),
			},
			{
				PreConfig: func() {
					if starts, _ := c.Rotations(); starts != 1 {
						t.Fatalf("SKE acted on %d starts; the applies that waited must not start another", starts)
					}
					c.WakeUp()
				},
				Config:            config,
				ConfigStateChecks: []statecheck.StateCheck{skePhaseIs("PREPARED")},
				Check: func(*terraform.State) error {
					if starts, _ := c.Rotations(); starts != 1 {
						return fmt.Errorf("SKE acted on %d starts; want 1", starts)
					}
					return nil
				},
			},
			{
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// skeBadDayMadeElsewhere:
// someone else (the portal, another pipeline) starts the rotation a moment
// before this apply does, so the SKE API refuses this one's start (400);
// later the same happens to the complete. Each refusal is re-read before it
// fails the run: the apply adopts the rotation under way and ends PREPARED,
// then COMPLETED, with SKE having acted once on each. Meanwhile the API
// reports, for a few seconds, a phase it does not document (as a later
// API version might add): it is polled through, as stackit-sdk-go's
// waiters do.
func skeBadDayMadeElsewhere(t *testing.T) {
	c := newSKECluster(t, "elsewhere")
	api, err := testEnv.SKE()
	if err != nil {
		t.Fatal(err)
	}
	// Reads show a start or complete only seconds after it, so the first
	// read after the refusal does not explain it yet.
	c.SetStatusLag(3 * time.Second)
	refused := func(endpoint string) int {
		n := 0
		for _, r := range api.Requests() {
			if r.Endpoint == endpoint && r.Path == "/v2/projects/"+c.ProjectID+"/regions/"+c.Region+"/clusters/"+c.Name+endpointSuffix(endpoint) && r.Status == http.StatusBadRequest {
				n++
			}
		}
		return n
	}
	prepared := skeRotationConfig(c, "  complete_after = \"168h\"\n")
	completed := skeRotationConfig(c, "  complete_after = \"168h\"\n  complete       = true\n")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					c.ShowPhase("ROLLING_BACK", 4*time.Second)
					// The other party's start lands just before this one,
					// which SKE then refuses.
					api.InjectFaults(c, fakeske.EndpointStartRotation, fakeske.Fault{Acted: true, Status: http.StatusBadRequest,
						Reason: "credentials rotation is already in phase PREPARING"})
				},
				Config:            prepared,
				ConfigStateChecks: []statecheck.StateCheck{skePhaseIs("PREPARED")},
				Check: func(*terraform.State) error {
					if starts, _ := c.Rotations(); starts != 1 || refused(fakeske.EndpointStartRotation) != 1 {
						return fmt.Errorf("%d starts acted on, %d refused; want the other party's 1, and this apply's refused once", starts, refused(fakeske.EndpointStartRotation))
					}
					return nil
				},
			},
			{
				PreConfig: func() {
					api.InjectFaults(c, fakeske.EndpointCompleteRotation, fakeske.Fault{Acted: true, Status: http.StatusBadRequest,
						Reason: "credentials rotation cannot be completed in phase COMPLETING; it must be PREPARED"})
				},
				Config:            completed,
				ConfigStateChecks: []statecheck.StateCheck{skePhaseIs("COMPLETED")},
				Check: func(*terraform.State) error {
					if starts, completes := c.Rotations(); starts != 1 || completes != 1 || refused(fakeske.EndpointCompleteRotation) != 1 {
						return fmt.Errorf("%d starts, %d completes acted on, %d completes refused; want 1, 1, 1", starts, completes, refused(fakeske.EndpointCompleteRotation))
					}
					return nil
				},
			},
			{
				Config:           completed,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// federatedTokenVariable declares the variable a pipeline passes the
// federated token in (TF_VAR_federated_token).
const federatedTokenVariable = "variable \"federated_token\" {\n  type      = string\n  default   = null\n  sensitive = true\n}\n"

func endpointSuffix(endpoint string) string {
	switch endpoint {
	case fakeske.EndpointStartRotation:
		return "/start-credentials-rotation"
	case fakeske.EndpointCompleteRotation:
		return "/complete-credentials-rotation"
	}
	return ""
}

// TestAccSKEAuth_asSTACKITsOwnToolsDoIt: each way stackit-sdk-go/core
// authenticates, configured with terraform-provider-stackit's settings or
// the variables core and the CI systems set, gets a kubeconfig through
// real terraform: workload identity federation (a token file, a token
// value, GitHub Actions' ID token), the key flow from a credentials file
// (named, or by STACKIT_CREDENTIALS_PATH); each time the local token
// endpoint issues access tokens to that account and no other. A federated
// token of another identity is refused, and the error names the token
// endpoint.
//
// Not parallel: it changes the STACKIT_* variables of the process (the
// other SKE tests authenticate through STACKIT_SERVICE_ACCOUNT_KEY, which
// core would otherwise read first).
func TestAccSKEAuth_asSTACKITsOwnToolsDoIt(t *testing.T) {
	c, api := sharedSKECluster(t)
	t.Setenv("STACKIT_SERVICE_ACCOUNT_KEY", "")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	account := func(subject string) *fakeske.ServiceAccount {
		sa, err := api.NewServiceAccount(subject)
		if err != nil {
			t.Fatal(err)
		}
		return sa
	}
	federated := func(sa *fakeske.ServiceAccount) string {
		tok, err := sa.FederatedToken(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	keyFile := func(sa *fakeske.ServiceAccount) string {
		key, err := sa.Key()
		if err != nil {
			t.Fatal(err)
		}
		return write(sa.Email+".json", key)
	}
	tokenURL := api.URL + "/token"
	cases := []struct {
		name string
		sa   *fakeske.ServiceAccount
		env  map[string]string
		// provider returns the stackit block's body for the account.
		provider func(t *testing.T, sa *fakeske.ServiceAccount) string
	}{
		{name: "federation, token file", sa: account("repo:acme/infra:ref:refs/heads/main"),
			provider: func(t *testing.T, sa *fakeske.ServiceAccount) string {
				return fmt.Sprintf("service_account_email = %q\nservice_account_federated_token_path = %q\ntoken_custom_endpoint = %q\n",
					sa.Email, write("fed-"+sa.Email, []byte(federated(sa)+"\n")), tokenURL)
			}},
		{name: "federation, token value", sa: account("system:serviceaccount:ci:terraform"),
			provider: func(t *testing.T, sa *fakeske.ServiceAccount) string {
				// As a pipeline passes it: a sensitive variable.
				t.Setenv("TF_VAR_federated_token", federated(sa))
				return fmt.Sprintf("service_account_email = %q\nservice_account_federated_token = var.federated_token\ntoken_custom_endpoint = %q\n", sa.Email, tokenURL)
			}},
		{name: "federation, core's variables", sa: account("repo:acme/infra:environment:prod"),
			provider: func(t *testing.T, sa *fakeske.ServiceAccount) string {
				t.Setenv("STACKIT_SERVICE_ACCOUNT_EMAIL", sa.Email)
				t.Setenv("STACKIT_FEDERATED_TOKEN_FILE", write("env-fed-"+sa.Email, []byte(federated(sa))))
				t.Setenv("STACKIT_IDP_TOKEN_ENDPOINT", tokenURL)
				return ""
			}},
		{name: "federation, GitHub Actions ID token", sa: account("repo:acme/infra:pull_request"),
			provider: func(t *testing.T, sa *fakeske.ServiceAccount) string {
				t.Setenv("STACKIT_USE_OIDC", "1")
				t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", api.OIDCRequestURL())
				t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", sa.Email)
				return fmt.Sprintf("service_account_email = %q\ntoken_custom_endpoint = %q\n", sa.Email, tokenURL)
			}},
		{name: "credentials file, named", sa: account("unused"),
			provider: func(t *testing.T, sa *fakeske.ServiceAccount) string {
				creds, _ := json.Marshal(map[string]string{"STACKIT_SERVICE_ACCOUNT_KEY_PATH": keyFile(sa)})
				return fmt.Sprintf("credentials_path = %q\n", write("creds-"+sa.Email, creds))
			}},
		{name: "credentials file, STACKIT_CREDENTIALS_PATH", sa: account("unused"),
			provider: func(t *testing.T, sa *fakeske.ServiceAccount) string {
				key, err := sa.Key()
				if err != nil {
					t.Fatal(err)
				}
				creds, _ := json.Marshal(map[string]string{"STACKIT_SERVICE_ACCOUNT_KEY": string(key)})
				t.Setenv("STACKIT_CREDENTIALS_PATH", write("env-creds-"+sa.Email, creds))
				return ""
			}},
	}
	for _, k := range cases {
		t.Run(k.name, func(t *testing.T) {
			block := k.provider(t, k.sa)
			resource.Test(t, resource.TestCase{
				TerraformVersionChecks:   ephemeralVersions,
				ProtoV6ProviderFactories: providersWithEcho(testProviders["kubecreds"]),
				Steps: []resource.TestStep{{
					Config: federatedTokenVariable + "provider \"kubecreds\" {\n  stackit {\n" + block + "  }\n}\n" + skeKubeconfigConfig(c, ""),
					Check: func(s *terraform.State) error {
						if err := skeKubeconfigWorks(t.Context(), []byte(echoed(s)["kubeconfig"])); err != nil {
							return fmt.Errorf("the kubeconfig does not work: %w", err)
						}
						if k.sa.TokensIssued() == 0 {
							return fmt.Errorf("the token endpoint issued %s no access token: another credential was used", k.sa.Email)
						}
						return nil
					},
				}},
			})
		})
	}
	t.Run("federation, a token of another identity", func(t *testing.T) {
		sa, other := account("repo:acme/infra:ref:refs/heads/main"), account("repo:evil/fork:ref:refs/heads/main")
		t.Setenv("TF_VAR_federated_token", federated(other))
		block := fmt.Sprintf("service_account_email = %q\nservice_account_federated_token = var.federated_token\ntoken_custom_endpoint = %q\n", sa.Email, tokenURL)
		resource.Test(t, resource.TestCase{
			TerraformVersionChecks:   ephemeralVersions,
			ProtoV6ProviderFactories: providersWithEcho(testProviders["kubecreds"]),
			Steps: []resource.TestStep{{
				Config:      federatedTokenVariable + "provider \"kubecreds\" {\n  stackit {\n" + block + "  }\n}\n" + skeKubeconfigConfig(c, ""),
				ExpectError: regexp.MustCompile(`token\s+endpoint\s+answered\s+400\s+\(invalid_grant\)`),
			}},
		})
		if sa.TokensIssued() != 0 {
			t.Errorf("an access token was issued for another identity's federated token")
		}
	})
}
