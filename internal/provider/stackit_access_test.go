package provider

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// TestSTACKITAccess_flowsInCoresOrder: which flow the settings pick, the
// token flow's deprecation warning, and the credentials file counting as
// configured, as stackit-sdk-go/core's SetupAuth and DefaultAuth have it.
func TestSTACKITAccess_flowsInCoresOrder(t *testing.T) {
	for _, env := range []string{"STACKIT_SERVICE_ACCOUNT_KEY", "STACKIT_SERVICE_ACCOUNT_KEY_PATH", "STACKIT_SERVICE_ACCOUNT_TOKEN", "STACKIT_CREDENTIALS_PATH",
		"STACKIT_SERVICE_ACCOUNT_EMAIL", "STACKIT_FEDERATED_TOKEN_FILE", "STACKIT_USE_OIDC", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
		"SYSTEM_OIDCREQUESTURI", "SYSTEM_ACCESSTOKEN"} {
		t.Setenv(env, "")
	}
	t.Setenv("HOME", t.TempDir())
	s := func(v string) types.String { return types.StringValue(v) }
	cases := []struct {
		name     string
		m        stackitModel
		env      map[string]string
		flow     string
		warnings int
	}{
		{"key", stackitModel{ServiceAccountKey: s(`{}`)}, nil, "key", 0},
		{"token: deprecated", stackitModel{ServiceAccountToken: s("t0k3n")}, nil, "token", 1},
		{"federation beats the key", stackitModel{ServiceAccountKey: s(`{}`), ServiceAccountEmail: s("ci@sa.stackit.cloud"), FederatedToken: s("eyJ.e30.x")}, nil, "workload identity federation", 0},
		{"STACKIT_USE_OIDC=1 with GitHub's variables", stackitModel{ServiceAccountEmail: s("ci@sa.stackit.cloud")},
			map[string]string{"STACKIT_USE_OIDC": "1", "ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.actions.example", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "req"}, "workload identity federation", 0},
		{"the credentials file: core's search", stackitModel{}, map[string]string{"STACKIT_CREDENTIALS_PATH": "creds"}, "default", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				if k == "STACKIT_CREDENTIALS_PATH" {
					v = filepath.Join(t.TempDir(), v)
					if err := os.WriteFile(v, []byte(`{"STACKIT_SERVICE_ACCOUNT_KEY_PATH":"/x"}`), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				t.Setenv(k, v)
			}
			var diags diag.Diagnostics
			m := c.m
			m.UseOIDC = types.BoolNull()
			a := newSTACKITAccess(&m, &diags)
			if got := a.credentials().Flow(); got != c.flow {
				t.Errorf("flow %q; want %q", got, c.flow)
			}
			a.need(&diags, "kubecreds_ske_credentials_rotation")
			if diags.HasError() {
				t.Fatalf("configured credentials reported missing: %v", diags)
			}
			if n := len(diags.Warnings()); n != c.warnings {
				t.Errorf("%d warnings; want %d: %v", n, c.warnings, diags)
			}
			for _, w := range diags.Warnings() {
				if !strings.Contains(w.Detail(), "December 17, 2025") || strings.Contains(w.Detail(), "t0k3n") {
					t.Errorf("the warning does not quote STACKIT's deprecation, or shows the token: %s", w.Detail())
				}
			}
		})
	}
	t.Run("a key path set beats a key in the environment, as in core", func(t *testing.T) {
		t.Setenv("STACKIT_SERVICE_ACCOUNT_KEY", `{"from":"env"}`)
		var diags diag.Diagnostics
		a := newSTACKITAccess(&stackitModel{ServiceAccountKeyPath: s("/etc/sa.json"), UseOIDC: types.BoolNull()}, &diags)
		if c := a.credentials(); c.ServiceAccountKeyPath != "/etc/sa.json" || c.ServiceAccountKey != "" {
			t.Errorf("credentials %+v; want the configured path only", c)
		}
		t.Setenv("STACKIT_SERVICE_ACCOUNT_KEY_PATH", "/env/sa.json")
		a = newSTACKITAccess(&stackitModel{UseOIDC: types.BoolNull()}, &diags)
		if c := a.credentials(); c.ServiceAccountKeyPath != "/env/sa.json" || c.ServiceAccountKey != "" {
			t.Errorf("credentials %+v; want the path variable over the key variable", c)
		}
		a = newSTACKITAccess(&stackitModel{ServiceAccountKey: s(`{"from":"config"}`), UseOIDC: types.BoolNull()}, &diags)
		if c := a.credentials(); c.ServiceAccountKey != `{"from":"config"}` || c.ServiceAccountKeyPath != "" {
			t.Errorf("credentials %+v; want the configured key only", c)
		}
	})
	t.Run("nothing", func(t *testing.T) {
		var diags diag.Diagnostics
		a := newSTACKITAccess(&stackitModel{UseOIDC: types.BoolNull()}, &diags)
		a.need(&diags, "kubecreds_ske_kubeconfig")
		if !diags.HasError() || !strings.Contains(diags.Errors()[0].Detail(), "~/.stackit/credentials.json") {
			t.Fatalf("want Missing STACKIT credentials naming the credentials file; got %v", diags)
		}
	})
}
