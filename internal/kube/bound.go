package kube

import (
	"context"
	"fmt"
	"slices"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
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

// BoundSecrets are the Secrets found by ListBoundSecrets.
type BoundSecrets struct {
	// Ours are kubecreds' (kubeconfig.IsBoundSecret, and Opaque): deleting
	// one revokes its token.
	Ours []TokenSecret
	// Foreign carry kubecreds' label but are not kubecreds' Secrets: never
	// deleted, named in a warning.
	Foreign []TokenSecret
}

// ListBoundSecrets lists, in all namespaces and as metadata (no Secret's
// data is read), the Secrets of kubecreds' short-lived tokens. A Secret is
// one by its name, its annotations and its type (kubeconfig.IsBoundSecret),
// not by its label: the Opaque Secrets are listed whatever their labels, so
// one whose label was removed is found, and those that carry the label
// without being kubecreds' are returned apart.
func ListBoundSecrets(ctx context.Context, k *Clients) (BoundSecrets, error) {
	var out BoundSecrets
	ours := map[string]bool{}
	list := func(opts metav1.ListOptions, each func(*metav1.PartialObjectMetadata)) error {
		return listAll(ctx, k.Retry, opts,
			func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
				return k.Meta.Resource(secretsResource).Namespace(metav1.NamespaceAll).List(ctx, opts)
			},
			func(obj runtime.Object) error {
				each(obj.(*metav1.PartialObjectMetadata))
				return nil
			})
	}
	secret := func(s *metav1.PartialObjectMetadata) TokenSecret {
		return TokenSecret{Namespace: s.Namespace, Name: s.Name, UID: string(s.UID), Created: s.CreationTimestamp.Time}
	}
	err := list(metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeOpaque)).String()},
		func(s *metav1.PartialObjectMetadata) {
			switch {
			case kubeconfig.IsBoundSecret(s.Name, s.Annotations):
				out.Ours = append(out.Ours, secret(s))
				ours[string(s.UID)] = true
			case s.Labels[kubeconfig.BoundSecretLabel] != "":
				out.Foreign = append(out.Foreign, secret(s))
			}
		})
	if err == nil {
		// The label on Secrets of any other type: never kubecreds'. (An
		// API server that ignored the field selector would list ours again.)
		err = list(metav1.ListOptions{
			LabelSelector: kubeconfig.BoundSecretLabel,
			FieldSelector: fields.OneTermNotEqualSelector("type", string(corev1.SecretTypeOpaque)).String(),
		}, func(s *metav1.PartialObjectMetadata) {
			if !ours[string(s.UID)] && !slices.ContainsFunc(out.Foreign, func(f TokenSecret) bool { return f.UID == string(s.UID) }) {
				out.Foreign = append(out.Foreign, secret(s))
			}
		})
	}
	if err != nil {
		return BoundSecrets{}, fmt.Errorf("list the Secrets of short-lived kubeconfigs: %w", err)
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
