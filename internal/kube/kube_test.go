package kube

import (
	"context"
	"encoding/base64"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

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

func TestRestartSkipsPausedDeploymentsAsKubectlDoes(t *testing.T) {
	deployment := func(name string, paused bool) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name}, Spec: appsv1.DeploymentSpec{Paused: paused}}
	}
	core := fake.NewClientset(deployment("web", false), deployment("frozen", true))
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	meta := metadatafake.NewSimpleMetadataClient(scheme,
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web"}},
		&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "frozen"}},
	)
	restarted, paused, err := RestartWorkloads(t.Context(), &Clients{Core: core, Meta: meta}, time.Now(), []string{"apps"}, []string{KindDeployment})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(restarted, []string{"deployment/apps/web"}) || !slices.Equal(paused, []string{"apps/frozen"}) {
		t.Fatalf("restarted %v, skipped %v; want web restarted and frozen skipped", restarted, paused)
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
	err := listAll(t.Context(), retry.NoRetry, metav1.ListOptions{}, list, func(obj runtime.Object) error {
		names = append(names, obj.(*metav1.PartialObjectMetadata).Name)
		return nil
	})
	if err != nil || !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("listed %v (%v) after %d requests; want a and b from the full list", names, err, len(calls))
	}
}

func TestTokenSecretNameReadsTheLegacyClaim(t *testing.T) {
	ns, name := TokenSecretName(fakeJWT(`{"kubernetes.io/serviceaccount/namespace":"kube-system","kubernetes.io/serviceaccount/secret.name":"lke-admin-token-abcde"}`))
	if ns != "kube-system" || name != "lke-admin-token-abcde" {
		t.Errorf("got %s/%s", ns, name)
	}
	for _, bad := range []string{"", "not-a-jwt", "a.!!!.c", fakeJWT(`[]`)} {
		if ns, name := TokenSecretName(bad); ns != "" || name != "" {
			t.Errorf("TokenSecretName(%q) = %s/%s, want nothing", bad, ns, name)
		}
	}
}

func fakeJWT(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(claims)) + ".signature"
}
