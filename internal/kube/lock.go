package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// A rotation of a cluster is exclusive: two at once (overlapping cron jobs,
// the incident action beside the scheduled resource) would each revoke the
// other's canaries and credentials and regenerate twice. The coordination
// primitive every cluster has is a coordination.k8s.io Lease, which
// client-go's leader election holds through resourcelock.LeaseLock; this
// holds one the same way (the same record, the same expiry rule: a record
// unchanged for its duration, as this process observed it, has expired),
// but for one rotation rather than for as long as a process runs.

// LockName is the Lease a rotation holds, in the namespace it is taken in.
const LockName = "kubecreds-rotation"

// LockDuration is how long a holder's lease lasts without renewal: a
// holder killed with SIGKILL blocks the next rotation this long at most.
// It renews every third of it.
const LockDuration = 60 * time.Second

// finishedLabel carries, on a released Lease, when the last rotation that
// completed released it (Unix milliseconds): a
// run that overlapped it can tell whether that rotation already did its
// work. finishedByAnnotation names that rotation's holder.
const (
	finishedLabel        = "kubecreds.io/rotation-finished-at"
	finishedByAnnotation = "kubecreds.io/rotation-finished-by"
)

// ErrLockCredentialRejected means the credential the lock was being taken
// with was rejected while waiting: the rotation that held the lock has
// revoked it. The caller reconnects with the current credential.
var ErrLockCredentialRejected = errors.New("the credentials were rejected while waiting for the rotation lock")

// LockOptions choose where the lock is and how its wait is reported.
type LockOptions struct {
	Namespace string
	Name      string // default LockName
	// What this run is, for the holder's identity ("kubecreds_lke_secret_rotation").
	What string
	// Waiting is told, about every 10 s of waiting, who holds the lock.
	Waiting func(holder string, waited time.Duration)
	Clock   clock.Clock
	// Duration is the lease's (default LockDuration).
	Duration time.Duration
}

// Acquired is what taking the lock found.
type Acquired struct {
	// Waited is true when another holder had it first.
	Waited bool
	// Holder is the identity this run waited for ("" when it did not).
	Holder string
	// LastFinished is when the last rotation that completed released the
	// lock (zero when none did), and LastHolder that rotation's identity.
	LastFinished time.Time
	LastHolder   string
}

// Lock is a held rotation lock. It renews itself, with the clients last
// given to Use, until Release.
type Lock struct {
	mu        sync.Mutex
	namespace string
	name      string
	lease     *coordinationv1.Lease // as last read or written
	clients   *Clients
	identity  string
	duration  time.Duration
	clk       clock.Clock
	acquired  time.Time
	lost      bool
	stop      chan struct{}
	done      chan struct{}
	now       chan struct{} // asks for a renewal at once
}

// lockIdentity names this run, for the holder of the lock: what it is,
// the machine, and the process (pid and start time).
func lockIdentity(what string) string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s on %s, pid %d started %s (%s)", what, host, os.Getpid(), ProcessStart(os.Getpid()), hex.EncodeToString(b))
}

var identityProcess = regexp.MustCompile(` on (\S+), pid (\d+) started (\d+) \(`)

// ended are the identities of this process's runs that have released (or
// tried to release) their lock: one whose release failed (it ended with no
// working credential) is not waited out by a later run of this process.
var ended sync.Map

// HolderEnded reports whether identity is a run of this process that ended.
func HolderEnded(identity string) bool {
	_, ok := ended.Load(identity)
	return ok
}

// holderGone tells whether identity is a run on this machine that is over:
// its process is gone (a holder killed with SIGKILL), or it is a run of
// this process that ended. Its lease need not be waited out.
func holderGone(identity string) bool {
	if HolderEnded(identity) {
		return true
	}
	m := identityProcess.FindStringSubmatch(identity)
	if m == nil {
		return false
	}
	host, _ := os.Hostname()
	pid, _ := strconv.Atoi(m[2])
	return m[1] == host && pid != os.Getpid() && ProcessStart(pid) != m[3]
}

// ProcessStart is a process's start time as /proc/<pid>/stat has it
// (field 22): with the pid, it names one process even after the pid is
// reused. "" when it cannot be read (not Linux, or no such process).
func ProcessStart(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// AcquireLock takes the rotation lock with k, waiting while another holder
// renews it. It gives up when ctx ends, or with ErrLockCredentialRejected
// when k's credentials stop working meanwhile.
func AcquireLock(ctx context.Context, k *Clients, opts LockOptions) (*Lock, Acquired, error) {
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	if opts.Duration <= 0 {
		opts.Duration = LockDuration
	}
	if opts.Name == "" {
		opts.Name = LockName
	}
	l := &Lock{clients: k, namespace: opts.Namespace, name: opts.Name, identity: lockIdentity(opts.What), clk: clk, duration: opts.Duration}
	var got Acquired
	var observed []byte
	var observedAt time.Time
	start, lastSaid := clk.Now(), time.Time{}
	for {
		record, raw, err := l.get(ctx)
		now := clk.Now()
		switch {
		case apierrors.IsNotFound(err):
			err = l.create(ctx, l.record(now, now))
			if err == nil {
				l.start(now)
				return l, got, nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return nil, got, l.failed(err)
			}
			continue
		case err != nil:
			if ctx.Err() == nil && k.Retry.Transient(err) {
				if err := retry.Sleep(ctx, clk, time.Second); err != nil {
					return nil, got, err
				}
				continue
			}
			return nil, got, l.failed(err)
		}
		got.LastFinished, got.LastHolder = finishedAt(l.lease.Labels), l.lease.Annotations[finishedByAnnotation]
		if string(raw) != string(observed) {
			observed, observedAt = raw, now
		}
		free := record.HolderIdentity == "" || record.HolderIdentity == l.identity || holderGone(record.HolderIdentity) ||
			now.After(observedAt.Add(time.Duration(record.LeaseDurationSeconds)*time.Second))
		if free {
			acquire := now
			if record.HolderIdentity == l.identity {
				acquire = record.AcquireTime.Time
			}
			err := l.update(ctx, l.record(acquire, now), nil, nil)
			if err == nil {
				l.start(now)
				return l, got, nil
			}
			if !apierrors.IsConflict(err) {
				return nil, got, l.failed(err)
			}
			continue // someone else took it first: read it again
		}
		got.Waited, got.Holder = true, record.HolderIdentity
		if opts.Waiting != nil && now.Sub(lastSaid) >= 10*time.Second {
			opts.Waiting(record.HolderIdentity, now.Sub(start))
			lastSaid = now
		}
		if err := retry.Sleep(ctx, clk, time.Second); err != nil {
			return nil, got, fmt.Errorf("waited %s for the rotation lock held by %s: %w", now.Sub(start).Round(time.Second), record.HolderIdentity, err)
		}
	}
}

func (l *Lock) failed(err error) error {
	if apierrors.IsUnauthorized(err) {
		return ErrLockCredentialRejected
	}
	return fmt.Errorf("take the rotation lock (Lease %s/%s): %w", l.namespace, l.name, err)
}

// get reads the Lease and its record, as resourcelock.LeaseLock does.
func (l *Lock) get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	lease, err := l.clients.Core.CoordinationV1().Leases(l.namespace).Get(ctx, l.name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	l.lease = lease
	record := resourcelock.LeaseSpecToLeaderElectionRecord(&lease.Spec)
	raw, err := json.Marshal(record)
	return record, raw, err
}

func (l *Lock) create(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: l.name, Namespace: l.namespace,
			Annotations: map[string]string{"kubecreds.io/purpose": "one credential rotation of this cluster at a time"}},
		Spec: resourcelock.LeaderElectionRecordToLeaseSpec(&rec),
	}
	created, err := l.clients.Core.CoordinationV1().Leases(l.namespace).Create(ctx, lease, metav1.CreateOptions{})
	if err == nil {
		l.lease = created
	}
	return err
}

// update writes rec over the Lease last read (its resourceVersion makes a
// concurrent change a conflict), setting labels.
func (l *Lock) update(ctx context.Context, rec resourcelock.LeaderElectionRecord, labels, annotations map[string]string) error {
	lease := l.lease.DeepCopy()
	lease.Spec = resourcelock.LeaderElectionRecordToLeaseSpec(&rec)
	for k, v := range labels {
		if lease.Labels == nil {
			lease.Labels = map[string]string{}
		}
		lease.Labels[k] = v
	}
	for k, v := range annotations {
		if lease.Annotations == nil {
			lease.Annotations = map[string]string{}
		}
		lease.Annotations[k] = v
	}
	updated, err := l.clients.Core.CoordinationV1().Leases(l.namespace).Update(ctx, lease, metav1.UpdateOptions{})
	if err == nil {
		l.lease = updated
	}
	return err
}

func (l *Lock) record(acquired, now time.Time) resourcelock.LeaderElectionRecord {
	return resourcelock.LeaderElectionRecord{
		HolderIdentity:       l.identity,
		LeaseDurationSeconds: max(1, int(l.duration/time.Second)),
		AcquireTime:          metav1.NewTime(acquired),
		RenewTime:            metav1.NewTime(now),
	}
}

func finishedAt(labels map[string]string) time.Time {
	if ms, err := strconv.ParseInt(labels[finishedLabel], 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms)
	}
	return time.Time{}
}

// start begins the renewals.
func (l *Lock) start(now time.Time) {
	l.acquired = now
	l.stop, l.done, l.now = make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	go l.renew()
}

// Use makes the renewals use k, the credential the rotation has now, and
// renews with it at once. Between a re-created admin account and the new
// kubeconfig a rotation has no working credential and cannot renew; a
// waiter cannot read the lease then either, and one that reads it again
// afterwards counts its expiry from that read (as client-go's leader
// election does), so the holder's renewal with the new kubeconfig comes
// first.
func (l *Lock) Use(k *Clients) {
	if l == nil || k == nil {
		return
	}
	l.mu.Lock()
	l.clients = k
	l.mu.Unlock()
	select {
	case l.now <- struct{}{}: // renew with it at once
	default:
	}
}

func (l *Lock) renew() {
	defer close(l.done)
	t := time.NewTicker(max(l.duration/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		case <-l.now:
		}
		l.mu.Lock()
		ctx, cancel := context.WithTimeout(context.Background(), max(l.duration/3, time.Second))
		err := l.update(ctx, l.record(l.acquired, l.clk.Now()), nil, nil)
		cancel()
		if apierrors.IsConflict(err) {
			// Another run took it: the lease had expired as it saw it.
			l.lost = true
		}
		// Any other failure (no working credential for a moment while
		// a new kubeconfig is prepared) is tried again at the next tick.
		l.mu.Unlock()
	}
}

// Identity is the holder identity this run writes into the Lease.
func (l *Lock) Identity() string { return l.identity }

// Release stops the renewals and frees the lock; finished records that the
// rotation completed, for runs waiting for it. A release that fails leaves
// the lease to expire.
func (l *Lock) Release(ctx context.Context, finished bool) error {
	if l == nil {
		return nil
	}
	defer ended.Store(l.identity, true)
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost {
		return nil
	}
	now := l.clk.Now()
	rec := l.record(l.acquired, now)
	rec.HolderIdentity = ""
	rec.LeaseDurationSeconds = 1
	var labels, annotations map[string]string
	if finished {
		labels = map[string]string{finishedLabel: strconv.FormatInt(now.UnixMilli(), 10)}
		annotations = map[string]string{finishedByAnnotation: l.identity}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := l.clients.Retry.Do(ctx, func() error {
		err := l.update(ctx, rec, labels, annotations)
		if apierrors.IsConflict(err) {
			// A renewal's answer was lost: read it again and retry.
			if _, _, gerr := l.get(ctx); gerr == nil {
				return retry.Retryable(err)
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("release the rotation lock: %w", err)
	}
	return nil
}
