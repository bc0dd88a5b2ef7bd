//go:build !unit

package provider

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

// TestAccShortLived_ttlCappedByTheAPIServerIsShownAndWarned: the local
// LKE's API servers cap tokens at 24h (--service-account-max-token-expiration).
// Asked for 48h, the kubeconfig's expires_at shows the cap, the token
// itself expires then, and the run warns that the ttl was shortened.
func TestAccShortLived_ttlCappedByTheAPIServerIsShownAndWarned(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "kubeconfig")
	writeConfig(t, dir, withKubecreds(fmt.Sprintf(`
ephemeral "kubecreds_short_lived_kubeconfig" "k" {
  lke_cluster_id = %d
  ttl            = "48h"
}

resource "terraform_data" "use" {
  provisioner "local-exec" {
    command     = "printf '%%s' \"$KC\" > \"$OUT\" && printf '%%s' \"$EXP\" > \"$OUT.expires_at\""
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig, EXP = ephemeral.kubecreds_short_lived_kubeconfig.k.expires_at, OUT = %q }
  }
}
`, c.ID, out)))
	start := time.Now()
	log, err := terraformCmd(t, dir, nil, "apply", "-auto-approve", "-input=false", "-no-color")
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, log)
	}
	if !wrapped("The API server shortened the requested ttl").MatchString(log) || !wrapped("ttl asked for 48h0m0s, but the API server granted only about 24h0m0s").MatchString(log) {
		t.Errorf("no warning that the ttl was shortened:\n%s", log)
	}
	raw, err := os.ReadFile(out + ".expires_at")
	if err != nil {
		t.Fatalf("expires_at was not captured: %v", err)
	}
	expires, err := time.Parse(time.RFC3339, string(raw))
	if err != nil {
		t.Fatal(err)
	}
	// The warning shown is the plan's open (terraform merges the two), a
	// second or so before the apply's.
	if !regexpMust(`the\s+credentials\s+expire\s+at\s+` + regexp.QuoteMeta(string(raw[:13]))).MatchString(log) {
		t.Errorf("the warning does not say when the credentials expire (%s):\n%s", raw, log)
	}
	if d := expires.Sub(start); d > fakelke.DefaultMaxTokenExpiration+time.Minute || d < fakelke.DefaultMaxTokenExpiration-2*time.Minute {
		t.Errorf("expires_at %s is %s after the start; want the 24h cap", expires, d.Round(time.Second))
	}
	if got := jwtExpiry(t, capturedToken(t, out)); !got.Equal(expires) {
		t.Errorf("the token expires at %s, expires_at says %s", got, expires)
	}
}

// TestAccShortLived_clientCertificateWithoutASignerFailsFast: on a cluster
// that does not sign client certificates, client_certificate mode fails
// within seconds (not the two minutes a CSR wait could take), says why, and
// points to service_account mode; no CertificateSigningRequest is left.
func TestAccShortLived_clientCertificateWithoutASignerFailsFast(t *testing.T) {
	t.Parallel()
	c := takePrivateCluster(t, fakelke.ClusterSpec{NoCSRSigning: true, Pools: []int{1}})
	dir := t.TempDir()
	writeConfig(t, dir, withKubecreds(fmt.Sprintf(`
ephemeral "kubecreds_short_lived_kubeconfig" "k" {
  lke_cluster_id = %d
  ttl            = "1h"
  mode           = "client_certificate"
  user           = "alice"
}

resource "terraform_data" "use" {
  provisioner "local-exec" {
    command     = "test -n \"$KC\""
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig }
  }
}
`, c.ID)))
	start := time.Now()
	log, err := terraformCmd(t, dir, nil, "apply", "-auto-approve", "-input=false", "-no-color")
	took := time.Since(start)
	if err == nil {
		t.Fatalf("apply succeeded on a cluster without a signer:\n%s", log)
	}
	for _, want := range []string{"This cluster does not sign client certificates", `mode = "service_account"`} {
		if !wrapped(want).MatchString(log) {
			t.Errorf("the error does not say %q:\n%s", want, log)
		}
	}
	if took > csrSignTimeout+20*time.Second {
		t.Errorf("the failure took %s; want about the %s sign timeout", took.Round(time.Second), csrSignTimeout)
	}
	csrs, err := adminClient(t, c).CertificatesV1().CertificateSigningRequests().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(csrs.Items) != 0 {
		t.Errorf("%d CertificateSigningRequests left behind", len(csrs.Items))
	}
	t.Logf("client_certificate mode on a cluster without a signer failed after %s", took.Round(100*time.Millisecond))
}

// TestAccShortLived_honoursRetriesAndTimeoutForEverySource: whichever way
// the ephemeral kubeconfig reaches the cluster (lke_cluster_id,
// base_kubeconfig, the provider's kubernetes block), a TokenRequest that
// hangs is given up after request_timeout and one that fails is tried
// again, max_retries times and no more.
func TestAccShortLived_honoursRetriesAndTimeoutForEverySource(t *testing.T) {
	t.Parallel() // its cases join the pool of parallel tests (takeCluster)
	sources := []struct {
		name             string
		provider, source func(c *fakelke.Cluster, kubeconfigFile string) string
	}{
		{"lke_cluster_id", func(*fakelke.Cluster, string) string { return "" },
			func(c *fakelke.Cluster, _ string) string { return fmt.Sprintf("  lke_cluster_id = %d\n", c.ID) }},
		{"base_kubeconfig", func(*fakelke.Cluster, string) string { return "" },
			func(_ *fakelke.Cluster, f string) string {
				return fmt.Sprintf("  base_kubeconfig = file(%q)\n  service_account {\n    namespace = \"kube-system\"\n    name      = \"lke-admin\"\n  }\n", f)
			}},
		{"provider kubernetes block", func(_ *fakelke.Cluster, f string) string {
			return fmt.Sprintf("  kubernetes {\n    config_path = %q\n  }\n", f)
		}, func(*fakelke.Cluster, string) string {
			return "  service_account {\n    namespace = \"kube-system\"\n    name      = \"lke-admin\"\n  }\n"
		}},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			c := takeCluster(t)
			t.Cleanup(func() { testEnv.Emulator.ClearClusterFaults(c.ID) })
			// The kubeconfig the Linode API serves names the proxy where
			// the faults are played.
			kcFile := filepath.Join(t.TempDir(), "served.kubeconfig")
			if err := os.WriteFile(kcFile, servedKubeconfig(t, c), 0o600); err != nil {
				t.Fatal(err)
			}
			config := func() string {
				return withKubecreds(fmt.Sprintf(`
provider "kubecreds" {
  max_retries     = 2
  request_timeout = "2s"
%s}

ephemeral "kubecreds_short_lived_kubeconfig" "k" {
  ttl = "15m"
%s}

resource "terraform_data" "use" {
  provisioner "local-exec" {
    command     = "test -n \"$KC\""
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig }
  }
}
`, src.provider(c, kcFile), src.source(c, kcFile)))
			}
			dir := t.TempDir()
			writeConfig(t, dir, config())
			var seen []string
			requests := func() int {
				n := 0
				seen = nil
				for _, r := range testEnv.Emulator.KubeRequests() {
					if r.ClusterID == c.ID && r.Endpoint == fakelke.KubeCreateToken {
						n++
						seen = append(seen, fmt.Sprintf("%s %d", r.At.Format("15:04:05.000"), r.Status))
					}
				}
				return n
			}

			// A hang, then a 503: the third attempt gets the token.
			before := requests()
			testEnv.Emulator.InjectClusterFaults(c.ID, fakelke.KubeCreateToken,
				fakelke.Fault{Hang: true}, fakelke.Fault{Status: http.StatusServiceUnavailable})
			start := time.Now()
			out, err := terraformCmd(t, dir, nil, "apply", "-auto-approve", "-input=false", "-no-color")
			took := time.Since(start)
			if err != nil {
				t.Fatalf("apply through a hang and a 503 with max_retries = 2: %v\n%s", err, out)
			}
			// Terraform opens the ephemeral resource at plan and again at apply.
			if n := requests() - before; n != 4 {
				t.Errorf("%d TokenRequests (%v); want 3 at plan (hang, 503, served) and 1 at apply", n, seen)
			}
			if took < 2*time.Second || took > time.Minute {
				t.Errorf("the apply took %s: request_timeout (2s) was not what ended the hang", took.Round(time.Second))
			}

			// Failing every time: 1 + max_retries attempts, then an error.
			before = requests()
			persistent := make([]fakelke.Fault, 10)
			for i := range persistent {
				persistent[i] = fakelke.Fault{Status: http.StatusServiceUnavailable}
			}
			testEnv.Emulator.InjectClusterFaults(c.ID, fakelke.KubeCreateToken, persistent...)
			out, err = terraformCmd(t, dir, nil, "plan", "-input=false", "-no-color")
			if err == nil || !wrapped("Cannot issue a service-account token").MatchString(out) {
				t.Fatalf("plan with a TokenRequest that always fails: %v\n%s", err, out)
			}
			if n := requests() - before; n != 3 {
				t.Errorf("%d TokenRequests (%v); want 3 (max_retries = 2)", n, seen)
			}
		})
	}
}
