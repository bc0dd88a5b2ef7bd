//go:build !unit

package lke_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/linode/linodego"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"
	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

// newLinodeClient is a linodego client for the emulator as a user would
// configure one (LINODE_URL, LINODE_CA, LINODE_TOKEN), with retries off so
// that tests see each answer.
func newLinodeClient(t *testing.T, token string) *linodego.Client {
	t.Helper()
	c := linodego.NewClient(env.Emulator.HTTPClient(false))
	c.SetBaseURL(env.Emulator.URL)
	c.SetAPIVersion("v4beta")
	c.SetToken(token)
	c.SetRetryCount(0)
	return &c
}

func clientsetFor(t *testing.T, kubeconfig []byte) kubernetes.Interface {
	t.Helper()
	cs, err := fakecloud.Clientset(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func servedKubeconfig(ctx context.Context, t *testing.T, lc *linodego.Client, id int) []byte {
	t.Helper()
	kc, err := lc.GetLKEClusterKubeconfig(ctx, id)
	if err != nil {
		t.Fatalf("GET kubeconfig of cluster %d: %v", id, err)
	}
	b, err := base64.StdEncoding.DecodeString(kc.KubeConfig)
	if err != nil {
		t.Fatalf("kubeconfig is not base64: %v", err)
	}
	return b
}

func TestAccListAndGetClusters(t *testing.T) {
	ctx := t.Context()
	lc := newLinodeClient(t, env.Emulator.Token)
	clusters, err := lc.ListLKEClusters(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(clusters) != len(env.Clusters()) {
		t.Fatalf("listed %d clusters, environment has %d", len(clusters), len(env.Clusters()))
	}
	for i, c := range env.Clusters() {
		if clusters[i].ID != c.ID || clusters[i].Status != linodego.LKEClusterReady {
			t.Errorf("cluster %d listed as %+v", c.ID, clusters[i])
		}
		got, err := lc.GetLKECluster(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Label != c.Label || got.Created == nil || got.K8sVersion == "" {
			t.Errorf("GET cluster %d = %+v", c.ID, got)
		}
	}
}

func TestAccServedKubeconfigReachesTheClusterAsLKEAdmin(t *testing.T) {
	ctx := t.Context()
	c := env.Clusters()[0]
	lc := newLinodeClient(t, env.Emulator.Token)
	kc := servedKubeconfig(ctx, t, lc, c.ID)

	raw, err := clientcmd.Load(kc)
	if err != nil {
		t.Fatal(err)
	}
	name := "lke" + itoa(c.ID)
	if raw.CurrentContext != name+"-ctx" || raw.Contexts[name+"-ctx"] == nil ||
		raw.Contexts[name+"-ctx"].AuthInfo != name+"-admin" || raw.Contexts[name+"-ctx"].Namespace != "default" ||
		raw.Clusters[name] == nil || raw.AuthInfos[name+"-admin"] == nil || raw.AuthInfos[name+"-admin"].Token == "" {
		t.Fatalf("kubeconfig does not have LKE's shape:\n%s", redact(kc))
	}
	cs := clientsetFor(t, kc)
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list nodes with the served kubeconfig: %v", err)
	}
	if len(nodes.Items) != len(c.NodeNames()) {
		t.Fatalf("%d nodes, want %d", len(nodes.Items), len(c.NodeNames()))
	}
	for _, n := range nodes.Items {
		if !nodeReady(&n) {
			t.Errorf("node %s is not Ready", n.Name)
		}
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if review.Status.UserInfo.Username != "system:serviceaccount:kube-system:lke-admin" {
		t.Errorf("served kubeconfig authenticates as %q", review.Status.UserInfo.Username)
	}
}

func TestAccKubeSystemHoldsLKEServiceAccountTokens(t *testing.T) {
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(env.Clusters()[0].AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := admin.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	bySA := map[string]int{}
	for _, s := range secrets.Items {
		if len(s.Data["token"]) < 800 {
			t.Errorf("secret %s holds a %d-byte token; the token controller should have filled it", s.Name, len(s.Data["token"]))
		}
		bySA[s.Annotations[corev1.ServiceAccountNameKey]]++
	}
	for _, sa := range append([]string{fakelke.AdminServiceAccount}, fakelke.ControlPlaneServiceAccounts...) {
		if bySA[sa] != 1 {
			t.Errorf("service account %s has %d token secrets, want 1", sa, bySA[sa])
		}
	}
}

func TestAccRegenerateReplacesTheAdminToken(t *testing.T) {
	ctx := t.Context()
	c := env.Clusters()[1]
	lc := newLinodeClient(t, env.Emulator.Token)
	oldKC := servedKubeconfig(ctx, t, lc, c.ID)
	oldClient := clientsetFor(t, oldKC)
	if _, err := oldClient.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("old kubeconfig should work before the rotation: %v", err)
	}

	c.SetKubeconfigDelay(1500 * time.Millisecond)
	defer c.SetKubeconfigDelay(0)
	c.SetStaleWindow(500 * time.Millisecond)
	defer c.SetStaleWindow(0)
	start := time.Now()
	if _, err := lc.RegenerateLKECluster(ctx, c.ID, linodego.LKEClusterRegenerateOptions{KubeConfig: true}); err != nil {
		t.Fatal(err)
	}
	// First the stale window: the kubeconfig from before is still served.
	if stale := servedKubeconfig(ctx, t, lc, c.ID); string(stale) != string(oldKC) {
		t.Fatalf("right after regenerate, within the stale window, GET kubeconfig served a new kubeconfig")
	}
	time.Sleep(time.Until(start.Add(600 * time.Millisecond)))
	_, err := lc.GetLKEClusterKubeconfig(ctx, c.ID)
	var lerr *linodego.Error
	if !errors.As(err, &lerr) || lerr.Code != http.StatusServiceUnavailable || lerr.Message != "Cluster kubeconfig is not yet available. Please try again later." {
		t.Fatalf("after the stale window, GET kubeconfig = %v; want the 503 'not yet available'", err)
	}
	var newKC []byte
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		kc, err := lc.GetLKEClusterKubeconfig(ctx, c.ID)
		if linodego.ErrHasStatus(err, http.StatusServiceUnavailable) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		newKC, err = base64.StdEncoding.DecodeString(kc.KubeConfig)
		return true, err
	})
	if err != nil {
		t.Fatalf("new kubeconfig never served: %v", err)
	}
	if waited := time.Since(start); waited < 2000*time.Millisecond {
		t.Errorf("kubeconfig served after %s, before the 0.5s stale window and the 1.5s delay", waited)
	}
	if string(newKC) == string(oldKC) {
		t.Fatal("regenerate served the same kubeconfig")
	}
	if _, err := clientsetFor(t, newKC).CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("new kubeconfig is rejected: %v", err)
	}
	// The API server caches token authentication for 10 s.
	rejectedAfter := time.Now()
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := oldClient.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return apierrors.IsUnauthorized(err), nil
	})
	if err != nil {
		t.Fatalf("old token still accepted 15s after the rotation")
	}
	t.Logf("old token rejected %s after the new kubeconfig was served", time.Since(rejectedAfter).Round(100*time.Millisecond))
}

func TestAccRegenerateServiceTokenReplacesControlPlaneTokens(t *testing.T) {
	ctx := t.Context()
	c := env.Clusters()[1]
	admin, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	before := tokenSecretNames(ctx, t, admin)
	lc := newLinodeClient(t, env.Emulator.Token)
	if err := lc.DeleteLKEClusterServiceToken(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	waitKubeconfigServed(ctx, t, lc, c.ID)
	after := tokenSecretNames(ctx, t, admin)
	for _, sa := range fakelke.ControlPlaneServiceAccounts {
		if before[sa] == after[sa] || after[sa] == "" {
			t.Errorf("%s token secret: before %q, after %q; want a new one", sa, before[sa], after[sa])
		}
	}
	if before[fakelke.AdminServiceAccount] != after[fakelke.AdminServiceAccount] {
		t.Errorf("regenerating the service token replaced the lke-admin secret too")
	}
}

func TestAccRegenerateWithNothingToDoIsRejected(t *testing.T) {
	lc := newLinodeClient(t, env.Emulator.Token)
	_, err := lc.RegenerateLKECluster(t.Context(), env.Clusters()[0].ID, linodego.LKEClusterRegenerateOptions{})
	var lerr *linodego.Error
	if !errors.As(err, &lerr) || lerr.Code != http.StatusBadRequest {
		t.Fatalf("regenerate with both false = %v; want 400", err)
	}
	if want := "[kubeconfig] At least one of kubeconfig or servicetoken must be true.; [servicetoken] At least one of kubeconfig or servicetoken must be true."; lerr.Message != want {
		t.Fatalf("400 message %q, want field errors %q", lerr.Message, want)
	}
}

func TestAccWrongTokenAndUnknownClusterDecodeAsLinodeErrors(t *testing.T) {
	ctx := t.Context()
	_, err := newLinodeClient(t, "not-the-token").GetLKECluster(ctx, env.Clusters()[0].ID)
	var lerr *linodego.Error
	if !errors.As(err, &lerr) || lerr.Code != http.StatusUnauthorized || lerr.Message != "Invalid Token" {
		t.Errorf("wrong token: %v; want 401 Invalid Token", err)
	}
	_, err = newLinodeClient(t, "").ListLKEClusters(ctx, nil)
	if !linodego.ErrHasStatus(err, http.StatusUnauthorized) {
		t.Errorf("no token: %v; want 401", err)
	}
	_, err = newLinodeClient(t, env.Emulator.Token).GetLKECluster(ctx, 999)
	if !errors.As(err, &lerr) || lerr.Code != http.StatusNotFound || lerr.Message != "Not found" {
		t.Errorf("unknown cluster: %v; want 404 Not found", err)
	}
}

// A gateway's HTML error pages reach linodego as they do from the real
// API's gateway: a linodego.Error value (not a pointer), which
// linodego.ErrHasStatus does not see.
func TestAccGatewayHTMLPagesDecodeAsLinodegoErrorValues(t *testing.T) {
	ctx := t.Context()
	id := env.Clusters()[0].ID
	lc := newLinodeClient(t, env.Emulator.Token)
	for _, status := range []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		env.Emulator.InjectClusterFaults(id, fakelke.EndpointGetCluster, fakelke.Fault{Status: status, HTML: true})
		_, err := lc.GetLKECluster(ctx, id)
		var value linodego.Error
		var pointer *linodego.Error
		if errors.As(err, &pointer) || !errors.As(err, &value) || value.Code != status {
			t.Errorf("HTML %d: got %T %v; want a linodego.Error value with code %d", status, err, err, status)
		}
		if status == http.StatusBadGateway && value.Message != "Bad Gateway" {
			t.Errorf("HTML 502: message %q; linodego answers a text/html 502 with \"Bad Gateway\"", value.Message)
		}
	}
}

// Tokens limited to OAuth scopes are refused as the Linode API refuses them.
func TestAccScopedTokensAreRefusedWhatTheirScopesDoNotAllow(t *testing.T) {
	ctx := t.Context()
	id := env.Clusters()[0].ID
	notAuthorized := func(err error) bool {
		var lerr *linodego.Error
		return errors.As(err, &lerr) && lerr.Code == http.StatusUnauthorized && lerr.Message == "Your OAuth token is not authorized to use this endpoint."
	}
	readOnly := newLinodeClient(t, env.Emulator.ScopedToken(fakelke.ScopeLKEReadOnly))
	if _, err := readOnly.GetLKECluster(ctx, id); err != nil {
		t.Errorf("lke:read_only: reading the cluster: %v", err)
	}
	if _, err := readOnly.RegenerateLKECluster(ctx, id, linodego.LKEClusterRegenerateOptions{KubeConfig: true}); !notAuthorized(err) {
		t.Errorf("lke:read_only: regenerate answered %v; want 401 not authorized to use this endpoint", err)
	}
	// The API reference gives GET /kubeconfig the scope lke:read_write.
	if _, err := readOnly.GetLKEClusterKubeconfig(ctx, id); !notAuthorized(err) {
		t.Errorf("lke:read_only: reading the kubeconfig answered %v; want 401 not authorized to use this endpoint", err)
	}
	none := newLinodeClient(t, env.Emulator.ScopedToken("linodes:read_only"))
	if _, err := none.GetLKECluster(ctx, id); !notAuthorized(err) {
		t.Errorf("no LKE scope: reading answered %v; want 401 not authorized to use this endpoint", err)
	}
}

// Every answer carries the token's scopes and the endpoint's, as the API's
// response headers do (X-OAuth-Scopes "*" for a token with every scope).
func TestAccAnswersCarryTheOAuthScopeHeaders(t *testing.T) {
	id := env.Clusters()[0].ID
	for _, c := range []struct {
		token, path, scopes, accepted string
	}{
		{env.Emulator.Token, fmt.Sprintf("/v4/lke/clusters/%d", id), "*", "lke:read_only"},
		{env.Emulator.ScopedToken(fakelke.ScopeLKEReadOnly), fmt.Sprintf("/v4/lke/clusters/%d/kubeconfig", id), "lke:read_only", "lke:read_write"},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, env.Emulator.URL+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := env.Emulator.HTTPClient(false).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-OAuth-Scopes"); got != c.scopes {
			t.Errorf("%s: X-OAuth-Scopes %q; want %q", c.path, got, c.scopes)
		}
		if got := resp.Header.Get("X-Accepted-OAuth-Scopes"); got != c.accepted {
			t.Errorf("%s: X-Accepted-OAuth-Scopes %q; want %q", c.path, got, c.accepted)
		}
	}
}

func TestAccFaultSequencesAreReplayedInOrder(t *testing.T) {
	ctx := t.Context()
	id := env.Clusters()[0].ID
	env.Emulator.ResetRequests()
	env.Emulator.InjectFaults(fakelke.EndpointGetCluster,
		fakelke.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second},
		fakelke.Fault{Status: http.StatusInternalServerError},
		fakelke.Fault{Drop: true},
		fakelke.Fault{Status: http.StatusBadGateway},
	)
	lc := newLinodeClient(t, env.Emulator.Token)
	want := []int{429, 500, 0, 502, 200}
	for i, status := range want {
		_, err := lc.GetLKECluster(ctx, id)
		switch {
		case status == 200 && err != nil:
			t.Errorf("call %d: %v; want success once the faults are used up", i, err)
		case status == 0 && err == nil:
			t.Errorf("call %d succeeded; want a dropped connection", i)
		case status != 0 && status != 200 && !linodego.ErrHasStatus(err, status):
			t.Errorf("call %d: %v; want %d", i, err, status)
		}
	}
	log := env.Emulator.Requests()
	if len(log) != len(want) {
		t.Fatalf("emulator logged %d requests, want %d", len(log), len(want))
	}
	for i, r := range log {
		if r.Endpoint != fakelke.EndpointGetCluster || r.Status != want[i] {
			t.Errorf("request %d logged as %s %d, want %s %d", i, r.Endpoint, r.Status, fakelke.EndpointGetCluster, want[i])
		}
	}
}

func TestAccLinodegoRetriesHonourRetryAfter(t *testing.T) {
	ctx := t.Context()
	lc := newLinodeClient(t, env.Emulator.Token)
	lc.SetRetryCount(3)
	env.Emulator.InjectFaults(fakelke.EndpointGetCluster, fakelke.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second})
	start := time.Now()
	if _, err := lc.GetLKECluster(ctx, env.Clusters()[0].ID); err != nil {
		t.Fatalf("linodego should retry a 429: %v", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %s, before Retry-After: 1", waited)
	}
}

func TestAccHangingRequestTimesOutAndTheNextSucceeds(t *testing.T) {
	ctx := t.Context()
	id := env.Clusters()[0].ID
	env.Emulator.InjectFaults(fakelke.EndpointListPools, fakelke.Fault{Hang: true})
	lc := newLinodeClient(t, env.Emulator.Token)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := lc.ListLKENodePools(short, id, nil); err == nil {
		t.Fatal("a hanging request returned")
	}
	if _, err := lc.ListLKENodePools(ctx, id, nil); err != nil {
		t.Fatalf("after the hang: %v", err)
	}
}

func TestAccRecycleReplacesNodesWithNewReadyOnes(t *testing.T) {
	ctx := t.Context()
	c := env.Clusters()[0]
	c.SetRecycleDelay(500 * time.Millisecond)
	lc := newLinodeClient(t, env.Emulator.Token)
	before := c.NodeNames()
	if err := lc.RecycleLKEClusterNodes(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	pools, err := lc.ListLKENodePools(ctx, c.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pools[0].Linodes[0].Status != linodego.LKELinodeNotReady {
		t.Errorf("right after recycle, node status %q; want not_ready", pools[0].Linodes[0].Status)
	}
	admin, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		nodes, err := admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil || len(nodes.Items) != len(before) {
			return false, nil //nolint:nilerr // the API may fail while nodes are recycled: keep polling
		}
		for _, n := range nodes.Items {
			for _, old := range before {
				if n.Name == old || !nodeReady(&n) {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("nodes were not replaced by new Ready ones: before %v, now %v", before, c.NodeNames())
	}
	pools, err = lc.ListLKENodePools(ctx, c.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range pools[0].Linodes {
		if n.Status != linodego.LKELinodeReady {
			t.Errorf("pool node %s is %s after recycling", n.ID, n.Status)
		}
	}
}

func TestAccClustersDoNotAcceptEachOthersTokens(t *testing.T) {
	ctx := t.Context()
	clusters := env.Clusters()
	lc := newLinodeClient(t, env.Emulator.Token)
	kcA := servedKubeconfig(ctx, t, lc, clusters[0].ID)
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kcA)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = clusters[1].Host()
	cfg.CAData = clusters[1].CACertificate()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Fatalf("cluster %d's token on cluster %d: %v; want 401", clusters[0].ID, clusters[1].ID, err)
	}
}

func TestAccAPIEndpointsNameTheAPIServer(t *testing.T) {
	lc := newLinodeClient(t, env.Emulator.Token)
	c := env.Clusters()[0]
	eps, err := lc.ListLKEClusterAPIEndpoints(t.Context(), c.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 || eps[0].Endpoint != c.Host() {
		t.Fatalf("api-endpoints = %+v, want %s", eps, c.Host())
	}
}

func waitKubeconfigServed(ctx context.Context, t *testing.T, lc *linodego.Client, id int) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := lc.GetLKEClusterKubeconfig(ctx, id)
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("kubeconfig of cluster %d never served again", id)
	}
}

func tokenSecretNames(ctx context.Context, t *testing.T, cs kubernetes.Interface) map[string]string {
	t.Helper()
	list, err := cs.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range list.Items {
		out[s.Annotations[corev1.ServiceAccountNameKey]] = s.Name
	}
	return out
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
