package lke

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linode/linodego"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// Options choose what one rotation does.
type Options struct {
	ClusterID int
	// Namespaces whose service-account-token secrets are deleted.
	Namespaces []string
	// The body of POST /lke/clusters/{id}/regenerate; at least one is true.
	RegenerateKubeconfig   bool
	RegenerateServiceToken bool
	// RestartWorkloads, when set, rolls the chosen workloads afterwards.
	RestartWorkloads *RestartOptions
	// RecycleNodes recycles every node and waits for Ready replacements.
	RecycleNodes bool
	// RecreateAdmin re-creates kube-system/lke-admin before the
	// regeneration (when the kubeconfig is regenerated), which revokes every
	// token the admin account ever had, those made with `kubectl create
	// token` included.
	RecreateAdmin bool
	// RevokeServiceAccounts are re-created before lke-admin, which revokes
	// every token they ever had.
	RevokeServiceAccounts []kube.ServiceAccountRef
	// Verify lists nodes with the new kubeconfig and waits until the old
	// admin token, and a short-lived token issued before the revocation,
	// are rejected.
	Verify bool

	// Tunables; zero values take the defaults.
	KubeconfigPoll    KubeconfigPoll
	DeleteConcurrency int           // parallel deletes (default 16)
	OldTokenTimeout   time.Duration // how long the old token may stay accepted (default 45s; the API server caches for 10s)
	NodePollMax       time.Duration // longest wait between polls of recycled nodes (default 5s)
	// ActSettle is how long, after a regenerate or recycle whose answer was
	// lost, the API is watched for a sign that it acted before the request
	// is sent again (default 60s: LKE may take tens of seconds to show a
	// regeneration, and sending it twice would replace the kubeconfig this
	// run is about to use).
	ActSettle time.Duration
	// TokenWait bounds how long the served kubeconfig may keep the old
	// token after a regeneration (default 60s). LKE may rebuild the
	// kubeconfig from the admin token secret that still exists; after this
	// the rotation follows the runbook's order instead: it deletes that
	// secret, then waits again for a new token.
	TokenWait time.Duration
	// Retry is how Kubernetes requests (and polls of the Linode API) failing
	// with transient errors are retried; the Linode client retries its own.
	Retry retry.Policy
	// LockDuration is the rotation lock's lease (default
	// kube.LockDuration), and how long a served kubeconfig may stay
	// rejected, with no sign of a rotation under way, before this run
	// resumes it as interrupted: the holder of the lock has no working
	// credential between re-creating lke-admin and the new kubeconfig,
	// and neither has a waiter.
	LockDuration time.Duration
}

// RestartOptions choose the workloads a rollout restart touches.
type RestartOptions struct {
	Namespaces []string
	Kinds      []string // deployment, daemonset, statefulset
}

// Result is what a rotation did, for the state.
type Result struct {
	RotatedAt        time.Time
	DeletedSecrets   []string // namespace/name
	KubeconfigSHA256 string
	// PreviousKubeconfigSHA256 is the SHA-256 of the kubeconfig served
	// before the rotation (the one it revoked).
	PreviousKubeconfigSHA256 string
	NodesVerified            int
	// Resumed is true when the current kubeconfig was already dead: an
	// earlier run deleted the secrets and stopped before finishing.
	Resumed bool
	// ResumedLeftover is how many token secrets a resumed rotation found
	// left by the interrupted run, and deleted.
	ResumedLeftover int
	// RevokedShortLived are the Secrets of kubecreds short-lived tokens
	// deleted (namespace/name), which revokes those tokens.
	RevokedShortLived []string
	// PodsUsingDeleted are the pods that used a deleted token secret.
	PodsUsingDeleted []kube.PodMount
	// PodScanError says why the pods could not be checked ("" when they were).
	PodScanError      string
	RestartedWorkload []string // kind/namespace/name
	// SkippedPaused are paused deployments (namespace/name) that the restart
	// left alone, as kubectl rollout restart refuses them.
	SkippedPaused []string
	// NotRestarted are the pods running as a re-created account that no
	// rollout restart reaches (bare pods, Jobs), with why: only deleting
	// them gives them tokens of the new account.
	NotRestarted  []string
	RecycledNodes int
	// RecreatedServiceAccounts are the accounts re-created (namespace/name).
	RecreatedServiceAccounts []string
	// AdminNotRecreated is true when a resumed rotation found lke-admin with
	// the UID the old kubeconfig's token was issued for: the interrupted run
	// (or a person) deleted the secrets without re-creating it, so tokens it
	// issued before stay valid until they expire.
	AdminNotRecreated bool
	// NotRecreatedAfterResume are listed accounts of LKE's control plane
	// that a resumed rotation did not re-create (after the regeneration,
	// that would end the token LKE has just made for them).
	NotRecreatedAfterResume []string
	// SweptAgain are the credentials the second sweep, once the old
	// credentials were rejected, found and revoked (namespace/name of token
	// secrets and bound Secrets): made while the old credentials still
	// worked, after the first listing.
	SweptAgain []string
	// ForeignBoundSecrets carry kubecreds' label but are not its Secrets
	// (namespace/name): left alone.
	ForeignBoundSecrets []string
	// ExtraControlPlaneSecrets are token secrets of LKE's control-plane
	// accounts beyond one per account after the regeneration: LKE makes
	// one, so another was made by someone else, and which is LKE's cannot
	// be told. Left alone (deleting LKE's would stop its component).
	ExtraControlPlaneSecrets []string
	// AdoptedFrom names the run this one waited for, which completed a
	// rotation after this one started (at AdoptedAt): this run changed
	// nothing and took that rotation for its own.
	AdoptedFrom string
	AdoptedAt   time.Time
	// DeletedAdminSecretFirst is true when the served kubeconfig kept the
	// old token for longer than TokenWait, and the rotation deleted the old
	// admin secret before the new kubeconfig was served (the runbook's order).
	DeletedAdminSecretFirst bool
	// InsecureKubeconfig is true when a kubeconfig the Linode API served
	// turned TLS verification off (insecure-skip-tls-verify).
	InsecureKubeconfig bool
}

// Logger receives one line per step, with counts and durations, never a secret.
type Logger interface {
	Step(ctx context.Context, step string, fields map[string]any)
}

// Runner performs rotations. Linode retries transient failures itself; Poll
// is the same API without retries, for polling the kubeconfig.
type Runner struct {
	Linode  LinodeAPI
	Poll    LinodeAPI
	Connect func(kubeconfig []byte) (*kube.Clients, error)
	Clock   clock.PassiveClock
	Log     Logger
	// Scopes are the token's OAuth scopes as the Linode API reports them;
	// nil when unknown.
	Scopes *LinodeScopes
	// Retry applies where Options.Retry is not set.
	Retry retry.Policy
	// AuthCacheTTL is how long the API server keeps accepting a token it
	// authenticated, after the token is revoked (zero: kube.AuthCacheTTL).
	AuthCacheTTL time.Duration
}

// Rotate runs the LKE secret-rotation runbook for one cluster. It reads top to
// bottom as the runbook does. If an earlier run died after deleting the
// secrets (the current kubeconfig's token is rejected), it resumes at the
// regeneration.
func (r *Runner) Rotate(ctx context.Context, opts Options) (*Result, error) {
	if opts.Retry == (retry.Policy{}) {
		opts.Retry = r.Retry
	}
	opts = opts.withDefaults()
	run := &run{Runner: r, opts: opts, result: &Result{RotatedAt: r.Clock.Now().UTC()}}
	finished := false
	defer func() { run.releaseLock(ctx, finished) }()
	res, err := run.rotate(ctx)
	if errors.Is(err, errAdopted) {
		return run.adopted(ctx)
	}
	finished = err == nil
	return res, err
}

// rotate runs the steps, in order.
func (r *run) rotate(ctx context.Context) (*Result, error) {
	opts := r.opts

	if err := r.step(ctx, StepGetCluster, r.getCluster); err != nil {
		return nil, err
	}
	if err := r.step(ctx, StepFetchKubeconfig, r.fetchCurrentKubeconfig); err != nil {
		return nil, err
	}
	if err := r.step(ctx, StepCheckAccess, r.checkCurrentAccess); err != nil {
		return nil, err
	}
	if r.result.AdoptedFrom != "" {
		return nil, errAdopted
	}
	if !r.result.Resumed {
		// The canary is bound to an Opaque Secret, which the deletion does
		// not touch: issued beside the list and the deletion rather than
		// after them, it moves the revocations that follow earlier by its
		// round trips, and with them the end of verify (waitOutAuthCache).
		canary := func(context.Context) (map[string]any, error) { return nil, nil }
		if opts.Verify {
			canary = r.issueCanaryBeside(ctx)
		}
		err := r.step(ctx, StepListSecrets, r.listServiceAccountTokens)
		if err == nil {
			err = r.step(ctx, StepDeleteSecrets, r.deleteServiceAccountTokens)
		}
		if err != nil {
			_, _ = canary(ctx) // not left running: it writes the run's state
			return nil, err
		}
		if opts.Verify {
			if err := r.step(ctx, StepIssueCanary, canary); err != nil {
				return nil, err
			}
		}
		if len(opts.RevokeServiceAccounts) > 0 || r.recreatesAdmin() {
			if err := r.step(ctx, StepRecreateServiceAccounts, r.recreateServiceAccounts); err != nil {
				return nil, err
			}
		}
	}
	if err := r.step(ctx, StepRegenerate, r.regenerate); err != nil {
		return nil, err
	}
	if err := r.step(ctx, StepWaitKubeconfig, r.waitForKubeconfig); err != nil {
		return nil, err
	}
	if opts.RegenerateServiceToken {
		if err := r.step(ctx, StepWaitControlPlane, r.waitForControlPlane); err != nil {
			return nil, err
		}
	}
	if r.result.Resumed {
		// The interrupted run may have stopped before every namespace was done.
		if err := r.step(ctx, StepFinishDeletion, r.finishResumedDeletion); err != nil {
			return nil, err
		}
	}
	if len(r.ownSecret) > 0 {
		if err := r.step(ctx, StepDeleteOldSecret, r.deleteOldAdminSecret); err != nil {
			return nil, err
		}
	}
	r.keepMountsOfDeleted()
	if err := r.step(ctx, StepRevokeShortLived, r.revokeShortLivedKubeconfigs); err != nil {
		return nil, err
	}
	if opts.Verify {
		if err := r.step(ctx, StepVerifyNew, r.verifyNewKubeconfig); err != nil {
			return nil, err
		}
		if err := r.step(ctx, StepVerifyOldRejected, r.verifyOldCredentialsRejected); err != nil {
			return nil, err
		}
		if err := r.step(ctx, StepSweepAgain, r.sweepAgain); err != nil {
			return nil, err
		}
	}
	if opts.RestartWorkloads != nil || len(opts.RevokeServiceAccounts) > 0 {
		if err := r.step(ctx, StepRestartWorkloads, r.restartWorkloads); err != nil {
			return nil, err
		}
	}
	if opts.RecycleNodes {
		if err := r.step(ctx, StepRecycleNodes, r.recycleNodes); err != nil {
			return nil, err
		}
	}
	return r.result, nil
}

func (o Options) withDefaults() Options {
	if len(o.Namespaces) == 0 {
		o.Namespaces = []string{"kube-system"}
	}
	if o.DeleteConcurrency <= 0 {
		o.DeleteConcurrency = 16
	}
	if o.OldTokenTimeout <= 0 {
		o.OldTokenTimeout = 45 * time.Second
	}
	if o.NodePollMax <= 0 {
		o.NodePollMax = 5 * time.Second
	}
	if o.TokenWait <= 0 {
		o.TokenWait = 60 * time.Second
	}
	if o.ActSettle <= 0 {
		o.ActSettle = 60 * time.Second
	}
	if o.LockDuration <= 0 {
		o.LockDuration = kube.LockDuration
	}
	if o.KubeconfigPoll.FailFor == 0 {
		o.KubeconfigPoll.FailFor = KubeconfigPollFor(o.Retry).FailFor
	}
	o.Retry = Policy(o.Retry)
	return o
}

// run is the state of one rotation as it goes through the steps.
type run struct {
	*Runner
	opts   Options
	result *Result

	oldKubeconfig []byte
	old           *kube.Clients
	oldSecretName string             // the token secret behind the current kubeconfig, deleted last
	toDelete      []kube.TokenSecret // listed, deleted in one batch
	ownSecret     []kube.TokenSecret // the one behind the current kubeconfig, deleted after the batch
	kept          []kube.TokenSecret // spared: nothing would replace them
	hadSecret     map[string]bool    // accounts (namespace/name) with a token secret when first listed

	newKubeconfig []byte
	new           *kube.Clients

	lkeTokensBefore map[string]bool         // UIDs of LKE's own token secrets before regenerating
	pendingMounts   []kube.PodMount         // pods using secrets listed for deletion
	canary          *kubeconfig.IssuedToken // a short-lived token issued to prove revocation
	accountCanaries []accountCanary         // tokens of re-created accounts issued before
	adminRecreated  bool                    // lke-admin was re-created: the old credential is dead
	adminDeleted    bool                    // lke-admin was deleted and its create failed: it is missing
	lock            *kube.Lock              // the rotation lock, once taken
	waitedFor       string                  // the holder this run last waited for the lock behind
	lastRevoked     time.Time               // when this run last revoked someone's credential

	done []string // what has been changed so far, for error messages
}

// step runs one step, logs it with its duration, and wraps its error with
// what was already done.
func (r *run) step(ctx context.Context, name string, fn func(context.Context) (map[string]any, error)) error {
	start := r.Clock.Now()
	fields, err := fn(ctx)
	if fields == nil {
		fields = map[string]any{}
	}
	fields["cluster_id"] = r.opts.ClusterID
	fields["duration_ms"] = r.Clock.Since(start).Milliseconds()
	if err != nil {
		fields["error"] = err.Error()
	}
	if r.Log != nil {
		r.Log.Step(ctx, name, fields)
	}
	if err != nil {
		return &StepError{
			Step: name, ClusterID: r.opts.ClusterID, Done: append([]string(nil), r.done...), Err: err,
			LockedOut: (r.adminRecreated || r.adminDeleted || r.result.Resumed || r.result.DeletedAdminSecretFirst) && r.newKubeconfig == nil,
		}
	}
	return nil
}

func (r *run) getCluster(ctx context.Context) (map[string]any, error) {
	c, err := r.Linode.GetLKECluster(ctx, r.opts.ClusterID)
	if linodego.IsNotFound(err) {
		return nil, fmt.Errorf("%w: %w", ErrClusterNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	if err := r.checkWriteScope(); err != nil {
		return nil, err
	}
	return map[string]any{"label": c.Label, "k8s_version": c.K8sVersion}, nil
}

// checkWriteScope finds out, before anything is changed, whether the token
// may regenerate: a token without lke:read_write would otherwise be refused
// only after the secrets are deleted. It reads the scopes the Linode API
// reports with every answer (X-OAuth-Scopes; "*" is every scope), so no
// request is sent to learn them. Where no answer carried them, the next
// step's GET /kubeconfig, which needs lke:read_write too, is refused first.
func (r *run) checkWriteScope() error {
	may, known, scopes := r.Scopes.MayRegenerate()
	if known && !may {
		return fmt.Errorf("the token's OAuth scopes (%q) do not include %s, which reading the kubeconfig and regenerating need, "+
			"so this run changed nothing: %w", scopes, ScopeReadWriteLKE, ErrMissingScope)
	}
	return nil
}

func (r *run) fetchCurrentKubeconfig(ctx context.Context) (map[string]any, error) {
	kc, err := FetchKubeconfig(ctx, r.Poll, r.opts.ClusterID, r.opts.KubeconfigPoll)
	if err != nil {
		return nil, err
	}
	r.oldKubeconfig = kc
	r.result.PreviousKubeconfigSHA256 = kubeconfigSHA256(kc)
	r.noteInsecure(kc)
	r.old, err = r.Connect(kc)
	return nil, err
}

// noteInsecure records a served kubeconfig that does not verify the API
// server's certificate, for a warning.
func (r *run) noteInsecure(kc []byte) {
	if cfg, err := kubeconfig.ParseServed(kc); err == nil && cfg.Insecure {
		r.result.InsecureKubeconfig = true
	}
}

// checkCurrentAccess takes the rotation lock and decides between a fresh
// rotation and a resumed one: a current kubeconfig whose token stays
// rejected, with no rotation under way, means an earlier run already
// deleted the secrets (see awaitWorkingKubeconfig). A run that waited for
// another's rotation, completed since it started, adopts it.
func (r *run) checkCurrentAccess(ctx context.Context) (map[string]any, error) {
	start := r.Clock.Now()
	for {
		ok, err := r.old.Authenticates(ctx)
		if err != nil {
			return nil, err
		}
		if !ok {
			if !r.opts.RegenerateKubeconfig {
				return nil, fmt.Errorf("the kubeconfig the Linode API serves is rejected (401) and regenerate_kubeconfig is false, " +
					"so this rotation cannot restore access: set regenerate_kubeconfig = true")
			}
			working, err := r.awaitWorkingKubeconfig(ctx)
			if err != nil {
				return nil, err
			}
			if working {
				continue
			}
			r.result.Resumed = true
			r.done = append(r.done, "secrets deleted by an earlier run")
			return map[string]any{"resumed": true, "waited_ms": r.Clock.Since(start).Milliseconds()}, nil
		}
		lockStart := r.Clock.Now()
		adopted, err := r.takeLock(ctx, r.old)
		if errors.Is(err, kube.ErrLockCredentialRejected) {
			// The run that held the lock has revoked the credential
			// this one waited with: read the served kubeconfig again.
			if _, err := r.refetchCurrent(ctx); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		fields := map[string]any{"resumed": false, "waited_ms": r.Clock.Since(start).Milliseconds(),
			"lock_ms": r.Clock.Since(lockStart).Milliseconds()}
		if adopted {
			fields["adopted_from"] = r.result.AdoptedFrom
		}
		return fields, nil
	}
}

// adopted is the result of a run that took another's rotation for its own.
func (r *run) adopted(ctx context.Context) (*Result, error) {
	kc, err := FetchKubeconfig(ctx, r.Poll, r.opts.ClusterID, r.opts.KubeconfigPoll)
	if err != nil {
		return nil, err
	}
	return &Result{
		RotatedAt: r.result.AdoptedAt.UTC(), KubeconfigSHA256: kubeconfigSHA256(kc), PreviousKubeconfigSHA256: r.result.PreviousKubeconfigSHA256,
		AdoptedFrom: r.result.AdoptedFrom, AdoptedAt: r.result.AdoptedAt.UTC(),
	}, nil
}

// regenerate asks LKE for a new kubeconfig and/or service token, once: if
// the answer is lost, it checks whether LKE acted before asking again.
func (r *run) regenerate(ctx context.Context) (map[string]any, error) {
	if !r.result.Resumed && r.lkeTokensBefore == nil && !r.adminRecreated {
		// What LKE's own token secrets are now, to tell later whether a
		// regenerate whose answer was lost took effect.
		uids, err := lkeTokenUIDs(ctx, r.old)
		if err != nil {
			return nil, err
		}
		r.lkeTokensBefore = uids
	}
	fields, err := r.actOnce(ctx, StepRegenerate, func(ctx context.Context) error {
		_, err := r.Poll.RegenerateLKECluster(ctx, r.opts.ClusterID, linodego.LKEClusterRegenerateOptions{
			KubeConfig:   r.opts.RegenerateKubeconfig,
			ServiceToken: r.opts.RegenerateServiceToken,
		})
		return err
	}, r.regenerationTookEffect)
	if err != nil {
		return fields, err
	}
	r.done = append(r.done, "regeneration requested")
	fields["kubeconfig"], fields["servicetoken"] = r.opts.RegenerateKubeconfig, r.opts.RegenerateServiceToken
	return fields, nil
}

// waitForKubeconfig polls until the Linode API serves a kubeconfig that is
// not the old one (when the kubeconfig was regenerated), then connects with it.
func (r *run) waitForKubeconfig(ctx context.Context) (map[string]any, error) {
	start, polls := r.Clock.Now(), 0
	delay := r.opts.KubeconfigPoll.delays()
	// The secrets are gone and the regeneration is asked for: giving up
	// now is the worst moment, so failures are ridden out as long as the
	// run may last.
	poll := r.opts.KubeconfigPoll
	poll.FailFor = -1
	for {
		kc, err := FetchKubeconfig(ctx, r.Poll, r.opts.ClusterID, poll)
		if err != nil {
			return nil, err
		}
		polls++
		if !r.opts.RegenerateKubeconfig || kube.TokenOf(kc) != kube.TokenOf(r.oldKubeconfig) {
			r.newKubeconfig = kc
			break
		}
		// The API may serve the old kubeconfig for a moment before it
		// starts answering 503; or LKE rebuilt it from the admin secret
		// that still exists, and makes a new token only once it is gone.
		// Once lke-admin is re-created, the token controller deletes that
		// secret itself, and nothing here can any more.
		if len(r.ownSecret) > 0 && !r.adminRecreated && r.Clock.Since(start) >= r.opts.TokenWait {
			deleted, err := kube.DeleteEach(ctx, r.old, r.ownSecret, 1)
			r.recordOwnDeleted(deleted)
			if err != nil {
				return nil, fmt.Errorf("the served kubeconfig still had the old token after %s, and deleting its secret failed: %w", r.opts.TokenWait, err)
			}
			r.ownSecret = nil
			r.result.DeletedAdminSecretFirst = true
			r.note(ctx, StepWaitKubeconfig+": still the old token; deleted its secret first, as the runbook does",
				map[string]any{"cluster_id": r.opts.ClusterID, "waited_ms": r.Clock.Since(start).Milliseconds()})
		}
		if err := retry.Sleep(ctx, clock.RealClock{}, delay()); err != nil {
			return nil, err
		}
	}
	r.result.KubeconfigSHA256 = kubeconfigSHA256(r.newKubeconfig)
	r.noteInsecure(r.newKubeconfig)
	var err error
	r.new, err = r.Connect(r.newKubeconfig)
	if err == nil {
		if r.lock != nil {
			r.lock.Use(r.new)
		} else if _, lerr := r.takeLock(ctx, r.new); lerr == nil {
			// A resumed rotation: no run could read the lock while the
			// kubeconfig was rejected; it holds it from here on.
			r.result.AdoptedFrom = ""
		}
	}
	return map[string]any{"waited_ms": r.Clock.Since(start).Milliseconds(), "fetches": polls}, err
}

// note logs something a step noticed, between step lines.
func (r *run) note(ctx context.Context, what string, fields map[string]any) {
	if r.Log != nil {
		r.Log.Step(ctx, what, fields)
	}
}
