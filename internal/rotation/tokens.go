package rotation

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/metadata"
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
	return fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String()
}

var secretsResource = corev1.SchemeGroupVersion.WithResource("secrets")

// ListServiceAccountTokens lists the token secrets in each namespace, sorted
// by namespace and name. It reads metadata only, so the tokens themselves
// never reach this process.
func ListServiceAccountTokens(ctx context.Context, meta metadata.Interface, namespaces []string) ([]TokenSecret, error) {
	var out []TokenSecret
	for _, ns := range namespaces {
		opts := metav1.ListOptions{FieldSelector: tokenSecretSelector(), Limit: 500}
		for {
			list, err := meta.Resource(secretsResource).Namespace(ns).List(ctx, opts)
			if err != nil {
				return nil, fmt.Errorf("list service-account-token secrets in namespace %s: %w", ns, err)
			}
			for _, s := range list.Items {
				out = append(out, TokenSecret{
					Namespace:      s.Namespace,
					Name:           s.Name,
					UID:            string(s.UID),
					ServiceAccount: s.Annotations[corev1.ServiceAccountNameKey],
					Created:        s.CreationTimestamp.Time,
				})
			}
			if list.Continue == "" {
				break
			}
			opts.Continue = list.Continue
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out, nil
}
