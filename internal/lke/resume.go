package lke

import (
	"context"
	"slices"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

// resumedDeletion decides, for a rotation that resumes, which token secrets
// still listed after the regeneration must go. The earlier run (or a person)
// deleted the secret behind the served kubeconfig and may have stopped
// anywhere after: some namespaces done, others not. What is left is deleted,
// except what this run's regeneration has just made:
//   - lke-admin: the secret behind the newly served kubeconfig; any other
//     lke-admin token secret is an old one;
//   - LKE's control-plane accounts, when the service token was regenerated:
//     the newest secret of each (older ones are what it replaced).
//
// Secrets that nothing would replace stay, as in a fresh rotation.
func resumedDeletion(all []kube.TokenSecret, servedSecret string, regenerateKubeconfig, regenerateServiceToken bool) (toDelete, kept []kube.TokenSecret) {
	newest := map[string]kube.TokenSecret{}
	for _, s := range all {
		if s.Namespace != "kube-system" || !isControlPlaneAccount(s.ServiceAccount) {
			continue
		}
		if n, ok := newest[s.ServiceAccount]; !ok || s.Created.After(n.Created) || (s.Created.Equal(n.Created) && s.Name > n.Name) {
			newest[s.ServiceAccount] = s
		}
	}
	for _, s := range all {
		switch {
		case keepSecret(s, regenerateKubeconfig, regenerateServiceToken):
			kept = append(kept, s)
		case s.ID() == servedSecret:
			kept = append(kept, s)
		case s.Namespace == "kube-system" && isControlPlaneAccount(s.ServiceAccount) && newest[s.ServiceAccount].ID() == s.ID():
			kept = append(kept, s)
		default:
			toDelete = append(toDelete, s)
		}
	}
	return toDelete, kept
}

// finishResumedDeletion lists the token secrets of every configured
// namespace with the new kubeconfig and deletes what the interrupted run left.
func (r *run) finishResumedDeletion(ctx context.Context) (map[string]any, error) {
	all, err := kube.ListServiceAccountTokens(ctx, r.new, r.opts.Namespaces)
	if err != nil {
		return nil, err
	}
	r.hadSecret = accountsWithSecrets(all)
	ns, name := kube.TokenSecretName(kube.TokenOf(r.newKubeconfig))
	r.toDelete, r.kept = resumedDeletion(all, ns+"/"+name, r.opts.RegenerateKubeconfig, r.opts.RegenerateServiceToken)
	r.scanPods(ctx, r.new, r.toDelete)
	deleted, err := kube.DeleteTokenSecrets(ctx, r.new, r.toDelete, r.kept, r.opts.DeleteConcurrency)
	r.recordDeleted(deleted)
	r.result.ResumedLeftover = len(deleted)
	if err != nil {
		return nil, err
	}
	if err := r.recreateListedAfterResume(ctx); err != nil {
		return nil, err
	}
	fields := map[string]any{"found": len(all), "deleted": len(deleted), "kept": len(r.kept), "namespaces": r.opts.Namespaces}
	if r.opts.Verify {
		// See issueCanary: before the regeneration nothing worked.
		canary, err := r.issueCanaryWith(ctx, r.new)
		if err != nil {
			return fields, err
		}
		fields["canary"] = canary["bound_secret"]
	}
	return fields, nil
}

func isControlPlaneAccount(sa string) bool { return slices.Contains(controlPlaneServiceAccounts, sa) }
