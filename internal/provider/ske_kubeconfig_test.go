//go:build !unit

package provider

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	fakeske "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/ske"
)

var (
	skeOnce    sync.Once
	skeShared  *fakeske.Cluster
	skeAPI     *fakeske.API
	skeInitErr error
)

// sharedSKECluster starts (once) an SKE cluster and the SKE API, and points
// the provider at them through the STACKIT_* variables a user would set.
func sharedSKECluster(t *testing.T) (*fakeske.Cluster, *fakeske.API) {
	t.Helper()
	skeOnce.Do(func() {
		if skeAPI, skeInitErr = testEnv.SKE(); skeInitErr != nil {
			return
		}
		skeShared, skeInitErr = testEnv.AddSKECluster(t.Context(), fakeske.ClusterSpec{ProjectID: "8b8d1a3e-5d3c-4d5c-9b8e-2f2a6c1d0e42", Region: "eu01", Name: "cl-ab12cd34"})
		if skeInitErr != nil {
			return
		}
		var key []byte
		if key, skeInitErr = skeAPI.ServiceAccountKey(); skeInitErr != nil {
			return
		}
		// The key flow, as STACKIT recommends it: the provider signs an
		// assertion with the service account's key and gets access tokens
		// from the (local) token endpoint the key names.
		// Process-wide and set once (sync.Once) for every test that follows,
		// parallel ones included, so not t.Setenv: that would be undone when
		// the first test ends, and it panics in parallel tests.
		os.Setenv("STACKIT_SKE_CUSTOM_ENDPOINT", skeAPI.URL)  //nolint:usetesting // process-wide for all tests (sync.Once); t.Setenv would be undone after the first test
		os.Setenv("STACKIT_SERVICE_ACCOUNT_KEY", string(key)) //nolint:usetesting // process-wide for all tests (sync.Once); t.Setenv would be undone after the first test
	})
	if skeInitErr != nil {
		t.Fatalf("cannot start the local SKE these tests need: %v", skeInitErr)
	}
	return skeShared, skeAPI
}

func skeKubeconfigConfig(c *fakeske.Cluster, body string) string {
	return skeKubeconfigConfigFor(c.ProjectID, c.Region, c.Name, body)
}

func skeKubeconfigConfigFor(project, region, name, body string) string {
	return fmt.Sprintf(`
ephemeral "kubecreds_ske_kubeconfig" "k" {
  project_id   = %q
  region       = %q
  cluster_name = %q
%s}

provider "echo" {
  data = ephemeral.kubecreds_ske_kubeconfig.k
}

resource "echo" "k" {}
`, project, region, name, body)
}

// TestAccSKEKubeconfig_issuesAWorkingShortLivedKubeconfig: the ephemeral
// SKE kubeconfig comes from the SKE API with the expiration asked for, and
// authenticates as an admin until then.
func TestAccSKEKubeconfig_issuesAWorkingShortLivedKubeconfig(t *testing.T) {
	t.Parallel()
	c, api := sharedSKECluster(t)
	before := len(api.Requests())
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   ephemeralVersions,
		ProtoV6ProviderFactories: providersWithEcho(testProviders["kubecreds"]),
		Steps: []resource.TestStep{{
			Config: skeKubeconfigConfig(c, `  ttl = "2h"`+"\n"),
			Check: func(s *terraform.State) error {
				e := echoed(s)
				expires, err := time.Parse(time.RFC3339, e["expires_at"])
				if err != nil {
					return fmt.Errorf("expires_at %q: %w", e["expires_at"], err)
				}
				if d := time.Until(expires); d > 2*time.Hour || d < 2*time.Hour-2*time.Minute {
					return fmt.Errorf("expires_at is %s away; want 2h", d.Round(time.Second))
				}
				if e["client_certificate"] == "" || e["client_key"] == "" || e["cluster_ca_certificate"] == "" || e["token"] != "" {
					return fmt.Errorf("the parts for a provider block are missing: cert %t, key %t, CA %t, token %t",
						e["client_certificate"] != "", e["client_key"] != "", e["cluster_ca_certificate"] != "", e["token"] != "")
				}
				if e["host"] != c.Host() {
					return fmt.Errorf("host %q; want %q", e["host"], c.Host())
				}
				cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(e["kubeconfig"]))
				if err != nil {
					return err
				}
				cs, err := kubernetes.NewForConfig(cfg)
				if err != nil {
					return err
				}
				who, err := cs.AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
				if err != nil {
					return fmt.Errorf("the SKE kubeconfig does not authenticate: %w", err)
				}
				if !slices.Contains(who.Status.UserInfo.Groups, "system:masters") {
					return fmt.Errorf("authenticated as %+v", who.Status.UserInfo)
				}
				n := 0
				for _, r := range api.Requests()[before:] {
					// This cluster's only: the SKE tests beside this one ask for theirs.
					if r.Endpoint == fakeske.EndpointCreateKubeconfig && r.Status == 200 && strings.Contains(r.Path, "/clusters/"+c.Name+"/") {
						n++
					}
				}
				if n == 0 {
					return fmt.Errorf("no kubeconfig was asked of the SKE API")
				}
				if api.AccessTokensIssued() == 0 {
					return fmt.Errorf("the local token endpoint issued no access token: the key flow did not run")
				}
				return nil
			},
		}},
	})
}

// TestAccSKEKubeconfig_badInputFailsAtValidate: an expiration out of the
// API's range or a malformed cluster name fails before any request.
//
// Not parallel: it counts every request the SKE API gets meanwhile.
func TestAccSKEKubeconfig_badInputFailsAtValidate(t *testing.T) {
	c, api := sharedSKECluster(t)
	before := len(api.Requests())
	for _, k := range []struct {
		config, want string
	}{
		{skeKubeconfigConfig(c, `  ttl = "5m"`+"\n"), `ttl.*must\s+be\s+a\s+Go\s+duration\s+between\s+10m\s+and\s+4320h`},
		{skeKubeconfigConfigFor(c.ProjectID, c.Region, "Not_A_Name", ""), `cluster_name.*must\s+be\s+an\s+SKE\s+cluster\s+name`},
	} {
		resource.Test(t, resource.TestCase{
			TerraformVersionChecks:   ephemeralVersions,
			ProtoV6ProviderFactories: providersWithEcho(testProviders["kubecreds"]),
			Steps:                    []resource.TestStep{{Config: k.config, ExpectError: regexp.MustCompile(`(?s)` + k.want)}},
		})
	}
	if n := len(api.Requests()) - before; n != 0 {
		t.Errorf("%d requests reached the SKE API; bad input must fail before any", n)
	}
}

// A kubeconfig the SKE API serves with an exec plugin in it is refused when
// the ephemeral resource opens, naming the plugin, and the plugin never
// runs: SKE serves client certificates inline, never a plugin.
func TestAccSKEKubeconfig_servedPluginIsRefused(t *testing.T) {
	t.Parallel()
	c := newSKECluster(t, "servedexec")
	script, record := credentialPlugin(t, t.TempDir(), "never-used")
	c.SetServedKubeconfigEdit(func(cfg *clientcmdapi.Config) {
		for _, u := range cfg.AuthInfos {
			u.ClientCertificateData, u.ClientKeyData = nil, nil
			u.Exec = &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: script,
				InteractiveMode: clientcmdapi.NeverExecInteractiveMode}
		}
	})
	want := fmt.Sprintf(`The SKE API answered an unusable kubeconfig.*users\[%q\]\.exec \(command %q\).*never carries.*nothing was run or read`,
		c.Name, script)
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   ephemeralVersions,
		ProtoV6ProviderFactories: providersWithEcho(testProviders["kubecreds"]),
		Steps: []resource.TestStep{{
			Config:      skeKubeconfigConfig(c, `  ttl = "1h"`+"\n"),
			ExpectError: regexp.MustCompile(`(?s)` + strings.ReplaceAll(want, " ", `\s+`)),
		}},
	})
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Errorf("the served kubeconfig's plugin ran (%s exists: %v)", record, err)
	}
}
