package rotation

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
)

// KubeClients reach one cluster with one set of credentials.
type KubeClients struct {
	Core kubernetes.Interface
	Meta metadata.Interface
	// REST is the core/v1 API for requests the typed clients cannot make
	// (a DeleteCollection answered with metadata). Nil in unit tests.
	REST rest.Interface
	// Retry is how requests failing with transient errors are retried.
	Retry Retry
}

// ConnectWith returns a Connect function that builds clients from a
// kubeconfig, labelled with userAgent. Rate limits are raised: deleting
// thousands of secrets one request at a time must not wait on client-go's
// default 5 requests a second.
// timeout bounds each request (0: none); retry is how transient failures
// are retried.
func ConnectWith(userAgent string, timeout time.Duration, retry Retry) func([]byte) (*KubeClients, error) {
	return func(raw []byte) (*KubeClients, error) {
		cfg, err := kubeconfig.RESTConfigFromKubeconfig(raw)
		if err != nil {
			return nil, err
		}
		cfg.Timeout = timeout
		k, err := NewKubeClients(cfg, userAgent)
		if err != nil {
			return nil, err
		}
		k.Retry = retry
		return k, nil
	}
}

// NewKubeClients builds the clients for a client configuration.
func NewKubeClients(cfg *rest.Config, userAgent string) (*KubeClients, error) {
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
	return &KubeClients{Core: core, Meta: meta, REST: core.CoreV1().RESTClient()}, nil
}

// authenticates reports whether the API server accepts the credentials
// (false on 401), asking who we are.
func (k *KubeClients) authenticates(ctx context.Context) (bool, error) {
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

// tokenOf is the bearer token of a kubeconfig's current context ("" if none).
func tokenOf(raw []byte) string {
	cfg, err := clientcmd.Load(raw)
	if err != nil || cfg.Contexts[cfg.CurrentContext] == nil {
		return ""
	}
	if user := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo]; user != nil {
		return user.Token
	}
	return ""
}

// tokenSecretName reads, without verifying, the secret a legacy
// service-account token was issued for (its
// kubernetes.io/serviceaccount/secret.name claim).
func tokenSecretName(token string) (namespace, name string) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", ""
	}
	var claims struct {
		Namespace  string `json:"kubernetes.io/serviceaccount/namespace"`
		SecretName string `json:"kubernetes.io/serviceaccount/secret.name"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return "", ""
	}
	return claims.Namespace, claims.SecretName
}
