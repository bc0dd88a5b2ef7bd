//go:build !unit

package provider

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeEnvVars are cleared for each test so the machine's settings do not leak in.
var kubeEnvVars = []string{"KUBE_CONFIG_PATH", "KUBE_CTX", "KUBE_HOST", "KUBE_TOKEN", "KUBE_CLUSTER_CA_CERT_DATA",
	"KUBE_CLIENT_CERT_DATA", "KUBE_CLIENT_KEY_DATA", "KUBE_INSECURE"}

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

func TestKubernetesSettings_configPathAndContextFromEnvironment(t *testing.T) {
	clearKubeEnv(t)
	t.Setenv("KUBE_CONFIG_PATH", adminKubeconfigWithTwoContexts(t))
	t.Setenv("KUBE_CTX", "working")
	if diags := reachesCluster(t, nil); diags.HasError() {
		t.Fatal(diags)
	}
}

func TestKubernetesSettings_hostTokenAndCAFromEnvironment(t *testing.T) {
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

func TestKubernetesSettings_blockWinsOverEnvironment(t *testing.T) {
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

func TestKubernetesSettings_insecureWarns(t *testing.T) {
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
