package lke

import (
	"context"
	"fmt"
	"slices"
	"time"

	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
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
func keepSecret(s kube.TokenSecret, regenerateKubeconfig, regenerateServiceToken bool) bool {
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
	all, err := kube.ListServiceAccountTokens(ctx, r.old, r.opts.Namespaces)
	if err != nil {
		return nil, err
	}
	// The secret behind our own token goes last: once it is deleted the API
	// server stops accepting us (within its 10 s authentication cache).
	ns, name := kube.TokenSecretName(kube.TokenOf(r.oldKubeconfig))
	r.oldSecretName = ns + "/" + name
	for _, s := range all {
		switch {
		case keepSecret(s, r.opts.RegenerateKubeconfig, r.opts.RegenerateServiceToken):
			r.kept = append(r.kept, s)
		case s.ID() == r.oldSecretName:
			r.ownSecret = append(r.ownSecret, s)
		default:
			r.toDelete = append(r.toDelete, s)
		}
	}
	r.hadSecret = accountsWithSecrets(all)
	r.scanPods(ctx, r.old, slices.Concat(r.toDelete, r.ownSecret))
	return map[string]any{"found": len(all), "to_delete": len(r.toDelete) + len(r.ownSecret), "kept": len(r.kept), "namespaces": r.opts.Namespaces,
		"pods_using_them": len(r.pendingMounts)}, nil
}

// deleteServiceAccountTokens deletes the listed secrets but the one behind
// our own token: that one stays until the new kubeconfig is served, so that
// at every moment the Linode API serves a kubeconfig that works (or answers
// "not yet available" while LKE regenerates it).
func (r *run) deleteServiceAccountTokens(ctx context.Context) (map[string]any, error) {
	// Our own secret is spared by the batch as the kept ones are.
	spare := slices.Concat(r.kept, r.ownSecret)
	deleted, err := kube.DeleteTokenSecrets(ctx, r.old, r.toDelete, spare, r.opts.DeleteConcurrency)
	r.recordDeleted(deleted)
	return map[string]any{"deleted": len(deleted), "deferred": len(r.ownSecret)}, err
}

// deleteOldAdminSecret deletes the secret behind the old kubeconfig's token,
// once the new kubeconfig is served. LKE has usually deleted it itself while
// regenerating; it counts as deleted either way.
func (r *run) deleteOldAdminSecret(ctx context.Context) (map[string]any, error) {
	deleted, err := kube.DeleteEach(ctx, r.new, r.ownSecret, 1)
	r.recordOwnDeleted(deleted)
	return map[string]any{"deleted": len(deleted)}, err
}

// recordDeleted records token secrets this run deleted: someone's
// credentials, revoked now.
func (r *run) recordDeleted(names []string) {
	if len(names) > 0 {
		r.revokedNow()
	}
	r.recordOwnDeleted(names)
}

// recordOwnDeleted records the deletion of the secret behind the old
// kubeconfig's token. That token is the one verify itself checks until it
// is rejected (the API server caches by token, whoever used it), so its
// deletion needs no wait for the authentication cache of its own.
func (r *run) recordOwnDeleted(names []string) {
	if len(names) == 0 {
		return
	}
	r.result.DeletedSecrets = append(r.result.DeletedSecrets, names...)
	slices.Sort(r.result.DeletedSecrets)
	r.done = append(r.done, fmt.Sprintf("%d secrets deleted", len(names)))
}

// revokedNow records that this run has just revoked someone's credential:
// the API server may accept it for kube.AuthCacheTTL more if it was used
// just before (see waitOutAuthCache).
func (r *run) revokedNow() {
	r.lastRevoked = r.Clock.Now()
}

// waitOutAuthCache waits, once the checked credentials are rejected, until
// the API server's authentication cache has let go of every credential this
// run revoked: the canaries prove the revocation of what they stand for,
// but a token someone used a moment before its revocation stays accepted
// for the cache's lifetime after it. It returns how long it waited.
func (r *run) waitOutAuthCache(ctx context.Context) (time.Duration, error) {
	if r.lastRevoked.IsZero() {
		return 0, nil
	}
	ttl := r.AuthCacheTTL
	if ttl == 0 {
		ttl = kube.AuthCacheTTL
	}
	left := r.lastRevoked.Add(ttl).Sub(r.Clock.Now())
	if left <= 0 {
		return 0, nil
	}
	return left, retry.Sleep(ctx, clock.RealClock{}, left)
}
