package kube

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
)

func metaClient(t *testing.T, objs ...runtime.Object) *metadatafake.FakeMetadataClient {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return metadatafake.NewSimpleMetadataClient(scheme, objs...)
}

func partial(apiVersion, kind, ns, name string, mutate func(*metav1.ObjectMeta)) *metav1.PartialObjectMetadata {
	p := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}, ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if mutate != nil {
		mutate(&p.ObjectMeta)
	}
	return p
}

func ciAccount(name string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: name, UID: types.UID("old-" + name), Labels: map[string]string{"team": "ci"}}}
}

var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection"}

// An account that does not exist fails the run before anything changes,
// even when the other listed accounts exist.
func TestRotateAccountsChangesNothingWhenAnAccountIsMissing(t *testing.T) {
	core := fake.NewClientset(ciAccount("deployer"))
	meta := metaClient(t)
	_, err := RotateAccounts(t.Context(), &Clients{Core: core, Meta: meta}, AccountRotation{
		Accounts: []ServiceAccountRef{{Namespace: "ci", Name: "deployer"}, {Namespace: "ci", Name: "gone"}},
		Now:      time.Now,
	})
	if !errors.Is(err, ErrAccountMissing) {
		t.Fatalf("err = %v, want ErrAccountMissing", err)
	}
	var rerr *AccountRotationError
	if !errors.As(err, &rerr) || len(rerr.Done) != 0 || rerr.Step != StepReadAccounts {
		t.Fatalf("err = %v, want a failed %q with nothing done", err, StepReadAccounts)
	}
	for _, a := range core.Actions() {
		if slices.Contains(writeVerbs, a.GetVerb()) {
			t.Fatalf("%s %s sent before the run knew every account exists", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

// A run killed between the delete and the create leaves the account
// missing; the next run creates it from the checkpoint, as it was.
func TestRotateAccountsCreatesAnAccountAStoppedRunDeleted(t *testing.T) {
	old := ciAccount("deployer")
	old.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "registry"}}
	b, err := json.Marshal(checkpoint{OldUID: "old-deployer", Account: recreation(old)})
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: checkpointName("deployer"), Annotations: map[string]string{checkpointAnnotation: "deployer"}},
		Data:       map[string]string{checkpointKey: string(b)},
	}
	core := fake.NewClientset(cm)
	res, err := RotateAccounts(t.Context(), &Clients{Core: core, Meta: metaClient(t)}, AccountRotation{
		Accounts: []ServiceAccountRef{{Namespace: "ci", Name: "deployer"}}, Now: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Resumed, []string{"ci/deployer"}) {
		t.Errorf("resumed %v, want ci/deployer", res.Resumed)
	}
	sa, err := core.CoreV1().ServiceAccounts("ci").Get(t.Context(), "deployer", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the account was not created from the checkpoint: %v", err)
	}
	if sa.Labels["team"] != "ci" || len(sa.ImagePullSecrets) != 1 {
		t.Errorf("created %+v, lost what the checkpoint kept", sa)
	}
	if _, err := core.CoreV1().ConfigMaps("ci").Get(t.Context(), cm.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the checkpoint is left after the run finished (%v)", err)
	}
}

// A ConfigMap of the checkpoint's name that kubecreds did not write is not
// read as one.
func TestRotateAccountsRefusesAForeignCheckpoint(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: checkpointName("deployer")}}
	core := fake.NewClientset(ciAccount("deployer"), cm)
	_, err := RotateAccounts(t.Context(), &Clients{Core: core, Meta: metaClient(t)}, AccountRotation{
		Accounts: []ServiceAccountRef{{Namespace: "ci", Name: "deployer"}}, Now: time.Now,
	})
	if err == nil {
		t.Fatal("a ConfigMap kubecreds did not write was taken as its checkpoint")
	}
}

// Legacy token secrets come back under their names, for the new account,
// with what their owners set and without what the token controller set
// for the old account.
func TestRotateAccountsRecreatesLegacyTokenSecrets(t *testing.T) {
	secret := func() *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "deployer-token", UID: "secret-uid",
				Labels: map[string]string{"app": "ci", "kubernetes.io/legacy-token-last-used": "2026-01-01"},
				Annotations: map[string]string{corev1.ServiceAccountNameKey: "deployer", corev1.ServiceAccountUIDKey: "old-deployer",
					"owner": "platform"}},
			Type: corev1.SecretTypeServiceAccountToken,
			Data: map[string][]byte{"token": []byte("old")},
		}
	}
	s := secret()
	core := fake.NewClientset(ciAccount("deployer"), s)
	meta := metaClient(t, partial("v1", "Secret", "ci", "deployer-token", func(m *metav1.ObjectMeta) { s.ObjectMeta.DeepCopyInto(m) }),
		partial("v1", "Secret", "ci", "other-token", func(m *metav1.ObjectMeta) {
			m.Annotations = map[string]string{corev1.ServiceAccountNameKey: "someone-else"}
		}))
	res, err := RotateAccounts(t.Context(), &Clients{Core: core, Meta: meta}, AccountRotation{
		Accounts: []ServiceAccountRef{{Namespace: "ci", Name: "deployer"}}, RecreateTokenSecrets: true, Now: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.TokenSecretsRecreated, []string{"ci/deployer-token"}) {
		t.Fatalf("recreated %v, want only ci/deployer-token", res.TokenSecretsRecreated)
	}
	got, err := core.CoreV1().Secrets("ci").Get(t.Context(), "deployer-token", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case got.Type != corev1.SecretTypeServiceAccountToken:
		t.Errorf("type %q", got.Type)
	case len(got.Data) != 0:
		t.Error("the new secret carries the old token")
	case got.Annotations[corev1.ServiceAccountNameKey] != "deployer" || got.Annotations["owner"] != "platform":
		t.Errorf("annotations %v lost what was set", got.Annotations)
	case got.Annotations[corev1.ServiceAccountUIDKey] != "":
		t.Error("the new secret names the old account's UID: the token controller would delete it")
	case got.Labels["app"] != "ci" || got.Labels["kubernetes.io/legacy-token-last-used"] != "":
		t.Errorf("labels %v: want the owner's, not the old token's usage", got.Labels)
	}
}

// Without recreate_token_secrets, the legacy token secrets go with the
// account, and the result says which.
func TestRotateAccountsReportsLegacySecretsItRemoved(t *testing.T) {
	core := fake.NewClientset(ciAccount("deployer"),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "deployer-token"}, Type: corev1.SecretTypeServiceAccountToken})
	meta := metaClient(t, partial("v1", "Secret", "ci", "deployer-token", func(m *metav1.ObjectMeta) {
		m.Annotations = map[string]string{corev1.ServiceAccountNameKey: "deployer"}
	}))
	res, err := RotateAccounts(t.Context(), &Clients{Core: core, Meta: meta}, AccountRotation{
		Accounts: []ServiceAccountRef{{Namespace: "ci", Name: "deployer"}}, Now: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.TokenSecretsRemoved, []string{"ci/deployer-token"}) || len(res.TokenSecretsRecreated) != 0 {
		t.Fatalf("removed %v, recreated %v", res.TokenSecretsRemoved, res.TokenSecretsRecreated)
	}
	if _, err := core.CoreV1().Secrets("ci").Get(t.Context(), "deployer-token", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the old token secret is still there (%v)", err)
	}
}

// The workloads whose pods run as the account are restarted as kubectl
// would; a paused deployment and the pods no rollout reaches are named.
func TestRestartRunningAsNamesWhatItCannotRestart(t *testing.T) {
	ctrl := func(kind, name string) []metav1.OwnerReference {
		yes := true
		return []metav1.OwnerReference{{Kind: kind, Name: name, Controller: &yes}}
	}
	pod := func(name, sa string, owners []metav1.OwnerReference) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: name, OwnerReferences: owners}, Spec: corev1.PodSpec{ServiceAccountName: sa}}
	}
	core := fake.NewClientset(
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "web"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "frozen"}, Spec: appsv1.DeploymentSpec{Paused: true}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "agent"}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "migrate"}},
		pod("web-1", "deployer", ctrl("ReplicaSet", "web-abc")),
		pod("web-2", "deployer", ctrl("ReplicaSet", "web-abc")),
		pod("frozen-1", "deployer", ctrl("ReplicaSet", "frozen-abc")),
		pod("agent-1", "deployer", ctrl("DaemonSet", "agent")),
		pod("migrate-1", "deployer", ctrl("Job", "migrate")),
		pod("debug", "deployer", nil),
		pod("other", "someone-else", ctrl("ReplicaSet", "other-abc")),
	)
	meta := metaClient(t,
		partial("apps/v1", "ReplicaSet", "ci", "web-abc", func(m *metav1.ObjectMeta) { m.OwnerReferences = ctrl("Deployment", "web") }),
		partial("apps/v1", "ReplicaSet", "ci", "frozen-abc", func(m *metav1.ObjectMeta) { m.OwnerReferences = ctrl("Deployment", "frozen") }),
		partial("apps/v1", "Deployment", "ci", "web", nil),
		partial("apps/v1", "DaemonSet", "ci", "agent", nil),
	)
	res := &AccountRotationResult{}
	err := restartRunningAs(t.Context(), &Clients{Core: core, Meta: meta}, time.Now(), []ServiceAccountRef{{Namespace: "ci", Name: "deployer"}}, res)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"daemonset/ci/agent", "deployment/ci/web"}; !slices.Equal(res.Restarted, want) {
		t.Errorf("restarted %v, want %v", res.Restarted, want)
	}
	if !slices.Equal(res.Paused, []string{"ci/frozen"}) {
		t.Errorf("paused %v, want ci/frozen", res.Paused)
	}
	if len(res.NotRestarted) != 2 || !slices.ContainsFunc(res.NotRestarted, func(s string) bool { return s[:len("pod ci/debug")] == "pod ci/debug" }) {
		t.Errorf("not restarted %v, want the pod without a controller and the Job's", res.NotRestarted)
	}
	var patched []string
	for _, a := range meta.Actions() {
		if a.GetVerb() == "patch" {
			patched = append(patched, a.(interface{ GetName() string }).GetName())
		}
	}
	slices.Sort(patched)
	if !slices.Equal(patched, []string{"agent", "web"}) {
		t.Errorf("patched %v: each workload once, never a paused one", patched)
	}
}
