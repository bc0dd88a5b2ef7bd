//go:build !unit

package provider

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	clocktesting "k8s.io/utils/clock/testing"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
)

var ephemeralVersions = []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_10_0)}

func providersWithEcho(kubecreds func() (tfprotov6.ProviderServer, error)) map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"kubecreds": kubecreds,
		"echo":      echoprovider.NewProviderServer(),
	}
}

// ephemeralConfig declares the ephemeral kubeconfig with body, uses it from
// kubectl during the run (a local-exec: the kubeconfig goes to a private
// temporary file, removed at once), and echoes the results into the state so
// the test can look at them afterwards.
func ephemeralConfig(prelude, body string) string {
	return prelude + `
ephemeral "kubecreds_short_lived_kubeconfig" "k" {
` + body + `
}

resource "terraform_data" "kubectl" {
  provisioner "local-exec" {
    command     = "f=$(mktemp) && printf '%s' \"$KC\" > \"$f\" && kubectl --kubeconfig \"$f\" get nodes -o name; rc=$?; rm -f \"$f\"; exit $rc"
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig }
  }
}

provider "echo" {
  data = ephemeral.kubecreds_short_lived_kubeconfig.k
}

resource "echo" "k" {}
`
}

// echoed returns the ephemeral resource's results as echoed into the state.
func echoed(s *terraform.State) map[string]string {
	out := map[string]string{}
	r := s.RootModule().Resources["echo.k"]
	if r == nil {
		return out
	}
	for k, v := range r.Primary.Attributes {
		if name, ok := strings.CutPrefix(k, "data."); ok {
			out[name] = v
		}
	}
	return out
}

func jwtExpiry(t *testing.T, token string) time.Time {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return time.Unix(claims.Exp, 0)
}

func jwtAudiences(t *testing.T, token string) []string {
	t.Helper()
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Aud []string `json:"aud"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Aud
}

func tokenWorks(t *testing.T, c *fakelke.Cluster, token string) error {
	t.Helper()
	_, err := tokenClient(t, c, token).CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	return err
}

// tokenClient reaches the cluster's API server with a bearer token only.
func tokenClient(t *testing.T, c *fakelke.Cluster, token string) kubernetes.Interface {
	t.Helper()
	cfg := c.AdminConfig()
	cfg.CertFile, cfg.KeyFile, cfg.BearerToken = "", "", token
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func boundSecrets(t *testing.T, c *fakelke.Cluster, ns string) []string {
	t.Helper()
	list, err := adminClient(t, c).CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: kubeconfig.BoundSecretLabel + "=true"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range list.Items {
		names = append(names, s.Name)
	}
	return names
}

func TestAccShortLived_tokenWorksDuringTheRunAndIsRevokedAfter(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	var token string
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   ephemeralVersions,
		ProtoV6ProviderFactories: providersWithEcho(testProviders["kubecreds"]),
		Steps: []resource.TestStep{{
			Config: ephemeralConfig("", fmt.Sprintf(`  lke_cluster_id = %d
  ttl            = "1h"`, c.ID)),
			Check: func(s *terraform.State) error {
				e := echoed(s)
				token = e["token"]
				if token == "" || e["kubeconfig"] == "" || e["client_key"] != "" {
					return fmt.Errorf("echoed results: token set %v, kubeconfig set %v", token != "", e["kubeconfig"] != "")
				}
				expires, err := time.Parse(time.RFC3339, e["expires_at"])
				if err != nil {
					return err
				}
				if d := time.Until(expires) - time.Hour; d > 5*time.Second || d < -30*time.Second {
					return fmt.Errorf("expires_at %s is not now + 1h (off by %s)", expires, d)
				}
				if exp := jwtExpiry(t, token); !exp.Equal(expires) {
					return fmt.Errorf("token exp claim %s, expires_at %s", exp, expires)
				}
				if e["context_name"] != fmt.Sprintf("lke%d-lke-admin", c.ID) || e["host"] != c.Host() || e["cluster_ca_certificate"] != string(c.CACertificate()) {
					return fmt.Errorf("context_name %q host %q", e["context_name"], e["host"])
				}
				// The run is over: Close has deleted the bound Secret.
				if err := waitRejectedToken(t, c, token, 15*time.Second); err != nil {
					return fmt.Errorf("the token still works 15s after the run: %w", err)
				}
				if left := boundSecrets(t, c, "kube-system"); len(left) != 0 {
					return fmt.Errorf("bound Secrets left after the run: %v", left)
				}
				return nil
			},
		}},
	})
}

func waitRejectedToken(t *testing.T, c *fakelke.Cluster, token string, within time.Duration) error {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if err := tokenWorks(t, c, token); err != nil && strings.Contains(err.Error(), "Unauthorized") {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("not rejected within %s", within)
}

func TestAccShortLived_notRevokedWhenAskedAndCleanedUpOnceExpired(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	clk := clocktesting.NewFakeClock(time.Now())
	kubecreds := providerserver.NewProtocol6WithError(newWithClock("test", clk)())
	var token string
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   ephemeralVersions,
		ProtoV6ProviderFactories: providersWithEcho(kubecreds),
		Steps: []resource.TestStep{
			{
				Config: ephemeralConfig("", fmt.Sprintf(`  lke_cluster_id  = %d
  ttl             = "10m"
  revoke_on_close = false`, c.ID)),
				Check: func(s *terraform.State) error {
					token = echoed(s)["token"]
					// Past the API server's 10 s cache: a revoked token would fail by now.
					time.Sleep(12 * time.Second)
					if err := tokenWorks(t, c, token); err != nil {
						return fmt.Errorf("revoke_on_close = false, yet the token stopped working after the run: %w", err)
					}
					if len(boundSecrets(t, c, "kube-system")) == 0 {
						return fmt.Errorf("no bound Secret kept")
					}
					return nil
				},
			},
			{
				// Eleven minutes later (on the provider's clock) those tokens
				// have expired: the next open removes their Secrets, and only those.
				PreConfig: func() { clk.Step(11 * time.Minute) },
				Config: ephemeralConfig("", fmt.Sprintf(`  lke_cluster_id = %d
  ttl            = "1h"`, c.ID)),
				Check: func(s *terraform.State) error {
					if err := waitRejectedToken(t, c, token, 15*time.Second); err != nil {
						return fmt.Errorf("the expired run's Secret was not cleaned up: its token still works")
					}
					if left := boundSecrets(t, c, "kube-system"); len(left) != 0 {
						return fmt.Errorf("bound Secrets left: %v", left)
					}
					return nil
				},
			},
		},
	})
}

func TestAccShortLived_clientCertificate(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	// The kubectl step lists nodes: let group ops do that.
	cs := adminClient(t, c)
	if _, err := cs.RbacV1().ClusterRoles().Create(t.Context(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "node-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"list"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(t.Context(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ops-node-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "node-reader"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: "ops"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   ephemeralVersions,
		ProtoV6ProviderFactories: providersWithEcho(testProviders["kubecreds"]),
		Steps: []resource.TestStep{{
			Config: ephemeralConfig("", fmt.Sprintf(`  lke_cluster_id = %d
  ttl            = "2h"
  mode           = "client_certificate"
  user           = "alice"
  groups         = ["dev", "ops"]`, c.ID)),
			Check: func(s *terraform.State) error {
				e := echoed(s)
				block, _ := pem.Decode([]byte(e["client_certificate"]))
				if block == nil || e["client_key"] == "" || e["token"] != "" {
					return fmt.Errorf("no certificate/key in the results")
				}
				cert, err := x509.ParseCertificate(block.Bytes)
				if err != nil {
					return err
				}
				if cert.Subject.CommonName != "alice" || !slices.Equal(cert.Subject.Organization, []string{"dev", "ops"}) {
					return fmt.Errorf("certificate subject %v", cert.Subject)
				}
				if d := time.Until(cert.NotAfter) - 2*time.Hour; d > 5*time.Second || d < -time.Minute {
					return fmt.Errorf("NotAfter %s is not now + 2h", cert.NotAfter)
				}
				if e["expires_at"] != cert.NotAfter.UTC().Format(time.RFC3339) {
					return fmt.Errorf("expires_at %s, NotAfter %s", e["expires_at"], cert.NotAfter)
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
					return fmt.Errorf("the certificate kubeconfig does not authenticate: %w", err)
				}
				if who.Status.UserInfo.Username != "alice" || !slices.Contains(who.Status.UserInfo.Groups, "ops") {
					return fmt.Errorf("authenticated as %+v", who.Status.UserInfo)
				}
				csrs, err := adminClient(t, c).CertificatesV1().CertificateSigningRequests().List(t.Context(), metav1.ListOptions{})
				if err != nil {
					return err
				}
				if len(csrs.Items) != 0 {
					return fmt.Errorf("%d CertificateSigningRequests left behind", len(csrs.Items))
				}
				return nil
			},
		}},
	})
}

func TestAccShortLived_baseKubeconfigSource(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   ephemeralVersions,
		ProtoV6ProviderFactories: providersWithEcho(testProviders["kubecreds"]),
		Steps: []resource.TestStep{{
			Config: ephemeralConfig("", fmt.Sprintf(`  base_kubeconfig = file(%q)
  ttl             = "30m"
  audiences       = ["https://kubernetes.default.svc.cluster.local", "vault"]
  service_account {
    namespace = "kube-system"
    name      = "lke-admin"
  }`, c.AdminKubeconfigPath())),
			Check: func(s *terraform.State) error {
				e := echoed(s)
				// The admin kubeconfig names kube-apiserver itself, not LKE's endpoint.
				if e["host"] != c.AdminConfig().Host || !strings.HasSuffix(e["context_name"], "-lke-admin") {
					return fmt.Errorf("host %q context %q", e["host"], e["context_name"])
				}
				if aud := jwtAudiences(t, e["token"]); !slices.Equal(aud, []string{"https://kubernetes.default.svc.cluster.local", "vault"}) {
					return fmt.Errorf("token audiences %v", aud)
				}
				return waitRejectedToken(t, c, e["token"], 15*time.Second)
			},
		}},
	})
}

func TestAccShortLived_providerKubernetesBlockSource(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   ephemeralVersions,
		ProtoV6ProviderFactories: providersWithEcho(testProviders["kubecreds"]),
		Steps: []resource.TestStep{{
			Config: ephemeralConfig(fmt.Sprintf(`
provider "kubecreds" {
  kubernetes {
    config_path = %q
  }
}
`, c.AdminKubeconfigPath()), `  ttl = "15m"
  service_account {
    namespace = "kube-system"
    name      = "lke-admin"
  }`),
			Check: func(s *terraform.State) error {
				e := echoed(s)
				if e["host"] != c.AdminConfig().Host || e["context_name"] != "kubernetes-lke-admin" {
					return fmt.Errorf("host %q context %q", e["host"], e["context_name"])
				}
				return waitRejectedToken(t, c, e["token"], 15*time.Second)
			},
		}},
	})
}

func TestAccShortLived_invalidConfigurationsFailAtValidate(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ body, want string }{
		"ttl too short":    {`lke_cluster_id = 1` + "\n" + `ttl = "5m"`, `ttl must be a Go duration between 10m and 4320h`},
		"ttl too long":     {`lke_cluster_id = 1` + "\n" + `ttl = "10000h"`, `ttl must be a Go duration between 10m and 4320h`},
		"ttl not duration": {`lke_cluster_id = 1` + "\n" + `ttl = "soon"`, `(?s)ttl must be a Go duration between 10m and 4320h.*got "soon"`},
		"two sources":      {`lke_cluster_id = 1` + "\n" + `base_kubeconfig = "x"` + "\n" + `ttl = "1h"`, `(?s)Invalid Attribute Combination.*lke_cluster_id.*base_kubeconfig`},
		"bad kubeconfig":   {`base_kubeconfig = "not: [a kubeconfig"` + "\n" + `ttl = "1h"`, `(?s)base_kubeconfig must be a kubeconfig`},
		"cert no user":     {`lke_cluster_id = 1` + "\n" + `ttl = "1h"` + "\n" + `mode = "client_certificate"`, `(?s)Missing user`},
		"cert and revoke":  {`lke_cluster_id = 1` + "\n" + `ttl = "1h"` + "\n" + `mode = "client_certificate"` + "\n" + `user = "a"` + "\n" + `revoke_on_close = true`, `revoke_on_close applies to mode\s+=\s+"service_account" only`},
		"user for token":   {`lke_cluster_id = 1` + "\n" + `ttl = "1h"` + "\n" + `user = "a"`, `user applies to mode = "client_certificate" only`},
		"unknown mode":     {`lke_cluster_id = 1` + "\n" + `ttl = "1h"` + "\n" + `mode = "oidc"`, `(?s)mode value must be one of: \["service_account"\s+"client_certificate"\], got: "oidc"`},
		"masters group":    {`lke_cluster_id = 1` + "\n" + `ttl = "1h"` + "\n" + `mode = "client_certificate"` + "\n" + `user = "a"` + "\n" + `groups = ["system:masters"]`, `(?s)groups\[0\] value must be none of: \["system:masters"\]`},
		"half an account":  {`base_kubeconfig = file("/dev/null")` + "\n" + `ttl = "1h"` + "\n" + `service_account {` + "\n" + `name = "x"` + "\n}", `(?s)service_account needs both namespace and name`},
	} {
		t.Run(name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				TerraformVersionChecks:   ephemeralVersions,
				ProtoV6ProviderFactories: testProviders,
				Steps: []resource.TestStep{{
					Config:      "ephemeral \"kubecreds_short_lived_kubeconfig\" \"k\" {\n" + tc.body + "\n}\n",
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(tc.want),
				}},
			})
		})
	}
}

// limitedKubeconfig is a kubeconfig for a service account bound to rules.
func limitedKubeconfig(t *testing.T, c *fakelke.Cluster, name string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	cs := adminClient(t, c)
	ctx := t.Context()
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if rules != nil {
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: "default"}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	secs := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return writeKubeconfig(t, c.Host(), c.CACertificate(), tr.Status.Token)
}

func writeKubeconfig(t *testing.T, host string, ca []byte, token string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: ca}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "x"
	p := t.TempDir() + "/kubeconfig"
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAccShortLived_openErrorsSayWhatToFix(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	readSA := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"serviceaccounts", "secrets"}, Verbs: []string{"get", "list", "create", "delete"}}
	noTokens := limitedKubeconfig(t, c, "no-token-rights", []rbacv1.PolicyRule{readSA})
	csrNoApprove := limitedKubeconfig(t, c, "csr-no-approve", []rbacv1.PolicyRule{
		{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"create", "get", "delete"}},
	})
	// A password in the server's URL is masked wherever the URL is shown.
	secretForLeakScan("hunter2-in-the-url", "a password in a kubeconfig's server URL")
	unreachable := writeKubeconfig(t, "https://ops:hunter2-in-the-url@127.0.0.1:1", c.CACertificate(), "x")
	for name, tc := range map[string]struct{ body, want string }{
		"unknown service account": {fmt.Sprintf("lke_cluster_id = %d\nttl = \"1h\"\nservice_account {\nnamespace = \"kube-system\"\nname = \"nobody\"\n}", c.ID),
			"service account not found: kube-system/nobody does not exist: create it"},
		"no right to create tokens": {fmt.Sprintf("base_kubeconfig = file(%q)\nttl = \"1h\"\nservice_account {\nnamespace = \"default\"\nname = \"no-token-rights\"\n}", noTokens),
			"forbidden: the credentials used need RBAC permission to create serviceaccounts/token"},
		"no right to approve CSRs": {fmt.Sprintf("base_kubeconfig = file(%q)\nttl = \"1h\"\nmode = \"client_certificate\"\nuser = \"bob\"", csrNoApprove),
			"forbidden: the credentials used need RBAC permission to update certificatesigningrequests/approval and approve on signers kubernetes.io/kube-apiserver-client"},
		"unreachable cluster": {fmt.Sprintf("base_kubeconfig = file(%q)\nttl = \"1h\"\nservice_account {\nnamespace = \"default\"\nname = \"x\"\n}", unreachable),
			`Cannot reach the Kubernetes API server at "https://ops:xxxxx@127.0.0.1:1"`},
		"no source at all": {"ttl = \"1h\"\nservice_account {\nnamespace = \"default\"\nname = \"x\"\n}",
			"Set lke_cluster_id or base_kubeconfig on the ephemeral resource, or configure the provider's kubernetes block"},
	} {
		t.Run(name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				TerraformVersionChecks:   ephemeralVersions,
				ProtoV6ProviderFactories: testProviders,
				Steps: []resource.TestStep{{
					Config:      "ephemeral \"kubecreds_short_lived_kubeconfig\" \"k\" {\n" + tc.body + "\n}\n",
					ExpectError: wrapped(tc.want),
				}},
			})
		})
	}
	// A failed token request leaves no Secret behind.
	if left := boundSecrets(t, c, "default"); len(left) != 0 {
		t.Errorf("bound Secrets left by failed opens: %v", left)
	}
}
