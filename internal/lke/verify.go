package lke

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// verifyNewKubeconfig lists the nodes with the new kubeconfig, as the
// runbook's `kubectl get nodes` does. A freshly issued token may need a moment
// before every API server instance accepts it, so failures are retried briefly.
func (r *run) verifyNewKubeconfig(ctx context.Context) (map[string]any, error) {
	var nodes *corev1.NodeList
	err := r.new.Retry.Do(ctx, func() (err error) {
		nodes, err = r.new.Core.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if apierrors.IsUnauthorized(err) {
			// A token LKE has just made may take a moment to be known.
			return retry.Retryable(err)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes with the new kubeconfig: %w", err)
	}
	r.result.NodesVerified = len(nodes.Items)
	return map[string]any{"nodes": len(nodes.Items)}, nil
}

// verifyOldCredentialsRejected waits until the API server rejects the old
// admin token (when this run replaced it) and the short-lived canary token.
// It caches token authentication for about 10 s after a token's secret is
// deleted, so this polls for up to OldTokenTimeout; both are checked in the
// same polls, so the second costs no extra wait. Then it waits, if need be,
// until that cache has let go of everything else this run revoked
// (waitOutAuthCache): a credential nobody here holds, used by its holder a
// moment before its revocation, is accepted that long after it.
func (r *run) verifyOldCredentialsRejected(ctx context.Context) (map[string]any, error) {
	start := r.Clock.Now()
	checkAdmin := r.opts.RegenerateKubeconfig && !r.result.Resumed
	adminGone, canaryGone := !checkAdmin, false
	var stillAccounts []string
	var lastErr error
	// Each check runs with the run's context, not the poll's: a check in
	// flight when the poll's time runs out finishes, so a token still
	// accepted is reported as such, never as the client rate limiter's
	// "would exceed context deadline".
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, r.opts.OldTokenTimeout, true, func(context.Context) (bool, error) {
		if !adminGone {
			ok, err := r.old.Authenticates(ctx) // retries transient errors itself
			if lastErr = err; err != nil {
				return false, err
			}
			adminGone = !ok
		}
		if !canaryGone {
			gone, err := r.canaryRejected(ctx)
			if lastErr = err; err != nil {
				return false, err
			}
			canaryGone = gone
		}
		still, err := r.acceptedAccountCanaries(ctx)
		if lastErr = err; err != nil {
			return false, err
		}
		stillAccounts = still
		return adminGone && canaryGone && len(stillAccounts) == 0, nil
	})
	if err != nil {
		if lastErr != nil {
			return nil, fmt.Errorf("could not confirm that the old credentials are rejected within %s: %v", r.opts.OldTokenTimeout, lastErr) //nolint:errorlint // text only: wrapping would let the retry classification see lastErr and change how this failure is handled
		}
		var still []string
		if !adminGone {
			still = append(still, "the old admin token")
		}
		if !canaryGone {
			still = append(still, "a short-lived token issued before the revocation")
		}
		for _, a := range stillAccounts {
			still = append(still, "a token of "+a+" issued before its re-creation")
		}
		verb := "is"
		if len(still) > 1 {
			verb = "are"
		}
		return nil, fmt.Errorf("%s %s still accepted %s after the revocation", strings.Join(still, " and "), verb, r.opts.OldTokenTimeout)
	}
	cached, err := r.waitOutAuthCache(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]any{"waited_ms": r.Clock.Since(start).Milliseconds(), "auth_cache_wait_ms": cached.Milliseconds(),
		"admin_checked": checkAdmin, "short_lived_checked": r.canary != nil, "accounts_checked": len(r.accountCanaries)}, nil
}
