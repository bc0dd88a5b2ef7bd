package lke

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// One rotation of a cluster at a time (kube.AcquireLock): the lock is the
// Lease kube-system/kubecreds-rotation, taken before anything changes and
// renewed with whichever credential the run has (the old admin token, the
// bridge while lke-admin is re-created and the new kubeconfig prepared,
// then the new kubeconfig), released at the end.
//
// A run that finds the served kubeconfig already rejected cannot read the
// Lease: another run may be between re-creating lke-admin and the new
// kubeconfig, or a run was interrupted there. It waits while a run on this
// machine that holds the cluster is alive (a holder file), and otherwise
// for LockDuration without a sign of progress (a 503 "not yet available" or a
// new kubeconfig is one), then resumes the interrupted rotation.

// HolderFile is where a run on this machine says it rotates a cluster (the
// process's pid and start time, then the run's lock identity); a run that
// ends unfinished leaves it.
func HolderFile(clusterID int) string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("kubecreds-rotation-lke%d.pid", clusterID))
}

// claimHolderFile records this run (its process, and its lock identity)
// as the one rotating the cluster.
func claimHolderFile(clusterID int, identity string) {
	pid := os.Getpid()
	_ = os.WriteFile(HolderFile(clusterID), []byte(fmt.Sprintf("%d %s\n%s\n", pid, kube.ProcessStart(pid), identity)), 0o600)
}

// dropHolderFile removes the record, if it is this run's. A run that ends
// unfinished keeps it: the next run here then knows at once that the
// rotation which left the kubeconfig rejected is over.
func dropHolderFile(clusterID int, identity string) {
	if _, _, id, ok := readHolderFile(clusterID); ok && id == identity {
		_ = os.Remove(HolderFile(clusterID))
	}
}

func readHolderFile(clusterID int) (pid int, start, identity string, ok bool) {
	raw, err := os.ReadFile(HolderFile(clusterID))
	if err != nil {
		return 0, "", "", false
	}
	first, rest, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(first)
	if len(f) == 0 {
		return 0, "", "", false
	}
	pid, err = strconv.Atoi(f[0])
	if err != nil {
		return 0, "", "", false
	}
	if len(f) > 1 {
		start = f[1]
	}
	return pid, start, strings.TrimSpace(rest), true
}

// holderOnThisMachine tells whether a run on this machine rotates the
// cluster: alive, or known dead (its process is gone), or unknown.
type holderState int

const (
	holderUnknown holderState = iota
	holderAlive
	holderDead
)

func localHolder(clusterID int) holderState {
	pid, start, identity, ok := readHolderFile(clusterID)
	switch {
	case !ok:
		return holderUnknown
	case pid == os.Getpid() && kube.HolderEnded(identity):
		return holderDead // an earlier run of this process, over
	case pid == os.Getpid():
		return holderAlive
	}
	now := kube.ProcessStart(pid)
	switch {
	case now == "" && start != "":
		return holderDead // it had a start time; the process is gone
	case now == "":
		return holderUnknown
	case start == "" || now == start:
		return holderAlive
	default:
		return holderDead // the pid was reused
	}
}

// takeLock takes the rotation lock with k. adopted is true when this run
// waited for another, and a rotation completed after this run started:
// that rotation did what this one was asked to. The wait need not have
// been in this call: the holder revokes the credential a run waits with
// (ErrLockCredentialRejected), and may have released the lock by the time
// the run has reconnected and asks again.
func (r *run) takeLock(ctx context.Context, k *kube.Clients) (adopted bool, err error) {
	lock, got, err := kube.AcquireLock(ctx, k, kube.LockOptions{
		Namespace: AdminAccount.Namespace,
		What:      fmt.Sprintf("rotation of LKE cluster %d", r.opts.ClusterID),
		Clock:     clock.RealClock{},
		Duration:  r.opts.LockDuration,
		Waiting: func(holder string, waited time.Duration) {
			r.note(ctx, StepCheckAccess+": waiting for the rotation under way",
				map[string]any{"cluster_id": r.opts.ClusterID, "holder": holder, "waited_ms": waited.Milliseconds()})
		},
	})
	if got.Waited {
		r.waitedFor = got.Holder
	}
	if err != nil {
		return false, err
	}
	r.lock = lock
	claimHolderFile(r.opts.ClusterID, lock.Identity())
	if r.waitedFor == "" || got.LastFinished.IsZero() || got.LastFinished.Before(r.result.RotatedAt) {
		return false, nil
	}
	r.result.AdoptedFrom, r.result.AdoptedAt = got.LastHolder, got.LastFinished
	if r.result.AdoptedFrom == "" {
		r.result.AdoptedFrom = r.waitedFor
	}
	return true, nil
}

// releaseLock frees the lock at the end of the run; finished says the
// rotation completed.
func (r *run) releaseLock(ctx context.Context, finished bool) {
	if r.lock == nil {
		return
	}
	if err := r.lock.Release(ctx, finished); err != nil {
		r.note(ctx, "release the rotation lock: it expires by itself", map[string]any{"cluster_id": r.opts.ClusterID, "error": err.Error()})
	}
	if finished {
		dropHolderFile(r.opts.ClusterID, r.lock.Identity())
	}
}

// refetchCurrent fetches the served kubeconfig again (waiting through a
// regeneration under way) and connects with it; it reports whether its
// token changed.
func (r *run) refetchCurrent(ctx context.Context) (changed bool, err error) {
	kc, err := FetchKubeconfig(ctx, r.Poll, r.opts.ClusterID, r.opts.KubeconfigPoll)
	if err != nil {
		return false, err
	}
	changed = kube.TokenOf(kc) != kube.TokenOf(r.oldKubeconfig)
	if !changed {
		return false, nil
	}
	old, err := r.Connect(kc)
	if err != nil {
		return false, err
	}
	r.oldKubeconfig, r.old = kc, old
	r.result.PreviousKubeconfigSHA256 = kubeconfigSHA256(kc)
	return true, nil
}

// awaitWorkingKubeconfig waits, when the served kubeconfig is rejected,
// for a rotation under way to serve a working one. It returns false when
// none is under way: the kubeconfig stayed rejected for LockDuration with no
// sign of progress, or the run on this machine that held it is gone.
func (r *run) awaitWorkingKubeconfig(ctx context.Context) (bool, error) {
	since, start, lastSaid := r.Clock.Now(), r.Clock.Now(), time.Time{}
	for {
		switch localHolder(r.opts.ClusterID) {
		case holderDead:
			return false, nil
		case holderAlive:
			since = r.Clock.Now()
		}
		if r.Clock.Since(since) >= r.opts.LockDuration {
			return false, nil
		}
		if r.Clock.Since(lastSaid) >= 10*time.Second {
			r.note(ctx, StepCheckAccess+": the served kubeconfig is rejected; waiting for a rotation under way to serve a new one",
				map[string]any{"cluster_id": r.opts.ClusterID, "waited_ms": r.Clock.Since(start).Milliseconds()})
			lastSaid = r.Clock.Now()
		}
		if err := retry.Sleep(ctx, clock.RealClock{}, min(2*time.Second, r.opts.LockDuration/4+time.Millisecond)); err != nil {
			return false, err
		}
		changed, err := r.refetchCurrent(ctx)
		if err != nil {
			return false, err
		}
		if !changed {
			continue
		}
		since = r.Clock.Now()
		ok, err := r.old.Authenticates(ctx)
		if err != nil {
			return false, err
		}
		if ok {
			// A new kubeconfig that works: another run regenerated it
			// while this one waited.
			if r.waitedFor == "" {
				r.waitedFor = "the run that served a new kubeconfig"
			}
			return true, nil
		}
	}
}

// errAdopted ends a run that adopted another's rotation.
var errAdopted = errors.New("adopted")
