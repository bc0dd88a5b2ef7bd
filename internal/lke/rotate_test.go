package lke

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linode/linodego"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// fakeLKE is one LKE cluster for Runner.Rotate, as a unit test can have
// it: the Linode API's LKE endpoints, and a Kubernetes API (client-go's
// fakes over one object store) whose credentials are legacy tokens that
// stop working when their secret is deleted, as kube-apiserver's do.
type fakeLKE struct {
	t  *testing.T
	mu sync.Mutex

	scheme *runtime.Scheme
	core   *fake.Clientset                  // the store of nodes and pods
	meta   *metadatafake.FakeMetadataClient // the store of secrets (metadata only)
	log    []string                         // Linode calls, in order

	saMu sync.Mutex
	sa   map[string]string // token → namespace/name of its secret
	next int               // names new secrets and tokens

	served       string // token of the kubeconfig the Linode API serves
	previous     string // the one it served before the last regeneration
	notReady     int    // GETs of the kubeconfig answered 503 after a regeneration
	staleFor     int    // GETs that still serve the old kubeconfig after a regeneration, before the 503s
	reuseAdmin   bool   // a regeneration keeps serving the lke-admin secret's token while it exists
	pendingRegen bool   // reuseAdmin: a new token is due once the old secret is gone
	regenerates  int
	recycles     int
	failRegen    int // regenerations answered 500 without acting
	loseRegen    bool
}

var controlPlaneAccounts = []string{"ccm-user", "cluster-autoscaler-user", "kubernetes-dashboard-lke-user"}

func newFakeLKE(t *testing.T, namespaces ...string) *fakeLKE {
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	f := &fakeLKE{t: t, scheme: scheme, meta: metadatafake.NewSimpleMetadataClient(scheme), sa: map[string]string{}}
	f.core = fake.NewClientset(f.node("node-1"), f.node("node-2"))
	f.served = f.newTokenSecret("kube-system", adminServiceAccount)
	for _, sa := range controlPlaneAccounts {
		f.newTokenSecret("kube-system", sa)
	}
	for _, ns := range namespaces {
		f.newTokenSecret(ns, "ci")
	}
	return f
}

func (f *fakeLKE) node(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
}

// newTokenSecret stores a legacy token secret for a service account, as the
// token controller fills it, and returns its token. f.mu need not be held.
func (f *fakeLKE) newTokenSecret(ns, sa string) string {
	f.next++
	name := fmt.Sprintf("%s-token-%05d", sa, f.next)
	obj := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(fmt.Sprintf("uid-%d", f.next)),
			Annotations: map[string]string{corev1.ServiceAccountNameKey: sa}},
	}
	if err := f.meta.Tracker().Add(obj); err != nil {
		f.t.Fatal(err)
	}
	token := fakeJWT(fmt.Sprintf(`{"kubernetes.io/serviceaccount/namespace":%q,"kubernetes.io/serviceaccount/secret.name":%q,"n":%d}`, ns, name, f.next))
	f.sa[token] = ns + "/" + name
	return token
}

// secrets lists namespace/name of the secrets there are now.
func (f *fakeLKE) secrets() []string {
	list, err := f.meta.Resource(secretsResource).Namespace(metav1.NamespaceAll).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, m := range list.Items {
		out = append(out, m.Namespace+"/"+m.Name)
	}
	slices.Sort(out)
	return out
}

// works tells whether the API server would accept a token now.
func (f *fakeLKE) works(token string) bool {
	f.saMu.Lock()
	id, ok := f.sa[token]
	f.saMu.Unlock()
	if !ok {
		return false
	}
	if account, bound := strings.CutPrefix(id, "account:"); bound {
		// A TokenRequest token: it works while its account exists.
		ns, name, _ := strings.Cut(account, "/")
		_, err := f.core.Tracker().Get(corev1.SchemeGroupVersion.WithResource("serviceaccounts"), ns, name)
		return err == nil
	}
	ns, name, _ := strings.Cut(id, "/")
	_, err := f.meta.Tracker().Get(secretsResource, ns, name)
	return err == nil
}

// accountReactors give the clients what kube-apiserver and the token
// controller do with service accounts: a generated name, a UID, tokens that
// die with their account (legacy token secrets are deleted with it), and an
// authorizer that allows everything.
func (f *fakeLKE) accountReactors(core *fake.Clientset) {
	core.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		create := a.(k8stesting.CreateAction)
		if create.GetSubresource() == "token" {
			f.saMu.Lock()
			defer f.saMu.Unlock()
			f.next++
			token := fakeJWT(fmt.Sprintf(`{"sub":"system:serviceaccount:%s:%s","n":%d}`, a.GetNamespace(), create.(k8stesting.CreateActionImpl).Name, f.next))
			f.sa[token] = "account:" + a.GetNamespace() + "/" + create.(k8stesting.CreateActionImpl).Name
			return true, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{Token: token}}, nil
		}
		sa := create.GetObject().(*corev1.ServiceAccount)
		f.saMu.Lock()
		f.next++
		if sa.Name == "" && sa.GenerateName != "" {
			sa.Name = fmt.Sprintf("%s%05d", sa.GenerateName, f.next)
		}
		sa.UID = types.UID(fmt.Sprintf("sa-uid-%d", f.next))
		f.saMu.Unlock()
		return false, nil, nil
	})
	core.PrependReactor("delete", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		name := a.(k8stesting.DeleteAction).GetName()
		list, err := f.meta.Resource(secretsResource).Namespace(a.GetNamespace()).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return true, nil, err
		}
		for _, m := range list.Items {
			if m.Annotations[corev1.ServiceAccountNameKey] == name {
				_ = f.meta.Tracker().Delete(secretsResource, m.Namespace, m.Name)
			}
		}
		return false, nil, nil
	})
	core.PrependReactor("create", "selfsubjectaccessreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &authorizationv1.SelfSubjectAccessReview{Status: authorizationv1.SubjectAccessReviewStatus{Allowed: true}}, nil
	})
}

func (f *fakeLKE) kubeconfig(token string) []byte { return testKubeconfig(token) }

// testKubeconfig is a kubeconfig as LKE serves it, with the given token.
func testKubeconfig(token string) []byte {
	return []byte(`apiVersion: v1
kind: Config
clusters: [{name: lke1, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: lke1-admin, user: {token: "` + token + `"}}]
contexts: [{name: lke1-ctx, context: {cluster: lke1, user: lke1-admin, namespace: default}}]
current-context: lke1-ctx
`)
}

// connect gives the clients a kubeconfig's token reaches the cluster with:
// every request of a token whose secret is gone is answered 401.
func (f *fakeLKE) connect(raw []byte) (*kube.Clients, error) {
	token := kube.TokenOf(raw)
	unauthorized := func(k8stesting.Action) (bool, runtime.Object, error) {
		if f.works(token) {
			return false, nil, nil
		}
		return true, nil, apierrors.NewUnauthorized("Unauthorized")
	}
	core := fake.NewClientset()
	core.PrependReactor("*", "*", k8stesting.ObjectReaction(f.core.Tracker()))
	core.PrependReactor("create", "selfsubjectreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &authenticationv1.SelfSubjectReview{}, nil
	})
	f.accountReactors(core)
	core.PrependReactor("*", "*", unauthorized)
	meta := metadatafake.NewSimpleMetadataClient(f.scheme)
	meta.PrependReactor("*", "*", k8stesting.ObjectReaction(f.meta.Tracker()))
	meta.PrependReactor("*", "*", unauthorized)
	return &kube.Clients{Core: core, Meta: meta}, nil
}

// The Linode API.

func (f *fakeLKE) GetLKECluster(_ context.Context, id int) (*linodego.LKECluster, error) {
	f.record("get cluster")
	return &linodego.LKECluster{ID: id, Label: "fake", K8sVersion: "1.37"}, nil
}

func (f *fakeLKE) GetLKEClusterKubeconfig(context.Context, int) (*linodego.LKEClusterKubeconfig, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "get kubeconfig")
	switch {
	case f.staleFor > 0:
		f.staleFor--
		return &linodego.LKEClusterKubeconfig{KubeConfig: base64.StdEncoding.EncodeToString(f.kubeconfig(f.previous))}, nil
	case f.notReady > 0:
		f.notReady--
		return nil, &linodego.Error{Code: http.StatusServiceUnavailable, Message: "Cluster kubeconfig is not yet available. Please try again later."}
	case f.pendingRegen && !f.works(f.served):
		// LKE makes a new admin token only once the old secret is gone.
		f.served, f.pendingRegen = f.newTokenSecret("kube-system", adminServiceAccount), false
	}
	return &linodego.LKEClusterKubeconfig{KubeConfig: base64.StdEncoding.EncodeToString(f.kubeconfig(f.served))}, nil
}

func (f *fakeLKE) RegenerateLKECluster(_ context.Context, _ int, opts linodego.LKEClusterRegenerateOptions) (*linodego.LKECluster, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !opts.KubeConfig && !opts.ServiceToken {
		// The write-scope probe: a token that may write gets 400.
		return nil, &linodego.Error{Code: http.StatusBadRequest, Message: "At least one of kubeconfig or servicetoken must be true"}
	}
	f.log = append(f.log, fmt.Sprintf("regenerate kubeconfig=%t servicetoken=%t", opts.KubeConfig, opts.ServiceToken))
	if f.failRegen > 0 {
		f.failRegen--
		return nil, &linodego.Error{Code: http.StatusInternalServerError, Message: "Internal Server Error"}
	}
	f.regenerates++
	f.previous = f.served
	if opts.ServiceToken {
		for _, sa := range controlPlaneAccounts {
			f.newTokenSecret("kube-system", sa)
		}
	}
	if opts.KubeConfig {
		if f.reuseAdmin && f.works(f.served) {
			f.pendingRegen = true
		} else {
			f.served = f.newTokenSecret("kube-system", adminServiceAccount)
		}
	}
	if f.loseRegen {
		f.loseRegen = false
		return nil, &linodego.Error{Code: http.StatusBadGateway, Message: "Bad Gateway"}
	}
	return &linodego.LKECluster{}, nil
}

func (f *fakeLKE) ListLKENodePools(context.Context, int, *linodego.ListOptions) ([]linodego.LKENodePool, error) {
	nodes, err := f.core.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	pool := linodego.LKENodePool{ID: 1}
	for _, n := range nodes.Items {
		pool.Linodes = append(pool.Linodes, linodego.LKENodePoolLinode{ID: n.Name, Status: linodego.LKELinodeReady})
	}
	return []linodego.LKENodePool{pool}, nil
}

func (f *fakeLKE) RecycleLKEClusterNodes(ctx context.Context, _ int) error {
	f.record("recycle")
	f.mu.Lock()
	f.recycles++
	f.mu.Unlock()
	nodes, err := f.core.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, n := range nodes.Items {
		if err := f.core.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("nodes"), "", n.Name); err != nil {
			return err
		}
		if err := f.core.Tracker().Add(f.node(n.Name + "-new")); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeLKE) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, call)
}

func (f *fakeLKE) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.log {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// runner drives f. Its clock is the real one: the waits it bounds
// (TokenWait, polls) are real timers of a few milliseconds here.
func (f *fakeLKE) runner() *Runner {
	// The fake API server caches no authentication.
	return &Runner{Linode: f, Poll: f, Connect: f.connect, Clock: clock.RealClock{}, AuthCacheTTL: time.Nanosecond}
}

func fastOptions(o Options) Options {
	o.ClusterID = 1
	o.KubeconfigPoll = KubeconfigPoll{Initial: time.Millisecond, Max: 2 * time.Millisecond, FastFor: time.Second, Slow: 2 * time.Millisecond}
	o.ActSettle = 20 * time.Millisecond
	o.TokenWait = 50 * time.Millisecond
	o.NodePollMax = 5 * time.Millisecond
	o.Retry = retry.Policy{Max: 2, Initial: time.Millisecond}
	o.LockDuration = 200 * time.Millisecond
	return o
}

func TestRotateDeletesRegeneratesAndLeavesOnlyNewCredentials(t *testing.T) {
	for _, c := range []struct {
		name                string
		kubeconfig, service bool
		// secrets of kube-system that survive: LKE's control-plane
		// accounts' when their token is not regenerated.
		survivors int
	}{
		{"kubeconfig and service token", true, true, 0},
		{"kubeconfig only", true, false, 3},
		{"service token only", false, true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeLKE(t, "ci")
			oldAdmin := f.served
			before := f.secrets()
			res, err := f.runner().Rotate(t.Context(), fastOptions(Options{
				Namespaces: []string{"kube-system", "ci"}, RegenerateKubeconfig: c.kubeconfig, RegenerateServiceToken: c.service,
			}))
			if err != nil {
				t.Fatal(err)
			}
			if f.regenerates != 1 {
				t.Errorf("%d regenerations; want 1", f.regenerates)
			}
			if c.kubeconfig && f.works(oldAdmin) {
				t.Error("the old admin token still works after the rotation")
			}
			if !f.works(f.served) {
				t.Error("the kubeconfig the Linode API serves does not work")
			}
			kept := 0
			for _, s := range before {
				if slices.Contains(f.secrets(), s) {
					kept++
				}
			}
			if wantKept := c.survivors + map[bool]int{false: 1, true: 0}[c.kubeconfig]; kept != wantKept {
				t.Errorf("%d of the secrets from before survive (%v now); want %d", kept, f.secrets(), wantKept)
			}
			if len(res.DeletedSecrets) != len(before)-kept {
				t.Errorf("recorded %d deleted secrets (%v); %d were deleted", len(res.DeletedSecrets), res.DeletedSecrets, len(before)-kept)
			}
			if res.Resumed || res.DeletedAdminSecretFirst {
				t.Errorf("a fresh rotation reported resumed=%t, deleted admin secret first=%t", res.Resumed, res.DeletedAdminSecretFirst)
			}
		})
	}
}

// An earlier run deleted the secrets and died: the served kubeconfig is
// rejected, so the rotation resumes at the regeneration and finishes what
// was left in every namespace.
func TestRotateResumesWhenTheServedKubeconfigIsRejected(t *testing.T) {
	f := newFakeLKE(t, "ci")
	for _, s := range f.secrets() {
		if strings.HasPrefix(s, "kube-system/") {
			ns, name, _ := strings.Cut(s, "/")
			if err := f.meta.Tracker().Delete(secretsResource, ns, name); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := f.runner().Rotate(t.Context(), fastOptions(Options{
		Namespaces: []string{"kube-system", "ci"}, RegenerateKubeconfig: true, RegenerateServiceToken: true,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.ResumedLeftover != 1 {
		t.Errorf("resumed %t with %d leftover secrets; want resumed, 1 (the one in ci)", res.Resumed, res.ResumedLeftover)
	}
	for _, s := range f.secrets() {
		if strings.HasPrefix(s, "ci/") {
			t.Errorf("%s survived a resumed rotation", s)
		}
	}
	if f.regenerates != 1 || !f.works(f.served) {
		t.Errorf("%d regenerations, served kubeconfig works: %t; want 1, true", f.regenerates, f.works(f.served))
	}
}

// The Linode API keeps serving the old kubeconfig for a while, then
// answers "not yet available", then the new one: only a kubeconfig with a
// new token counts.
func TestRotateWaitsThroughAStaleKubeconfig(t *testing.T) {
	f := newFakeLKE(t)
	oldAdmin := f.served
	f.staleFor, f.notReady = 0, 0
	r := f.runner()
	linode := &staleAfterRegenerate{fakeLKE: f, stale: 5, notReady: 3}
	r.Linode, r.Poll = linode, linode
	opts := fastOptions(Options{RegenerateKubeconfig: true, RegenerateServiceToken: true})
	// Long enough for the 5 stale polls on a loaded machine: this case
	// must not fall back to the runbook's order.
	opts.TokenWait = 5 * time.Second
	res, err := r.Rotate(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if f.works(oldAdmin) || !f.works(f.served) || res.DeletedAdminSecretFirst {
		t.Errorf("old token works %t, served works %t, admin secret deleted first %t; want false, true, false",
			f.works(oldAdmin), f.works(f.served), res.DeletedAdminSecretFirst)
	}
	if n := f.count("get kubeconfig"); n < 1+5+3+1 {
		t.Errorf("%d kubeconfig fetches; the stale ones and the 503s were not waited through", n)
	}
}

// staleAfterRegenerate arms the stale window and the 503s at the
// regeneration, as the Linode API would show them.
type staleAfterRegenerate struct {
	*fakeLKE
	stale, notReady int
}

func (s *staleAfterRegenerate) RegenerateLKECluster(ctx context.Context, id int, opts linodego.LKEClusterRegenerateOptions) (*linodego.LKECluster, error) {
	c, err := s.fakeLKE.RegenerateLKECluster(ctx, id, opts)
	if opts.KubeConfig || opts.ServiceToken {
		s.mu.Lock()
		s.staleFor, s.fakeLKE.notReady = s.stale, s.notReady
		s.mu.Unlock()
	}
	return c, err
}

// LKE rebuilds the kubeconfig from the admin secret that still exists: the
// old token is served until TokenWait, then the rotation deletes that
// secret first (the runbook's order) and gets a new token.
func TestRotateFallsBackToTheRunbookOrderWhenTheOldTokenStaysServed(t *testing.T) {
	f := newFakeLKE(t)
	f.reuseAdmin = true
	oldAdmin := f.served
	res, err := f.runner().Rotate(t.Context(), fastOptions(Options{RegenerateKubeconfig: true, RegenerateServiceToken: true}))
	if err != nil {
		t.Fatal(err)
	}
	if !res.DeletedAdminSecretFirst {
		t.Error("the rotation did not report deleting the old admin secret first")
	}
	if f.works(oldAdmin) || !f.works(f.served) || f.served == oldAdmin {
		t.Errorf("old token works %t, a new token served %t and working %t", f.works(oldAdmin), f.served != oldAdmin, f.works(f.served))
	}
}

// A regenerate whose answer is lost after LKE acted is not sent again; one
// answered 500 without acting is.
func TestRotateRegeneratesOnce(t *testing.T) {
	t.Run("acted, answer lost", func(t *testing.T) {
		f := newFakeLKE(t)
		f.loseRegen = true
		if _, err := f.runner().Rotate(t.Context(), fastOptions(Options{RegenerateKubeconfig: true})); err != nil {
			t.Fatal(err)
		}
		if n := f.count("regenerate"); n != 1 || f.regenerates != 1 {
			t.Errorf("%d regenerate requests, %d acted on; want 1, 1", n, f.regenerates)
		}
	})
	t.Run("500 without acting", func(t *testing.T) {
		f := newFakeLKE(t)
		f.failRegen = 1
		if _, err := f.runner().Rotate(t.Context(), fastOptions(Options{RegenerateKubeconfig: true})); err != nil {
			t.Fatal(err)
		}
		if n := f.count("regenerate"); n != 2 || f.regenerates != 1 {
			t.Errorf("%d regenerate requests, %d acted on; want 2, 1", n, f.regenerates)
		}
	})
}

func TestRotateRecyclesNodesAndWaitsForReadyReplacements(t *testing.T) {
	f := newFakeLKE(t)
	res, err := f.runner().Rotate(t.Context(), fastOptions(Options{RegenerateKubeconfig: true, RecycleNodes: true}))
	if err != nil {
		t.Fatal(err)
	}
	if f.recycles != 1 || res.RecycledNodes != 2 {
		t.Errorf("%d recycles, %d nodes recycled; want 1, 2", f.recycles, res.RecycledNodes)
	}
}

// A step that fails says which, and what was done before it; a second run
// finishes the rotation.
func TestRotateStepFailureSaysWhatWasDoneAndTheNextRunFinishes(t *testing.T) {
	f := newFakeLKE(t)
	f.failRegen = 10 // more than the retries
	opts := fastOptions(Options{RegenerateKubeconfig: true, RegenerateServiceToken: true})
	_, err := f.runner().Rotate(t.Context(), opts)
	var step *StepError
	if !errors.As(err, &step) || step.Step != StepRegenerate || !strings.Contains(err.Error(), "run apply again to resume") {
		t.Fatalf("err = %v; want a StepError at %s saying how to resume", err, StepRegenerate)
	}
	if !slices.ContainsFunc(step.Done, func(d string) bool { return strings.Contains(d, "deleted") }) {
		t.Errorf("the error does not say secrets were deleted already: %v", step.Done)
	}
	if !f.works(f.served) {
		t.Error("a failed regeneration left the Linode API serving a kubeconfig that does not work")
	}
	f.failRegen = 0
	if _, err := f.runner().Rotate(t.Context(), opts); err != nil {
		t.Fatalf("the next run did not finish: %v", err)
	}
	if f.regenerates != 1 || !f.works(f.served) {
		t.Errorf("%d regenerations, served works %t", f.regenerates, f.works(f.served))
	}
	if step.LockedOut || strings.Contains(err.Error(), "is rejected until") {
		t.Errorf("with lke-admin kept, the error claims the served kubeconfig is rejected: %v", err)
	}
}

// With lke-admin re-created, a failed regeneration leaves the served
// kubeconfig rejected: the error says so, and the next run regenerates.
func TestRotateFailedRegenerationAfterRecreatingTheAdminSaysItIsLockedOut(t *testing.T) {
	f := newFakeLKE(t)
	admin := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: AdminAccount.Namespace, Name: AdminAccount.Name, UID: "before"}}
	if err := f.core.Tracker().Add(admin); err != nil {
		t.Fatal(err)
	}
	f.failRegen = 10
	opts := fastOptions(Options{RegenerateKubeconfig: true, RecreateAdmin: true})
	_, err := f.runner().Rotate(t.Context(), opts)
	var step *StepError
	if !errors.As(err, &step) || step.Step != StepRegenerate || !step.LockedOut ||
		!strings.Contains(err.Error(), "the kubeconfig the Linode API serves is rejected until a regenerated one is served") {
		t.Fatalf("err = %v; want a StepError at %s saying the served kubeconfig is rejected", err, StepRegenerate)
	}
	f.failRegen = 0
	if _, err := f.runner().Rotate(t.Context(), opts); err != nil {
		t.Fatalf("the next run did not finish: %v", err)
	}
	if f.regenerates != 1 || !f.works(f.served) {
		t.Errorf("%d regenerations, served works %t", f.regenerates, f.works(f.served))
	}
}

var secretsResource = corev1.SchemeGroupVersion.WithResource("secrets")

// The listed accounts and then lke-admin are re-created (new UIDs) before
// the regeneration, so the new kubeconfig's token is the new admin's.
func TestRotateRecreatesTheListedAccountsThenTheAdminBeforeRegenerating(t *testing.T) {
	f := newFakeLKE(t, "ci")
	uids := map[string]string{}
	for _, ref := range []kube.ServiceAccountRef{{Namespace: "ci", Name: "deployer"}, AdminAccount} {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name, UID: types.UID("before-" + ref.Name),
			Labels: map[string]string{"keep": "me"}}}
		if err := f.core.Tracker().Add(sa); err != nil {
			t.Fatal(err)
		}
		uids[ref.String()] = string(sa.UID)
	}
	// When the step ends: which accounts have a new UID and kept their
	// labels, and how many regenerations were asked for by then.
	var recreatedBefore []string
	regeneratedBefore := -1
	r := f.runner()
	r.Log = stepLog(func(step string) {
		if step != StepRecreateServiceAccounts {
			return
		}
		regeneratedBefore = f.regenerates
		for id := range uids {
			ns, name, _ := strings.Cut(id, "/")
			sa, err := f.core.CoreV1().ServiceAccounts(ns).Get(context.Background(), name, metav1.GetOptions{})
			if err == nil && string(sa.UID) != uids[id] && sa.Labels["keep"] == "me" {
				recreatedBefore = append(recreatedBefore, id)
			}
		}
	})
	res, err := r.Rotate(t.Context(), fastOptions(Options{
		Namespaces: []string{"kube-system", "ci"}, RegenerateKubeconfig: true, RegenerateServiceToken: true,
		RecreateAdmin: true, RevokeServiceAccounts: []kube.ServiceAccountRef{{Namespace: "ci", Name: "deployer"}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ci/deployer", "kube-system/lke-admin"}; !slices.Equal(res.RecreatedServiceAccounts, want) {
		t.Errorf("re-created %v, want %v in that order", res.RecreatedServiceAccounts, want)
	}
	if regeneratedBefore != 0 {
		t.Errorf("%d regenerations were asked for before the accounts were re-created; the new token must be the new admin's", regeneratedBefore)
	}
	if len(recreatedBefore) != 2 {
		t.Errorf("the re-creation step left only %v with a new UID and their labels; want both", recreatedBefore)
	}
	// The old admin token died with its account (the fake's token
	// controller deletes its secret), so lke-admin was created again
	// through a bridge, which deleted itself.
	left, err := f.core.CoreV1().ServiceAccounts("kube-system").List(t.Context(), metav1.ListOptions{LabelSelector: kube.BridgeLabel + "=true"})
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Items) != 0 {
		t.Errorf("%d bridge accounts left behind, want none", len(left.Items))
	}
}

// stepLog calls fn with each step's name as it is logged.
type stepLog func(step string)

func (l stepLog) Step(_ context.Context, step string, _ map[string]any) { l(step) }
