package kube

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
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
)

// ServiceAccountRef names a service account.
type ServiceAccountRef struct {
	Namespace string
	Name      string
}

func (r ServiceAccountRef) String() string { return r.Namespace + "/" + r.Name }

// ParseServiceAccountRef reads "namespace/name" with the API server's own
// rules: a namespace is a DNS-1123 label, a service account's name a
// DNS-1123 subdomain (apimachinery's ValidateServiceAccountName).
func ParseServiceAccountRef(s string) (ServiceAccountRef, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || strings.Contains(name, "/") {
		return ServiceAccountRef{}, fmt.Errorf("%q is not namespace/name", s)
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return ServiceAccountRef{}, fmt.Errorf("namespace %q in %q: %s", ns, s, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return ServiceAccountRef{}, fmt.Errorf("service account name %q in %q: %s", name, s, strings.Join(errs, "; "))
	}
	return ServiceAccountRef{Namespace: ns, Name: name}, nil
}

// ErrDeletedNotCreated means an account was deleted and could not be
// created again: it is missing.
var ErrDeletedNotCreated = errors.New("the account is missing")

// Recreated is a service account deleted and created again under its name.
type Recreated struct {
	ServiceAccountRef
	OldUID, NewUID string
}

// RecreateServiceAccount deletes a service account and creates it again
// under the same name, keeping what users and controllers set on it
// (labels, annotations, owner references, imagePullSecrets, secrets,
// automountServiceAccountToken). Every token the API server issued for it
// carries the old UID, so all of them are rejected from then on (after the
// API server's 10 s authentication cache): TokenRequest tokens, tokens bound
// to a Secret, legacy token secrets (which the token controller also
// deletes). RoleBindings and ClusterRoleBindings name the account, not its
// UID, so they apply to the new one.
//
// There is no API to give an object a new UID in place; the delete carries
// the UID as a precondition, so an account someone re-created meanwhile is
// not deleted again. Once it is deleted, the create is not cancelled with
// ctx: stopping between the two would leave the account missing.
func RecreateServiceAccount(ctx context.Context, k *Clients, ref ServiceAccountRef) (*Recreated, error) {
	client := k.Core.CoreV1().ServiceAccounts(ref.Namespace)
	var old *corev1.ServiceAccount
	err := k.Retry.Do(ctx, func() (err error) {
		old, err = client.Get(ctx, ref.Name, metav1.GetOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("service account %s does not exist", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("read service account %s: %w", ref, err)
	}
	uid := old.UID
	err = k.Retry.Do(ctx, func() error {
		return client.Delete(ctx, ref.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("delete service account %s to re-create it: %w", ref, err)
	}
	ctx = context.WithoutCancel(ctx)
	created, err := createAgain(ctx, k, recreation(old))
	if err != nil {
		return nil, fmt.Errorf("service account %s was deleted to revoke its tokens, and creating it again failed "+
			"(create it again before anything else, with the same name): %w: %w", ref, ErrDeletedNotCreated, err)
	}
	return &Recreated{ServiceAccountRef: ref, OldUID: string(uid), NewUID: string(created.UID)}, nil
}

// recreation is the account to create in place of old: what its owners set,
// without what the API server assigns.
func recreation(old *corev1.ServiceAccount) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{
			Name:            old.Name,
			Namespace:       old.Namespace,
			Labels:          old.Labels,
			Annotations:     old.Annotations,
			OwnerReferences: old.OwnerReferences,
		},
		Secrets:                      old.Secrets,
		ImagePullSecrets:             old.ImagePullSecrets,
		AutomountServiceAccountToken: old.AutomountServiceAccountToken,
	}
}

// recreateWithin bounds how long the create after the delete is tried.
// Giving up leaves the account missing, so it outlasts by far what one
// request's retries ride out (an API server restarting, a load balancer
// failing over), within the 10 minutes a bridge's token lives.
const recreateWithin = 5 * time.Minute

// createAgain creates sa, waiting out a deletion still in progress (a
// finalizer someone put on the old account) and transient failures for up
// to recreateWithin. An account of that name created meanwhile by someone
// else is taken as it is: it is new either way.
func createAgain(ctx context.Context, k *Clients, sa *corev1.ServiceAccount) (*corev1.ServiceAccount, error) {
	client := k.Core.CoreV1().ServiceAccounts(sa.Namespace)
	var created *corev1.ServiceAccount
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, recreateWithin, true, func(ctx context.Context) (bool, error) {
		err := k.Retry.Do(ctx, func() (err error) {
			created, err = client.Create(ctx, sa, metav1.CreateOptions{})
			return err
		})
		switch {
		case err == nil:
			return true, nil
		case apierrors.IsAlreadyExists(err):
		case k.Retry.Transient(err):
			last = err
			return false, nil // past this request's retries: keep trying
		default:
			return false, err
		}
		current, gerr := client.Get(ctx, sa.Name, metav1.GetOptions{})
		if gerr != nil || current.DeletionTimestamp != nil {
			return false, nil //nolint:nilerr // the old account is still being deleted: try again
		}
		created = current
		return true, nil
	})
	if err != nil && last != nil && wait.Interrupted(err) {
		err = fmt.Errorf("still failing after %s: %w", recreateWithin, last)
	}
	return created, err
}

// AccountCanaryTTL is how long a token issued to prove an account's
// re-creation lives: past any rotation's wait, and as short as the API
// server allows (10 minutes is TokenRequest's minimum).
const AccountCanaryTTL = 10 * time.Minute

// IssueAccountCanary issues a TokenRequest token for the account bound to
// nothing, as `kubectl create token` does: only the account's re-creation
// can revoke it, so its rejection afterwards proves the re-creation
// revoked every token the account had. It checks that the token is
// accepted now; otherwise its rejection would prove nothing.
func IssueAccountCanary(ctx context.Context, k *Clients, ref ServiceAccountRef) (string, error) {
	seconds := int64(AccountCanaryTTL / time.Second)
	var token string
	err := k.Retry.Do(ctx, func() error {
		tr, err := k.Core.CoreV1().ServiceAccounts(ref.Namespace).CreateToken(ctx, ref.Name,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
		if err == nil {
			token = tr.Status.Token
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("issue a token of %s to check that re-creating it revokes its tokens: %w", ref, err)
	}
	rejected, err := TokenRejected(ctx, k, token)
	if err != nil {
		return "", err
	}
	if rejected {
		return "", fmt.Errorf("the API server rejects a token of %s it has just issued, so its revocation cannot be checked", ref)
	}
	return token, nil
}
