//go:build !unit

package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

// credentialPlugin writes an exec credential plugin into dir: a script that
// records its environment in dir/plugin.env and prints token as an
// ExecCredential. It returns the script's path and the record's.
func credentialPlugin(t *testing.T, dir, token string) (script, record string) {
	t.Helper()
	script, record = filepath.Join(dir, "get-token.sh"), filepath.Join(dir, "plugin.env")
	body := fmt.Sprintf("#!/bin/sh\nenv > %q\nprintf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%%s\"}}\\n' %q\n",
		record, token)
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return script, record
}

// editedKubeconfig is c's served kubeconfig with its user and cluster
// changed by edit.
func editedKubeconfig(t *testing.T, c *fakelke.Cluster, edit func(u *clientcmdapi.AuthInfo, cl *clientcmdapi.Cluster)) []byte {
	t.Helper()
	cfg, err := clientcmd.Load(servedKubeconfig(t, c))
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	edit(cfg.AuthInfos[ctx.AuthInfo], cfg.Clusters[ctx.Cluster])
	raw, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

const shortLivedFromBase = `
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}

ephemeral "kubecreds_short_lived_kubeconfig" "k" {
  base_kubeconfig = file("${path.module}/base.kubeconfig")
  ttl             = "1h"
  service_account {
    namespace = "kube-system"
    name      = "default"
  }
%s}

resource "terraform_data" "use" {
  provisioner "local-exec" {
    command     = "printf '%%s' \"$KC\" > issued.kubeconfig && kubectl --kubeconfig issued.kubeconfig auth whoami -o jsonpath='{.status.userInfo.username}' > whoami.txt"
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig }
  }
}
`

// A base_kubeconfig whose user is an exec plugin: refused at plan, naming
// the plugin, and the plugin never runs; with allow_exec_plugins = true it
// runs, and gets none of the provider's cloud credentials.
func TestAccKubeconfigData_basePluginRunsOnlyWhenAllowed(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	if os.Getenv("LINODE_TOKEN") == "" {
		t.Fatal("LINODE_TOKEN is not set in the test environment: the plugin's environment would prove nothing")
	}
	dir := t.TempDir()
	token := kube.TokenOf(servedKubeconfig(t, c))
	script, record := credentialPlugin(t, t.TempDir(), token)
	// A secret only the plugin's environment holds: the leak scan looks
	// for it in every log and state.
	pluginSecret := "plugin-env-" + newHandle()
	secretForLeakScan(pluginSecret, "a value of a credential plugin's environment")
	base := editedKubeconfig(t, c, func(u *clientcmdapi.AuthInfo, _ *clientcmdapi.Cluster) {
		u.Token = ""
		u.Exec = &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: script,
			Env:             []clientcmdapi.ExecEnvVar{{Name: "PLUGIN_SECRET", Value: pluginSecret}},
			InteractiveMode: clientcmdapi.NeverExecInteractiveMode}
	})
	if err := os.WriteFile(filepath.Join(dir, "base.kubeconfig"), base, 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, fmt.Sprintf(shortLivedFromBase, ""))
	out, err := tfRun(t, dir, nil, "plan", "-input=false")
	if err == nil {
		t.Fatalf("the plan of a base_kubeconfig with an exec plugin succeeded:\n%s", out)
	}
	for _, want := range []string{"Refused kubeconfig", fmt.Sprintf(`users["lke%d-admin"].exec (command %q)`, c.ID, script), "allow_exec_plugins = true", "nothing was run or read"} {
		if !wrapped(want).MatchString(out) {
			t.Errorf("the plan's error does not say %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(record); err == nil {
		t.Fatal("the refused plugin ran")
	}

	writeConfig(t, dir, fmt.Sprintf(shortLivedFromBase, "  allow_exec_plugins = true\n"))
	out = mustTF(t, dir, nil, "apply", "-auto-approve", "-input=false")
	env, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("the allowed plugin did not run (%v):\n%s", err, out)
	}
	// The apply's local-exec proved the issued kubeconfig works (kubectl
	// auth whoami); Close has revoked it since.
	if who, err := os.ReadFile(filepath.Join(dir, "whoami.txt")); err != nil || string(who) != "system:serviceaccount:kube-system:default" {
		t.Errorf("kubectl auth whoami with the issued kubeconfig said %q (%v):\n%s", who, err, out)
	}
	if !strings.Contains(string(env), "PLUGIN_SECRET="+pluginSecret+"\n") {
		t.Error("the plugin did not get the environment its kubeconfig sets for it")
	}
	checked := 0
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		if value == "" || (!strings.HasPrefix(name, "LINODE_") && !strings.HasPrefix(name, "STACKIT_")) {
			continue
		}
		checked++
		if strings.Contains(string(env), value) {
			t.Errorf("the plugin got %s's value", name)
		}
		if !strings.Contains(string(env), "\n"+name+"=\n") && !strings.HasPrefix(string(env), name+"=\n") {
			t.Errorf("the plugin's environment does not set %s to empty", name)
		}
	}
	t.Logf("the plugin ran with %d cloud variables of the provider's environment emptied", checked)
}

// A kubeconfig the Linode API serves with an exec plugin in it is refused
// before anything runs or changes: the rotation fails at its second step
// with nothing deleted or regenerated, the ephemeral resource fails to
// open, and the plugin never runs.
func TestAccKubeconfigData_servedPluginIsRefused(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	script, record := credentialPlugin(t, t.TempDir(), "never-used")
	c.SetServedKubeconfigEdit(func(cfg *clientcmdapi.Config) {
		for _, u := range cfg.AuthInfos {
			u.Token = ""
			u.Exec = &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: script,
				InteractiveMode: clientcmdapi.NeverExecInteractiveMode}
		}
	})
	t.Cleanup(func() { c.SetServedKubeconfigEdit(nil) })
	cs := adminClient(t, c)
	secrets := func() int {
		l, err := cs.CoreV1().Secrets("kube-system").List(t.Context(), metav1.ListOptions{FieldSelector: "type=kubernetes.io/service-account-token"})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	before, regens := secrets(), c.Regenerations()
	want := []string{fmt.Sprintf(`users["lke%d-admin"].exec (command %q)`, c.ID, script), "never carries", "nothing was run or read"}

	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}
resource "kubecreds_lke_secret_rotation" "r" {
  cluster_id = %d
}
`, c.ID))
	out, err := tfRun(t, dir, nil, "apply", "-auto-approve", "-input=false")
	if err == nil {
		t.Fatalf("a rotation with a served exec plugin succeeded:\n%s", out)
	}
	for _, w := range append(want, "fetch current kubeconfig") {
		if !wrapped(w).MatchString(out) {
			t.Errorf("the rotation's error does not say %q:\n%s", w, out)
		}
	}
	if n := secrets(); n != before || c.Regenerations() != regens {
		t.Errorf("the refused rotation changed the cluster: %d token secrets (was %d), %d regenerations", n, before, c.Regenerations()-regens)
	}

	eph := t.TempDir()
	writeConfig(t, eph, fmt.Sprintf(`
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}
ephemeral "kubecreds_short_lived_kubeconfig" "k" {
  lke_cluster_id = %d
  ttl            = "1h"
}
resource "terraform_data" "use" {
  provisioner "local-exec" {
    command     = "test -n \"$KC\""
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig }
  }
}
`, c.ID))
	out, err = tfRun(t, eph, nil, "apply", "-auto-approve", "-input=false")
	if err == nil {
		t.Fatalf("the ephemeral resource opened with a served exec plugin:\n%s", out)
	}
	for _, w := range want {
		if !wrapped(w).MatchString(out) {
			t.Errorf("the ephemeral resource's error does not say %q:\n%s", w, out)
		}
	}
	if _, err := os.Stat(record); err == nil {
		t.Fatal("the served plugin ran")
	}
}

// A base_kubeconfig that does not verify the server's certificate works,
// with a warning that says so, and a second one that the kubeconfig it
// issues does not verify either.
func TestAccKubeconfigData_insecureBaseIsWarnedAbout(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	dir := t.TempDir()
	base := editedKubeconfig(t, c, func(_ *clientcmdapi.AuthInfo, cl *clientcmdapi.Cluster) {
		cl.CertificateAuthorityData, cl.InsecureSkipTLSVerify = nil, true
	})
	if err := os.WriteFile(filepath.Join(dir, "base.kubeconfig"), base, 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, fmt.Sprintf(shortLivedFromBase, ""))
	out := mustTF(t, dir, nil, "apply", "-auto-approve", "-input=false")
	for _, want := range []string{"TLS verification is off", "base_kubeconfig: TLS verification is off", "The issued kubeconfig skips TLS verification"} {
		if !wrapped(want).MatchString(out) {
			t.Errorf("the apply does not warn %q:\n%s", want, out)
		}
	}
	issued, err := os.ReadFile(filepath.Join(dir, "issued.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(issued)
	if err != nil {
		t.Fatal(err)
	}
	if cl := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]; cl == nil || !cl.InsecureSkipTLSVerify {
		t.Errorf("the issued kubeconfig verifies the server although the warning says it does not")
	}
}

// A proxy URL's password (from KUBE_PROXY_URL, as a CI system would set
// it) appears in no output, state or log, even when the proxy cannot be
// reached.
func TestAccKubeconfigData_proxyPasswordIsNeverShown(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	password := "proxy-pass-" + newHandle()
	secretForLeakScan(password, "a proxy URL's password")
	dir := t.TempDir()
	writeConfig(t, dir, `
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}
ephemeral "kubecreds_short_lived_kubeconfig" "k" {
  ttl = "1h"
  service_account {
    namespace = "kube-system"
    name      = "default"
  }
}
resource "terraform_data" "use" {
  provisioner "local-exec" {
    command     = "test -n \"$KC\""
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig }
  }
}
`)
	env := map[string]string{"KUBE_CONFIG_PATH": c.AdminKubeconfigPath(), "KUBE_PROXY_URL": "http://ops:" + password + "@127.0.0.1:9"}
	out, err := tfRun(t, dir, env, "apply", "-auto-approve", "-input=false")
	if err == nil {
		t.Fatalf("the apply through a proxy that does not listen succeeded:\n%s", out)
	}
	if strings.Contains(out, password) {
		t.Errorf("the output shows the proxy's password:\n%s", out)
	}
	if !wrapped("Cannot reach the Kubernetes API server").MatchString(out) {
		t.Errorf("the apply does not say the API server could not be reached:\n%s", out)
	}
}
