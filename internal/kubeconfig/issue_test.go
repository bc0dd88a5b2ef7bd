package kubeconfig

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

// The signer's answers cannot be forced on a real cluster (the provider
// approves its own requests), so these branches run against client-go's fake.

func TestCertificateDeniedByAnotherApproverIsReported(t *testing.T) {
	client := fake.NewSimpleClientset()
	client.PrependReactor("get", "certificatesigningrequests", func(a k8stesting.Action) (bool, runtime.Object, error) {
		csr := &certificatesv1.CertificateSigningRequest{}
		csr.Name = a.(k8stesting.GetAction).GetName()
		csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{
			Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue, Reason: "PolicyDenied", Message: "no certificates for bots",
		}}
		return true, csr, nil
	})
	i := &Issuer{Client: client, Clock: clock.RealClock{}}
	_, err := i.IssueClientCertificate(context.Background(), ClientCertificate{User: "bot", TTL: time.Hour, SignTimeout: 5 * time.Second})
	if !errors.Is(err, ErrCSRDenied) || err.Error() != "certificate signing request denied: PolicyDenied: no certificates for bots" {
		t.Fatalf("err = %v", err)
	}
	assertNoCSRLeft(t, client)
}

func TestCertificateNeverSignedTimesOutWithAHint(t *testing.T) {
	client := fake.NewSimpleClientset() // nothing signs
	i := &Issuer{Client: client, Clock: clock.RealClock{}}
	_, err := i.IssueClientCertificate(context.Background(), ClientCertificate{User: "bot", TTL: time.Hour, SignTimeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrCSRNotSigned) {
		t.Fatalf("err = %v; want ErrCSRNotSigned", err)
	}
	if want := "--cluster-signing-cert-file"; !contains(err.Error(), want) {
		t.Errorf("error %q gives no hint (%s)", err, want)
	}
	assertNoCSRLeft(t, client)
}

func TestCleanupExpiredTouchesOnlyExpiredBoundSecrets(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	secret := func(name, expires string, bound bool) *corev1.Secret {
		s := &corev1.Secret{Type: corev1.SecretTypeOpaque}
		s.Namespace, s.Name, s.UID = "ns", BoundSecretPrefix+name, "uid-"+typesUID(name)
		s.Annotations = map[string]string{ExpiresAtAnnotation: expires, IssuerAnnotation: issuer}
		if bound {
			s.Labels = map[string]string{BoundSecretLabel: "true"}
		}
		return s
	}
	labelOnly := secret("label-only", now.Add(-time.Hour).Format(time.RFC3339), true)
	labelOnly.Name = "app-config" // the label, an expiry, but not kubecreds' name
	client := fake.NewSimpleClientset(
		secret("expired", now.Add(-time.Minute).Format(time.RFC3339), true),
		secret("still-valid", now.Add(time.Minute).Format(time.RFC3339), true),
		secret("unreadable", "soon", true),
		secret("not-ours", now.Add(-time.Hour).Format(time.RFC3339), false),
		labelOnly,
	)
	i := &Issuer{Client: client, Clock: clocktesting.NewFakeClock(now)}
	n, err := i.CleanupExpired(context.Background(), "ns")
	if err != nil || n != 1 {
		t.Fatalf("deleted %d, err %v; want 1", n, err)
	}
	left, _ := client.CoreV1().Secrets("ns").List(context.Background(), metav1ListOptions())
	var names []string
	for _, s := range left.Items {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	if want := []string{"app-config", BoundSecretPrefix + "not-ours", BoundSecretPrefix + "still-valid", BoundSecretPrefix + "unreadable"}; !slices.Equal(names, want) {
		t.Fatalf("left %v; want %v (all but the expired bound Secret)", names, want)
	}
}

func assertNoCSRLeft(t *testing.T, client *fake.Clientset) {
	t.Helper()
	list, err := client.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1ListOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Errorf("%d CertificateSigningRequests left", len(list.Items))
	}
}

// A Secret is kubecreds' by its generated name and its annotations, not by
// the label anyone may set.
func TestIsBoundSecretTakesTheNameAndTheIssuerNotTheLabel(t *testing.T) {
	for _, c := range []struct {
		name        string
		annotations map[string]string
		want        bool
	}{
		{BoundSecretPrefix + "x7k2p", map[string]string{IssuerAnnotation: issuer}, true},
		// made before the issuer annotation: the two annotations every version wrote
		{BoundSecretPrefix + "x7k2p", map[string]string{ExpiresAtAnnotation: "2026-01-01T00:00:00Z", ServiceAccountAnnotation: "default"}, true},
		{BoundSecretPrefix + "x7k2p", map[string]string{ExpiresAtAnnotation: "2026-01-01T00:00:00Z"}, false},
		{BoundSecretPrefix + "x7k2p", map[string]string{IssuerAnnotation: "someone"}, false},
		{BoundSecretPrefix + "x7k2p", nil, false},
		{BoundSecretPrefix, map[string]string{IssuerAnnotation: issuer}, false},
		{"app-config", map[string]string{IssuerAnnotation: issuer}, false},
	} {
		if got := IsBoundSecret(c.name, c.annotations); got != c.want {
			t.Errorf("IsBoundSecret(%q, %v) = %t, want %t", c.name, c.annotations, got, c.want)
		}
	}
}
