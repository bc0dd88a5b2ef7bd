package rotation

import (
	"context"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
)

func ids(secrets []TokenSecret) []string {
	out := make([]string, 0, len(secrets))
	for _, s := range secrets {
		out = append(out, s.ID())
	}
	slices.Sort(out)
	return out
}

func TestResumedDeletionDeletesWhatTheInterruptedRunLeftButNotWhatThisRunMade(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	all := []TokenSecret{
		{Namespace: "kube-system", Name: "lke-admin-token-new", ServiceAccount: "lke-admin", Created: t0.Add(time.Hour)},
		{Namespace: "kube-system", Name: "lke-admin-token-stale", ServiceAccount: "lke-admin", Created: t0},
		{Namespace: "kube-system", Name: "ccm-user-token-old", ServiceAccount: "ccm-user", Created: t0},
		{Namespace: "kube-system", Name: "ccm-user-token-new", ServiceAccount: "ccm-user", Created: t0.Add(time.Hour)},
		{Namespace: "kube-system", Name: "my-ci-token", ServiceAccount: "my-ci", Created: t0},
		{Namespace: "ci", Name: "deployer-token", ServiceAccount: "deployer", Created: t0},
		{Namespace: "ci", Name: "ccm-user-token-x", ServiceAccount: "ccm-user", Created: t0.Add(2 * time.Hour)}, // only kube-system's are LKE's
	}
	toDelete, kept := resumedDeletion(all, "kube-system/lke-admin-token-new", true, true)
	wantDelete := []string{"ci/ccm-user-token-x", "ci/deployer-token", "kube-system/ccm-user-token-old", "kube-system/lke-admin-token-stale", "kube-system/my-ci-token"}
	if got := ids(toDelete); !slices.Equal(got, wantDelete) {
		t.Errorf("deletes %v\nwant     %v", got, wantDelete)
	}
	if got, want := ids(kept), []string{"kube-system/ccm-user-token-new", "kube-system/lke-admin-token-new"}; !slices.Equal(got, want) {
		t.Errorf("keeps %v, want %v (what this run's regeneration made)", got, want)
	}

	// Without regenerating the service token, the components' tokens stay,
	// old or new, as in a fresh rotation: nothing would replace them.
	_, kept = resumedDeletion(all, "kube-system/lke-admin-token-new", true, false)
	if got, want := ids(kept), []string{"kube-system/ccm-user-token-new", "kube-system/ccm-user-token-old", "kube-system/lke-admin-token-new"}; !slices.Equal(got, want) {
		t.Errorf("regenerate_service_token = false keeps %v, want %v", got, want)
	}
}

func TestSecretUsesFindsVolumesProjectedSourcesAndEnv(t *testing.T) {
	yes := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "web-1", OwnerReferences: []metav1.OwnerReference{
			{Kind: "ReplicaSet", Name: "web-5d4f8", Controller: &yes},
		}},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{
				{Name: "a", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-token"}}},
				{Name: "b", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "proj-token"}}},
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
				}}}},
			},
			InitContainers: []corev1.Container{{Name: "init", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "envfrom-token"}}}}}},
			Containers: []corev1.Container{{Name: "c", Env: []corev1.EnvVar{
				{Name: "T", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "env-token"}, Key: "token"}}},
				{Name: "U", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "env-token"}, Key: "ca.crt"}}},
			}}},
		},
	}
	got := secretUses(pod)
	want := []PodMount{
		{Namespace: "ci", Pod: "web-1", Owner: "ReplicaSet/web-5d4f8", Secret: "vol-token", Via: ViaVolume},
		{Namespace: "ci", Pod: "web-1", Owner: "ReplicaSet/web-5d4f8", Secret: "proj-token", Via: ViaProjected},
		{Namespace: "ci", Pod: "web-1", Owner: "ReplicaSet/web-5d4f8", Secret: "envfrom-token", Via: ViaEnv},
		{Namespace: "ci", Pod: "web-1", Owner: "ReplicaSet/web-5d4f8", Secret: "env-token", Via: ViaEnv},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestPodsUsingDeletedSecretsAreReportedOnlyForSecretsReallyDeleted(t *testing.T) {
	core := fake.NewClientset(
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "uses-deleted"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "deployer-token"}}}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "uses-other"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "uses-kept"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "spared-token"}}}}}},
	)
	r := &run{result: &Result{}}
	r.scanPods(t.Context(), &KubeClients{Core: core}, []TokenSecret{{Namespace: "ci", Name: "deployer-token"}, {Namespace: "ci", Name: "spared-token"}})
	r.result.DeletedSecrets = []string{"ci/deployer-token"} // spared-token's delete was refused, say
	r.keepMountsOfDeleted()
	if len(r.result.PodsUsingDeleted) != 1 || r.result.PodsUsingDeleted[0].Pod != "uses-deleted" {
		t.Fatalf("reported %+v; want only the pod using the deleted secret", r.result.PodsUsingDeleted)
	}
}

func boundSecret(ns, name string) runtime.Object {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name),
			Labels: map[string]string{kubeconfig.BoundSecretLabel: "true"}},
	}
}

func TestRevokeShortLivedDeletesBoundSecretsInEveryNamespace(t *testing.T) {
	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	meta := metadatafake.NewSimpleMetadataClient(scheme,
		boundSecret("kube-system", "kubecreds-short-lived-a"),
		boundSecret("team-a", "kubecreds-short-lived-b"),
		tokenSecret("team-a", "not-ours", "x"), // no label: not a short-lived kubeconfig's
	)
	r := &run{opts: Options{}.withDefaults(), new: &KubeClients{Meta: meta}, result: &Result{}}
	if _, err := r.revokeShortLivedKubeconfigs(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{"kube-system/kubecreds-short-lived-a", "team-a/kubecreds-short-lived-b"}
	if !slices.Equal(r.result.RevokedShortLived, want) {
		t.Fatalf("revoked %v, want %v", r.result.RevokedShortLived, want)
	}
	left, err := listBoundSecrets(t.Context(), r.new)
	if err != nil || len(left) != 0 {
		t.Fatalf("bound Secrets left: %v (%v)", left, err)
	}
	if _, err := meta.Resource(secretsResource).Namespace("team-a").Get(t.Context(), "not-ours", metav1.GetOptions{}); err != nil {
		t.Fatalf("an unlabelled secret was touched: %v", err)
	}
}

func TestRestartSkipsPausedDeploymentsAsKubectlDoes(t *testing.T) {
	deployment := func(name string, paused bool) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name}, Spec: appsv1.DeploymentSpec{Paused: paused}}
	}
	core := fake.NewClientset(deployment("web", false), deployment("frozen", true))
	scheme := runtime.NewScheme()
	metav1.AddMetaToScheme(scheme)
	meta := metadatafake.NewSimpleMetadataClient(scheme,
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}},
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "frozen"}},
	)
	r := &run{
		Runner: &Runner{Clock: clocktesting.NewFakePassiveClock(time.Now())},
		opts:   Options{RestartWorkloads: &RestartOptions{Namespaces: []string{"apps"}, Kinds: []string{KindDeployment}}}.withDefaults(),
		new:    &KubeClients{Core: core, Meta: meta}, result: &Result{},
	}
	if _, err := r.restartWorkloads(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.result.RestartedWorkload, []string{"deployment/apps/web"}) || !slices.Equal(r.result.SkippedPaused, []string{"apps/frozen"}) {
		t.Fatalf("restarted %v, skipped %v; want web restarted and frozen skipped", r.result.RestartedWorkload, r.result.SkippedPaused)
	}
	var patched []string
	for _, a := range meta.Actions() {
		if a.GetVerb() == "patch" {
			patched = append(patched, a.(interface{ GetName() string }).GetName())
		}
	}
	if !slices.Equal(patched, []string{"web"}) {
		t.Fatalf("patched %v; a paused deployment must not be touched", patched)
	}
}

// A continue token that expires half-way through a long list (410 Expired)
// does not fail the listing: it falls back to one full list.
func TestListAllSurvivesAnExpiredContinueToken(t *testing.T) {
	item := func(name string) metav1.PartialObjectMetadata {
		return metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: name}}
	}
	var calls []string
	list := func(_ context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		calls = append(calls, opts.Continue)
		switch {
		case opts.Continue == "" && opts.Limit > 0:
			return &metav1.PartialObjectMetadataList{ListMeta: metav1.ListMeta{Continue: "page-2"}, Items: []metav1.PartialObjectMetadata{item("a")}}, nil
		case opts.Continue == "page-2":
			return nil, apierrors.NewResourceExpired("continue token expired")
		default: // the full list the pager falls back to
			return &metav1.PartialObjectMetadataList{Items: []metav1.PartialObjectMetadata{item("a"), item("b")}}, nil
		}
	}
	var names []string
	err := listAll(t.Context(), NoRetry, metav1.ListOptions{}, list, func(obj runtime.Object) error {
		names = append(names, obj.(*metav1.PartialObjectMetadata).Name)
		return nil
	})
	if err != nil || !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("listed %v (%v) after %d requests; want a and b from the full list", names, err, len(calls))
	}
}
