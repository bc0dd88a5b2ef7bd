package lke

import (
	"context"
	"fmt"
	"slices"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

// restartWorkloads rolls the chosen workloads (kube.RestartWorkloads) and
// those whose pods run as a re-created account of RevokeServiceAccounts
// (kube.RestartRunningAs: their projected tokens named the old UID, so
// they fail until restarted) with the new kubeconfig.
func (r *run) restartWorkloads(ctx context.Context) (map[string]any, error) {
	var restarted, paused []string
	if r.opts.RestartWorkloads != nil {
		var err error
		restarted, paused, err = kube.RestartWorkloads(ctx, r.new, r.Clock.Now(), r.opts.RestartWorkloads.Namespaces, r.opts.RestartWorkloads.Kinds)
		if err != nil {
			return nil, err
		}
	}
	if len(r.opts.RevokeServiceAccounts) > 0 {
		byAccount, pausedByAccount, notRestarted, err := kube.RestartRunningAs(ctx, r.new, r.Clock.Now(), r.opts.RevokeServiceAccounts)
		if err != nil {
			return nil, err
		}
		restarted = union(restarted, byAccount)
		paused = union(paused, pausedByAccount)
		r.result.NotRestarted = notRestarted
	}
	r.result.RestartedWorkload = restarted
	r.result.SkippedPaused = paused
	r.done = append(r.done, fmt.Sprintf("%d workloads restarted", len(restarted)))
	return map[string]any{"restarted": len(restarted), "skipped_paused": len(paused), "not_restarted": len(r.result.NotRestarted)}, nil
}

// union is a and b, sorted, each once.
func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
