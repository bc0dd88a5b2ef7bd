package lke

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

// secondSweep decides what the second sweep deletes among the token
// secrets listed once the old credentials are rejected. The first pass
// deleted every token secret but those nothing would replace; since then
// only LKE (regenerating) and whoever still held an old credential (until
// its account was re-created or its secret deleted, plus the API server's
// 10 s authentication cache) could make new ones. So everything goes but:
//   - what nothing would replace (keepSecret), as in the first pass;
//   - the secret behind the kubeconfig just served;
//   - in kube-system, the secrets of the accounts LKE may have just made
//     one for: its control-plane accounts, and any other account that had
//     a token secret when the first pass listed (the seed runbook warns
//     that clusters have more than the ones it names). One per account is
//     LKE's, and which one cannot be told, so none is deleted; more than
//     one per account is reported (extra).
//
// An account that had no token secret then gets none from LKE: a secret
// of it now was planted.
func secondSweep(all []kube.TokenSecret, servedSecret string, hadSecret, recreated map[string]bool, regenerateKubeconfig, regenerateServiceToken bool) (toDelete, kept, extra []kube.TokenSecret) {
	perAccount := map[string][]kube.TokenSecret{}
	var accounts []string
	for _, s := range all {
		account := s.Namespace + "/" + s.ServiceAccount
		// Only a service-token regeneration makes secrets of accounts
		// other than lke-admin; and none of an account this run re-created.
		lkes := regenerateServiceToken && s.Namespace == "kube-system" && s.ServiceAccount != adminServiceAccount && !recreated[account] &&
			(isControlPlaneAccount(s.ServiceAccount) || hadSecret[account])
		switch {
		case keepSecret(s, regenerateKubeconfig, regenerateServiceToken), s.ID() == servedSecret:
			kept = append(kept, s)
		case servedSecret == "" && s.Namespace == "kube-system" && s.ServiceAccount == adminServiceAccount:
			// The served token does not name its secret: which lke-admin
			// secret is behind it cannot be told, so none is touched.
			kept = append(kept, s)
		case lkes:
			kept = append(kept, s)
			if perAccount[s.ServiceAccount] == nil {
				accounts = append(accounts, s.ServiceAccount)
			}
			perAccount[s.ServiceAccount] = append(perAccount[s.ServiceAccount], s)
		default:
			toDelete = append(toDelete, s)
		}
	}
	slices.Sort(accounts)
	for _, account := range accounts {
		if secrets := perAccount[account]; len(secrets) > 1 {
			extra = append(extra, secrets...)
		}
	}
	return toDelete, kept, extra
}

// accountsWithSecrets are the accounts (namespace/name) the secrets belong to.
func accountsWithSecrets(secrets ...[]kube.TokenSecret) map[string]bool {
	out := map[string]bool{}
	for _, list := range secrets {
		for _, s := range list {
			out[s.Namespace+"/"+s.ServiceAccount] = true
		}
	}
	return out
}

// sweepAgain lists and revokes again, once the old credentials are
// rejected, what a holder of them could have made after the first pass
// listed: a legacy token secret (the token controller fills it with a token
// of whatever account it names, even one just re-created) or a Secret a
// short-lived token is bound to. It runs with the new kubeconfig.
func (r *run) sweepAgain(ctx context.Context) (map[string]any, error) {
	// The configured namespaces, and those of the accounts this run
	// re-created (their secrets only): a legacy secret planted for one of
	// them after its re-creation holds a token of the new account.
	namespaces := slices.Clone(r.opts.Namespaces)
	recreated := map[string]bool{}
	for _, id := range r.result.RecreatedServiceAccounts {
		recreated[id] = true
		if ns, _, _ := strings.Cut(id, "/"); !slices.Contains(namespaces, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	listed, err := kube.ListServiceAccountTokens(ctx, r.new, namespaces)
	if err != nil {
		return nil, err
	}
	all := slices.DeleteFunc(listed, func(s kube.TokenSecret) bool {
		return !slices.Contains(r.opts.Namespaces, s.Namespace) && !recreated[s.Namespace+"/"+s.ServiceAccount]
	})
	served := ""
	if ns, name := kube.TokenSecretName(kube.TokenOf(r.newKubeconfig)); name != "" {
		served = ns + "/" + name
	}
	toDelete, _, extra := secondSweep(all, served, r.hadSecret, recreated, r.opts.RegenerateKubeconfig, r.opts.RegenerateServiceToken)
	r.scanPods(ctx, r.new, toDelete)
	// One by one, by UID: a DeleteCollection would also take what LKE made
	// since the list.
	deleted, err := kube.DeleteEach(ctx, r.new, toDelete, r.opts.DeleteConcurrency)
	r.recordDeleted(deleted)
	r.result.SweptAgain = append(r.result.SweptAgain, deleted...)
	for _, s := range extra {
		r.result.ExtraControlPlaneSecrets = append(r.result.ExtraControlPlaneSecrets, s.ID())
	}
	fields := map[string]any{"token_secrets_found": len(all), "token_secrets_deleted": len(deleted)}
	if err != nil {
		return fields, err
	}
	bound, err := kube.ListBoundSecrets(ctx, r.new)
	if err != nil {
		return fields, err
	}
	r.noteForeign(bound.Foreign)
	revoked, err := kube.DeleteEach(ctx, r.new, bound.Ours, r.opts.DeleteConcurrency)
	if len(revoked) > 0 {
		r.revokedNow()
	}
	r.result.RevokedShortLived = append(r.result.RevokedShortLived, revoked...)
	slices.Sort(r.result.RevokedShortLived)
	r.result.SweptAgain = append(r.result.SweptAgain, revoked...)
	slices.Sort(r.result.SweptAgain)
	if len(revoked) > 0 {
		r.done = append(r.done, fmt.Sprintf("%d short-lived kubeconfigs revoked", len(revoked)))
	}
	fields["bound_secrets_revoked"] = len(revoked)
	if err != nil {
		return fields, err
	}
	// What this sweep revoked was made while the old credentials still
	// worked, and may have been used a moment ago.
	cached, err := r.waitOutAuthCache(ctx)
	fields["auth_cache_wait_ms"] = cached.Milliseconds()
	return fields, err
}
