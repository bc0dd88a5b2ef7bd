package lke

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
)

// waitForControlPlane waits, after the service token was regenerated, until
// the API server answers /readyz again: on a standard (not
// high-availability) cluster LKE restarts the control-plane components with
// the new token, and the API is briefly unreachable. Waiting here, within
// the resource's timeout, keeps that outage from eating the retries of the
// steps after it. Progress is logged every 5 s.
func (r *run) waitForControlPlane(ctx context.Context) (map[string]any, error) {
	if r.new.REST == nil {
		return nil, nil // unit tests' fake clients have no API server to wait for
	}
	start := r.Clock.Now()
	lastNote, polls := start, 0
	var lastErr error
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		polls++
		err := r.new.REST.Get().AbsPath("/readyz").Do(ctx).Error()
		switch {
		case err == nil, apierrors.IsForbidden(err):
			return true, nil // it answers; /readyz being forbidden is RBAC's say, not an outage
		case IsTransient(err), apierrors.IsUnauthorized(err):
			lastErr = err
			if r.Clock.Since(lastNote) >= 5*time.Second {
				lastNote = r.Clock.Now()
				r.note(ctx, StepWaitControlPlane+": still waiting", map[string]any{
					"cluster_id": r.opts.ClusterID, "waited_ms": r.Clock.Since(start).Milliseconds(), "last_error": err.Error(),
				})
			}
			return false, nil
		default:
			return false, err
		}
	})
	if err != nil {
		if lastErr != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("the API server was not ready again after %s: %v", r.Clock.Since(start).Round(time.Second), lastErr) //nolint:errorlint // text only: wrapping would let IsTransient/IsUnauthorized see the last poll's error and retry a wait that gave up
		}
		return nil, err
	}
	return map[string]any{"waited_ms": r.Clock.Since(start).Milliseconds(), "polls": polls}, nil
}
