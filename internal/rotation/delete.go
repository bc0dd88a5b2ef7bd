package rotation

import (
	"context"
	"fmt"
	"slices"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// LKE's control-plane components authenticate with these service accounts'
// tokens in kube-system; LKE recreates them only when the service token is
// regenerated, so they are deleted only then.
var controlPlaneServiceAccounts = []string{"ccm-user", "cluster-autoscaler-user", "kubernetes-dashboard-lke-user"}

// adminServiceAccount backs the kubeconfig the Linode API serves; LKE
// recreates its token only when the kubeconfig is regenerated.
const adminServiceAccount = "lke-admin"

// keepSecret says whether a token secret must survive this rotation because
// nothing will replace it: deleting it would cut off LKE's own components
// (or the served kubeconfig) for good.
func keepSecret(s TokenSecret, regenerateKubeconfig, regenerateServiceToken bool) bool {
	if s.Namespace != "kube-system" {
		return false
	}
	if s.ServiceAccount == adminServiceAccount {
		return !regenerateKubeconfig
	}
	if slices.Contains(controlPlaneServiceAccounts, s.ServiceAccount) {
		return !regenerateServiceToken
	}
	return false
}

func (r *run) listServiceAccountTokens(ctx context.Context) (map[string]any, error) {
	all, err := ListServiceAccountTokens(ctx, r.old.Meta, r.opts.Namespaces)
	if err != nil {
		return nil, err
	}
	kept := 0
	for _, s := range all {
		if keepSecret(s, r.opts.RegenerateKubeconfig, r.opts.RegenerateServiceToken) {
			kept++
			continue
		}
		r.toDelete = append(r.toDelete, s)
	}
	// The secret behind our own token goes last: once it is deleted the API
	// server stops accepting us (within its 10 s authentication cache).
	ns, name := tokenSecretName(tokenOf(r.oldKubeconfig))
	r.oldSecretName = ns + "/" + name
	slices.SortStableFunc(r.toDelete, func(a, b TokenSecret) int {
		switch {
		case a.ID() == r.oldSecretName:
			return 1
		case b.ID() == r.oldSecretName:
			return -1
		}
		return 0
	})
	return map[string]any{"found": len(all), "to_delete": len(r.toDelete), "kept": kept, "namespaces": r.opts.Namespaces}, nil
}

// deleteServiceAccountTokens deletes the listed secrets with bounded
// parallelism, each guarded by its UID so that a secret recreated under the
// same name meanwhile survives. Our own token's secret is deleted last, alone.
func (r *run) deleteServiceAccountTokens(ctx context.Context) (map[string]any, error) {
	batch, last := r.toDelete, []TokenSecret(nil)
	if n := len(batch); n > 0 && batch[n-1].ID() == r.oldSecretName {
		batch, last = batch[:n-1], batch[n-1:]
	}
	deleted, err := r.deleteSecrets(ctx, batch)
	if err == nil && len(last) > 0 {
		var more []string
		more, err = r.deleteSecrets(ctx, last)
		deleted = append(deleted, more...)
	}
	slices.Sort(deleted)
	r.result.DeletedSecrets = deleted
	if len(deleted) > 0 {
		r.done = append(r.done, fmt.Sprintf("%d secrets deleted", len(deleted)))
	}
	return map[string]any{"deleted": len(deleted)}, err
}

func (r *run) deleteSecrets(ctx context.Context, secrets []TokenSecret) ([]string, error) {
	return DeleteTokenSecrets(ctx, r.old, secrets, r.opts.DeleteConcurrency)
}

// DeleteTokenSecrets deletes secrets with bounded parallelism, each guarded
// by its UID, and returns the namespace/name of those that are gone. It is
// the rotation's deletion step, exported for benchmarks.
func DeleteTokenSecrets(ctx context.Context, k *KubeClients, secrets []TokenSecret, concurrency int) ([]string, error) {
	if concurrency <= 0 {
		concurrency = 16
	}
	var (
		mu       sync.Mutex
		deleted  []string
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, concurrency)
	)
	for _, s := range secrets {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			uid := types.UID(s.UID)
			err := k.Meta.Resource(secretsResource).Namespace(s.Namespace).Delete(ctx, s.Name,
				metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil, apierrors.IsNotFound(err):
				// Gone either way; NotFound means someone (or an earlier run) was first.
				deleted = append(deleted, s.ID())
			case apierrors.IsConflict(err):
				// Recreated under the same name since we listed it: not ours to delete.
			case firstErr == nil:
				firstErr = fmt.Errorf("delete secret %s: %w", s.ID(), err)
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return deleted, firstErr
}
