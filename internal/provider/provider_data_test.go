//go:build !unit

package provider

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeEnvVars are cleared for each test so the machine's settings do not leak in.
var kubeEnvVars = []string{"KUBE_CONFIG_PATH", "KUBE_CTX", "KUBE_HOST", "KUBE_TOKEN", "KUBE_CLUSTER_CA_CERT_DATA",
	"KUBE_CLIENT_CERT_DATA", "KUBE_CLIENT_KEY_DATA", "KUBE_INSECURE", "KUBE_CONFIG_PATHS", "KUBE_TLS_SERVER_NAME", "KUBE_PROXY_URL"}

func clearKubeEnv(t *testing.T) {
	for _, k := range kubeEnvVars {
		t.Setenv(k, "")
	}
}

// reachesCluster builds provider data from m and lists the cluster's nodes with it.
func reachesCluster(t *testing.T, m *kubernetesModel) diag.Diagnostics {
	t.Helper()
	var diags diag.Diagnostics
	d := newProviderData(context.Background(), "test", "1.11.4", providerModel{Kubernetes: m}, &diags)
	if diags.HasError() {
		return diags
	}
	cfg, more := d.KubernetesConfig()
	diags.Append(more...)
	if diags.HasError() {
		return diags
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Fatalf("kubernetes settings resolved but do not reach the cluster: %v", err)
	}
	if !strings.HasPrefix(cfg.UserAgent, "terraform-provider-kubecreds/test") {
		t.Errorf("user agent %q does not name the provider", cfg.UserAgent)
	}
	return diags
}

func adminKubeconfigWithTwoContexts(t *testing.T) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(testEnv.Clusters()[0].AdminKubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	// A current context that points nowhere, and the working one by name.
	current := cfg.Contexts[cfg.CurrentContext]
	working := *current
	cfg.Contexts["working"] = &working
	current.Cluster = "missing"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAccKubernetesSettings_configPathAndContextFromEnvironment(t *testing.T) {
	clearKubeEnv(t)
	t.Setenv("KUBE_CONFIG_PATH", adminKubeconfigWithTwoContexts(t))
	t.Setenv("KUBE_CTX", "working")
	if diags := reachesCluster(t, nil); diags.HasError() {
		t.Fatal(diags)
	}
}

func TestAccKubernetesSettings_hostTokenAndCAFromEnvironment(t *testing.T) {
	clearKubeEnv(t)
	c := testEnv.Clusters()[0]
	served, err := clientcmd.Load(c.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBE_HOST", c.Host())
	t.Setenv("KUBE_TOKEN", served.AuthInfos[served.Contexts[served.CurrentContext].AuthInfo].Token)
	t.Setenv("KUBE_CLUSTER_CA_CERT_DATA", string(c.CACertificate()))
	if diags := reachesCluster(t, nil); diags.HasError() {
		t.Fatal(diags)
	}
}

func TestAccKubernetesSettings_blockWinsOverEnvironment(t *testing.T) {
	clearKubeEnv(t)
	c := testEnv.Clusters()[0]
	admin := c.AdminConfig()
	cert, _ := os.ReadFile(admin.CertFile)
	key, _ := os.ReadFile(admin.KeyFile)
	t.Setenv("KUBE_HOST", "https://127.0.0.1:1")
	diags := reachesCluster(t, &kubernetesModel{
		Host:                 types.StringValue(c.Host()),
		ClusterCACertificate: types.StringValue(string(c.CACertificate())),
		ClientCertificate:    types.StringValue(string(cert)),
		ClientKey:            types.StringValue(string(key)),
	})
	if diags.HasError() {
		t.Fatal(diags)
	}
}

func TestAccKubernetesSettings_insecureWarns(t *testing.T) {
	clearKubeEnv(t)
	t.Setenv("KUBE_CONFIG_PATH", testEnv.Clusters()[0].AdminKubeconfigPath())
	diags := reachesCluster(t, &kubernetesModel{Insecure: types.BoolValue(true)})
	if diags.HasError() || diags.WarningsCount() != 1 || !strings.Contains(diags.Warnings()[0].Detail(), "not verified") {
		t.Fatalf("insecure = true: diagnostics %v; want exactly one warning that verification is off", diags)
	}
}

func TestKubernetesSettings_missingAndUnknownAreExplained(t *testing.T) {
	clearKubeEnv(t)
	var diags diag.Diagnostics
	d := newProviderData(context.Background(), "test", "1.11.4", providerModel{}, &diags)
	_, diags = d.KubernetesConfig()
	if !diags.HasError() || !strings.Contains(diags[0].Detail(), "KUBE_CONFIG_PATH") || !strings.Contains(diags[0].Detail(), "config_path") {
		t.Errorf("no cluster configured: %v; want an error naming config_path and KUBE_CONFIG_PATH", diags)
	}
	d = newProviderData(context.Background(), "test", "1.11.4", providerModel{Kubernetes: &kubernetesModel{Host: types.StringUnknown()}}, &diags)
	_, diags = d.KubernetesConfig()
	if !diags.HasError() || !strings.Contains(diags[0].Detail(), "kubernetes.host") {
		t.Errorf("unknown host: %v; want an error naming kubernetes.host", diags)
	}
}

// The kubernetes provider's other ways to reach a cluster, against the
// local LKE's API server: merged kubeconfig files, an exec credential
// plugin, a TLS server name and a proxy.

func TestAccKubernetesSettings_configPathsFromEnvironmentAreMerged(t *testing.T) {
	clearKubeEnv(t)
	cfg, err := clientcmd.LoadFromFile(testEnv.Clusters()[0].AdminKubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	// Clusters and contexts in one file, users in the other.
	users := clientcmdapi.NewConfig()
	users.AuthInfos = cfg.AuthInfos
	cfg.AuthInfos = nil
	dir := t.TempDir()
	first, second := filepath.Join(dir, "clusters"), filepath.Join(dir, "users")
	if err := clientcmd.WriteToFile(*cfg, first); err != nil {
		t.Fatal(err)
	}
	if err := clientcmd.WriteToFile(*users, second); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBE_CONFIG_PATHS", first+string(filepath.ListSeparator)+second)
	if diags := reachesCluster(t, nil); diags.HasError() {
		t.Fatal(diags)
	}
}

func TestAccKubernetesSettings_execPluginSuppliesTheCredentials(t *testing.T) {
	clearKubeEnv(t)
	admin := testEnv.Clusters()[0].AdminConfig()
	cert, _ := os.ReadFile(admin.CertFile)
	key, _ := os.ReadFile(admin.KeyFile)
	cred, _ := json.Marshal(map[string]any{
		"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
		"status": map[string]string{"clientCertificateData": string(cert), "clientKeyData": string(key)},
	})
	dir := t.TempDir()
	credPath, marker := filepath.Join(dir, "cred.json"), filepath.Join(dir, "ran")
	if err := os.WriteFile(credPath, cred, 0o600); err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(dir, "get-credentials")
	script := "#!/bin/sh\n[ \"$1\" = --cluster ] && [ \"$CLUSTER\" = local ] && touch " + marker + "\ncat " + credPath + "\n"
	if err := os.WriteFile(plugin, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	args, _ := types.ListValueFrom(t.Context(), types.StringType, []string{"--cluster", "local"})
	env, _ := types.MapValueFrom(t.Context(), types.StringType, map[string]string{"CLUSTER": "local"})
	diags := reachesCluster(t, &kubernetesModel{
		Host:                 types.StringValue(admin.Host),
		ClusterCACertificate: types.StringValue(string(admin.CAData) + readFile(t, admin.CAFile)),
		Exec: &execModel{APIVersion: types.StringValue("client.authentication.k8s.io/v1"), Command: types.StringValue(plugin),
			Args: args, Env: env},
	})
	if diags.HasError() {
		t.Fatal(diags)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Error("the plugin did not run with the arguments and environment configured")
	}
}

func TestAccKubernetesSettings_tlsServerNameIsWhatTheCertificateIsCheckedAgainst(t *testing.T) {
	clearKubeEnv(t)
	admin := testEnv.Clusters()[0].AdminConfig()
	model := func(name string) *kubernetesModel {
		cert, _ := os.ReadFile(admin.CertFile)
		key, _ := os.ReadFile(admin.KeyFile)
		return &kubernetesModel{
			Host:                 types.StringValue(admin.Host),
			ClusterCACertificate: types.StringValue(string(admin.CAData) + readFile(t, admin.CAFile)),
			ClientCertificate:    types.StringValue(string(cert)),
			ClientKey:            types.StringValue(string(key)),
			TLSServerName:        types.StringValue(name),
		}
	}
	if diags := reachesCluster(t, model("kubernetes.default.svc")); diags.HasError() {
		t.Fatal(diags)
	}
	var diags diag.Diagnostics
	d := newProviderData(context.Background(), "test", "1.11.4", providerModel{Kubernetes: model("wrong.example")}, &diags)
	cfg, _ := d.KubernetesConfig()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{}); err == nil || !strings.Contains(err.Error(), "wrong.example") {
		t.Fatalf("a server name the certificate does not have: %v; want a certificate error naming it", err)
	}
}

func TestAccKubernetesSettings_proxyURLCarriesTheConnections(t *testing.T) {
	clearKubeEnv(t)
	proxy, tunnels := connectProxy(t)
	t.Setenv("KUBE_CONFIG_PATH", testEnv.Clusters()[0].AdminKubeconfigPath())
	t.Setenv("KUBE_PROXY_URL", proxy)
	if diags := reachesCluster(t, nil); diags.HasError() {
		t.Fatal(diags)
	}
	if tunnels.Load() == 0 {
		t.Error("the request reached the cluster without going through the proxy")
	}
}

func readFile(t *testing.T, p string) string {
	if p == "" {
		return ""
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// connectProxy is an HTTP proxy that tunnels CONNECT requests and counts them.
func connectProxy(t *testing.T) (string, *atomic.Int32) {
	var tunnels atomic.Int32
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		tunnels.Add(1)
		_, _ = conn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
		go func() { _, _ = io.Copy(up, buf); up.Close() }()
		_, _ = io.Copy(conn, up)
		conn.Close()
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String(), &tunnels
}
