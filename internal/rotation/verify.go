package rotation

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
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
			return Retryable(err)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes with the new kubeconfig: %w", err)
	}
	r.result.NodesVerified = len(nodes.Items)
	return map[string]any{"nodes": len(nodes.Items)}, nil
}

// verifyOldTokenRejected waits until the API server rejects the old admin
// token. It caches token authentication for about 10 s after the token's
// secret is deleted, so this polls for up to OldTokenTimeout.
func (r *run) verifyOldTokenRejected(ctx context.Context) (map[string]any, error) {
	start := r.Clock.Now()
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, r.opts.OldTokenTimeout, true, func(ctx context.Context) (bool, error) {
		ok, err := r.old.authenticates(ctx) // retries transient errors itself
		lastErr = err
		if err != nil {
			return false, err
		}
		return !ok, nil
	})
	if err != nil {
		if lastErr != nil {
			return nil, fmt.Errorf("could not confirm that the old admin token is rejected within %s: %v", r.opts.OldTokenTimeout, lastErr)
		}
		return nil, fmt.Errorf("the old admin token is still accepted %s after its secret was deleted", r.opts.OldTokenTimeout)
	}
	return map[string]any{"waited_ms": r.Clock.Since(start).Milliseconds()}, nil
}
