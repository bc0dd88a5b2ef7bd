package lke

import (
	"context"
	"fmt"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

// restartWorkloads rolls the chosen workloads (kube.RestartWorkloads) with
// the new kubeconfig.
func (r *run) restartWorkloads(ctx context.Context) (map[string]any, error) {
	restarted, paused, err := kube.RestartWorkloads(ctx, r.new, r.Clock.Now(), r.opts.RestartWorkloads.Namespaces, r.opts.RestartWorkloads.Kinds)
	if err != nil {
		return nil, err
	}
	r.result.RestartedWorkload = restarted
	r.result.SkippedPaused = paused
	r.done = append(r.done, fmt.Sprintf("%d workloads restarted", len(restarted)))
	return map[string]any{"restarted": len(restarted), "skipped_paused": len(paused)}, nil
}
