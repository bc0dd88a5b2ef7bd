//go:build !unit

package lke_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"
	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

// rawRequest sends one request to the emulator and returns the answer with
// its body read.
//
// The answer is a rawResponse, not the *http.Response: rawRequest has read and
// closed the body, so callers get only what is still valid to look at.
func rawRequest(t *testing.T, token, method, path, body string) (*rawResponse, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, env.Emulator.URL+"/v4"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := env.Emulator.HTTPClient(false).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &rawResponse{StatusCode: resp.StatusCode, Header: resp.Header}, b
}

// rawResponse is the status and headers of an answer whose body rawRequest
// has already read.
type rawResponse struct {
	StatusCode int
	Header     http.Header
}

func TestAccRegenerateAnswersTheEmptyObjectTheAPIReferenceDocuments(t *testing.T) {
	c := env.Clusters()[1]
	resp, body := rawRequest(t, env.Emulator.Token, http.MethodPost, "/lke/clusters/"+itoa(c.ID)+"/regenerate", `{"kubeconfig":true}`)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "{}" {
		t.Fatalf("regenerate answered %d %s; want 200 {}", resp.StatusCode, body)
	}
	waitKubeconfigServed(t.Context(), t, newLinodeClient(t, env.Emulator.Token), c.ID)
}

func TestAccRateLimitsAnswer429WithTheRealHeaders(t *testing.T) {
	env.Emulator.SetRateLimits(fakelke.RateLimits{PerMinute: 4, CollectionPerMinute: 2})
	t.Cleanup(func() { env.Emulator.SetRateLimits(fakelke.RateLimits{}) })
	token := env.Emulator.ScopedToken(fakelke.ScopeLKEReadWrite)
	c := env.Clusters()[0]
	for i := 1; i <= 5; i++ {
		resp, body := rawRequest(t, token, http.MethodGet, "/lke/clusters/"+itoa(c.ID), "")
		h := resp.Header
		if h.Get("X-Ratelimit-Limit") != "4" {
			t.Fatalf("request %d: X-RateLimit-Limit %q; want 4", i, h.Get("X-Ratelimit-Limit"))
		}
		reset, err := strconv.ParseInt(h.Get("X-Ratelimit-Reset"), 10, 64)
		if err != nil || time.Unix(reset, 0).Before(time.Now().Add(-time.Second)) || time.Unix(reset, 0).After(time.Now().Add(61*time.Second)) {
			t.Fatalf("request %d: X-RateLimit-Reset %q is not the end of the current minute's window", i, h.Get("X-Ratelimit-Reset"))
		}
		if i <= 4 {
			if resp.StatusCode != http.StatusOK || h.Get("X-Ratelimit-Remaining") != itoa(4-i) {
				t.Fatalf("request %d: %d, remaining %q; want 200, %d", i, resp.StatusCode, h.Get("X-Ratelimit-Remaining"), 4-i)
			}
			continue
		}
		after, err := strconv.Atoi(h.Get("Retry-After"))
		if resp.StatusCode != http.StatusTooManyRequests || err != nil || after < 1 || after > 60 || h.Get("X-Ratelimit-Remaining") != "0" {
			t.Fatalf("request over the limit: %d, Retry-After %q, remaining %q, body %s; want 429 with Retry-After 1-60 and 0 remaining",
				resp.StatusCode, h.Get("Retry-After"), h.Get("X-Ratelimit-Remaining"), body)
		}
		if !strings.Contains(string(body), `"errors"`) {
			t.Errorf("429 body %s is not Linode's error envelope", body)
		}
	}
	// Paginated collections count against their own limit.
	for i := 1; i <= 3; i++ {
		resp, _ := rawRequest(t, token, http.MethodGet, "/lke/clusters/"+itoa(c.ID)+"/pools", "")
		want := http.StatusOK
		if i == 3 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want || resp.Header.Get("X-Ratelimit-Limit") != "2" {
			t.Fatalf("collection GET %d: %d with limit %q; want %d with limit 2", i, resp.StatusCode, resp.Header.Get("X-Ratelimit-Limit"), want)
		}
	}
	// Other tokens have their own windows.
	if resp, _ := rawRequest(t, env.Emulator.Token, http.MethodGet, "/lke/clusters/"+itoa(c.ID), ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("another token got %d", resp.StatusCode)
	}
}

func TestAccMaintenanceAnswers503WithTheMaintenanceHeader(t *testing.T) {
	c := env.Clusters()[0]
	env.Emulator.InjectClusterFaults(c.ID, fakelke.EndpointGetCluster, fakelke.Fault{Maintenance: true, RetryAfter: time.Second})
	resp, body := rawRequest(t, env.Emulator.Token, http.MethodGet, "/lke/clusters/"+itoa(c.ID), "")
	var envelope struct {
		Errors []struct{ Reason string } `json:"errors"`
	}
	_ = json.Unmarshal(body, &envelope)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Maintenance-Mode") == "" ||
		len(envelope.Errors) != 1 || !strings.Contains(envelope.Errors[0].Reason, "maintenance") {
		t.Fatalf("maintenance answered %d, X-Maintenance-Mode %q, body %s", resp.StatusCode, resp.Header.Get("X-Maintenance-Mode"), body)
	}

	// linodego, retries on, gives up at once: it does not retry maintenance.
	lc := newLinodeClient(t, env.Emulator.Token)
	lc.SetRetryCount(5)
	env.Emulator.StartMaintenance(2 * time.Second)
	before := env.Emulator.CountClusterRequests(c.ID, fakelke.EndpointGetCluster)
	_, err := lc.GetLKECluster(t.Context(), c.ID)
	if lerr := (*linodego.Error)(nil); !errors.As(err, &lerr) || lerr.Code != http.StatusServiceUnavailable {
		t.Fatalf("during maintenance: %v; want a 503 *linodego.Error", err)
	}
	if n := env.Emulator.CountClusterRequests(c.ID, fakelke.EndpointGetCluster) - before; n != 1 {
		t.Errorf("linodego sent %d requests during maintenance; want 1 (no retries)", n)
	}
	time.Sleep(2100 * time.Millisecond)
	if _, err := lc.GetLKECluster(t.Context(), c.ID); err != nil {
		t.Fatalf("after the maintenance: %v", err)
	}
}

func TestAccRecycleReplacesNodesOneAtATime(t *testing.T) {
	ctx := t.Context()
	c := env.Clusters()[1]
	c.SetRecycleDelay(800 * time.Millisecond)
	t.Cleanup(func() { c.SetRecycleDelay(0) })
	lc := newLinodeClient(t, env.Emulator.Token)
	admin, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	before := c.NodeNames()
	if err := lc.RecycleLKEClusterNodes(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	// Sample the pool as a client polling it would.
	seenNotReady, maxNotReady, cordoned := 0, 0, false
	var lastIDs string
	idSets := 0
	err = wait.PollUntilContextTimeout(ctx, 40*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		pools, err := lc.ListLKENodePools(ctx, c.ID, nil)
		if err != nil {
			return false, err
		}
		notReady, ids := 0, ""
		for _, n := range pools[0].Linodes {
			ids += n.ID + ","
			if n.Status != linodego.LKELinodeReady {
				notReady++
			}
		}
		if ids != lastIDs {
			idSets++
			lastIDs = ids
		}
		maxNotReady = max(maxNotReady, notReady)
		if notReady > 0 {
			seenNotReady++
		}
		for _, name := range before {
			if n, err := admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err == nil && n.Spec.Unschedulable {
				cordoned = true
			}
		}
		nodes, err := admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, n := range nodes.Items {
			for _, old := range before {
				if n.Name == old || !nodeReady(&n) {
					return false, nil
				}
			}
		}
		return notReady == 0 && len(nodes.Items) == len(before), nil
	})
	if err != nil {
		t.Fatalf("nodes were not all replaced: %v (before %v, now %v)", err, before, c.NodeNames())
	}
	if maxNotReady != 1 {
		t.Errorf("up to %d pool nodes were not_ready at once; a rolling recycle replaces one at a time", maxNotReady)
	}
	// The pool's node ids changed once per node: 3 replacements, 4 id sets.
	if idSets != len(before)+1 {
		t.Errorf("saw %d different sets of pool node ids; want %d (one node replaced at a time)", idSets, len(before)+1)
	}
	if !cordoned {
		t.Error("no old node was seen cordoned before it was replaced")
	}
	if seenNotReady == 0 {
		t.Error("never saw a not_ready node")
	}
}

func TestAccControlPlaneRestartCutsRequestsInFlight(t *testing.T) {
	ctx := t.Context()
	c := env.Clusters()[1]
	lc := newLinodeClient(t, env.Emulator.Token)
	waitKubeconfigServed(ctx, t, lc, c.ID)
	cs := clientsetFor(t, servedKubeconfig(ctx, t, lc, c.ID))
	w, err := cs.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := lc.RegenerateLKECluster(ctx, c.ID, linodego.LKEClusterRegenerateOptions{ServiceToken: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case _, open := <-w.ResultChan():
		for open {
			_, open = <-w.ResultChan()
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a watch in flight survived the control plane's restart")
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err == nil {
		t.Error("the API endpoint answered during the outage")
	}
	waitKubeconfigServed(ctx, t, lc, c.ID)
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatal("the API endpoint did not come back after the outage")
	}
}

func TestAccTokenRequestsAreCappedAtTheMaxTokenExpiration(t *testing.T) {
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(env.Clusters()[0].AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	seconds := int64((48 * time.Hour).Seconds())
	tr, err := admin.CoreV1().ServiceAccounts("kube-system").CreateToken(ctx, fakelke.AdminServiceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := time.Until(tr.Status.ExpirationTimestamp.Time)
	if got > fakelke.DefaultMaxTokenExpiration || got < fakelke.DefaultMaxTokenExpiration-time.Minute {
		t.Fatalf("a 48h token expires in %s; want the cap, %s", got.Round(time.Second), fakelke.DefaultMaxTokenExpiration)
	}
}

func TestAccClusterWithoutCSRSigningNeverIssuesCertificates(t *testing.T) {
	ctx := t.Context()
	c, err := env.AddCluster(ctx, fakelke.ClusterSpec{NoCSRSigning: true, Pools: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.DeleteCluster(c.ID) })
	admin, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	csrs := admin.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "no-signer-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: testCSR(t), SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test"})
	if _, err := csrs.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	got, err := csrs.Get(ctx, csr.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Certificate) != 0 {
		t.Fatal("an approved request was signed on a cluster without a signer")
	}
	// The same request on a cluster with a signer is signed: the test
	// above could fail.
	signed := env.Clusters()[0]
	other, err := kubernetes.NewForConfig(signed.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	csr2, err := other.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "with-signer-"},
		Spec:       csr.Spec,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = other.CertificatesV1().CertificateSigningRequests().Delete(context.WithoutCancel(ctx), csr2.Name, metav1.DeleteOptions{})
	}()
	csr2.Status.Conditions = csr.Status.Conditions
	if _, err := other.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr2.Name, csr2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := other.CertificatesV1().CertificateSigningRequests().Get(ctx, csr2.Name, metav1.GetOptions{})
		return err == nil && bytes.Contains(got.Status.Certificate, []byte("CERTIFICATE")), nil
	})
	if err != nil {
		t.Fatal("the cluster with a signer did not sign the same request")
	}
}

func testCSR(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := certutil.MakeCSR(key, &pkix.Name{CommonName: "someone"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// Each operation can have a limit of its own besides the general one; its
// headers are reported when it is the tighter, and another operation is
// not held by it.
func TestAccPerOperationRateLimitAnswers429ForThatOperationOnly(t *testing.T) {
	token := env.Emulator.ScopedToken(fakelke.ScopeLKEReadWrite)
	env.Emulator.SetTokenRateLimits(token, fakelke.RateLimits{PerOperation: 2})
	c := env.Clusters()[0]
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		resp, _ := rawRequest(t, token, http.MethodGet, "/lke/clusters/"+itoa(c.ID)+"/kubeconfig", "")
		if resp.StatusCode != want || resp.Header.Get("X-Ratelimit-Limit") != "2" {
			t.Fatalf("kubeconfig GET %d: %d with limit %q; want %d with limit 2", i+1, resp.StatusCode, resp.Header.Get("X-Ratelimit-Limit"), want)
		}
	}
	if resp, _ := rawRequest(t, token, http.MethodGet, "/lke/clusters/"+itoa(c.ID), ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("another operation answered %d; the kubeconfig's limit must not hold it", resp.StatusCode)
	}
}

// A fault with For answers every request for its span, then the queue moves
// on; a body fault answers JSON without Linode's error list.
func TestAccFaultsInTimeAndBodiesWithoutTheErrorList(t *testing.T) {
	c := env.Clusters()[0]
	t.Cleanup(func() { env.Emulator.ClearClusterFaults(c.ID) })
	env.Emulator.InjectClusterFaults(c.ID, fakelke.EndpointGetCluster,
		fakelke.Fault{Status: http.StatusBadGateway, HTML: true, For: 300 * time.Millisecond},
		fakelke.Fault{Status: http.StatusInternalServerError, Body: "{}"})
	path := "/lke/clusters/" + itoa(c.ID)
	start := time.Now()
	for n := 0; time.Since(start) < 250*time.Millisecond; n++ {
		if resp, _ := rawRequest(t, env.Emulator.Token, http.MethodGet, path, ""); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("request %d within the span: %d; want the 502 page", n, resp.StatusCode)
		}
	}
	time.Sleep(100 * time.Millisecond)
	resp, body := rawRequest(t, env.Emulator.Token, http.MethodGet, path, "")
	if resp.StatusCode != http.StatusInternalServerError || string(body) != "{}" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("after the span: %d %q (%s); want 500 {} as JSON", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	if resp, _ := rawRequest(t, env.Emulator.Token, http.MethodGet, path, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the faults: %d; want the cluster", resp.StatusCode)
	}
}
