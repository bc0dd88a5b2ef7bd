package kube

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

func account(name string, labels map[string]string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name, Labels: labels, UID: types.UID("uid-" + name)}}
}

func fresh(sa *corev1.ServiceAccount) *corev1.ServiceAccount {
	sa.CreationTimestamp = metav1.Now()
	return sa
}

// The sweep deletes the bridges a killed run left, and only those: an
// account that merely carries the label was not named by kubecreds.
func TestSweepBridgesDeletesOnlyWhatKubecredsNamed(t *testing.T) {
	bridge := map[string]string{BridgeLabel: "true"}
	core := fake.NewClientset(
		account(bridgePrefix+"x7k2p", bridge),
		account("ci-bot", bridge),                   // labelled by someone else
		account(bridgePrefix, bridge),               // the prefix alone: never generated
		account(bridgePrefix+"q9", nil),             // not labelled: not found by the sweep
		fresh(account(bridgePrefix+"live", bridge)), // younger than BridgeTTL: perhaps another run's
	)
	swept, err := SweepBridges(context.Background(), &Clients{Core: core}, "kube-system")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(swept, []string{"kube-system/" + bridgePrefix + "x7k2p"}) {
		t.Errorf("swept %v, want only the bridge kubecreds named", swept)
	}
	left, err := core.CoreV1().ServiceAccounts("kube-system").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sa := range left.Items {
		names = append(names, sa.Name)
	}
	slices.Sort(names)
	if want := []string{"ci-bot", bridgePrefix, bridgePrefix + "live", bridgePrefix + "q9"}; !slices.Equal(names, want) {
		t.Errorf("left %v, want %v", names, want)
	}
}

// The create after the delete rides out failures that outlast one
// request's retries: giving up would leave the account missing.
func TestRecreateServiceAccountRidesOutTransientFailuresOfTheCreate(t *testing.T) {
	core := fake.NewClientset(account("deployer", map[string]string{"team": "platform"}))
	failures := 3
	core.PrependReactor("create", "serviceaccounts", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failures == 0 {
			return false, nil, nil
		}
		failures--
		return true, nil, apierrors.NewInternalError(context.DeadlineExceeded)
	})
	k := &Clients{Core: core, Retry: retry.Policy{Max: -1}}
	got, err := RecreateServiceAccount(context.Background(), k, ServiceAccountRef{Namespace: "kube-system", Name: "deployer"})
	if err != nil {
		t.Fatalf("re-creation gave up: %v", err)
	}
	if failures != 0 || got.OldUID != "uid-deployer" {
		t.Errorf("%d failures left unplayed, old UID %q", failures, got.OldUID)
	}
	now, err := core.CoreV1().ServiceAccounts("kube-system").Get(context.Background(), "deployer", metav1.GetOptions{})
	if err != nil || now.Labels["team"] != "platform" {
		t.Errorf("after the failures the account is %+v (%v); want it re-created with its labels", now, err)
	}
}

// A failure that is not transient ends the re-creation at once, naming it.
func TestRecreateServiceAccountStopsOnAForbiddenCreate(t *testing.T) {
	core := fake.NewClientset(account("deployer", nil))
	core.PrependReactor("create", "serviceaccounts", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "serviceaccounts"}, "deployer", nil)
	})
	k := &Clients{Core: core, Retry: retry.Policy{Max: -1}}
	_, err := RecreateServiceAccount(context.Background(), k, ServiceAccountRef{Namespace: "kube-system", Name: "deployer"})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("err = %v, want the create's 403", err)
	}
}
