//go:build !unit

package provider

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

func tokensConfig(providerBlock string, clusterID int) string {
	return fmt.Sprintf(`
%s

data "kubecreds_lke_service_account_tokens" "t" {
  cluster_id = %d
}
`, providerBlock, clusterID)
}

func clusterID() int { return testEnv.Clusters()[0].ID }

func TestAccProvider_linodeSettingsFromEnvironment(t *testing.T) {
	// LINODE_URL, LINODE_TOKEN and LINODE_CA are set by TestMain; the provider block is empty.
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config: tokensConfig(`provider "kubecreds" {}`, clusterID()),
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttr("data.kubecreds_lke_service_account_tokens.t", "tokens.#", "4"),
				resource.TestCheckTypeSetElemNestedAttrs("data.kubecreds_lke_service_account_tokens.t", "tokens.*",
					map[string]string{"namespace": "kube-system", "service_account": "lke-admin"}),
			),
		}},
	})
}

func TestAccProvider_attributesOverrideEnvironment(t *testing.T) {
	t.Setenv("LINODE_TOKEN", "a-token-the-api-rejects")
	t.Setenv("LINODE_API_VERSION", "v5-not-used")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config: tokensConfig(fmt.Sprintf(`provider "kubecreds" {
  linode_token       = %q
  linode_api_version = "v4beta"
}`, testEnv.Emulator.ConfigToken), clusterID()),
			Check: resource.TestCheckResourceAttr("data.kubecreds_lke_service_account_tokens.t", "tokens.#", "4"),
		}},
	})
}

func TestAccProvider_wrongTokenNamesTheSetting(t *testing.T) {
	t.Setenv("LINODE_TOKEN", "a-token-the-api-rejects")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config:      tokensConfig(`provider "kubecreds" {}`, clusterID()),
			ExpectError: regexp.MustCompile(`(?s)rejected the token \(401 Invalid Token\).*linode_token or\s+the\s+LINODE_TOKEN`),
		}},
	})
}

func TestAccProvider_unknownSettingsDoNotFailThePlan(t *testing.T) {
	t.Setenv("LINODE_TOKEN", "")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			// The token is only known after terraform_data is created.
			Config: fmt.Sprintf(`
resource "terraform_data" "token" {
  input = %q
}

provider "kubecreds" {
  linode_token = terraform_data.token.output
}

data "kubecreds_lke_service_account_tokens" "t" {
  cluster_id = %d
  depends_on = [terraform_data.token]
}
`, testEnv.Emulator.ConfigToken, clusterID()),
			Check: resource.TestCheckResourceAttr("data.kubecreds_lke_service_account_tokens.t", "tokens.#", "4"),
		}},
	})
}

func TestAccProvider_missingTokenReportedOnlyWhenNeeded(t *testing.T) {
	t.Setenv("LINODE_TOKEN", "")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				// Nothing here calls the Linode API: no token, no error.
				Config: `
provider "kubecreds" {}

resource "terraform_data" "x" {
  input = "no Linode call"
}
`,
			},
			{
				Config:      tokensConfig(`provider "kubecreds" {}`, clusterID()),
				ExpectError: regexp.MustCompile(`(?s)Missing Linode API token.*linode_token.*LINODE_TOKEN`),
			},
		},
	})
}

func TestAccProvider_invalidSettings(t *testing.T) {
	cases := map[string]struct {
		provider string
		env      map[string]string
		want     string
	}{
		"api version": {
			provider: `provider "kubecreds" { linode_api_version = "v5" }`,
			want:     `(?s)linode_api_version.*value must be one of: \["v4" "v4beta"\]`,
		},
		"api version from environment": {
			provider: `provider "kubecreds" {}`,
			env:      map[string]string{"LINODE_API_VERSION": "v3"},
			want:     `(?s)linode_api_version \(from LINODE_API_VERSION\) is "v3"; allowed values are\s+v4\s+and\s+v4beta`,
		},
		"plain http URL": {
			provider: `provider "kubecreds" { linode_api_url = "http://127.0.0.1:1" }`,
			want:     `(?s)linode_api_url \(or LINODE_URL\) is "http://127.0.0.1:1"; it must be an\s+https:// URL`,
		},
		"unreadable CA file": {
			provider: `provider "kubecreds" {}`,
			env:      map[string]string{"LINODE_CA": "/nonexistent/ca.pem"},
			want:     `(?s)Unusable Linode CA file.*linode_ca_path \(or LINODE_CA\) names\s+"/nonexistent/ca.pem", which cannot\s+be\s+read`,
		},
		"untrusted API certificate": {
			// Without LINODE_CA the emulator's certificate is not trusted:
			// TLS verification is on.
			provider: `provider "kubecreds" {}`,
			env:      map[string]string{"LINODE_CA": ""},
			want:     `certificate signed by unknown authority`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testProviders,
				Steps: []resource.TestStep{{
					Config:      tokensConfig(tc.provider, clusterID()),
					ExpectError: regexp.MustCompile(tc.want),
				}},
			})
		})
	}
}

// Settings as terraform-provider-linode and the kubernetes provider read
// them (issue 21, point 6).

// linodeRequestsSince are the Linode API requests the emulator received
// about a cluster since a moment.
func linodeRequestsSince(start time.Time, clusterID int) []fakelke.RequestRecord {
	var out []fakelke.RequestRecord
	for _, r := range testEnv.Emulator.Requests() {
		if !r.At.Before(start) && strings.Contains(r.Path, fmt.Sprintf("/lke/clusters/%d", clusterID)) {
			out = append(out, r)
		}
	}
	return out
}

func TestAccProvider_linodeURLWithVersionRotatesAndRefreshes(t *testing.T) {
	c := takeCluster(t)
	// As linodego's users write it; until now the provider appended the
	// version again (/v4/v4/…, a 404 that read as "cluster gone").
	t.Setenv("LINODE_URL", testEnv.Emulator.URL+"/v4")
	start := time.Now()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				Config:            `provider "kubecreds" {}` + rotationConfig(c.ID, ""),
				ConfigStateChecks: []statecheck.StateCheck{servedKubeconfigMatches(t, c)},
			},
			{
				// Refreshed through /v4beta/ (a trailing slash too), the
				// rotation stays in the state and nothing is planned.
				Config:   fmt.Sprintf("provider \"kubecreds\" {\n  linode_api_url = %q\n}\n", testEnv.Emulator.URL+"/v4beta/") + rotationConfig(c.ID, ""),
				PlanOnly: true,
			},
		},
	})
	var beta int
	for _, r := range linodeRequestsSince(start, c.ID) {
		switch {
		case strings.HasPrefix(r.Path, "/v4beta/lke/"):
			beta++
		case !strings.HasPrefix(r.Path, "/v4/lke/"):
			t.Errorf("request %s %s: want /v4/lke/… or /v4beta/lke/…", r.Method, r.Path)
		}
	}
	if beta == 0 {
		t.Error("linode_api_url ending in /v4beta/ sent no request to /v4beta/")
	}
}

// writeLinodeCLIConfig writes a linode-cli config file under home whose
// profile holds the emulator's token and URL (with the version, as
// linodego's users write api_url too).
func writeLinodeCLIConfig(t *testing.T, file, profile string) {
	t.Helper()
	body := fmt.Sprintf("[default]\ntoken = a-token-the-api-rejects\n\n[%s]\ntoken = %s\napi_url = %s/v4\n", profile, testEnv.Emulator.Token, testEnv.Emulator.URL)
	if profile == "default" {
		body = fmt.Sprintf("[default]\ntoken = %s\napi_url = %s\n", testEnv.Emulator.Token, testEnv.Emulator.URL)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// onlyTheConfigFile leaves the provider nothing but a linode-cli config
// file to find the token and URL in: a fresh home, no LINODE_TOKEN, no
// LINODE_URL. It returns the home.
func onlyTheConfigFile(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("LINODE_TOKEN", "")
	t.Setenv("LINODE_URL", "")
	return home
}

func TestAccProvider_linodeCLIConfigFileAtItsDefaultPlace(t *testing.T) {
	home := onlyTheConfigFile(t)
	writeLinodeCLIConfig(t, filepath.Join(home, ".config", "linode-cli"), "default")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config: tokensConfig(`provider "kubecreds" {}`, clusterID()),
			Check:  resource.TestCheckResourceAttr("data.kubecreds_lke_service_account_tokens.t", "tokens.#", "4"),
		}},
	})
}

func TestAccProvider_linodeCLIConfigFileNamedProfile(t *testing.T) {
	home := onlyTheConfigFile(t)
	writeLinodeCLIConfig(t, filepath.Join(home, "ops", "linode.ini"), "ci")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				// ~ expanded, the profile's api_url ending in /v4.
				Config: tokensConfig(`provider "kubecreds" {
  config_path    = "~/ops/linode.ini"
  config_profile = "ci"
}`, clusterID()),
				Check: resource.TestCheckResourceAttr("data.kubecreds_lke_service_account_tokens.t", "tokens.#", "4"),
			},
		},
	})
}

func TestAccProvider_linodeCLIConfigProfileMissingIsNamedAtPlan(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("LINODE_TOKEN", "")
	writeLinodeCLIConfig(t, filepath.Join(home, "ops", "linode.ini"), "ci")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config: tokensConfig(`provider "kubecreds" {
  config_path    = "~/ops/linode.ini"
  config_profile = "staging"
}`, clusterID()),
			ExpectError: regexp.MustCompile(`(?s)Linode config profile not found.*config_profile.*"staging".*no such\s+profile.*default,\s+ci`),
		}},
	})
}

func TestAccProvider_uaPrefixReachesTheLinodeAPI(t *testing.T) {
	t.Parallel()
	prefix := "acme-ci/" + rand.Text()[:8]
	start := time.Now()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config: tokensConfig(fmt.Sprintf("provider \"kubecreds\" {\n  ua_prefix = %q\n}", prefix), clusterID()),
			Check: func(*terraform.State) error {
				prefixed := 0
				for _, r := range linodeRequestsSince(start, clusterID()) {
					if strings.HasPrefix(r.UserAgent, prefix+" ") {
						prefixed++
						if !strings.HasPrefix(r.UserAgent, prefix+" terraform-provider-kubecreds/test ") {
							return fmt.Errorf("User-Agent %q: want the prefix, a space, then the provider's own", r.UserAgent)
						}
					}
				}
				if prefixed == 0 {
					return fmt.Errorf("no request to the Linode API carried the User-Agent prefix %q", prefix)
				}
				return nil
			},
		}},
	})
}

func TestAccProvider_kubernetesConfigPathUnderHome(t *testing.T) {
	c := testEnv.Clusters()[0]
	home := t.TempDir()
	t.Setenv("HOME", home)
	kc, err := os.ReadFile(c.AdminKubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".kube", "config"), kc, 0o600); err != nil {
		t.Fatal(err)
	}
	// The configuration of docs/index.md's example, as a user writes it.
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   ephemeralVersions,
		ProtoV6ProviderFactories: providersWithEcho(testProviders["kubecreds"]),
		Steps: []resource.TestStep{{
			Config: ephemeralConfig(`
provider "kubecreds" {
  kubernetes {
    config_path = "~/.kube/config"
  }
}
`, `  ttl = "15m"
  service_account {
    namespace = "kube-system"
    name      = "lke-admin"
  }`),
			Check: func(s *terraform.State) error {
				if e := echoed(s); e["host"] != c.AdminConfig().Host {
					return fmt.Errorf("the kubeconfig issued names host %q; want %q, the cluster ~/.kube/config names", e["host"], c.AdminConfig().Host)
				}
				return nil
			},
		}},
	})
}
