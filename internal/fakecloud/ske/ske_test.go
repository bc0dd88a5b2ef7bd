//go:build !unit

package ske_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	fakeske "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/ske"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/ske"
)

func skeClient(t *testing.T, api *fakeske.API) *ske.Client {
	t.Helper()
	caPEM, err := os.ReadFile(api.CAPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc, err := ske.NewHTTPClient(ske.Credentials{Token: api.Token},
		&http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &ske.Client{BaseURL: api.URL, HTTP: hc}
}

// newSKECluster starts an SKE cluster of the test's own, and the SKE API
// with a client for it.
func newSKECluster(t *testing.T, name string) (*fakeske.Cluster, *fakeske.API, *ske.Client, ske.ClusterRef) {
	t.Helper()
	c, err := env.AddCluster(t.Context(), fakeske.ClusterSpec{ProjectID: "p-kubecreds", Region: "eu01", Name: name})
	if err != nil {
		t.Fatal(err)
	}
	api := env.API
	return c, api, skeClient(t, api), ske.ClusterRef{ProjectID: c.ProjectID, Region: c.Region, Name: c.Name}
}

// works tells whether a client reaches the cluster as an authenticated
// user (whatever that user may do).
func works(ctx context.Context, cs kubernetes.Interface) error {
	_, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	return err
}

func waitPhase(t *testing.T, c *ske.Client, ref ske.ClusterRef, want string) {
	t.Helper()
	var got string
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		cl, err := c.GetCluster(ctx, ref)
		if err != nil {
			return false, err
		}
		got = cl.Status.CredentialsRotation.Phase
		return got == want, nil
	})
	if err != nil {
		t.Fatalf("phase %s, want %s: %v", got, want, err)
	}
}

// TestAccSKECredentialsRotationReallyRotates drives the local SKE through a
// credentials rotation with the SKE API client: kubeconfigs and
// service-account tokens from before the start keep working while the
// rotation is PREPARED, and stop working once it is COMPLETED (the CA and
// the signing key are gone), while those issued after the start keep
// working; Secrets stay readable (re-encrypted with the new key).
func TestAccSKECredentialsRotationReallyRotates(t *testing.T) {
	ctx := t.Context()
	c, _, client, ref := newSKECluster(t, "rotate")

	cl, err := client.GetCluster(ctx, ref)
	if err != nil || cl.Status.Aggregated != ske.StateHealthy || cl.Status.CredentialsRotation.Phase != ske.PhaseNever {
		t.Fatalf("new cluster: %+v, %v", cl, err)
	}
	if _, err := client.CreateKubeconfig(ctx, ref, time.Minute); ske.StatusCode(err) != http.StatusBadRequest {
		t.Fatalf("a kubeconfig for one minute: %v; want 400 (600 s at least)", err)
	}
	oldKC := kubeconfigFrom(t, client, ref)
	admin, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "bot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	oldToken := saToken(t, admin)
	for name, cs := range map[string]kubernetes.Interface{"old kubeconfig": oldKC, "old token": tokenClientFor(t, c, oldToken)} {
		if err := works(ctx, cs); err != nil {
			t.Fatalf("%s before the rotation: %v", name, err)
		}
	}

	if err := client.CompleteCredentialsRotation(ctx, ref); ske.StatusCode(err) != http.StatusBadRequest {
		t.Fatalf("complete before start: %v; want 400", err)
	}
	if err := client.StartCredentialsRotation(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := client.StartCredentialsRotation(ctx, ref); ske.StatusCode(err) != http.StatusBadRequest {
		t.Fatalf("a second start while preparing: %v; want 400", err)
	}
	waitPhase(t, client, ref, ske.PhasePrepared)
	newKC := kubeconfigFrom(t, client, ref)
	for name, cs := range map[string]kubernetes.Interface{"old kubeconfig": oldKC, "old token": tokenClientFor(t, c, oldToken), "new kubeconfig": newKC} {
		if err := works(ctx, cs); err != nil {
			t.Fatalf("%s while PREPARED: %v", name, err)
		}
	}
	newToken := saToken(t, admin)

	if err := client.CompleteCredentialsRotation(ctx, ref); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, client, ref, ske.PhaseCompleted)
	cl, err = client.GetCluster(ctx, ref)
	if err != nil || cl.Status.CredentialsRotation.LastCompletionTime == nil || cl.Status.CredentialsRotation.LastInitiationTime == nil {
		t.Fatalf("completed cluster: %+v, %v", cl, err)
	}
	for name, cs := range map[string]kubernetes.Interface{"old kubeconfig": oldKC, "old token": tokenClientFor(t, c, oldToken)} {
		if err := works(ctx, cs); err == nil {
			t.Errorf("%s still works after the rotation completed", name)
		}
	}
	for name, cs := range map[string]kubernetes.Interface{"new kubeconfig": newKC, "new token": tokenClientFor(t, c, newToken)} {
		if err := works(ctx, cs); err != nil {
			t.Errorf("%s after the rotation completed: %v", name, err)
		}
	}
	// The harness client from before trusts the old CA only.
	if admin, err = kubernetes.NewForConfig(c.AdminConfig()); err != nil {
		t.Fatal(err)
	}
	s, err := admin.CoreV1().Secrets("default").Get(ctx, "probe", metav1.GetOptions{})
	if err != nil || string(s.Data["k"]) != "v" {
		t.Errorf("the Secret from before the rotation: %v, %v", s, err)
	}
	if starts, completes := c.Rotations(); starts != 1 || completes != 1 {
		t.Errorf("the API acted on %d starts and %d completions; want 1 and 1", starts, completes)
	}

	c.SetAggregated(fakeske.StateHibernated)
	defer c.SetAggregated(fakeske.StateHealthy)
	if err := client.StartCredentialsRotation(ctx, ref); ske.StatusCode(err) != http.StatusBadRequest {
		t.Fatalf("start on a hibernated cluster: %v; want 400", err)
	}
}

func kubeconfigFrom(t *testing.T, c *ske.Client, ref ske.ClusterRef) kubernetes.Interface {
	t.Helper()
	kc, err := c.CreateKubeconfig(t.Context(), ref, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(kc.ExpirationTimestamp); d < 59*time.Minute || d > time.Hour+time.Second {
		t.Errorf("kubeconfig expires in %s; want 1h", d)
	}
	return clientsetFor(t, []byte(kc.Kubeconfig))
}

func saToken(t *testing.T, admin kubernetes.Interface) string {
	t.Helper()
	tr, err := admin.CoreV1().ServiceAccounts("default").CreateToken(t.Context(), "bot", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func tokenClientFor(t *testing.T, c *fakeske.Cluster, token string) kubernetes.Interface {
	t.Helper()
	cfg := c.AdminConfig()
	cfg.BearerToken = token
	cfg.Timeout = 10 * time.Second
	cs, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestAccSKEKeyFlowGetsAccessTokensFromTheLocalTokenEndpoint: stackit-sdk-go's
// key flow, given the local service account's key, signs an assertion, gets
// an access token from the local token endpoint, and the SKE API accepts
// it; a forged token is refused.
func TestAccSKEKeyFlowGetsAccessTokensFromTheLocalTokenEndpoint(t *testing.T) {
	ctx := t.Context()
	api := env.API
	c, err := env.AddCluster(ctx, fakeske.ClusterSpec{ProjectID: "p-keyflow", Region: "eu01", Name: "keyflow"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := api.ServiceAccountKey()
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(api.CAPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	hc, err := ske.NewHTTPClient(ske.Credentials{ServiceAccountKey: string(key)}, transport, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	before := api.AccessTokensIssued()
	client := &ske.Client{BaseURL: api.URL, HTTP: hc}
	if _, err := client.GetCluster(ctx, ske.ClusterRef{ProjectID: c.ProjectID, Region: c.Region, Name: c.Name}); err != nil {
		t.Fatalf("with the key flow: %v", err)
	}
	if api.AccessTokensIssued() == before {
		t.Fatal("no access token was issued: the key flow did not run")
	}
	forged, err := ske.NewHTTPClient(ske.Credentials{Token: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}, transport, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&ske.Client{BaseURL: api.URL, HTTP: forged}).GetCluster(ctx, ske.ClusterRef{ProjectID: c.ProjectID, Region: c.Region, Name: c.Name})
	if ske.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("a forged token: %v; want 401", err)
	}
}

// TestAccSKEBadDays: the local SKE's faults and status lag answer as
// documented: a gateway's HTML page reaches the client as a transient 502
// without its body, a start it acted on can lose its answer, reads keep
// showing the status from before for the lag while a second start is
// refused (the API knows better than its reads).
func TestAccSKEBadDays(t *testing.T) {
	ctx := t.Context()
	c, api, client, ref := newSKECluster(t, "baddays")

	api.InjectFaults(c, fakeske.EndpointGetCluster, fakeske.Fault{Status: http.StatusBadGateway, HTML: true})
	_, err := client.GetCluster(ctx, ref)
	var apiErr *ske.APIError
	if !errors.As(err, &apiErr) || ske.StatusCode(err) != http.StatusBadGateway || !apiErr.Transient() || strings.Contains(err.Error(), "<html") {
		t.Fatalf("a gateway's HTML 502: %v; want a transient 502 without the page", err)
	}

	c.SetStatusLag(2 * time.Second)
	api.InjectFaults(c, fakeske.EndpointStartRotation, fakeske.Fault{Acted: true, Drop: true})
	if err := client.StartCredentialsRotation(ctx, ref); err == nil {
		t.Fatal("a start whose connection dropped answered success")
	}
	if starts, _ := c.Rotations(); starts != 1 {
		t.Fatalf("%d starts acted on; the API acts before the answer is lost", starts)
	}
	cl, err := client.GetCluster(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if p := cl.Status.CredentialsRotation.Phase; p != ske.PhaseNever {
		t.Errorf("a read inside the status lag shows phase %s; want NEVER, the status from before", p)
	}
	if err := client.StartCredentialsRotation(ctx, ref); ske.StatusCode(err) != http.StatusBadRequest {
		t.Errorf("a second start while the first prepares: %v; want 400", err)
	}
	waitPhase(t, client, ref, ske.PhasePrepared)
	if starts, _ := c.Rotations(); starts != 1 {
		t.Errorf("%d starts acted on; want 1", starts)
	}
}

// TestAccSKEAnswersAsTheAPIAndGardenerDo: start is accepted with 202; a
// cluster lists in its project; a hibernated cluster refuses start and
// complete with Gardener's message; errors and hibernation hold a roll,
// and status.errors shows them.
func TestAccSKEAnswersAsTheAPIAndGardenerDo(t *testing.T) {
	c, api, client, ref := newSKECluster(t, "gardener-1")
	c.SetPrepareDuration(500 * time.Millisecond)
	names, err := client.ListClusters(t.Context(), ske.ClusterRef{ProjectID: ref.ProjectID, Region: ref.Region})
	if err != nil || !strings.Contains(strings.Join(names, ","), ref.Name) {
		t.Fatalf("ListClusters = %v, %v; want %s listed", names, err, ref.Name)
	}
	c.Hibernate()
	if err := client.StartCredentialsRotation(t.Context(), ref); ske.StatusCode(err) != http.StatusBadRequest ||
		!strings.Contains(err.Error(), "operation 'rotate-credentials-start' is not permitted when shoot is hibernated or is waking up") {
		t.Fatalf("start on a hibernating cluster: %v; want Gardener's refusal", err)
	}
	c.WakeUp()
	time.Sleep(1500 * time.Millisecond)
	before := len(api.Requests())
	if err := client.StartCredentialsRotation(t.Context(), ref); err != nil {
		t.Fatal(err)
	}
	if r := api.Requests()[before]; r.Status != http.StatusAccepted {
		t.Errorf("start answered %d; the API answers 202", r.Status)
	}
	c.SetErrors(fakeske.ClusterError{Code: "SKE_UNREADY_NODES", Message: "Not all worker nodes are ready."},
		fakeske.ClusterError{Code: "SKE_NODE_MISCONFIGURED_PDB", Message: "drain blocked"})
	time.Sleep(2 * time.Second)
	cl, err := client.GetCluster(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if p := cl.Status.CredentialsRotation.Phase; p != ske.PhasePreparing || len(cl.Status.Errors) != 2 || cl.Status.Error == nil ||
		cl.Status.Error.Code != "SKE_UNREADY_NODES" || cl.Status.Aggregated != ske.StateUnhealthy {
		t.Fatalf("status %+v; want PREPARING held, STATE_UNHEALTHY, both errors and the deprecated error", cl.Status)
	}
	c.ClearErrors()
	waitPhase(t, client, ref, ske.PhasePrepared)
}
