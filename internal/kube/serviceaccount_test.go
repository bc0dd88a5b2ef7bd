package kube

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// Re-creating an account keeps what its owners set on it, so that what
// names it or reads it (bindings, pull secrets, controllers) keeps working.
func TestRecreateServiceAccountKeepsWhatItsOwnersSet(t *testing.T) {
	no := false
	old := &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{
			Name: "deployer", Namespace: "ci", UID: types.UID("old-uid"), ResourceVersion: "42",
			Labels:          map[string]string{"team": "platform"},
			Annotations:     map[string]string{"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/ci"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: "o"}},
		},
		Secrets:                      []corev1.ObjectReference{{Name: "deployer-token"}},
		ImagePullSecrets:             []corev1.LocalObjectReference{{Name: "registry"}},
		AutomountServiceAccountToken: &no,
	}
	core := fake.NewClientset(old.DeepCopy())
	k := &Clients{Core: core}

	got, err := RecreateServiceAccount(context.Background(), k, ServiceAccountRef{Namespace: "ci", Name: "deployer"})
	if err != nil {
		t.Fatal(err)
	}
	if got.OldUID != "old-uid" {
		t.Errorf("old UID %q, want old-uid", got.OldUID)
	}
	now, err := core.CoreV1().ServiceAccounts("ci").Get(context.Background(), "deployer", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if now.UID == old.UID {
		t.Errorf("the account kept its UID %q: its tokens would still be accepted", now.UID)
	}
	want := recreation(old)
	if !equality.Semantic.DeepEqual(now.Labels, want.Labels) || !equality.Semantic.DeepEqual(now.Annotations, want.Annotations) ||
		!equality.Semantic.DeepEqual(now.OwnerReferences, want.OwnerReferences) || !equality.Semantic.DeepEqual(now.Secrets, want.Secrets) ||
		!equality.Semantic.DeepEqual(now.ImagePullSecrets, want.ImagePullSecrets) ||
		now.AutomountServiceAccountToken == nil || *now.AutomountServiceAccountToken {
		t.Errorf("re-created account lost what was set on it:\n got %+v\nwant %+v", now, want)
	}
}

func TestRecreateServiceAccountSaysWhenItIsMissing(t *testing.T) {
	k := &Clients{Core: fake.NewClientset()}
	_, err := RecreateServiceAccount(context.Background(), k, ServiceAccountRef{Namespace: "ci", Name: "gone"})
	if err == nil || err.Error() != "service account ci/gone does not exist" {
		t.Fatalf("err = %v, want it to say ci/gone does not exist", err)
	}
}

func TestParseServiceAccountRefTakesTheAPIServersRules(t *testing.T) {
	for _, ok := range []string{"ci/deployer", "kube-system/lke-admin", "a/b.c-d", "x1/system.serviceaccount"} {
		if _, err := ParseServiceAccountRef(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"deployer", "ci/", "/deployer", "ci/a/b", "CI/deployer", "ci/Deployer", "ci.x/deployer", "ci/de_ployer"} {
		if _, err := ParseServiceAccountRef(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
