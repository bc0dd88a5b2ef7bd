package ske

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// API is what the rotation needs of the SKE API (*Client has it).
type API interface {
	GetCluster(ctx context.Context, ref ClusterRef) (*Cluster, error)
	StartCredentialsRotation(ctx context.Context, ref ClusterRef) error
	CompleteCredentialsRotation(ctx context.Context, ref ClusterRef) error
}

var _ API = (*Client)(nil)

// ErrNotRotatable means the cluster is in a state where its credentials
// cannot be rotated (hibernated, unhealthy, being created or deleted).
var ErrNotRotatable = errors.New("the cluster's credentials cannot be rotated now")

// Rotator runs the two phases of SKE's credentials rotation, each resuming
// whatever it finds: a phase already under way is waited for, not
// requested again.
type Rotator struct {
	API API
	// Poll is the longest wait between reads of the cluster while a phase
	// runs (default 10s): the first come after 500 ms, then 1.5 times
	// longer each, so that a phase is noticed soon after it ends without
	// reading a 45-minute phase hundreds of times.
	Poll time.Duration
	// Transient says whether an error is worth asking again for (nil:
	// none is); MaxRetries bounds how often in a row (waiting 1 s, doubling
	// up to 10 s, or as long as a Retry-After asks).
	Transient  func(err error) bool
	MaxRetries int
	// Log reports progress (may be nil).
	Log func(ctx context.Context, msg string, fields map[string]any)
	// Grace is how long, after a start or complete the API accepted, the
	// cluster may still show the phase from before (eventual consistency)
	// before that counts as an error (default 2m).
	Grace time.Duration
	// ActedWindow is how long, after a start or complete whose answer was
	// lost, the cluster is watched every ActedPoll for a sign that the API
	// acted before the request is sent again (defaults 10s and 1s).
	ActedWindow, ActedPoll time.Duration
}

func (r *Rotator) log(ctx context.Context, msg string, fields map[string]any) {
	if r.Log != nil {
		r.Log(ctx, msg, fields)
	}
}

// Rotatable checks, before anything is changed, that the cluster can be
// rotated: an error wrapping ErrNotRotatable names its state and what to do.
func Rotatable(c *Cluster) error {
	switch s := c.Status.Aggregated; s {
	case StateHibernated, StateHibernating, StateWakingUp:
		return fmt.Errorf("%w: cluster %s is %s; wake it up (its hibernation schedule, or the STACKIT portal) and apply again", ErrNotRotatable, c.Name, s)
	case StateUnhealthy:
		return fmt.Errorf("%w: cluster %s is %s; repair it (see its status in the STACKIT portal) and apply again", ErrNotRotatable, c.Name, s)
	case StateCreating, StateDeleting:
		return fmt.Errorf("%w: cluster %s is %s", ErrNotRotatable, c.Name, s)
	}
	if c.Status.Hibernated {
		return fmt.Errorf("%w: cluster %s is hibernated; wake it up and apply again", ErrNotRotatable, c.Name)
	}
	return nil
}

// Prepared is the outcome of Prepare.
type Prepared struct {
	Cluster *Cluster
	// Started is true when this call started the rotation; false when it
	// found one already under way or prepared (and waited for or adopted it).
	Started bool
	// Found is the phase the cluster was in when Prepare first read it.
	Found string
}

// Prepare makes sure a credentials rotation is PREPARED: it starts one on a
// cluster whose last rotation is over (NEVER, COMPLETED; a COMPLETING one
// is waited out first), waits for one that is PREPARING, and adopts one
// that is PREPARED. The cluster is checked first: a hibernated or unhealthy
// one fails before anything is changed.
func (r *Rotator) Prepare(ctx context.Context, ref ClusterRef) (*Prepared, error) {
	c, err := r.get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := Rotatable(c); err != nil {
		return nil, err
	}
	out := &Prepared{Found: c.Status.CredentialsRotation.Phase}
	switch c.Status.CredentialsRotation.Phase {
	case PhasePrepared:
		r.log(ctx, "SKE credentials rotation already prepared: adopting it", map[string]any{"cluster": ref.String()})
		out.Cluster = c
		return out, nil
	case PhasePreparing:
		r.log(ctx, "SKE credentials rotation already preparing: waiting for it", map[string]any{"cluster": ref.String()})
		out.Cluster, err = r.waitFor(ctx, ref, PhasePrepared, PhasePreparing, nil)
		return out, err
	case PhaseCompleting:
		r.log(ctx, "the previous SKE credentials rotation is completing: waiting for it before starting", map[string]any{"cluster": ref.String()})
		if c, err = r.waitFor(ctx, ref, PhaseCompleted, PhaseCompleting, nil); err != nil {
			return nil, err
		}
	}
	before := c.Status.CredentialsRotation.LastInitiationTime
	if err := r.act(ctx, ref, "start", r.API.StartCredentialsRotation, func(c *Cluster) bool { return started(c, before) }); err != nil {
		return nil, err
	}
	out.Started = true
	r.log(ctx, "SKE credentials rotation started; waiting until it is prepared (the nodes are rolled)", map[string]any{"cluster": ref.String()})
	out.Cluster, err = r.waitFor(ctx, ref, PhasePrepared, PhasePreparing, func(c *Cluster) bool { return !started(c, before) })
	return out, err
}

// started tells whether the cluster shows a rotation started after before.
func started(c *Cluster, before *time.Time) bool {
	rot := c.Status.CredentialsRotation
	if rot.Phase == PhasePreparing || rot.Phase == PhasePrepared {
		return true
	}
	return rot.LastInitiationTime != nil && (before == nil || rot.LastInitiationTime.After(*before))
}

// Completed is the outcome of Complete.
type Completed struct {
	Cluster *Cluster
	// Completed is true when this call completed the rotation; false when
	// it found it completing or completed already.
	Completed bool
	// Found is the phase the cluster was in when Complete first read it.
	Found string
}

// Complete makes sure the credentials rotation is COMPLETED: it completes a
// PREPARED one (waiting first for one still PREPARING), waits for one
// COMPLETING, and returns at once when it is COMPLETED already. A cluster
// that never started one is an error.
func (r *Rotator) Complete(ctx context.Context, ref ClusterRef) (*Completed, error) {
	c, err := r.get(ctx, ref)
	if err != nil {
		return nil, err
	}
	out := &Completed{Found: c.Status.CredentialsRotation.Phase}
	switch c.Status.CredentialsRotation.Phase {
	case PhaseCompleted:
		out.Cluster = c
		return out, nil
	case PhaseCompleting:
		out.Cluster, err = r.waitFor(ctx, ref, PhaseCompleted, PhaseCompleting, nil)
		return out, err
	case PhaseNever, "":
		return nil, fmt.Errorf("cluster %s has no credentials rotation to complete (phase %s)", ref, c.Status.CredentialsRotation.Phase)
	case PhasePreparing:
		if c, err = r.waitFor(ctx, ref, PhasePrepared, PhasePreparing, nil); err != nil {
			return nil, err
		}
	}
	if err := Rotatable(c); err != nil {
		return nil, err
	}
	if err := r.act(ctx, ref, "complete", r.API.CompleteCredentialsRotation, func(c *Cluster) bool {
		p := c.Status.CredentialsRotation.Phase
		return p == PhaseCompleting || p == PhaseCompleted
	}); err != nil {
		return nil, err
	}
	out.Completed = true
	r.log(ctx, "SKE credentials rotation completing; waiting until the old credentials are gone", map[string]any{"cluster": ref.String()})
	out.Cluster, err = r.waitFor(ctx, ref, PhaseCompleted, PhaseCompleting, func(c *Cluster) bool {
		return c.Status.CredentialsRotation.Phase == PhasePrepared
	})
	return out, err
}

// act sends start or complete once. After a failure that may have come
// after the API acted (no answer, a timeout, 5xx), the cluster is watched
// for ActedWindow for a sign of it (SKE may show a new phase only once its
// reconciliation picks the request up), and the request is sent again only
// if none shows. A resent request the API refuses (a 400 "already in
// progress") is checked the same way once more before it counts as failed.
func (r *Rotator) act(ctx context.Context, ref ClusterRef, what string, send func(context.Context, ClusterRef) error, tookEffect func(*Cluster) bool) error {
	lost := false
	for attempt := 0; ; attempt++ {
		err := send(ctx, ref)
		if err == nil {
			return nil
		}
		if lost && r.actedAfterAll(ctx, ref, what, tookEffect, 1) {
			return nil
		}
		retry, after := r.retry(err, attempt)
		if !retry || ctx.Err() != nil {
			return fmt.Errorf("%s the credentials rotation of %s: %w", what, ref, err)
		}
		lost = true
		poll, window := r.actedPolls()
		if r.actedAfterAll(ctx, ref, what, tookEffect, int(window/poll)) {
			return nil
		}
		if sleep(ctx, max(after-window, 0)) != nil {
			return fmt.Errorf("%s the credentials rotation of %s: %w", what, ref, err)
		}
	}
}

// actedPolls is how often and how long act watches the cluster after an
// answer was lost (defaults: every second for 10 s).
func (r *Rotator) actedPolls() (poll, window time.Duration) {
	poll, window = r.ActedPoll, r.ActedWindow
	if poll <= 0 {
		poll = time.Second
	}
	if window <= 0 {
		window = 10 * time.Second
	}
	return poll, max(window, poll)
}

// actedAfterAll reads the cluster up to reads times, ActedPoll apart, and
// reports whether one shows that the request took effect.
func (r *Rotator) actedAfterAll(ctx context.Context, ref ClusterRef, what string, tookEffect func(*Cluster) bool, reads int) bool {
	poll, _ := r.actedPolls()
	for i := range max(reads, 1) {
		if i > 0 && sleep(ctx, poll) != nil {
			return false
		}
		if c, err := r.get(ctx, ref); err == nil && tookEffect(c) {
			r.log(ctx, "the answer to "+what+" was lost, but the API had acted: not sending it again", map[string]any{"cluster": ref.String()})
			return true
		}
	}
	return false
}

// waitFor polls the cluster until its phase is want. While it is during
// (or, for Grace after an accepted request, stale says the cluster still
// shows the phase from before), it keeps polling; any other phase is an
// error.
func (r *Rotator) waitFor(ctx context.Context, ref ClusterRef, want, during string, stale func(*Cluster) bool) (*Cluster, error) {
	poll := r.Poll
	if poll <= 0 {
		poll = 10 * time.Second
	}
	grace := r.Grace
	if grace <= 0 {
		grace = 2 * time.Minute
	}
	start := time.Now()
	var last *Cluster
	initial := min(500*time.Millisecond, poll)
	backoff := wait.Backoff{Duration: initial, Factor: 1.5, Jitter: 0.1, Steps: 1 << 30, Cap: poll}
	err := backoff.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		c, err := r.get(ctx, ref)
		if err != nil {
			return false, err
		}
		last = c
		switch p := c.Status.CredentialsRotation.Phase; {
		case p == want:
			return true, nil
		case p == during:
			return false, nil
		case stale != nil && stale(c) && time.Since(start) < grace:
			return false, nil
		default:
			return false, fmt.Errorf("cluster %s is in credentials rotation phase %s (state %s) while waiting for %s",
				ref, p, c.Status.Aggregated, want)
		}
	})
	if err != nil && ctx.Err() != nil && last != nil {
		return nil, fmt.Errorf("waiting for cluster %s to be %s: still %s when the time ran out (%w); apply again to keep waiting",
			ref, want, last.Status.CredentialsRotation.Phase, ctx.Err())
	}
	return last, err
}

// get reads the cluster, asking again after transient errors.
func (r *Rotator) get(ctx context.Context, ref ClusterRef) (*Cluster, error) {
	for attempt := 0; ; attempt++ {
		c, err := r.API.GetCluster(ctx, ref)
		if err == nil {
			return c, nil
		}
		retry, after := r.retry(err, attempt)
		if !retry || ctx.Err() != nil || StatusCode(err) == http.StatusNotFound {
			return nil, fmt.Errorf("get cluster %s: %w", ref, err)
		}
		if sleep(ctx, after) != nil {
			return nil, fmt.Errorf("get cluster %s: %w", ref, err)
		}
	}
}

// retry says whether to ask again after the attempt-th failure in a row
// (from 0), and how long to wait first.
func (r *Rotator) retry(err error, attempt int) (bool, time.Duration) {
	if r.Transient == nil || attempt >= r.MaxRetries || !r.Transient(err) {
		return false, 0
	}
	d := min(time.Second<<min(attempt, 4), 10*time.Second)
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > d {
		d = ra.RetryAfter()
	}
	return true, d
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
