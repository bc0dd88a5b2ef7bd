package provider

// Unit tests (no local LKE, no terraform) of how the Linode settings and the
// paths a user types are read: the API URL with or without a version, the
// linode-cli config file, ua_prefix, and ~ in paths. A small HTTPS server
// stands in for the Linode API where a test checks what a request carries.

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// isolateLinodeSettings clears every variable the Linode settings read and
// gives the test a home directory of its own (so no config file of the
// machine's is found); it returns that directory.
func isolateLinodeSettings(t *testing.T) string {
	t.Helper()
	for _, k := range []string{"LINODE_TOKEN", "LINODE_URL", "LINODE_API_VERSION", "LINODE_CA", "LINODE_UA_PREFIX",
		"LINODE_CONFIG", "LINODE_PROFILE", "KUBE_CONFIG_PATH", "KUBE_CONFIG_PATHS",
		"STACKIT_SERVICE_ACCOUNT_KEY_PATH", "STACKIT_PRIVATE_KEY_PATH"} {
		t.Setenv(k, "") // restored when the test ends
		os.Unsetenv(k)  // linodego tells a set LINODE_CA from an unset one
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	return home
}

func settingsFrom(t *testing.T, cfg providerModel) (*providerData, diag.Diagnostics) {
	t.Helper()
	var diags diag.Diagnostics
	d := newProviderData(context.Background(), "test", "1.11.4", cfg, &diags)
	return d, diags
}

// diagText is every diagnostic's summary and detail, for matching.
func diagText(diags diag.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		b.WriteString(d.Summary() + ": " + d.Detail() + "\n")
	}
	return b.String()
}

func mustContainAll(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s: %q does not say %q", what, text, w)
		}
	}
}

func writeTestFile(t *testing.T, p, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readTestFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// linodeAPIRequest is what the stand-in Linode API saw of one request.
type linodeAPIRequest struct {
	path, userAgent, authorization string
}

// fakeLinodeAPI serves GET …/lke/clusters/{id} over HTTPS and records each
// request. It returns its root URL, its CA (a PEM file) and the record.
func fakeLinodeAPI(t *testing.T) (string, string, func() []linodeAPIRequest) {
	t.Helper()
	var mu sync.Mutex
	var seen []linodeAPIRequest
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, linodeAPIRequest{path: r.URL.Path, userAgent: r.UserAgent(), authorization: r.Header.Get("Authorization")})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id": 7, "label": "test", "status": "ready"}`))
	}))
	t.Cleanup(srv.Close)
	ca := writeTestFile(t, filepath.Join(t.TempDir(), "ca.pem"),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	return srv.URL, ca, func() []linodeAPIRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]linodeAPIRequest(nil), seen...)
	}
}

// getCluster builds the provider's Linode clients from cfg and reads
// cluster 7 with each, failing the test when that is refused.
func getCluster(t *testing.T, cfg providerModel) {
	t.Helper()
	d, diags := settingsFrom(t, cfg)
	if diags.HasError() {
		t.Fatalf("configure: %s", diagText(diags))
	}
	clients, diags := d.Linode(t.Context())
	if diags.HasError() {
		t.Fatalf("Linode clients: %s", diagText(diags))
	}
	for _, c := range []string{"API", "Poll"} {
		client := clients.API
		if c == "Poll" {
			client = clients.Poll
		}
		if _, err := client.GetLKECluster(t.Context(), 7); err != nil {
			t.Fatalf("%s client: GET cluster 7: %v", c, err)
		}
	}
}

func TestLinodeAPIURL_versionInThePathSetsTheAPIVersion(t *testing.T) {
	cases := []struct {
		path, version, wantPath string
	}{
		{"", "", "/v4/lke/clusters/7"},
		{"/", "", "/v4/lke/clusters/7"},
		{"/v4", "", "/v4/lke/clusters/7"},
		{"/v4/", "", "/v4/lke/clusters/7"},
		{"/v4beta", "", "/v4beta/lke/clusters/7"},
		{"/v4beta/", "", "/v4beta/lke/clusters/7"},
		{"", "v4beta", "/v4beta/lke/clusters/7"},
		{"/v4beta", "v4beta", "/v4beta/lke/clusters/7"},
	}
	for _, tc := range cases {
		t.Run("path "+tc.path+" version "+tc.version, func(t *testing.T) {
			isolateLinodeSettings(t)
			root, ca, seen := fakeLinodeAPI(t)
			cfg := providerModel{LinodeToken: types.StringValue("test-token"), LinodeAPIURL: types.StringValue(root + tc.path),
				LinodeCAPath: types.StringValue(ca)}
			if tc.version != "" {
				cfg.LinodeAPIVersion = types.StringValue(tc.version)
			}
			getCluster(t, cfg)
			for _, r := range seen() {
				if r.path != tc.wantPath {
					t.Errorf("linode_api_url %q, linode_api_version %q: request to %s; want %s", root+tc.path, tc.version, r.path, tc.wantPath)
				}
			}
		})
	}
}

func TestLinodeAPIURL_fromEnvironmentWithVersion(t *testing.T) {
	isolateLinodeSettings(t)
	root, ca, seen := fakeLinodeAPI(t)
	t.Setenv("LINODE_URL", root+"/v4")
	t.Setenv("LINODE_CA", ca)
	getCluster(t, providerModel{LinodeToken: types.StringValue("test-token")})
	if got := seen()[0].path; got != "/v4/lke/clusters/7" {
		t.Errorf("LINODE_URL ending in /v4: request to %s; want /v4/lke/clusters/7", got)
	}
}

func TestLinodeAPIURL_otherPathsAndConflictingVersionsFailAtConfigure(t *testing.T) {
	cases := map[string]struct {
		url, version string
		env          map[string]string
		want         []string
	}{
		"a path that is no version": {url: "https://api.linode.com/api", want: []string{
			"linode_api_url (or LINODE_URL)", `"/api" is not an API version`,
			"https://api.linode.com, https://api.linode.com/v4 or https://api.linode.com/v4beta"}},
		"the version twice":  {url: "https://api.linode.com/v4/v4", want: []string{"linode_api_url", `"/v4/v4" is not an API version`}},
		"an unknown version": {url: "https://api.linode.com/v5", want: []string{"linode_api_url", `"/v5" is not an API version`}},
		"http":               {url: "http://api.linode.com/v4", want: []string{"linode_api_url", "must be an https:// URL with a host"}},
		"a query":            {url: "https://api.linode.com/v4?x=1", want: []string{"linode_api_url", "must be an https:// URL"}},
		"versions disagree": {url: "https://api.linode.com/v4beta", version: "v4", want: []string{"Conflicting Linode API versions",
			"linode_api_url (or LINODE_URL)", "asks for API version v4beta", `linode_api_version (or LINODE_API_VERSION) is "v4"`}},
		"versions disagree, from the environment": {env: map[string]string{"LINODE_URL": "https://api.linode.com/v4", "LINODE_API_VERSION": "v4beta"},
			want: []string{"Conflicting Linode API versions", "asks for API version v4,", `is "v4beta"`}},
		"a password is not repeated": {url: "https://user:s3cret@api.linode.com/x", want: []string{"linode_api_url", "xxxxx"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			isolateLinodeSettings(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg := providerModel{LinodeToken: types.StringValue("test-token")}
			if tc.url != "" {
				cfg.LinodeAPIURL = types.StringValue(tc.url)
			}
			if tc.version != "" {
				cfg.LinodeAPIVersion = types.StringValue(tc.version)
			}
			_, diags := settingsFrom(t, cfg)
			if !diags.HasError() {
				t.Fatalf("no error at configure")
			}
			if p := diags.Errors()[0].(diag.DiagnosticWithPath).Path().String(); p != "linode_api_url" {
				t.Errorf("the error is on %q; want linode_api_url", p)
			}
			mustContainAll(t, name, diagText(diags), tc.want...)
			if strings.Contains(diagText(diags), "s3cret") {
				t.Errorf("the URL's password is in the message: %s", diagText(diags))
			}
		})
	}
}

func TestUAPrefix_isPrefixedToEveryLinodeRequest(t *testing.T) {
	for _, from := range []string{"attribute", "LINODE_UA_PREFIX"} {
		t.Run(from, func(t *testing.T) {
			isolateLinodeSettings(t)
			root, ca, seen := fakeLinodeAPI(t)
			cfg := providerModel{LinodeToken: types.StringValue("test-token"), LinodeAPIURL: types.StringValue(root), LinodeCAPath: types.StringValue(ca)}
			if from == "attribute" {
				cfg.UAPrefix = types.StringValue("acme-ci/1.2")
			} else {
				t.Setenv("LINODE_UA_PREFIX", "acme-ci/1.2")
			}
			getCluster(t, cfg)
			reqs := seen()
			if len(reqs) != 2 {
				t.Fatalf("%d requests; want one per client", len(reqs))
			}
			for _, r := range reqs {
				if !strings.HasPrefix(r.userAgent, "acme-ci/1.2 terraform-provider-kubecreds/test ") {
					t.Errorf("User-Agent %q; want it to start with the prefix, a space and the provider's own", r.userAgent)
				}
			}
		})
	}
	t.Run("a line break is refused", func(t *testing.T) {
		isolateLinodeSettings(t)
		_, diags := settingsFrom(t, providerModel{UAPrefix: types.StringValue("acme\r\nX-Injected: 1")})
		mustContainAll(t, "ua_prefix with CRLF", diagText(diags), "ua_prefix (or LINODE_UA_PREFIX)", "line break")
	})
}

func TestLinodeConfigFile_profileGivesTokenURLAndVersion(t *testing.T) {
	home := isolateLinodeSettings(t)
	root, ca, seen := fakeLinodeAPI(t)
	// linodego's default places, the first that exists winning.
	writeTestFile(t, filepath.Join(home, ".config", "linode-cli"), "[default]\ntoken = from-linode-cli\napi_url = "+root+"\n")
	getCluster(t, providerModel{LinodeCAPath: types.StringValue(ca)})
	if r := seen()[0]; r.authorization != "Bearer from-linode-cli" || r.path != "/v4/lke/clusters/7" {
		t.Errorf("~/.config/linode-cli's default profile: request %s with %q; want /v4/lke/clusters/7 with its token", r.path, r.authorization)
	}

	writeTestFile(t, filepath.Join(home, ".config", "linode"), `[default]
token = from-default
api_url = `+root+`

[CI]
token = from-ci
api_version = v4beta
`)
	getCluster(t, providerModel{LinodeCAPath: types.StringValue(ca), ConfigProfile: types.StringValue("ci")})
	if r := seen()[2]; r.authorization != "Bearer from-ci" || r.path != "/v4beta/lke/clusters/7" {
		t.Errorf("~/.config/linode's profile ci (inheriting api_url from default): request %s with %q; want /v4beta/lke/clusters/7 with its token",
			r.path, r.authorization)
	}

	// config_path with ~, LINODE_PROFILE, a version in the profile's api_url.
	writeTestFile(t, filepath.Join(home, "elsewhere", "linode.ini"), "[staging]\ntoken = from-staging\napi_url = "+root+"/v4beta/\n")
	t.Setenv("LINODE_PROFILE", "staging")
	getCluster(t, providerModel{LinodeCAPath: types.StringValue(ca), ConfigPath: types.StringValue("~/elsewhere/linode.ini")})
	if r := seen()[4]; r.authorization != "Bearer from-staging" || r.path != "/v4beta/lke/clusters/7" {
		t.Errorf("config_path ~/elsewhere/linode.ini, LINODE_PROFILE staging: request %s with %q; want /v4beta/lke/clusters/7 with its token",
			r.path, r.authorization)
	}
}

func TestLinodeConfigFile_tokenSetWins(t *testing.T) {
	home := isolateLinodeSettings(t)
	root, ca, seen := fakeLinodeAPI(t)
	writeTestFile(t, filepath.Join(home, ".config", "linode"), "[default]\ntoken = from-file\napi_url = https://unused.example\napi_version = v4beta\n")
	t.Setenv("LINODE_TOKEN", "from-env")
	t.Setenv("LINODE_URL", root)
	getCluster(t, providerModel{LinodeCAPath: types.StringValue(ca)})
	if r := seen()[0]; r.authorization != "Bearer from-env" || r.path != "/v4/lke/clusters/7" {
		t.Errorf("LINODE_TOKEN and a config file: request %s with %q; want /v4/lke/clusters/7 with LINODE_TOKEN (the file not read)", r.path, r.authorization)
	}
	_, diags := settingsFrom(t, providerModel{ConfigProfile: types.StringValue("default")})
	if diags.HasError() || diags.WarningsCount() != 1 {
		t.Fatalf("config_profile with LINODE_TOKEN set: %s; want one warning", diagText(diags))
	}
	mustContainAll(t, "config_profile ignored", diagText(diags), "config_profile is set", "LINODE_TOKEN", "not read")
}

func TestLinodeConfigFile_problemsNameTheAttribute(t *testing.T) {
	const secret = "tok-that-must-not-be-echoed"
	cases := map[string]struct {
		file     string // written to ~/.config/linode when not empty
		cfg      providerModel
		wantAttr string
		want     []string
	}{
		"a config_path that does not exist": {cfg: providerModel{ConfigPath: types.StringValue("/nonexistent/linode")},
			wantAttr: "config_path", want: []string{`config_path (or LINODE_CONFIG) names "/nonexistent/linode"`, "cannot be read"}},
		"a profile that does not exist": {file: "[default]\ntoken = " + secret + "\n[prod]\ntoken = " + secret + "\n",
			cfg: providerModel{ConfigProfile: types.StringValue("staging")}, wantAttr: "config_profile",
			want: []string{`config_profile (or LINODE_PROFILE, default "default") is "staging"`, "no such profile", "default, prod"}},
		"a profile named with no file anywhere": {cfg: providerModel{ConfigProfile: types.StringValue("prod")}, wantAttr: "config_profile",
			want: []string{`config_profile (or LINODE_PROFILE) is "prod"`, "~/.config/linode", "~/.config/linode-cli", "config_path"}},
		"a line that is not key = value": {file: "[default]\ntoken " + secret + "\n", cfg: providerModel{ConfigProfile: types.StringValue("default")},
			wantAttr: "config_path", want: []string{"is not a config file of profiles"}},
		"a profile without a token, as linode-cli writes its file": {file: "[DEFAULT]\ndefault-user = alice\n\n[alice]\ntoken = " + secret + "\n",
			cfg: providerModel{ConfigPath: types.StringValue("~/.config/linode")}, wantAttr: "config_profile",
			want: []string{`is "default"`, "has no token", `set config_profile = "alice"`}},
		"a profile's api_url that is not https": {file: "[default]\ntoken = " + secret + "\napi_url = http://api.linode.com\n",
			cfg: providerModel{ConfigProfile: types.StringValue("default")}, wantAttr: "config_profile",
			want: []string{`api_url = "http://api.linode.com"`, "must be an https:// URL"}},
		"a profile's versions disagree": {file: "[default]\ntoken = " + secret + "\napi_url = https://api.linode.com/v4beta\napi_version = v4\n",
			cfg: providerModel{ConfigProfile: types.StringValue("default")}, wantAttr: "config_profile",
			want: []string{"asks for API version v4beta", `api_version = "v4"`}},
		"a profile's version that is none": {file: "[default]\ntoken = " + secret + "\napi_version = v3\n",
			cfg: providerModel{ConfigProfile: types.StringValue("default")}, wantAttr: "config_profile",
			want: []string{`api_version = "v3"`, "v4 and v4beta"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			home := isolateLinodeSettings(t)
			if tc.file != "" {
				writeTestFile(t, filepath.Join(home, ".config", "linode"), tc.file)
			}
			_, diags := settingsFrom(t, tc.cfg)
			if !diags.HasError() {
				t.Fatalf("no error at configure")
			}
			if p := diags.Errors()[0].(diag.DiagnosticWithPath).Path().String(); p != tc.wantAttr {
				t.Errorf("the error is on %q; want %s", p, tc.wantAttr)
			}
			text := diagText(diags)
			mustContainAll(t, name, text, tc.want...)
			if strings.Contains(text, secret) {
				t.Errorf("the token is in the message: %s", text)
			}
		})
	}
}

func TestLinodeConfigFile_problemsAtTheDefaultPlaceWaitUntilTheAPIIsNeeded(t *testing.T) {
	home := isolateLinodeSettings(t)
	writeTestFile(t, filepath.Join(home, ".config", "linode"), "[prod]\ntoken = x\n")
	d, diags := settingsFrom(t, providerModel{})
	if diags.HasError() {
		t.Fatalf("a config file nobody named, at configure: %s; want no error until the Linode API is needed", diagText(diags))
	}
	d.linode.need(&diags, "kubecreds_lke_secret_rotation")
	mustContainAll(t, "a rotation's plan", diagText(diags), "kubecreds_lke_secret_rotation calls the Linode API", `is "default"`, "has no token",
		"profiles with a token: prod")
}

func TestLinodeConfigFile_missingTokenNamesEveryWay(t *testing.T) {
	isolateLinodeSettings(t)
	d, diags := settingsFrom(t, providerModel{})
	if diags.HasError() {
		t.Fatal(diagText(diags))
	}
	_, diags = d.Linode(t.Context())
	d.linode.need(&diags, "kubecreds_lke_secret_rotation")
	if diags.ErrorsCount() != 2 {
		t.Fatalf("%s; want the missing token at use and at plan", diagText(diags))
	}
	for _, e := range diags.Errors() {
		mustContainAll(t, "Missing Linode API token", e.Summary()+": "+e.Detail(), "Missing Linode API token", "linode_token", "LINODE_TOKEN",
			"config_path", "LINODE_CONFIG", "~/.config/linode", "config_profile", "LINODE_PROFILE")
	}
}

func TestPaths_leadingTildeIsTheHomeDirectory(t *testing.T) {
	home := isolateLinodeSettings(t)
	kc := writeTestFile(t, filepath.Join(home, ".kube", "config"), "apiVersion: v1\nkind: Config\n")
	other := writeTestFile(t, filepath.Join(home, ".kube", "other"), "apiVersion: v1\nkind: Config\n")
	key := writeTestFile(t, filepath.Join(home, "stackit", "key.json"), "{}")
	pk := writeTestFile(t, filepath.Join(home, "stackit", "key.pem"), "x")
	_, apiCA, _ := fakeLinodeAPI(t)
	ca := writeTestFile(t, filepath.Join(home, "ca.pem"), readTestFile(t, apiCA))
	paths, _ := types.ListValueFrom(t.Context(), types.StringType, []string{"~/.kube/config", "~/.kube/other"})

	d, diags := settingsFrom(t, providerModel{
		LinodeCAPath: types.StringValue("~/ca.pem"),
		Kubernetes:   &kubernetesModel{ConfigPath: types.StringValue("~/.kube/config")},
		STACKIT:      &stackitModel{ServiceAccountKeyPath: types.StringValue("~/stackit/key.json"), PrivateKeyPath: types.StringValue("~/stackit/key.pem")},
	})
	if diags.HasError() {
		t.Fatalf("paths under ~: %s", diagText(diags))
	}
	for what, got := range map[string][2]string{
		"kubernetes.config_path":           {d.kube.ConfigPath, kc},
		"linode_ca_path":                   {d.linode.ca.value, ca},
		"stackit.service_account_key_path": {d.stackit.keyPath.value, key},
		"stackit.private_key_path":         {d.stackit.privateKeyPath.value, pk},
	} {
		if got[0] != got[1] {
			t.Errorf("%s: %q; want %q", what, got[0], got[1])
		}
	}

	d, diags = settingsFrom(t, providerModel{Kubernetes: &kubernetesModel{ConfigPaths: paths}})
	if diags.HasError() || len(d.kube.ConfigPaths) != 2 || d.kube.ConfigPaths[0] != kc || d.kube.ConfigPaths[1] != other {
		t.Errorf("kubernetes.config_paths under ~: %v %s", d.kube.ConfigPaths, diagText(diags))
	}
	t.Setenv("KUBE_CONFIG_PATH", "~/.kube/config")
	if d, diags = settingsFrom(t, providerModel{}); diags.HasError() || d.kube.ConfigPath != kc {
		t.Errorf("KUBE_CONFIG_PATH under ~: %q %s", d.kube.ConfigPath, diagText(diags))
	}

	t.Setenv("KUBE_CONFIG_PATH", "")
	_, diags = settingsFrom(t, providerModel{Kubernetes: &kubernetesModel{ConfigPath: types.StringValue("~alice/.kube/config")}})
	mustContainAll(t, "~alice", diagText(diags), `kubernetes.config_path (or KUBE_CONFIG_PATH) names "~alice/.kube/config"`, "not ~user")
}
