package kube

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
)

// The canary is a short-lived token a rotation issues for itself, exactly
// as kubecreds_short_lived_kubeconfig issues one, so that it can prove the
// revocation of short-lived tokens took effect. The default service account
// exists in every namespace; the token only has to authenticate.
const (
	canaryNamespace      = "kube-system"
	canaryServiceAccount = "default"
	canaryTTL            = kubeconfig.MinTTL
)

// IssueCanary issues a short-lived token bound to a Secret labelled like
// every short-lived kubeconfig's (to be issued before they are revoked), and
// checks that the API server accepts it: otherwise its rejection later would
// prove nothing. Asking also puts it in the API server's authentication
// cache, as a token in use would be, so a later check waits that cache out
// too.
func IssueCanary(ctx context.Context, k *Clients, clk clock.PassiveClock) (*kubeconfig.IssuedToken, error) {
	issuer := &kubeconfig.Issuer{Client: k.Core, Clock: clk}
	var tok *kubeconfig.IssuedToken
	err := k.Retry.Do(ctx, func() (err error) {
		tok, err = issuer.IssueServiceAccountToken(ctx, kubeconfig.ServiceAccountToken{
			Namespace: canaryNamespace, Name: canaryServiceAccount, TTL: canaryTTL,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("issue a short-lived token to check its revocation: %w", err)
	}
	rejected, err := TokenRejected(ctx, k, tok.Token)
	if err != nil {
		return nil, err
	}
	if rejected {
		return nil, fmt.Errorf("the API server rejects a short-lived token it has just issued (bound to %s/%s), so its revocation cannot be checked",
			tok.Bound.Namespace, tok.Bound.Name)
	}
	return tok, nil
}

// ListBoundSecrets lists the Secrets of kubecreds' short-lived tokens in
// all namespaces, as metadata. Deleting one revokes its token.
func ListBoundSecrets(ctx context.Context, k *Clients) ([]TokenSecret, error) {
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

// TokenRejected asks the API server (TokenReview: the authenticator every
// request goes through) whether it rejects a token.
func TokenRejected(ctx context.Context, k *Clients, token string) (bool, error) {
	var review *authenticationv1.TokenReview
	err := k.Retry.Do(ctx, func() (err error) {
		review, err = k.Core.AuthenticationV1().TokenReviews().Create(ctx,
			&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("review a token issued to check its revocation: %w", err)
	}
	return !review.Status.Authenticated, nil
}
