package kube

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// A second run waits while the first holds the lock, and learns, once the
// first releases it as finished, that a rotation completed meanwhile.
func TestLockWaitsForTheHolderAndTellsItFinished(t *testing.T) {
	k := &Clients{Core: fake.NewClientset()}
	opts := LockOptions{Namespace: "kube-system", What: "test", Duration: 5 * time.Second}
	first, got, err := AcquireLock(t.Context(), k, opts)
	if err != nil || got.Waited {
		t.Fatalf("first: %+v, %v", got, err)
	}
	type acquired struct {
		l   *Lock
		got Acquired
		err error
	}
	second := make(chan acquired, 1)
	start := time.Now()
	go func() {
		l, got, err := AcquireLock(t.Context(), k, opts)
		second <- acquired{l, got, err}
	}()
	select {
	case s := <-second:
		t.Fatalf("the second run got the lock the first holds: %+v, %v", s.got, s.err)
	case <-time.After(1500 * time.Millisecond):
	}
	if err := first.Release(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	s := <-second
	if s.err != nil || !s.got.Waited || s.got.Holder == "" || s.got.LastFinished.Before(start) || s.got.LastHolder != first.Identity() {
		t.Fatalf("second: %+v, %v; want it to have waited for a rotation that finished after it started", s.got, s.err)
	}
	_ = s.l.Release(t.Context(), false)
}

// A holder that stopped renewing is waited out for the lease's duration,
// counted from when this run first saw its record, not from its clock.
func TestLockTakesAnExpiredLeaseAfterItsDuration(t *testing.T) {
	holder, secs := "someone on another-host, pid 1 started 1 (x)", int32(2)
	old := metav1.NewMicroTime(time.Now().Add(-time.Hour)) // a skewed clock changes nothing
	k := &Clients{Core: fake.NewClientset(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: LockName},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &old, AcquireTime: &old},
	})}
	start := time.Now()
	l, got, err := AcquireLock(t.Context(), k, LockOptions{Namespace: "kube-system", What: "test"})
	took := time.Since(start)
	if err != nil || !got.Waited || got.Holder != holder {
		t.Fatalf("%+v, %v", got, err)
	}
	if took < 2*time.Second || took > 5*time.Second {
		t.Errorf("took the lock after %s; want the lease's 2 s from the first look", took)
	}
	_ = l.Release(t.Context(), false)
}

// A holder on this machine whose process is gone (killed with SIGKILL) is
// not waited out.
func TestLockTakesAGoneHoldersLeaseAtOnce(t *testing.T) {
	host, _ := os.Hostname()
	holder, secs := fmt.Sprintf("killed on %s, pid %d started 12345 (x)", host, 1<<22+7), int32(3600)
	now := metav1.NewMicroTime(time.Now())
	k := &Clients{Core: fake.NewClientset(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: LockName},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, RenewTime: &now},
	})}
	if ProcessStart(os.Getpid()) == "" {
		t.Fatal("no /proc/<pid>/stat here: this needs Linux, where a gone holder is told from a live one")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	l, _, err := AcquireLock(ctx, k, LockOptions{Namespace: "kube-system", What: "test"})
	if err != nil {
		t.Fatalf("the lease of a holder whose process is gone was waited for: %v", err)
	}
	_ = l.Release(t.Context(), false)
}
