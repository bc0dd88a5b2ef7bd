package rotation

import (
	"context"
	"fmt"
	"slices"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
)

// The canary is a short-lived token the rotation issues for itself, exactly
// as kubecreds_short_lived_kubeconfig issues one, so that it can prove the
// revocation of short-lived tokens took effect. The default service account
// exists in every namespace; the token only has to authenticate.
const (
	canaryNamespace      = "kube-system"
	canaryServiceAccount = "default"
	canaryTTL            = kubeconfig.MinTTL
)

// issueCanary issues a short-lived token bound to a Secret labelled like
// every short-lived kubeconfig's, before they are revoked.
func (r *run) issueCanary(ctx context.Context) (map[string]any, error) {
	issuer := &kubeconfig.Issuer{Client: r.new.Core, Clock: r.Clock}
	var tok *kubeconfig.IssuedToken
	err := r.new.Retry.Do(ctx, func() (err error) {
		tok, err = issuer.IssueServiceAccountToken(ctx, kubeconfig.ServiceAccountToken{
			Namespace: canaryNamespace, Name: canaryServiceAccount, TTL: canaryTTL,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("issue a short-lived token to check its revocation: %w", err)
	}
	r.canary = tok
	// It must work now, or its rejection later would prove nothing. Asking
	// also puts it in the API server's authentication cache, as a token in
	// use would be, so the later check waits that cache out too.
	rejected, err := r.canaryRejected(ctx)
	if err != nil {
		return nil, err
	}
	if rejected {
		return nil, fmt.Errorf("the API server rejects a short-lived token it has just issued (bound to %s/%s), so its revocation cannot be checked",
			tok.Bound.Namespace, tok.Bound.Name)
	}
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
	bound, err := listBoundSecrets(ctx, r.new)
	if err != nil {
		return nil, err
	}
	deleted, err := deleteEachParallel(ctx, r.new, bound, r.opts.DeleteConcurrency)
	var revoked []string
	for _, id := range deleted {
		if r.canary == nil || id != r.canary.Bound.Namespace+"/"+r.canary.Bound.Name {
			revoked = append(revoked, id)
		}
	}
	slices.Sort(revoked)
	r.result.RevokedShortLived = revoked
	if len(revoked) > 0 {
		r.done = append(r.done, fmt.Sprintf("%d short-lived kubeconfigs revoked", len(revoked)))
	}
	return map[string]any{"revoked": len(revoked), "found": len(bound)}, err
}

// listBoundSecrets lists the Secrets of short-lived tokens in all namespaces,
// as metadata.
func listBoundSecrets(ctx context.Context, k *KubeClients) ([]TokenSecret, error) {
	var out []TokenSecret
	opts := metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{kubeconfig.BoundSecretLabel: "true"}).String()}
	err := listAll(ctx, k.Retry, opts,
		func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return k.Meta.Resource(secretsResource).Namespace(metav1.NamespaceAll).List(ctx, opts)
		},
		func(obj runtime.Object) error {
			s := obj.(*metav1.PartialObjectMetadata)
			out = append(out, TokenSecret{Namespace: s.Namespace, Name: s.Name, UID: string(s.UID), Created: s.CreationTimestamp.Time})
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("list the Secrets of short-lived kubeconfigs: %w", err)
	}
	return out, nil
}

// canaryRejected asks the API server (TokenReview: the authenticator every
// request goes through) whether it still accepts the canary token.
func (r *run) canaryRejected(ctx context.Context) (bool, error) {
	if r.canary == nil {
		return true, nil
	}
	var review *authenticationv1.TokenReview
	err := r.new.Retry.Do(ctx, func() (err error) {
		review, err = r.new.Core.AuthenticationV1().TokenReviews().Create(ctx,
			&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: r.canary.Token}}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("review the short-lived canary token: %w", err)
	}
	return !review.Status.Authenticated, nil
}
