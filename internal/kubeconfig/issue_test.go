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
		s := &corev1.Secret{}
		s.Namespace, s.Name, s.UID = "ns", name, "uid-"+typesUID(name)
		s.Annotations = map[string]string{ExpiresAtAnnotation: expires}
		if bound {
			s.Labels = map[string]string{BoundSecretLabel: "true"}
		}
		return s
	}
	client := fake.NewSimpleClientset(
		secret("expired", now.Add(-time.Minute).Format(time.RFC3339), true),
		secret("still-valid", now.Add(time.Minute).Format(time.RFC3339), true),
		secret("unreadable", "soon", true),
		secret("not-ours", now.Add(-time.Hour).Format(time.RFC3339), false),
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
	if want := []string{"not-ours", "still-valid", "unreadable"}; !slices.Equal(names, want) {
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
