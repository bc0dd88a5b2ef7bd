package kube

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
)

// TokenSecret is a kubernetes.io/service-account-token secret: what the
// runbook deletes. It never carries the token itself.
type TokenSecret struct {
	Namespace      string
	Name           string
	UID            string
	ServiceAccount string
	Created        time.Time
}

// ID is namespace/name.
func (s TokenSecret) ID() string { return s.Namespace + "/" + s.Name }

// tokenSecretSelector is the runbook's
// `--field-selector type=kubernetes.io/service-account-token`.
func tokenSecretSelector() string {
	return fields.OneTermEqualSelector("type", tokenSecretType).String()
}

const tokenSecretType = string(corev1.SecretTypeServiceAccountToken)

// AuthCacheTTL is how long kube-apiserver keeps a successful token
// authentication: every token authenticator is wrapped in one cache
// (pkg/kubeapiserver/authenticator/config.go, tokencache.New with
// TokenSuccessCacheTTL, 10 s by default in
// pkg/kubeapiserver/options/authentication.go). A token used just before
// its revocation is accepted up to this long after it, whoever used it.
const AuthCacheTTL = 10 * time.Second

var secretsResource = corev1.SchemeGroupVersion.WithResource("secrets")

// ListServiceAccountTokens lists the token secrets in each namespace, sorted
// by namespace and name. It reads metadata only, so the tokens themselves
// never reach this process.
func ListServiceAccountTokens(ctx context.Context, k *Clients, namespaces []string) ([]TokenSecret, error) {
	perNamespace := make([][]TokenSecret, len(namespaces))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, ns := range namespaces {
		g.Go(func() error {
			err := listAll(ctx, k.Retry, metav1.ListOptions{FieldSelector: tokenSecretSelector()},
				func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
					return k.Meta.Resource(secretsResource).Namespace(ns).List(ctx, opts)
				},
				func(obj runtime.Object) error {
					s := obj.(*metav1.PartialObjectMetadata)
					perNamespace[i] = append(perNamespace[i], TokenSecret{
						Namespace:      s.Namespace,
						Name:           s.Name,
						UID:            string(s.UID),
						ServiceAccount: s.Annotations[corev1.ServiceAccountNameKey],
						Created:        s.CreationTimestamp.Time,
					})
					return nil
				})
			if err != nil {
				return fmt.Errorf("list service-account-token secrets in namespace %s: %w", ns, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := slices.Concat(perNamespace...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out, nil
}
