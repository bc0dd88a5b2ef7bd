package kubeconfig

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// Settings carry the kubernetes provider's other ways to reach a cluster
// into the client configuration: merged kubeconfig files, an exec
// credential plugin, a proxy and a TLS server name.
func TestSettingsCarryConfigPathsExecProxyAndServerName(t *testing.T) {
	dir := t.TempDir()
	clusters := filepath.Join(dir, "clusters")
	users := filepath.Join(dir, "users")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(clusters, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://10.0.0.1:6443"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`)
	write(users, `apiVersion: v1
kind: Config
users: [{name: u, user: {token: from-the-second-file}}]
`)
	cfg, err := Settings{ConfigPaths: []string{clusters, users}}.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://10.0.0.1:6443" || cfg.BearerToken != "from-the-second-file" {
		t.Errorf("config_paths not merged: host %q, token from the second file %t", cfg.Host, cfg.BearerToken == "from-the-second-file")
	}

	cfg, err = Settings{
		Host: "https://10.0.0.2:6443", TLSServerName: "kubernetes", ProxyURL: "http://proxy.example:3128",
		Exec: &Exec{APIVersion: "client.authentication.k8s.io/v1", Command: "get-token", Args: []string{"--cluster", "prod"}, Env: map[string]string{"B": "2", "A": "1"}},
	}.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "kubernetes" {
		t.Errorf("TLS server name %q", cfg.ServerName)
	}
	if cfg.Proxy == nil {
		t.Fatal("no proxy")
	}
	req, _ := http.NewRequest(http.MethodGet, "https://10.0.0.2:6443/api", nil)
	if u, err := cfg.Proxy(req); err != nil || u.String() != "http://proxy.example:3128" {
		t.Errorf("proxy for the API server: %v, %v", u, err)
	}
	e := cfg.ExecProvider
	if e == nil || e.Command != "get-token" || len(e.Args) != 2 || e.APIVersion != "client.authentication.k8s.io/v1" ||
		len(e.Env) != 2 || e.Env[0].Name != "A" || e.InteractiveMode != "Never" {
		t.Errorf("exec plugin: %+v", e)
	}
}
