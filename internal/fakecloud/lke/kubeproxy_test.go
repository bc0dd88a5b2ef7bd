//go:build !unit

package lke_test

import (
	"net/http"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

// The served kubeconfig names the proxy in front of kube-apiserver; faults
// queued for a Kubernetes endpoint of the cluster are played there, in order,
// and requests pass through once the queue is empty.
func TestAccKubeProxyPlaysFaultsOnTheWayToTheAPIServer(t *testing.T) {
	ctx := t.Context()
	c := env.Clusters()[0]
	kc := servedKubeconfig(ctx, t, newLinodeClient(t, env.Emulator.Token), c.ID)
	cs := clientsetFor(t, kc)

	env.Emulator.InjectClusterFaults(c.ID, fakelke.KubeListSecrets,
		fakelke.Fault{Status: http.StatusServiceUnavailable}, fakelke.Fault{Status: http.StatusInternalServerError})
	_, err := cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	if !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("first list: %v, want the injected 503", err)
	}
	_, err = cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	if !apierrors.IsInternalError(err) {
		t.Fatalf("second list: %v, want the injected 500", err)
	}
	if _, err := cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("third list: %v, want it to pass through", err)
	}
	if n := env.Emulator.PendingFaults(c.ID, fakelke.KubeListSecrets); n != 0 {
		t.Fatalf("%d faults left", n)
	}
	// Another cluster's faults do not touch this one.
	other := env.Clusters()[1]
	env.Emulator.InjectClusterFaults(other.ID, fakelke.KubeListSecrets, fakelke.Fault{Status: http.StatusInternalServerError})
	t.Cleanup(func() { env.Emulator.ClearClusterFaults(other.ID) })
	if _, err := cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("a fault queued for cluster %d reached cluster %d: %v", other.ID, c.ID, err)
	}
}

// A client certificate presented to the proxy is checked against the
// cluster's CA and reaches kube-apiserver as who it names.
func TestAccKubeProxyForwardsClientCertificateIdentities(t *testing.T) {
	ctx := t.Context()
	c := env.Clusters()[0]
	cfg := c.AdminConfig()
	cfg.Host = c.Host()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("admin certificate through the proxy: %v", err)
	}
	u := review.Status.UserInfo
	if u.Username != "kubecreds-local-admin" || len(u.Groups) == 0 || u.Groups[0] != "system:masters" {
		t.Fatalf("authenticated as %q %v, want kubecreds-local-admin in system:masters", u.Username, u.Groups)
	}
	// Headers a client sends itself are not trusted.
	anon := c.AdminConfig()
	anon.Host, anon.CertFile, anon.KeyFile = c.Host(), "", ""
	anon.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			r.Header.Set("X-Remote-User", "kubecreds-local-admin")
			r.Header.Set("X-Remote-Group", "system:masters")
			return rt.RoundTrip(r)
		})
	}
	acs, err := kubernetes.NewForConfig(anon)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) && !apierrors.IsForbidden(err) {
		t.Fatalf("forged X-Remote-User was accepted: %v", err)
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
