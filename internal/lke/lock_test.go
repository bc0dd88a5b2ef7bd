package lke

import (
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

// The run that holds the lock revokes the credential a waiting run reads
// the Lease with, and may have released the lock by the time the waiting
// run has reconnected and asks again. The waiting run still overlapped
// that rotation: it adopts it rather than regenerating a second time. (Two
// workspaces at once on a busy machine lost this race.)
func TestALockWaitedForBeforeReconnectingStillAdopts(t *testing.T) {
	core := fake.NewClientset()
	holder, _, err := kube.AcquireLock(t.Context(), &kube.Clients{Core: core},
		kube.LockOptions{Namespace: AdminAccount.Namespace, What: "the other run", Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// The waiting run's credential: rejected once it has waited a while,
	// as the holder's revocation makes it.
	waitingWith := fake.NewClientset()
	reads := 0
	waitingWith.PrependReactor("get", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		reads++
		if reads > 2 {
			return true, nil, apierrors.NewUnauthorized("token revoked")
		}
		obj, err := core.Tracker().Get(schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"},
			a.GetNamespace(), a.(k8stesting.GetAction).GetName())
		return true, obj, err
	})
	r := &run{Runner: &Runner{Clock: clock.RealClock{}}, opts: Options{ClusterID: 7, LockDuration: 5 * time.Second},
		result: &Result{RotatedAt: time.Now().UTC()}}
	if _, err := r.takeLock(t.Context(), &kube.Clients{Core: waitingWith}); !errors.Is(err, kube.ErrLockCredentialRejected) {
		t.Fatalf("taking the lock with a credential revoked meanwhile: %v; want ErrLockCredentialRejected", err)
	}
	if err := holder.Release(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	// Reconnected with the new credential, after the holder released.
	adopted, err := r.takeLock(t.Context(), &kube.Clients{Core: core})
	if err != nil {
		t.Fatal(err)
	}
	defer r.lock.Release(t.Context(), false) //nolint:errcheck // the test's own lock
	if !adopted || r.result.AdoptedFrom != holder.Identity() || r.result.AdoptedAt.Before(r.result.RotatedAt) {
		t.Fatalf("adopted %v from %q at %s; want the rotation of %q, finished after %s", adopted, r.result.AdoptedFrom,
			r.result.AdoptedAt, holder.Identity(), r.result.RotatedAt)
	}
}

// A run that never waited for anyone does not adopt the rotation that
// finished before it asked, even a moment after it started: it may have
// been the end of a rotation this run never overlapped.
func TestALockFreeFromTheStartIsNotAdopted(t *testing.T) {
	core := fake.NewClientset()
	start := time.Now().UTC()
	other, _, err := kube.AcquireLock(t.Context(), &kube.Clients{Core: core},
		kube.LockOptions{Namespace: AdminAccount.Namespace, What: "an earlier run", Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Release(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	r := &run{Runner: &Runner{Clock: clock.RealClock{}}, opts: Options{ClusterID: 8, LockDuration: 5 * time.Second},
		result: &Result{RotatedAt: start}}
	adopted, err := r.takeLock(t.Context(), &kube.Clients{Core: core})
	if err != nil {
		t.Fatal(err)
	}
	defer r.lock.Release(t.Context(), false) //nolint:errcheck // the test's own lock
	if adopted {
		t.Fatalf("a run that waited for nobody adopted %q", r.result.AdoptedFrom)
	}
}
