// Package kube holds what a rotation does on any Kubernetes cluster, whoever
// runs it: the clients, the service-account token secrets (list, delete),
// the pods that use them, a rollout restart, and the Secrets that
// kubecreds' short-lived tokens are bound to (list, revoke, canary). It
// knows no cloud and no Terraform.
package kube

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// Clients reach one cluster with one set of credentials.
type Clients struct {
	Core kubernetes.Interface
	Meta metadata.Interface
	// REST is the core/v1 API for requests the typed clients cannot make
	// (a DeleteCollection answered with metadata). Nil in unit tests.
	REST rest.Interface
	// Retry is how requests failing with transient errors are retried.
	Retry retry.Policy
}

// ConnectWith returns a Connect function that builds clients from a
// kubeconfig, labelled with userAgent. Rate limits are raised: deleting
// thousands of secrets one request at a time must not wait on client-go's
// default 5 requests a second.
// timeout bounds each request (0: none); policy is how transient failures
// are retried.
func Connect(userAgent string, timeout time.Duration, policy retry.Policy) func([]byte) (*Clients, error) {
	return func(raw []byte) (*Clients, error) {
		cfg, err := kubeconfig.ParseServed(raw)
		if err != nil {
			return nil, err
		}
		cfg.Timeout = timeout
		k, err := NewClients(cfg, userAgent)
		if err != nil {
			return nil, err
		}
		k.Retry = policy
		return k, nil
	}
}

// NewClients builds the clients for a client configuration.
func NewClients(cfg *rest.Config, userAgent string) (*Clients, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = userAgent
	cfg.QPS, cfg.Burst = 500, 1000
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Clients{Core: core, Meta: meta, REST: core.CoreV1().RESTClient()}, nil
}

// Authenticates reports whether the API server accepts the credentials
// (false on 401), asking who we are.
func (k *Clients) Authenticates(ctx context.Context) (bool, error) {
	err := k.Retry.Do(ctx, func() error {
		_, err := k.Core.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		return err
	})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsUnauthorized(err):
		return false, nil
	default:
		return false, err
	}
}

// TokenOf is the bearer token of a kubeconfig's current context ("" if none).
func TokenOf(raw []byte) string {
	cfg, err := clientcmd.Load(raw)
	if err != nil || cfg.Contexts[cfg.CurrentContext] == nil {
		return ""
	}
	if user := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo]; user != nil {
		return user.Token
	}
	return ""
}

// TokenSecretName reads, without verifying, the secret a legacy
// service-account token was issued for (its
// kubernetes.io/serviceaccount/secret.name claim).
func TokenSecretName(token string) (namespace, name string) {
	c := legacyClaims(token)
	return c.Namespace, c.SecretName
}

// TokenAccountUID reads, without verifying, the UID of the service account a
// legacy token was issued for ("" when it cannot be read).
func TokenAccountUID(token string) string { return legacyClaims(token).AccountUID }

// claims are the legacy service-account token's claims kubecreds reads.
type claims struct {
	Namespace  string `json:"kubernetes.io/serviceaccount/namespace"`
	SecretName string `json:"kubernetes.io/serviceaccount/secret.name"`
	AccountUID string `json:"kubernetes.io/serviceaccount/service-account.uid"`
}

// legacyClaims decodes a token's payload, empty when it is not a JWT.
func legacyClaims(token string) claims {
	var c claims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c
	}
	if json.Unmarshal(payload, &c) != nil {
		return claims{}
	}
	return c
}
