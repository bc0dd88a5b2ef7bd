package provider

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/lkelocal"
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
    command     = "printf '%%s' \"$KC\" > %q && printf 'expires_at=%%s\n' \"$EXP\""
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig, EXP = ephemeral.kubecreds_short_lived_kubeconfig.k.expires_at }
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
	_, after, ok := strings.Cut(log, "expires_at=")
	if !ok {
		t.Fatalf("expires_at was not printed:\n%s", log)
	}
	expires, err := time.Parse(time.RFC3339, strings.Fields(after)[0])
	if err != nil {
		t.Fatal(err)
	}
	if d := expires.Sub(start); d > lkelocal.DefaultMaxTokenExpiration+time.Minute || d < lkelocal.DefaultMaxTokenExpiration-2*time.Minute {
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
	c := takePrivateCluster(t, lkelocal.ClusterSpec{NoCSRSigning: true, Pools: []int{1}})
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
