package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// The steps of a service-account rotation, in the order they run.
const (
	StepReadAccounts       = "read service accounts"
	StepIssueCanaries      = "issue canary tokens"
	StepRecreateAccounts   = "re-create service accounts"
	StepRestartWorkloadsSA = "restart workloads running as the accounts"
	StepVerifyRejected     = "verify old tokens are rejected"
)

// AccountSteps are the steps of RotateAccounts, in order.
var AccountSteps = []string{StepReadAccounts, StepIssueCanaries, StepRecreateAccounts, StepRestartWorkloadsSA, StepVerifyRejected}

// AccountRotation is what RotateAccounts does.
type AccountRotation struct {
	Accounts []ServiceAccountRef
	// RecreateTokenSecrets creates again, under the same names, the legacy
	// token secrets (kubernetes.io/service-account-token) the accounts had,
	// which the token controller fills with tokens of the new accounts.
	// Without it they go with the old accounts.
	RecreateTokenSecrets bool
	// RestartWorkloads does a rollout restart of the deployments,
	// daemonsets and statefulsets whose pods run as an account: their
	// projected tokens carry the old UID and are rejected.
	RestartWorkloads bool
	// Verify issues a token of each account before and waits, after,
	// until the API server rejects it.
	Verify bool
	// RejectWithin bounds that wait (the API server caches successful
	// authentications for 10 s).
	RejectWithin time.Duration
	// AuthCacheTTL is how long the API server accepts a token it
	// authenticated after its revocation (zero: AuthCacheTTL). Verify waits
	// that long after the last re-creation: a token of an account that its
	// holder used a moment before the account was re-created is accepted
	// until then, and no canary can show it.
	AuthCacheTTL time.Duration
	// Now stamps the restart, as kubectl rollout restart does.
	Now func() time.Time
	// Step, when set, is told each step as it ends.
	Step func(ctx context.Context, step string, fields map[string]any)
}

// AccountRotationResult is what RotateAccounts did.
type AccountRotationResult struct {
	Recreated []Recreated
	// Resumed are the accounts an earlier, stopped run had deleted and not
	// created again: they were created from its checkpoint.
	Resumed []string
	// Missing are the accounts deleted and not created again (the run
	// failed there): the next run creates them from their checkpoints.
	Missing []string
	// TokenSecretsRecreated are the legacy token secrets created again
	// (namespace/name); TokenSecretsRemoved those that went with the old
	// accounts because RecreateTokenSecrets was false.
	TokenSecretsRecreated []string
	TokenSecretsRemoved   []string
	// Restarted are the workloads restarted (kind/namespace/name); Paused
	// the paused deployments skipped (namespace/name); NotRestarted the
	// pods no rollout restart reaches, with why.
	Restarted    []string
	Paused       []string
	NotRestarted []string
	// Verified: every canary was rejected afterwards.
	Verified bool
	// AdoptedFrom names the run this one waited for, which rotated every
	// account after this one started (the last at AdoptedAt): this run
	// changed nothing. Recreated then holds the accounts' current UIDs.
	AdoptedFrom string
	AdoptedAt   time.Time
	// Unlocked says why the rotation ran without its locks ("" when it
	// held them): the credentials may not use Leases there.
	Unlocked string
}

// Done lists what was changed so far, for an error that says it.
func (r *AccountRotationResult) Done() []string {
	var done []string
	for _, a := range r.Missing {
		done = append(done, "service account "+a+" deleted, not created again yet")
	}
	for _, a := range r.Recreated {
		done = append(done, "service account "+a.String()+" re-created")
	}
	for _, s := range r.TokenSecretsRecreated {
		done = append(done, "token secret "+s+" re-created")
	}
	for _, w := range r.Restarted {
		done = append(done, w+" restarted")
	}
	return done
}

// AccountRotationError is a failed step, saying what had changed before.
type AccountRotationError struct {
	Step string
	Done []string
	Err  error
}

func (e *AccountRotationError) Error() string {
	done := "nothing was changed"
	if len(e.Done) > 0 {
		done = "already done: " + strings.Join(e.Done, "; ")
	}
	return fmt.Sprintf("%s: %v (%s)", e.Step, e.Err, done)
}

func (e *AccountRotationError) Unwrap() error { return e.Err }

// accountState is one account as the rotation found it.
type accountState struct {
	ref          ServiceAccountRef
	current      *corev1.ServiceAccount // nil when missing
	checkpoint   *checkpoint            // a stopped run's, if any
	tokenSecrets []legacySecret
	canary       string
}

// legacySecret is what re-creating a legacy token secret needs: never its
// token.
type legacySecret struct {
	Name        string            `json:"name"`
	UID         string            `json:"uid,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// checkpoint is what a rotation writes before it deletes an account, so
// that a run stopped between the delete and the create (killed: the create
// is not cancelled otherwise) can create the account again.
type checkpoint struct {
	OldUID       string                 `json:"oldUID"`
	Account      *corev1.ServiceAccount `json:"account"`
	TokenSecrets []legacySecret         `json:"tokenSecrets,omitempty"`
}

// Checkpoint ConfigMaps are named after the account they hold.
const (
	checkpointPrefix     = "kubecreds-recreate-"
	checkpointKey        = "checkpoint.json"
	checkpointLabel      = "kubecreds.io/recreating"
	checkpointAnnotation = "kubecreds.io/service-account"
)

// checkpointName is the ConfigMap's name for an account: the account's
// name when it fits, else a hash of it.
func checkpointName(account string) string {
	if len(checkpointPrefix)+len(account) <= 253 {
		return checkpointPrefix + account
	}
	sum := sha256.Sum256([]byte(account))
	return checkpointPrefix + hex.EncodeToString(sum[:16])
}

// Annotations and labels the API server or its controllers set on a token
// secret for the account it was filled for; the new one gets its own.
var (
	tokenSecretOwnAnnotations = []string{corev1.ServiceAccountUIDKey, "kubectl.kubernetes.io/last-applied-configuration"}
	tokenSecretOwnLabels      = []string{"kubernetes.io/legacy-token-last-used", "kubernetes.io/legacy-token-invalid-since"}
)

// RotateAccounts re-creates each account so that every token it ever had
// is rejected (see RecreateServiceAccount), keeping its legacy token
// secrets when asked, restarting the workloads that run as it, and proving
// the revocation with a token issued before. It reads everything before it
// changes anything: a missing account fails the run with nothing changed.
// A run stopped half-way is finished by running it again: an account it had
// deleted and not created is created from its checkpoint; the others are
// re-created again, which revokes no less.
func RotateAccounts(ctx context.Context, k *Clients, opts AccountRotation) (*AccountRotationResult, error) {
	res := &AccountRotationResult{}
	step := func(name string, fn func() (map[string]any, error)) error {
		start := time.Now()
		fields, err := fn()
		if fields == nil {
			fields = map[string]any{}
		}
		fields["duration_ms"] = time.Since(start).Milliseconds()
		if err != nil {
			fields["error"] = err.Error()
		}
		if opts.Step != nil {
			opts.Step(ctx, name, fields)
		}
		if err != nil {
			return &AccountRotationError{Step: name, Done: res.Done(), Err: err}
		}
		return nil
	}
	var states []*accountState
	var locks []*Lock
	finished := false
	defer func() {
		for _, l := range locks {
			_ = l.Release(ctx, finished) // one that fails expires by itself
		}
	}()
	if err := step(StepReadAccounts, func() (map[string]any, error) {
		// Read first: an account that does not exist fails the run before
		// it writes anything, a Lease included.
		var err error
		if states, err = readAccounts(ctx, k, opts.Accounts); err != nil {
			return nil, err
		}
		var waited bool
		locks, waited, err = lockAccounts(ctx, k, opts, res)
		if err != nil {
			return nil, err
		}
		if waited {
			// Another run rotated them meanwhile: read them as they are now.
			if states, err = readAccounts(ctx, k, opts.Accounts); err != nil {
				return nil, err
			}
		}
		return map[string]any{"accounts": len(states), "adopted_from": res.AdoptedFrom}, nil
	}); err != nil {
		return res, err
	}
	if res.AdoptedFrom != "" {
		for _, s := range states {
			if s.current != nil {
				res.Recreated = append(res.Recreated, Recreated{ServiceAccountRef: s.ref, NewUID: string(s.current.UID)})
			}
		}
		return res, nil
	}

	if opts.Verify {
		if err := step(StepIssueCanaries, func() (map[string]any, error) {
			n := 0
			for _, s := range states {
				if s.current == nil {
					continue // already deleted: its tokens are rejected
				}
				tok, err := IssueAccountCanary(ctx, k, s.ref)
				if err != nil {
					return nil, err
				}
				s.canary = tok
				n++
			}
			return map[string]any{"canaries": n}, nil
		}); err != nil {
			return res, err
		}
	}
	var lastRecreated time.Time
	if err := step(StepRecreateAccounts, func() (map[string]any, error) {
		for _, s := range states {
			err := recreateAccount(ctx, k, s, opts.RecreateTokenSecrets, res)
			lastRecreated = time.Now() // its tokens may be dead even if this failed after deleting it
			if err != nil {
				return nil, err
			}
		}
		return map[string]any{"recreated": len(res.Recreated), "token_secrets_recreated": len(res.TokenSecretsRecreated),
			"resumed": len(res.Resumed)}, nil
	}); err != nil {
		return res, err
	}
	if opts.RestartWorkloads {
		if err := step(StepRestartWorkloadsSA, func() (map[string]any, error) {
			err := restartRunningAs(ctx, k, opts.Now(), opts.Accounts, res)
			return map[string]any{"restarted": len(res.Restarted), "paused": len(res.Paused), "not_restarted": len(res.NotRestarted)}, err
		}); err != nil {
			return res, err
		}
	}
	if opts.Verify {
		if err := step(StepVerifyRejected, func() (map[string]any, error) {
			start := time.Now()
			if err := awaitCanariesRejected(ctx, k, states, opts.RejectWithin); err != nil {
				return map[string]any{"waited_ms": time.Since(start).Milliseconds()}, err
			}
			ttl := opts.AuthCacheTTL
			if ttl == 0 {
				ttl = AuthCacheTTL
			}
			cached := time.Until(lastRecreated.Add(ttl))
			if lastRecreated.IsZero() || cached < 0 {
				cached = 0
			}
			err := retry.Sleep(ctx, clock.RealClock{}, cached)
			return map[string]any{"waited_ms": time.Since(start).Milliseconds(), "auth_cache_wait_ms": cached.Milliseconds()}, err
		}); err != nil {
			return res, err
		}
		res.Verified = true
	}
	finished = true
	return res, nil
}

// readAccounts reads each account, a checkpoint a stopped run left for it,
// and its legacy token secrets. An account that is missing without a
// checkpoint is an error, before anything is changed.
func readAccounts(ctx context.Context, k *Clients, refs []ServiceAccountRef) ([]*accountState, error) {
	var states []*accountState
	var missing []string
	for _, ref := range refs {
		s := &accountState{ref: ref}
		err := k.Retry.Do(ctx, func() (err error) {
			s.current, err = k.Core.CoreV1().ServiceAccounts(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			return err
		})
		switch {
		case apierrors.IsNotFound(err):
			s.current = nil
		case err != nil:
			return nil, fmt.Errorf("read service account %s: %w", ref, err)
		}
		if s.checkpoint, err = readCheckpoint(ctx, k, ref); err != nil {
			return nil, err
		}
		if s.current == nil && s.checkpoint == nil {
			missing = append(missing, ref.String())
			continue
		}
		if s.tokenSecrets, err = legacySecretsOf(ctx, k, ref); err != nil {
			return nil, err
		}
		if s.checkpoint != nil {
			// The stopped run's list: the token controller may have removed
			// them since.
			for _, ls := range s.checkpoint.TokenSecrets {
				if !slices.ContainsFunc(s.tokenSecrets, func(x legacySecret) bool { return x.Name == ls.Name }) {
					s.tokenSecrets = append(s.tokenSecrets, ls)
				}
			}
		}
		states = append(states, s)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s (create it, or remove it from the list)", ErrAccountMissing, strings.Join(missing, ", "))
	}
	return states, nil
}

// legacySecretsOf lists the legacy token secrets of an account, by their
// metadata only (the tokens never reach this process).
func legacySecretsOf(ctx context.Context, k *Clients, ref ServiceAccountRef) ([]legacySecret, error) {
	var out []legacySecret
	err := listAll(ctx, k.Retry, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("type", tokenSecretType).String()},
		func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return k.Meta.Resource(secretsResource).Namespace(ref.Namespace).List(ctx, opts)
		},
		func(obj runtime.Object) error {
			s := obj.(*metav1.PartialObjectMetadata)
			if s.Annotations[corev1.ServiceAccountNameKey] != ref.Name {
				return nil
			}
			ls := legacySecret{Name: s.Name, UID: string(s.UID), Labels: maps.Clone(s.Labels), Annotations: maps.Clone(s.Annotations)}
			for _, a := range tokenSecretOwnAnnotations {
				delete(ls.Annotations, a)
			}
			for _, l := range tokenSecretOwnLabels {
				delete(ls.Labels, l)
			}
			out = append(out, ls)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("list the token secrets of %s: %w", ref, err)
	}
	slices.SortFunc(out, func(a, b legacySecret) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func readCheckpoint(ctx context.Context, k *Clients, ref ServiceAccountRef) (*checkpoint, error) {
	var cm *corev1.ConfigMap
	err := k.Retry.Do(ctx, func() (err error) {
		cm, err = k.Core.CoreV1().ConfigMaps(ref.Namespace).Get(ctx, checkpointName(ref.Name), metav1.GetOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the re-creation checkpoint of %s: %w", ref, err)
	}
	if cm.Annotations[checkpointAnnotation] != ref.Name {
		return nil, fmt.Errorf("ConfigMap %s/%s is not kubecreds' checkpoint for %s: rename or remove it", ref.Namespace, cm.Name, ref)
	}
	var cp checkpoint
	if err := json.Unmarshal([]byte(cm.Data[checkpointKey]), &cp); err != nil || cp.Account == nil {
		return nil, fmt.Errorf("the re-creation checkpoint %s/%s of %s is unreadable; if %s exists, delete the ConfigMap", ref.Namespace, cm.Name, ref, ref)
	}
	return &cp, nil
}

// writeCheckpoint records what re-creating s needs before its delete.
func writeCheckpoint(ctx context.Context, k *Clients, s *accountState) error {
	cp := checkpoint{OldUID: string(s.current.UID), Account: recreation(s.current), TokenSecrets: s.tokenSecrets}
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:        checkpointName(s.ref.Name),
			Namespace:   s.ref.Namespace,
			Labels:      map[string]string{checkpointLabel: "true"},
			Annotations: map[string]string{checkpointAnnotation: s.ref.Name},
		},
		Data: map[string]string{checkpointKey: string(b)},
	}
	client := k.Core.CoreV1().ConfigMaps(s.ref.Namespace)
	return k.Retry.Do(ctx, func() error {
		_, err := client.Create(ctx, cm, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			_, err = client.Update(ctx, cm, metav1.UpdateOptions{})
		}
		return err
	})
}

func deleteCheckpoint(ctx context.Context, k *Clients, ref ServiceAccountRef) error {
	err := k.Retry.Do(ctx, func() error {
		return k.Core.CoreV1().ConfigMaps(ref.Namespace).Delete(ctx, checkpointName(ref.Name), metav1.DeleteOptions{})
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// recreateAccount re-creates one account (or, after a stopped run, creates
// it from the checkpoint) and then its legacy token secrets.
func recreateAccount(ctx context.Context, k *Clients, s *accountState, tokenSecrets bool, res *AccountRotationResult) error {
	var rec *Recreated
	if s.current != nil {
		if err := writeCheckpoint(ctx, k, s); err != nil {
			return fmt.Errorf("record %s before re-creating it: %w", s.ref, err)
		}
		var err error
		if rec, err = RecreateServiceAccount(ctx, k, s.ref); err != nil {
			if errors.Is(err, ErrDeletedNotCreated) {
				res.Missing = append(res.Missing, s.ref.String())
			}
			return err
		}
	} else {
		created, err := createAgain(context.WithoutCancel(ctx), k, s.checkpoint.Account)
		if err != nil {
			res.Missing = append(res.Missing, s.ref.String())
			return fmt.Errorf("service account %s was deleted by an earlier run that stopped, and creating it from its checkpoint failed: %w: %w",
				s.ref, ErrDeletedNotCreated, err)
		}
		rec = &Recreated{ServiceAccountRef: s.ref, OldUID: s.checkpoint.OldUID, NewUID: string(created.UID)}
		res.Resumed = append(res.Resumed, s.ref.String())
	}
	res.Recreated = append(res.Recreated, *rec)
	for _, ls := range s.tokenSecrets {
		id := s.ref.Namespace + "/" + ls.Name
		if tokenSecrets {
			if err := recreateTokenSecret(ctx, k, s.ref, ls); err != nil {
				return err
			}
			res.TokenSecretsRecreated = append(res.TokenSecretsRecreated, id)
			continue
		}
		// The token controller removes it with the account; deleting it
		// now leaves none holding a dead token for a while.
		if err := deleteLegacy(ctx, k, s.ref.Namespace, ls); err != nil {
			return err
		}
		res.TokenSecretsRemoved = append(res.TokenSecretsRemoved, id)
	}
	return deleteCheckpoint(ctx, k, s.ref)
}

// deleteLegacy deletes a legacy token secret of the old account (by UID, so
// a new one of that name is spared).
func deleteLegacy(ctx context.Context, k *Clients, ns string, ls legacySecret) error {
	opts := metav1.DeleteOptions{}
	if ls.UID != "" {
		uid := types.UID(ls.UID)
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	err := k.Retry.Do(ctx, func() error {
		return k.Core.CoreV1().Secrets(ns).Delete(ctx, ls.Name, opts)
	})
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or already replaced by another of that name
	}
	return fmt.Errorf("delete the old token secret %s/%s: %w", ns, ls.Name, err)
}

// recreateTokenSecret replaces a legacy token secret of the old account
// with one of the same name for the new account; the token controller fills
// it. Its create is not cancelled once the old one is deleted.
func recreateTokenSecret(ctx context.Context, k *Clients, ref ServiceAccountRef, ls legacySecret) error {
	if err := deleteLegacy(ctx, k, ref.Namespace, ls); err != nil {
		return err
	}
	annotations := maps.Clone(ls.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[corev1.ServiceAccountNameKey] = ref.Name
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: ls.Name, Namespace: ref.Namespace, Labels: ls.Labels, Annotations: annotations},
		Type:       corev1.SecretTypeServiceAccountToken,
	}
	ctx = context.WithoutCancel(ctx)
	client := k.Core.CoreV1().Secrets(ref.Namespace)
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, recreateWithin, true, func(ctx context.Context) (bool, error) {
		err := k.Retry.Do(ctx, func() error {
			_, err := client.Create(ctx, secret, metav1.CreateOptions{})
			return err
		})
		switch {
		case err == nil:
			return true, nil
		case apierrors.IsAlreadyExists(err):
			// The old one still being deleted, or a new one someone made.
			m, gerr := k.Meta.Resource(secretsResource).Namespace(ref.Namespace).Get(ctx, ls.Name, metav1.GetOptions{})
			if gerr != nil || m.DeletionTimestamp != nil || string(m.UID) == ls.UID {
				return false, nil //nolint:nilerr // not gone yet: try again
			}
			return true, nil
		case k.Retry.Transient(err):
			last = err
			return false, nil
		default:
			return false, err
		}
	})
	if err != nil && last != nil && wait.Interrupted(err) {
		err = fmt.Errorf("still failing after %s: %w", recreateWithin, last)
	}
	if err != nil {
		return fmt.Errorf("token secret %s/%s of %s was deleted and creating it again failed "+
			"(create a Secret of type kubernetes.io/service-account-token with the annotation %s=%s): %w",
			ref.Namespace, ls.Name, ref, corev1.ServiceAccountNameKey, ref.Name, err)
	}
	return nil
}

// RestartRunningAs does a rollout restart of the workloads whose pods run
// as any of the accounts (see restartRunningAs): what it restarted
// (kind/namespace/name), the paused deployments it skipped
// (namespace/name), and the pods no rollout restart reaches, with why.
func RestartRunningAs(ctx context.Context, k *Clients, at time.Time, refs []ServiceAccountRef) (restarted, paused, notRestarted []string, err error) {
	var res AccountRotationResult
	err = restartRunningAs(ctx, k, at, refs, &res)
	return res.Restarted, res.Paused, res.NotRestarted, err
}

// restartRunningAs does a rollout restart of the workloads whose pods run
// as any of the accounts, as `kubectl rollout restart` would: paused
// deployments are skipped and named; pods that no deployment, daemonset or
// statefulset controls are named.
func restartRunningAs(ctx context.Context, k *Clients, at time.Time, refs []ServiceAccountRef, res *AccountRotationResult) error {
	type workload struct{ kind, ns, name string }
	seen := map[workload]bool{}
	var todo []workload
	for _, ref := range refs {
		err := listAll(ctx, k.Retry, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.serviceAccountName", ref.Name).String()},
			func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
				return k.Core.CoreV1().Pods(ref.Namespace).List(ctx, opts)
			},
			func(obj runtime.Object) error {
				p := obj.(*corev1.Pod)
				if p.Spec.ServiceAccountName != ref.Name {
					return nil // an API server that ignored the selector
				}
				kind, name, err := controllerOf(ctx, k, p)
				if err != nil {
					return err
				}
				if kind == "" {
					res.NotRestarted = append(res.NotRestarted, fmt.Sprintf("pod %s/%s (%s)", p.Namespace, p.Name, name))
					return nil
				}
				w := workload{kind, p.Namespace, name}
				if !seen[w] {
					seen[w] = true
					todo = append(todo, w)
				}
				return nil
			})
		if err != nil {
			return fmt.Errorf("list the pods running as %s: %w", ref, err)
		}
	}
	slices.SortFunc(todo, func(a, b workload) int {
		return strings.Compare(a.kind+"/"+a.ns+"/"+a.name, b.kind+"/"+b.ns+"/"+b.name)
	})
	for _, w := range todo {
		restarted, err := restartOne(ctx, k, at, w.kind, w.ns, w.name)
		if err != nil {
			return err
		}
		if restarted {
			res.Restarted = append(res.Restarted, w.kind+"/"+w.ns+"/"+w.name)
		} else {
			res.Paused = append(res.Paused, w.ns+"/"+w.name)
		}
	}
	slices.Sort(res.NotRestarted)
	return nil
}

// controllerOf is the workload a rollout restart recreates a pod through:
// (kind, name), or ("", why not) when there is none.
func controllerOf(ctx context.Context, k *Clients, p *corev1.Pod) (kind, name string, err error) {
	c := metav1.GetControllerOf(p)
	if c == nil {
		return "", "no controller: delete it and create it again to give it a new token", nil
	}
	switch c.Kind {
	case "DaemonSet":
		return KindDaemonSet, c.Name, nil
	case "StatefulSet":
		return KindStatefulSet, c.Name, nil
	case "ReplicaSet":
		var rs *metav1.PartialObjectMetadata
		err := k.Retry.Do(ctx, func() (err error) {
			rs, err = k.Meta.Resource(replicaSets).Namespace(p.Namespace).Get(ctx, c.Name, metav1.GetOptions{})
			return err
		})
		if apierrors.IsNotFound(err) {
			return "", "its ReplicaSet " + c.Name + " is gone", nil
		}
		if err != nil {
			return "", "", fmt.Errorf("read ReplicaSet %s/%s: %w", p.Namespace, c.Name, err)
		}
		if d := metav1.GetControllerOfNoCopy(rs); d != nil && d.Kind == "Deployment" {
			return KindDeployment, d.Name, nil
		}
		return "", "owned by ReplicaSet " + c.Name + ", which no deployment controls: delete the pod to give it a new token", nil
	default:
		return "", "owned by " + c.Kind + " " + c.Name + ", which kubectl rollout restart does not restart", nil
	}
}

var replicaSets = workloadResources[KindDeployment].GroupVersion().WithResource("replicasets")

// awaitCanariesRejected waits until the API server rejects every canary.
func awaitCanariesRejected(ctx context.Context, k *Clients, states []*accountState, within time.Duration) error {
	var still []string
	var lastErr error
	// The checks run with ctx, not the poll's context, so that one in
	// flight when the time runs out finishes and a token still accepted is
	// reported as such, not as the rate limiter's deadline error.
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, within, true, func(context.Context) (bool, error) {
		still = nil
		for _, s := range states {
			if s.canary == "" {
				continue
			}
			rejected, err := TokenRejected(ctx, k, s.canary)
			if lastErr = err; err != nil {
				return false, err
			}
			if !rejected {
				still = append(still, s.ref.String())
			}
		}
		return len(still) == 0, nil
	})
	switch {
	case err == nil:
		return nil
	case lastErr != nil:
		return fmt.Errorf("could not confirm that the old tokens are rejected: %w", lastErr)
	case len(still) > 0:
		return fmt.Errorf("a token of %s issued before the re-creation is still accepted %s after it", strings.Join(still, ", "), within)
	default:
		return err
	}
}

// ErrAccountMissing is returned when an account to rotate does not exist.
var ErrAccountMissing = errors.New("service account does not exist")

// lockAccounts takes the rotation lock of each account (a Lease
// kubecreds-rotation-<name> in its namespace), in name order so that two
// runs over overlapping accounts cannot each hold one the other waits for.
// When every lock was held by runs that completed a rotation after this
// one started, those rotations did what this one was asked to:
// res.AdoptedFrom says so. Credentials that may not use Leases leave the
// rotation unlocked, said in res.Unlocked, rather than failing it.
func lockAccounts(ctx context.Context, k *Clients, opts AccountRotation, res *AccountRotationResult) (locks []*Lock, waited bool, err error) {
	start := time.Now().Truncate(time.Second)
	refs := slices.Clone(opts.Accounts)
	slices.SortFunc(refs, func(a, b ServiceAccountRef) int { return strings.Compare(a.String(), b.String()) })
	adopted, holder, last := len(refs) > 0, "", time.Time{}
	for _, ref := range refs {
		l, got, lerr := AcquireLock(ctx, k, LockOptions{Namespace: ref.Namespace, Name: accountLockName(ref.Name),
			What: "rotation of service account " + ref.String(),
			Waiting: func(h string, waited time.Duration) {
				if opts.Step != nil {
					opts.Step(ctx, StepReadAccounts+": waiting for the rotation under way", map[string]any{"holder": h, "waited_ms": waited.Milliseconds()})
				}
			}})
		err = lerr
		if apierrors.IsForbidden(errors.Unwrap(err)) || apierrors.IsForbidden(err) {
			res.Unlocked = fmt.Sprintf("the credentials may not create or update Leases in namespace %s (%v)", ref.Namespace, err)
			for _, l := range locks {
				_ = l.Release(ctx, false)
			}
			return nil, false, nil
		}
		if err != nil {
			return locks, waited, err
		}
		locks = append(locks, l)
		waited = waited || got.Waited
		if !got.Waited || got.LastFinished.Before(start) {
			adopted = false
		} else {
			holder, last = got.Holder, got.LastFinished
		}
	}
	if adopted {
		res.AdoptedFrom, res.AdoptedAt = holder, last
	}
	return locks, waited, nil
}

// accountLockName is the Lease of an account's rotations.
func accountLockName(account string) string {
	name := LockName + "-" + account
	if len(name) > 253 {
		name = name[:253]
	}
	return name
}
