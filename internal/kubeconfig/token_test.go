package kubeconfig

import (
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

const withExec = `apiVersion: v1
kind: Config
current-context: lke
clusters:
- name: lke
  cluster:
    server: https://lke.example:443
    certificate-authority-data: Q0E=
- name: other
  cluster:
    server: https://other.example:443
contexts:
- name: lke
  context: {cluster: lke, user: admin, namespace: kube-system}
- name: other
  context: {cluster: other, user: admin}
users:
- name: admin
  user:
    token: old-token
    client-certificate-data: Q0VSVA==
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: /bin/false
`

// The swapped kubeconfig reaches the same cluster with the new token and
// nothing else of the old user: no certificate, no exec plugin.
func TestWithTokenKeepsTheClusterAndOnlyTheToken(t *testing.T) {
	raw, err := WithToken([]byte(withExec), "bridge-token")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if cfg.CurrentContext != "lke" || ctx == nil || ctx.Cluster != "lke" || ctx.Namespace != "kube-system" || len(cfg.Contexts) != 1 {
		t.Fatalf("contexts %+v, current %q: want only lke's", cfg.Contexts, cfg.CurrentContext)
	}
	if c := cfg.Clusters["lke"]; c == nil || c.Server != "https://lke.example:443" || string(c.CertificateAuthorityData) != "CA" {
		t.Errorf("cluster lke is %+v; want its server and CA kept", c)
	}
	if len(cfg.AuthInfos) != 1 {
		t.Fatalf("users %v, want one", cfg.AuthInfos)
	}
	u := cfg.AuthInfos[ctx.AuthInfo]
	if u == nil || u.Token != "bridge-token" || u.Exec != nil || len(u.ClientCertificateData) != 0 {
		t.Errorf("user %+v; want the bridge token alone", u)
	}
}

func TestWithTokenRefusesAKubeconfigWithoutCurrentContext(t *testing.T) {
	if _, err := WithToken([]byte("apiVersion: v1\nkind: Config\n"), "t"); err == nil {
		t.Fatal("a kubeconfig without current context was accepted")
	}
}
