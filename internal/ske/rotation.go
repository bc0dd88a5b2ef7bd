package ske

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
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
	// Retry is how reads, starts and completes failing with a transient
	// error (the client's APIError and TokenError say which are) are asked
	// again: the one policy of the retry package.
	Retry retry.Policy
	// Clock is the time the waits run on (default the real one).
	Clock clock.Clock
	// Log reports progress (may be nil); Warn what the user should see
	// (nil: Log).
	Log, Warn func(ctx context.Context, msg string, fields map[string]any)
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
	// found one already under way or prepared (and waited for or adopted
	// it), including one someone else started while this call asked.
	Started bool
	// Found is the phase the cluster was in when Prepare first read it.
	Found string
	// Elsewhere is true when the API refused this call's start because
	// someone else had just started one (which was then adopted).
	Elsewhere bool
}

// Prepare makes sure a credentials rotation is PREPARED: it starts one on a
// cluster whose last rotation is over (NEVER, COMPLETED; a COMPLETING one
// is waited out first), waits for one that is PREPARING, and adopts one
// that is PREPARED. Before it starts one, the cluster is checked: a
// hibernated or unhealthy one fails before anything is changed. A rotation
// already under way is waited for whatever the cluster's state (a node
// roll that meets unready nodes, or a hibernation, goes on once they are
// fixed), with the state and errors in the progress log. A start the API
// refuses because a rotation was started meanwhile (the portal, another
// pipeline) adopts that rotation.
func (r *Rotator) Prepare(ctx context.Context, ref ClusterRef) (*Prepared, error) {
	c, err := r.known(ctx, ref)
	if err != nil {
		return nil, err
	}
	out := &Prepared{Found: c.Status.CredentialsRotation.Phase}
	switch c.Status.CredentialsRotation.Phase {
	case PhasePrepared:
		r.log(ctx, "SKE credentials rotation already prepared: adopting it", map[string]any{"cluster": ref.String()})
		out.Cluster = c
		return out, nil
	case PhasePreparing:
		r.log(ctx, "SKE credentials rotation already preparing: waiting for it", map[string]any{"cluster": ref.String(), "status": c.Status.Problems()})
		out.Cluster, err = r.waitFor(ctx, ref, PhasePrepared, PhasePreparing, nil)
		return out, err
	case PhaseCompleting:
		r.log(ctx, "the previous SKE credentials rotation is completing: waiting for it before starting", map[string]any{"cluster": ref.String()})
		if c, err = r.waitFor(ctx, ref, PhaseCompleted, PhaseCompleting, nil); err != nil {
			return nil, err
		}
	}
	if err := Rotatable(c); err != nil {
		return nil, err
	}
	before := c.Status.CredentialsRotation.LastInitiationTime
	acted, err := r.act(ctx, ref, "start", r.API.StartCredentialsRotation, func(c *Cluster) bool { return started(c, before) })
	if err != nil {
		return nil, err
	}
	out.Started, out.Elsewhere = acted != retry.Adopted, acted == retry.Adopted
	if acted == retry.Adopted {
		r.log(ctx, "the SKE API refused the start because a credentials rotation was started meanwhile: adopting that one", map[string]any{"cluster": ref.String()})
	} else {
		r.log(ctx, "SKE credentials rotation started; waiting until it is prepared (the nodes are rolled)", map[string]any{"cluster": ref.String()})
	}
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
	// it found it completing or completed already, or someone else
	// completed it while this call asked.
	Completed bool
	// Found is the phase the cluster was in when Complete first read it.
	Found string
	// Elsewhere is true when the API refused this call's complete because
	// someone else had just completed it.
	Elsewhere bool
}

// Complete makes sure the credentials rotation is COMPLETED: it completes a
// PREPARED one (waiting first for one still PREPARING), waits for one
// COMPLETING, and returns at once when it is COMPLETED already. A cluster
// that never started one is an error.
func (r *Rotator) Complete(ctx context.Context, ref ClusterRef) (*Completed, error) {
	c, err := r.known(ctx, ref)
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
	completing := func(c *Cluster) bool {
		p := c.Status.CredentialsRotation.Phase
		return p == PhaseCompleting || p == PhaseCompleted
	}
	acted, err := r.act(ctx, ref, "complete", r.API.CompleteCredentialsRotation, completing)
	if err != nil {
		return nil, err
	}
	out.Completed, out.Elsewhere = acted != retry.Adopted, acted == retry.Adopted
	if acted == retry.Adopted {
		r.log(ctx, "the SKE API refused the complete because the rotation was completed meanwhile: adopting that", map[string]any{"cluster": ref.String()})
	} else {
		r.log(ctx, "SKE credentials rotation completing; waiting until the old credentials are gone", map[string]any{"cluster": ref.String()})
	}
	out.Cluster, err = r.waitFor(ctx, ref, PhaseCompleted, PhaseCompleting, func(c *Cluster) bool {
		return c.Status.CredentialsRotation.Phase == PhasePrepared
	})
	return out, err
}

// act sends start or complete once, with retry.ActOnce. After a failure
// that may have come after the API acted (no answer, a timeout, 5xx), the
// cluster is watched for ActedWindow for a sign of it (SKE may show a new
// phase only once its reconciliation picks the request up), and the request
// is sent again only if none shows. A request the API refuses (400, 409:
// "already in progress", "not prepared") is checked the same way before it
// counts as failed: the change it asked for may have been asked by someone
// else (or by this call's lost first attempt) just before. Sending again
// when the cluster cannot be read is safe: SKE refuses a second start or
// complete rather than performing it twice.
func (r *Rotator) act(ctx context.Context, ref ClusterRef, what string, send func(context.Context, ClusterRef) error, tookEffect func(*Cluster) bool) (retry.Outcome, error) {
	poll, window := r.actedPolls()
	res, err := retry.ActOnce(ctx, retry.Act{
		Send: func(ctx context.Context) error { return send(ctx, ref) },
		TookEffect: func(ctx context.Context) (bool, error) {
			c, err := r.get(ctx, ref)
			if err != nil {
				return false, err
			}
			if tookEffect(c) {
				r.log(ctx, "the cluster shows the "+what+" already: not sending it again", map[string]any{"cluster": ref.String()})
				return true, nil
			}
			return false, nil
		},
		Watch:            func(error) time.Duration { return window },
		Refused:          refused,
		RefusedWatch:     window,
		Poll:             poll,
		ResendWhenUnsure: true,
		Policy:           r.Retry,
		Clock:            r.clock(),
	})
	if err != nil {
		return res.Outcome, fmt.Errorf("%s the credentials rotation of %s: %w", what, ref, err)
	}
	return res.Outcome, nil
}

// refused tells whether the SKE API answered that the request does not fit
// the cluster's state (400 or 409), as it does for a start while a
// rotation is under way.
func refused(err error) bool {
	s := StatusCode(err)
	return s == http.StatusBadRequest || s == http.StatusConflict
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

func (r *Rotator) clock() clock.Clock {
	if r.Clock == nil {
		return clock.RealClock{}
	}
	return r.Clock
}

// known reads the cluster until its rotation phase is one the API
// documents: an unknown value (a phase added after this was written) is
// logged and polled through, as stackit-sdk-go's waiters keep polling on
// any state they do not know.
func (r *Rotator) known(ctx context.Context, ref ClusterRef) (*Cluster, error) {
	warned := ""
	var c *Cluster
	var err error
	for pause := r.initialPoll(); ; pause = min(pause*3/2, r.pollCap()) {
		if c == nil {
			if c, err = r.get(ctx, ref); err != nil {
				return nil, err
			}
		}
		p := c.Status.CredentialsRotation.Phase
		if p == "" || KnownPhase(p) {
			return c, nil
		}
		if warned != p {
			warned = p
			r.warn(ctx, "the SKE API reports credentials rotation phase "+p+", which kubecreds does not know: waiting for a known one", map[string]any{"cluster": ref.String(), "status": c.Status.Problems()})
		}
		if err := retry.Sleep(ctx, r.clock(), pause); err != nil {
			return nil, fmt.Errorf("waiting for cluster %s to leave the unknown credentials rotation phase %s: %w", ref, p, err)
		}
		c = nil
	}
}

func (r *Rotator) initialPoll() time.Duration { return min(500*time.Millisecond, r.pollCap()) }

func (r *Rotator) pollCap() time.Duration {
	if r.Poll <= 0 {
		return 10 * time.Second
	}
	return r.Poll
}

func (r *Rotator) warn(ctx context.Context, msg string, fields map[string]any) {
	if r.Warn != nil {
		r.Warn(ctx, msg, fields)
		return
	}
	r.log(ctx, msg, fields)
}

// waitFor polls the cluster until its phase is want. While it is during
// (or, for Grace after an accepted request, stale says the cluster still
// shows the phase from before), it keeps polling, whatever the cluster's
// state: each change of its state or errors is logged, and the last one is
// in the error when the time runs out. A phase the API does not document
// is logged and polled through; any other phase is an error.
func (r *Rotator) waitFor(ctx context.Context, ref ClusterRef, want, during string, stale func(*Cluster) bool) (*Cluster, error) {
	grace := r.Grace
	if grace <= 0 {
		grace = 2 * time.Minute
	}
	start := r.clock().Now()
	var last *Cluster
	shown, unknown := "", ""
	backoff := wait.Backoff{Duration: r.initialPoll(), Factor: 1.5, Jitter: 0.1, Steps: 1 << 30, Cap: r.pollCap()}
	err := backoff.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		c, err := r.get(ctx, ref)
		if err != nil {
			return false, err
		}
		last = c
		p := c.Status.CredentialsRotation.Phase
		if now := p + " " + c.Status.Problems(); now != shown {
			if shown != "" || c.Status.Problems() != StateHealthy {
				r.log(ctx, fmt.Sprintf("waiting for SKE credentials rotation phase %s: now %s, the cluster %s", want, p, c.Status.Problems()),
					map[string]any{"cluster": ref.String(), "phase": p, "status": c.Status.Problems()})
			}
			shown = now
		}
		switch {
		case p == want:
			return true, nil
		case p == during:
			return false, nil
		case stale != nil && stale(c) && r.clock().Since(start) < grace:
			return false, nil
		case p != "" && !KnownPhase(p):
			if unknown != p {
				unknown = p
				r.warn(ctx, "the SKE API reports credentials rotation phase "+p+", which kubecreds does not know: still waiting for "+want, map[string]any{"cluster": ref.String()})
			}
			return false, nil
		default:
			return false, fmt.Errorf("cluster %s is in credentials rotation phase %s (%s) while waiting for %s",
				ref, p, c.Status.Problems(), want)
		}
	})
	if err != nil && ctx.Err() != nil && last != nil {
		return nil, fmt.Errorf("waiting for cluster %s to be %s: still %s when the time ran out, the cluster being %s (%w); apply again to keep waiting",
			ref, want, last.Status.CredentialsRotation.Phase, last.Status.Problems(), ctx.Err())
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
		if attempt >= r.Retry.Retries() || !r.Retry.Transient(err) || ctx.Err() != nil || StatusCode(err) == http.StatusNotFound {
			return nil, fmt.Errorf("get cluster %s: %w", ref, err)
		}
		if retry.Sleep(ctx, r.clock(), r.Retry.Delay(attempt, err)) != nil {
			return nil, fmt.Errorf("get cluster %s: %w", ref, err)
		}
	}
}
