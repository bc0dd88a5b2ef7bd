package lke

import (
	"context"
	"fmt"
	"slices"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

// issueCanary issues the canary token (kube.IssueCanary) with the old
// credentials, before anything ends them and long before the short-lived
// kubeconfigs are revoked. The API server caches a token's successful
// authentication for 10 s from when it is first checked, so a canary last
// checked before the regeneration is rejected as soon as its Secret is
// gone when LKE takes 10 s or more to serve the new kubeconfig: the proof
// then costs no wait. (A resumed rotation has no working credential before
// it regenerates; it issues its canary with the new one, in
// StepFinishDeletion.)
func (r *run) issueCanary(ctx context.Context) (map[string]any, error) {
	return r.issueCanaryWith(ctx, r.old)
}

// issueCanaryBeside starts issuing the canary with the old credentials and
// returns the step that waits for it: the canary's own time runs beside
// whatever runs until then.
func (r *run) issueCanaryBeside(ctx context.Context) func(context.Context) (map[string]any, error) {
	type issued struct {
		fields map[string]any
		err    error
	}
	done := make(chan issued, 1)
	go func() {
		fields, err := r.issueCanary(ctx)
		done <- issued{fields, err}
	}()
	var got *issued
	return func(context.Context) (map[string]any, error) {
		if got == nil {
			g := <-done
			got = &g
		}
		return got.fields, got.err
	}
}

func (r *run) issueCanaryWith(ctx context.Context, k *kube.Clients) (map[string]any, error) {
	tok, err := kube.IssueCanary(ctx, k, r.Clock)
	if err != nil {
		return nil, err
	}
	r.canary = tok
	return map[string]any{"bound_secret": tok.Bound.Namespace + "/" + tok.Bound.Name}, nil
}

// revokeShortLivedKubeconfigs deletes, in every namespace, the Secrets that
// kubecreds_short_lived_kubeconfig tokens are bound to: the API server
// rejects a bound token once its Secret is gone. Their Secrets are Opaque,
// so the token-secret deletion does not reach them, and regenerating through
// the Linode API does not change the key that signs them. Those left by runs
// that were killed, that opened with revoke_on_close = false, or whose Close
// failed are revoked here too.
func (r *run) revokeShortLivedKubeconfigs(ctx context.Context) (map[string]any, error) {
	bound, err := kube.ListBoundSecrets(ctx, r.new)
	if err != nil {
		return nil, err
	}
	r.noteForeign(bound.Foreign)
	deleted, err := kube.DeleteEach(ctx, r.new, bound.Ours, r.opts.DeleteConcurrency)
	var revoked []string
	for _, id := range deleted {
		if r.canary == nil || id != r.canary.Bound.Namespace+"/"+r.canary.Bound.Name {
			revoked = append(revoked, id)
		}
	}
	slices.Sort(revoked)
	if len(revoked) > 0 {
		r.revokedNow()
	}
	r.result.RevokedShortLived = revoked
	if len(revoked) > 0 {
		r.done = append(r.done, fmt.Sprintf("%d short-lived kubeconfigs revoked", len(revoked)))
	}
	return map[string]any{"revoked": len(revoked), "found": len(bound.Ours), "foreign": len(bound.Foreign)}, err
}

// canaryRejected tells whether the API server rejects the canary token
// (true when none was issued).
func (r *run) canaryRejected(ctx context.Context) (bool, error) {
	if r.canary == nil {
		return true, nil
	}
	return kube.TokenRejected(ctx, r.new, r.canary.Token)
}

// noteForeign records the Secrets that carry kubecreds' label without
// being kubecreds' own (kubeconfig.IsBoundSecret), once each.
func (r *run) noteForeign(foreign []kube.TokenSecret) {
	for _, f := range foreign {
		if !slices.Contains(r.result.ForeignBoundSecrets, f.ID()) {
			r.result.ForeignBoundSecrets = append(r.result.ForeignBoundSecrets, f.ID())
		}
	}
	slices.Sort(r.result.ForeignBoundSecrets)
}
