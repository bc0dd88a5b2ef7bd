package lke

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

func TestKeepSecretOnlyWhatNothingWouldReplace(t *testing.T) {
	cases := []struct {
		s          kube.TokenSecret
		kubeconfig bool
		service    bool
		keep       bool
	}{
		{kube.TokenSecret{Namespace: "kube-system", ServiceAccount: "lke-admin"}, true, true, false},
		{kube.TokenSecret{Namespace: "kube-system", ServiceAccount: "lke-admin"}, false, true, true},
		{kube.TokenSecret{Namespace: "kube-system", ServiceAccount: "ccm-user"}, true, false, true},
		{kube.TokenSecret{Namespace: "kube-system", ServiceAccount: "ccm-user"}, false, true, false},
		{kube.TokenSecret{Namespace: "kube-system", ServiceAccount: "my-ci"}, true, false, false},
		{kube.TokenSecret{Namespace: "ci", ServiceAccount: "lke-admin"}, false, false, false}, // only kube-system's are LKE's
	}
	for _, c := range cases {
		if got := keepSecret(c.s, c.kubeconfig, c.service); got != c.keep {
			t.Errorf("keepSecret(%s/%s, kubeconfig=%v, servicetoken=%v) = %v", c.s.Namespace, c.s.ServiceAccount, c.kubeconfig, c.service, got)
		}
	}
}

func tokenSecret(ns, name, sa string) runtime.Object {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Annotations: map[string]string{corev1.ServiceAccountNameKey: sa}},
	}
}

func TestOwnTokenSecretIsDeletedLast(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	meta := metadatafake.NewSimpleMetadataClient(scheme,
		tokenSecret("kube-system", "a-token", "a"),
		tokenSecret("kube-system", "lke-admin-token-x", "lke-admin"),
		tokenSecret("kube-system", "z-token", "z"),
	)
	kubeconfig := []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: "` + fakeJWT(`{"kubernetes.io/serviceaccount/namespace":"kube-system","kubernetes.io/serviceaccount/secret.name":"lke-admin-token-x"}`) + `"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`)
	r := &run{Runner: &Runner{Clock: clock.RealClock{}}, opts: Options{Namespaces: []string{"kube-system"}, RegenerateKubeconfig: true, RegenerateServiceToken: true}.withDefaults(),
		old: &kube.Clients{Meta: meta, Core: fake.NewClientset()}, oldKubeconfig: kubeconfig, result: &Result{}}
	if _, err := r.listServiceAccountTokens(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(r.toDelete) != 2 || len(r.ownSecret) != 1 || r.ownSecret[0].ID() != "kube-system/lke-admin-token-x" {
		t.Fatalf("batch %v, own %v; the secret behind our own token must be set apart, to go after the new kubeconfig is served", r.toDelete, r.ownSecret)
	}
	if _, err := r.deleteServiceAccountTokens(t.Context()); err != nil {
		t.Fatal(err)
	}
	// After the new kubeconfig is served, the old one's secret goes too.
	r.new = r.old
	if _, err := r.deleteOldAdminSecret(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(r.result.DeletedSecrets) != 3 {
		t.Fatalf("recorded %v, want all three", r.result.DeletedSecrets)
	}
	var order []string
	for _, a := range meta.Actions() {
		if a.GetVerb() == "delete" {
			order = append(order, a.(interface{ GetName() string }).GetName())
		}
	}
	if len(order) != 3 || order[2] != "lke-admin-token-x" {
		t.Fatalf("delete order %v; the secret behind our own token must be deleted last", order)
	}
}

// fakeLinode answers GET kubeconfig with 503 a number of times, then the kubeconfig.
type fakeLinode struct {
	LinodeAPI
	notReady int
	calls    int
}

func (f *fakeLinode) GetLKEClusterKubeconfig(context.Context, int) (*linodego.LKEClusterKubeconfig, error) {
	f.calls++
	if f.calls <= f.notReady {
		return nil, &linodego.Error{Code: http.StatusServiceUnavailable, Message: "Cluster kubeconfig is not yet available. Please try again later."}
	}
	return &linodego.LKEClusterKubeconfig{KubeConfig: base64.StdEncoding.EncodeToString(testKubeconfig("t"))}, nil
}

func TestFetchKubeconfigPollsThroughNotYetAvailable(t *testing.T) {
	f := &fakeLinode{notReady: 12}
	kc, err := FetchKubeconfig(t.Context(), f, 1, KubeconfigPoll{Initial: time.Millisecond, Max: 2 * time.Millisecond})
	if err != nil || string(kc) != string(testKubeconfig("t")) || f.calls != 13 {
		t.Fatalf("got %q, %v after %d calls; want the kubeconfig after 13", kc, err, f.calls)
	}
}

func TestFetchKubeconfigGivesUpWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := FetchKubeconfig(ctx, &fakeLinode{notReady: 1 << 30}, 1, KubeconfigPoll{Initial: time.Millisecond, Max: 5 * time.Millisecond})
	if !errors.Is(err, ErrKubeconfigNotReady) || !strings.Contains(err.Error(), "not yet available") {
		t.Fatalf("err = %v; want ErrKubeconfigNotReady with the API's reason", err)
	}
}

func TestStepErrorSaysWhatWasDoneAndHowToResume(t *testing.T) {
	err := &StepError{Step: StepRegenerate, ClusterID: 123, Done: []string{"4 secrets deleted"}, Err: errors.New("[503] Service Unavailable")}
	want := "regenerate kubeconfig and service token for cluster 123: [503] Service Unavailable (4 secrets deleted; run apply again to resume)"
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	locked := &StepError{Step: StepRegenerate, ClusterID: 123, LockedOut: true,
		Done: []string{"4 secrets deleted", "service account kube-system/lke-admin re-created"}, Err: errors.New("[500] Internal Server Error")}
	want = "regenerate kubeconfig and service token for cluster 123: [500] Internal Server Error (4 secrets deleted, " +
		"service account kube-system/lke-admin re-created; the kubeconfig the Linode API serves is rejected until a regenerated one is served: " +
		"run apply again to resume, which regenerates it)"
	if locked.Error() != want {
		t.Errorf("got  %s\nwant %s", locked, want)
	}
	fresh := &StepError{Step: StepGetCluster, ClusterID: 1, Err: errors.New("boom")}
	// It speaks for this run only: an earlier, interrupted run may have
	// deleted secrets already.
	if !strings.Contains(fresh.Error(), "this run had changed nothing") || strings.Contains(fresh.Error(), "nothing was changed") {
		t.Errorf("an error before this run changed anything should say so, for this run only: %s", fresh)
	}
}

func TestKubeconfigPollingSettlesToTheSlowPaceAfterTheFastPeriod(t *testing.T) {
	p := KubeconfigPoll{Initial: time.Millisecond, Max: 2 * time.Millisecond, FastFor: 30 * time.Millisecond, Slow: time.Second}
	d := p.delays()
	if first := d(); first > 3*time.Millisecond {
		t.Fatalf("first wait %v; polling should start fast", first)
	}
	time.Sleep(40 * time.Millisecond)
	if later := d(); later != time.Second {
		t.Fatalf("wait after the fast period %v; want the slow pace, 1s", later)
	}
	if def := (KubeconfigPoll{}); def.fastFor() != 10*time.Second || def.slow() != time.Second {
		t.Fatalf("defaults: fast for %v, then every %v; want 10s, then 1s (at most one request a second per cluster)", def.fastFor(), def.slow())
	}
}

func fakeJWT(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(claims)) + ".signature"
}

// The second sweep deletes what a holder of the old credentials could have
// made after the first pass, and spares what LKE just made: the served
// kubeconfig's secret and, regenerated, its control-plane accounts' secrets
// (more than one per account is reported, none deleted).
func TestSecondSweepSparesWhatLKEMadeAndReportsExtraControlPlaneSecrets(t *testing.T) {
	ts := func(ns, name, sa string) kube.TokenSecret {
		return kube.TokenSecret{Namespace: ns, Name: name, ServiceAccount: sa}
	}
	all := []kube.TokenSecret{
		ts("kube-system", "lke-admin-token-new", "lke-admin"),
		ts("kube-system", "lke-admin-token-planted", "lke-admin"),
		ts("kube-system", "ccm-user-token-lke", "ccm-user"),
		ts("kube-system", "ccm-user-token-planted", "ccm-user"),
		ts("kube-system", "cluster-autoscaler-user-token-a", "cluster-autoscaler-user"),
		ts("ci", "deployer-token-planted", "deployer"),
		ts("kube-system", "backdoor-token-planted", "backdoor"),
		ts("kube-system", "linode-csi-token-new", "linode-csi"),
	}
	// When first listed: the control-plane accounts, lke-admin, an LKE
	// account the runbook does not name (linode-csi), and ci/deployer.
	had := map[string]bool{"kube-system/ccm-user": true, "kube-system/lke-admin": true, "kube-system/linode-csi": true, "ci/deployer": true}
	toDelete, kept, extra := secondSweep(all, "kube-system/lke-admin-token-new", had, map[string]bool{"ci/deployer": true}, true, true)
	ids := func(s []kube.TokenSecret) []string {
		var out []string
		for _, x := range s {
			out = append(out, x.ID())
		}
		slices.Sort(out)
		return out
	}
	if got, want := ids(toDelete), []string{"ci/deployer-token-planted", "kube-system/backdoor-token-planted", "kube-system/lke-admin-token-planted"}; !slices.Equal(got, want) {
		t.Errorf("deletes %v, want %v", got, want)
	}
	if got, want := ids(kept), []string{"kube-system/ccm-user-token-lke", "kube-system/ccm-user-token-planted",
		"kube-system/cluster-autoscaler-user-token-a", "kube-system/linode-csi-token-new", "kube-system/lke-admin-token-new"}; !slices.Equal(got, want) {
		t.Errorf("keeps %v, want %v", got, want)
	}
	if got, want := ids(extra), []string{"kube-system/ccm-user-token-lke", "kube-system/ccm-user-token-planted"}; !slices.Equal(got, want) {
		t.Errorf("reports %v, want %v", got, want)
	}
	// Without a new service token, the control-plane secrets are the ones
	// nothing replaces: kept, and not reported.
	toDelete, _, extra = secondSweep(all, "kube-system/lke-admin-token-new", had, nil, true, false)
	if len(extra) != 0 {
		t.Errorf("reports %v without a service-token regeneration", ids(extra))
	}
	// Nor does LKE then make a secret for another account that had one.
	if !slices.Contains(ids(toDelete), "kube-system/linode-csi-token-new") {
		t.Errorf("without a service-token regeneration, deletes %v; want linode-csi's new secret among them", ids(toDelete))
	}
	// A served token that names no secret: no lke-admin secret is touched.
	toDelete, _, _ = secondSweep(all, "", had, nil, true, true)
	if slices.ContainsFunc(toDelete, func(s kube.TokenSecret) bool { return s.ServiceAccount == "lke-admin" }) {
		t.Errorf("deletes %v though the served secret is unknown", ids(toDelete))
	}
}
