//go:build !unit

package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
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
