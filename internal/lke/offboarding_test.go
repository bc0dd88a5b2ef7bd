package lke

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
)

func ids(secrets []kube.TokenSecret) []string {
	out := make([]string, 0, len(secrets))
	for _, s := range secrets {
		out = append(out, s.ID())
	}
	slices.Sort(out)
	return out
}

func TestResumedDeletionDeletesWhatTheInterruptedRunLeftButNotWhatThisRunMade(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	all := []kube.TokenSecret{
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

func TestPodsUsingDeletedSecretsAreReportedOnlyForSecretsReallyDeleted(t *testing.T) {
	core := fake.NewClientset(
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "uses-deleted"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "deployer-token"}}}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "uses-other"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "uses-kept"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "t", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "spared-token"}}}}}},
	)
	r := &run{Runner: &Runner{Clock: clock.RealClock{}}, result: &Result{}}
	r.scanPods(t.Context(), &kube.Clients{Core: core}, []kube.TokenSecret{{Namespace: "ci", Name: "deployer-token"}, {Namespace: "ci", Name: "spared-token"}})
	r.result.DeletedSecrets = []string{"ci/deployer-token"} // spared-token's delete was refused, say
	r.keepMountsOfDeleted()
	if len(r.result.PodsUsingDeleted) != 1 || r.result.PodsUsingDeleted[0].Pod != "uses-deleted" {
		t.Fatalf("reported %+v; want only the pod using the deleted secret", r.result.PodsUsingDeleted)
	}
}

func boundSecret(ns, name string) runtime.Object {
	return labelled(ns, name, map[string]string{kubeconfig.BoundSecretLabel: "true"})
}

func labelled(ns, name string, labels map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name),
			Labels: labels, Annotations: map[string]string{kubeconfig.IssuerAnnotation: "kubecreds"}},
	}
}

// foreignSecret carries kubecreds' label, but neither its name nor its
// annotations: not kubecreds' Secret.
func foreignSecret(ns, name string) runtime.Object {
	s := labelled(ns, name, map[string]string{kubeconfig.BoundSecretLabel: "true"})
	s.Annotations = nil
	return s
}

func TestRevokeShortLivedDeletesBoundSecretsInEveryNamespace(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	meta := metadatafake.NewSimpleMetadataClient(scheme,
		boundSecret("kube-system", "kubecreds-short-lived-a"),
		boundSecret("team-a", "kubecreds-short-lived-b"),
		labelled("team-b", "kubecreds-short-lived-c", nil), // its label removed: still kubecreds'
		foreignSecret("team-a", "app-config"),              // the label alone: someone else's
		tokenSecret("team-a", "not-ours", "x"),             // no label: not a short-lived kubeconfig's
	)
	r := &run{Runner: &Runner{Clock: clock.RealClock{}}, opts: Options{}.withDefaults(), new: &kube.Clients{Meta: meta}, result: &Result{}}
	if _, err := r.revokeShortLivedKubeconfigs(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{"kube-system/kubecreds-short-lived-a", "team-a/kubecreds-short-lived-b", "team-b/kubecreds-short-lived-c"}
	if !slices.Equal(r.result.RevokedShortLived, want) {
		t.Fatalf("revoked %v, want %v", r.result.RevokedShortLived, want)
	}
	if !slices.Equal(r.result.ForeignBoundSecrets, []string{"team-a/app-config"}) {
		t.Errorf("foreign %v, want the Secret that merely carries the label", r.result.ForeignBoundSecrets)
	}
	left, err := kube.ListBoundSecrets(t.Context(), r.new)
	if err != nil || len(left.Ours) != 0 {
		t.Fatalf("bound Secrets left: %v (%v)", left.Ours, err)
	}
	for _, name := range []string{"not-ours", "app-config"} {
		if _, err := meta.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace("team-a").Get(t.Context(), name, metav1.GetOptions{}); err != nil {
			t.Fatalf("secret %s, not kubecreds', was touched: %v", name, err)
		}
	}
}
