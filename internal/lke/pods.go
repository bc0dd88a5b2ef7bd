package lke

import (
	"context"
	"slices"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

// scanPods records the pods that use the secrets about to be deleted. A
// failure to look is reported, never fatal: the rotation matters more.
func (r *run) scanPods(ctx context.Context, k *kube.Clients, toDelete []kube.TokenSecret) {
	if len(toDelete) == 0 {
		return
	}
	names := map[string]bool{}
	var namespaces []string
	for _, s := range toDelete {
		names[s.ID()] = true
		if !slices.Contains(namespaces, s.Namespace) {
			namespaces = append(namespaces, s.Namespace)
		}
	}
	mounts, err := kube.PodsMounting(ctx, k, namespaces, names)
	if err != nil {
		r.result.PodScanError = err.Error()
		return
	}
	r.pendingMounts = append(r.pendingMounts, mounts...)
}

// keepMountsOfDeleted keeps the pod mounts whose secret was really deleted.
func (r *run) keepMountsOfDeleted() {
	deleted := map[string]bool{}
	for _, id := range r.result.DeletedSecrets {
		deleted[id] = true
	}
	r.result.PodsUsingDeleted = nil
	for _, m := range r.pendingMounts {
		if deleted[m.Namespace+"/"+m.Secret] {
			r.result.PodsUsingDeleted = append(r.result.PodsUsingDeleted, m)
		}
	}
}
