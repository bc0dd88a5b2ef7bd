package kubeconfig

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// Labels and annotations on the Secrets that short-lived tokens are bound to.
// The expiry lets a later open clean up Secrets whose run was killed before
// it could revoke them, without touching one that may still be in use.
const (
	BoundSecretLabel         = "kubecreds.io/short-lived-kubeconfig"
	ExpiresAtAnnotation      = "kubecreds.io/expires-at"
	ServiceAccountAnnotation = "kubecreds.io/service-account"
	// IssuerAnnotation says that kubecreds made the Secret (the label
	// alone is not enough to delete it: anyone may set it).
	IssuerAnnotation = "kubecreds.io/issued-by"
	issuer           = "kubecreds"
	// BoundSecretPrefix begins the generated name of every bound Secret.
	BoundSecretPrefix = "kubecreds-short-lived-"
	managedByLabel    = "app.kubernetes.io/managed-by"
)

// IsBoundSecret tells, from an Opaque Secret's name and annotations, whether
// kubecreds made it to bind a short-lived token to: the generated name's
// prefix and the issuer annotation (or, on Secrets made before that
// annotation existed, the expiry and service-account annotations every
// version wrote). The label is how they are found, not what proves them
// kubecreds': a Secret that merely carries it is not one, and one whose
// label was removed still is.
func IsBoundSecret(name string, annotations map[string]string) bool {
	if !strings.HasPrefix(name, BoundSecretPrefix) || len(name) == len(BoundSecretPrefix) {
		return false
	}
	if annotations[IssuerAnnotation] == issuer {
		return true
	}
	_, expires := annotations[ExpiresAtAnnotation]
	_, account := annotations[ServiceAccountAnnotation]
	return expires && account
}

// MinTTL is the shortest expiry the API server grants a TokenRequest.
const MinTTL = 10 * time.Minute

// Issuer issues short-lived credentials on one cluster.
type Issuer struct {
	Client kubernetes.Interface
	Clock  clock.PassiveClock
}

// ServiceAccountToken asks for a token of a service account.
type ServiceAccountToken struct {
	Namespace, Name string
	Audiences       []string
	TTL             time.Duration
}

// BoundSecret names the Secret a token is bound to: deleting it revokes the token.
type BoundSecret struct {
	Namespace, Name, UID string
}

// IssuedToken is a token and what it is bound to.
type IssuedToken struct {
	Token     string
	ExpiresAt time.Time
	Bound     BoundSecret
}

// ErrServiceAccountNotFound means the service account does not exist.
var ErrServiceAccountNotFound = errors.New("service account not found")

// IssueServiceAccountToken creates a Secret for this token alone and issues a
// TokenRequest token bound to it, so that deleting the Secret revokes the
// token before its expiry.
func (i *Issuer) IssueServiceAccountToken(ctx context.Context, req ServiceAccountToken) (*IssuedToken, error) {
	if _, err := i.Client.CoreV1().ServiceAccounts(req.Namespace).Get(ctx, req.Name, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %s/%s does not exist", ErrServiceAccountNotFound, req.Namespace, req.Name)
		}
		return nil, explain(err, "get service account "+req.Namespace+"/"+req.Name, "get serviceaccounts")
	}
	expires := i.Clock.Now().Add(req.TTL)
	secret, err := i.Client.CoreV1().Secrets(req.Namespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: BoundSecretPrefix,
			Labels:       map[string]string{BoundSecretLabel: "true", managedByLabel: "kubecreds"},
			Annotations: map[string]string{
				ExpiresAtAnnotation:      expires.UTC().Format(time.RFC3339),
				ServiceAccountAnnotation: req.Name,
				IssuerAnnotation:         issuer,
			},
		},
		Type: corev1.SecretTypeOpaque,
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, explain(err, "create the Secret the token is bound to in "+req.Namespace, "create secrets")
	}
	bound := BoundSecret{Namespace: secret.Namespace, Name: secret.Name, UID: string(secret.UID)}
	seconds := int64(req.TTL / time.Second)
	tr, err := i.Client.CoreV1().ServiceAccounts(req.Namespace).CreateToken(ctx, req.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         req.Audiences,
			ExpirationSeconds: &seconds,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: secret.Name, UID: secret.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		_ = i.Revoke(context.WithoutCancel(ctx), bound)
		return nil, explain(err, "request a token for "+req.Namespace+"/"+req.Name, "create serviceaccounts/token")
	}
	return &IssuedToken{Token: tr.Status.Token, ExpiresAt: tr.Status.ExpirationTimestamp.Time, Bound: bound}, nil
}

// Revoke deletes the Secret a token is bound to (only that very Secret, by
// UID); the API server rejects the token from then on, after its
// authentication cache (about 10 s) expires.
func (i *Issuer) Revoke(ctx context.Context, b BoundSecret) error {
	uid := b.UID
	err := i.Client.CoreV1().Secrets(b.Namespace).Delete(ctx, b.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: (*types.UID)(&uid)},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return explain(err, "delete Secret "+b.Namespace+"/"+b.Name+" to revoke the token", "delete secrets")
	}
	return nil
}

// CleanupExpired deletes bound Secrets in namespace whose tokens have expired
// (left behind by runs that were killed before closing). Secrets whose token
// may still be valid are never touched. It returns how many it deleted.
func (i *Issuer) CleanupExpired(ctx context.Context, namespace string) (int, error) {
	list, err := i.Client.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{BoundSecretLabel: "true"}).String(),
	})
	if err != nil {
		return 0, err
	}
	now, deleted := i.Clock.Now(), 0
	for _, s := range list.Items {
		if s.Type != corev1.SecretTypeOpaque || !IsBoundSecret(s.Name, s.Annotations) {
			continue // carries the label, but kubecreds did not make it
		}
		expires, err := time.Parse(time.RFC3339, s.Annotations[ExpiresAtAnnotation])
		if err != nil || now.Before(expires) {
			continue // unreadable or not expired yet: may be in use
		}
		if err := i.Revoke(ctx, BoundSecret{Namespace: s.Namespace, Name: s.Name, UID: string(s.UID)}); err != nil {
			return deleted, err
		}
		deleted++
	}
	return deleted, nil
}

// explain names the missing permission when the API server forbids a call,
// and says what failed otherwise.
func explain(err error, what, permission string) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: forbidden: the credentials used need RBAC permission to %s (%w)", what, permission, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: the API server rejected the credentials (401): %w", what, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}
