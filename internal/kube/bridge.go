package kube

import (
	"context"
	"errors"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// BridgeLabel marks the service account of a bridge (see OpenBridge), so
// that one a killed run left behind is found and deleted by the next.
const BridgeLabel = "kubecreds.io/bridge"

// bridgePrefix begins a bridge's generated name.
const bridgePrefix = "kubecreds-bridge-"

// BridgeTTL is how long a bridge's token lives at most: TokenRequest's
// minimum. The bridge deletes its own account long before.
const BridgeTTL = 10 * time.Minute

// bridgeAuthorized bounds the wait for the API server's authorizer to see
// a bridge's RoleBinding (RBAC reads bindings from an informer cache).
const bridgeAuthorized = 30 * time.Second

// Bridge is a credential that outlives the one a run authenticates with
// while that account is re-created: deleting the account behind a token
// ends the token (after the API server's 10 s authentication cache, which
// a slow deletion outlasts), and the account must still be created again.
//
// It is a service account of its own in the account's namespace, allowed
// nothing but to read, delete and create service accounts there (a Role,
// not a ClusterRole), with a TokenRequest token that lives BridgeTTL at
// most and never leaves the process. Its Role and RoleBinding are owned by
// its account, so the garbage collector deletes them with it.
type Bridge struct {
	Clients *Clients
	Account ServiceAccountRef
}

// OpenBridge creates a bridge in namespace with k's credentials (which
// must hold what the bridge is granted, as RBAC's escalation check
// requires), and connects with its token through connect. It returns once
// the API server authorizes the bridge.
func OpenBridge(ctx context.Context, k *Clients, namespace string, connect func(token string) (*Clients, error)) (*Bridge, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		GenerateName: bridgePrefix, Namespace: namespace, Labels: map[string]string{BridgeLabel: "true"},
		Annotations: map[string]string{"kubecreds.io/purpose": "re-creates a service account whose token the run authenticates with; deletes itself"},
	}}
	var created *corev1.ServiceAccount
	if err := k.Retry.Do(ctx, func() (err error) {
		created, err = k.Core.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, fmt.Errorf("create a service account to re-create the admin account with: %w", err)
	}
	ref := ServiceAccountRef{Namespace: namespace, Name: created.Name}
	owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "ServiceAccount", Name: created.Name, UID: created.UID}}
	meta := metav1.ObjectMeta{Name: created.Name, Namespace: namespace, Labels: sa.Labels, OwnerReferences: owner}
	role := &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "delete", "create"},
	}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: meta,
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: created.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: created.Name}},
	}
	seconds := int64(BridgeTTL / time.Second)
	var token string
	err := createOnce(ctx, k, func() error {
		_, err := k.Core.RbacV1().Roles(namespace).Create(ctx, role, metav1.CreateOptions{})
		return err
	})
	if err == nil {
		err = createOnce(ctx, k, func() error {
			_, err := k.Core.RbacV1().RoleBindings(namespace).Create(ctx, binding, metav1.CreateOptions{})
			return err
		})
	}
	if err == nil {
		err = k.Retry.Do(ctx, func() error {
			tr, err := k.Core.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, created.Name,
				&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
			if err == nil {
				token = tr.Status.Token
			}
			return err
		})
	}
	var b *Clients
	if err == nil {
		b, err = connect(token)
	}
	if err == nil {
		b.Retry = k.Retry
		err = awaitAuthorized(ctx, b, namespace)
	}
	if err != nil {
		// With nothing re-created yet, the caller's credentials still work.
		_ = deleteAccount(context.WithoutCancel(ctx), k, ref)
		return nil, fmt.Errorf("prepare service account %s to re-create the admin account with: %w", ref, err)
	}
	return &Bridge{Clients: b, Account: ref}, nil
}

// createOnce runs create with k's retries; an object that already exists
// (a retried create whose first answer was lost) counts as created.
func createOnce(ctx context.Context, k *Clients, create func() error) error {
	return k.Retry.Do(ctx, func() error {
		if err := create(); !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	})
}

// awaitAuthorized waits until the bridge may delete service accounts.
func awaitAuthorized(ctx context.Context, b *Clients, namespace string) error {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: namespace, Verb: "delete", Resource: "serviceaccounts"},
	}}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, bridgeAuthorized, true, func(ctx context.Context) (bool, error) {
		var got *authorizationv1.SelfSubjectAccessReview
		if err := b.Retry.Do(ctx, func() (err error) {
			got, err = b.Core.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
			return err
		}); err != nil {
			return false, err
		}
		last = got.Status.Reason
		return got.Status.Allowed, nil
	})
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("the API server did not authorize it within %s (%s)", bridgeAuthorized, last)
	}
	return err
}

// Close deletes the bridge's account with its own token (the Role allows
// it), which ends the token and, through the garbage collector, the Role
// and RoleBinding. It runs even when ctx is cancelled.
func (b *Bridge) Close(ctx context.Context) error {
	return deleteAccount(context.WithoutCancel(ctx), b.Clients, b.Account)
}

func deleteAccount(ctx context.Context, k *Clients, ref ServiceAccountRef) error {
	err := k.Retry.Do(ctx, func() error {
		return k.Core.CoreV1().ServiceAccounts(ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{})
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete service account %s: %w", ref, err)
	}
	return nil
}

// SweepBridges deletes the bridges of namespace a killed run left behind,
// once older than BridgeTTL
// (their tokens died with that run's process, but an account of theirs is
// still allowed to mint new ones by whoever may). It returns their names.
func SweepBridges(ctx context.Context, k *Clients, namespace string) ([]string, error) {
	var list *corev1.ServiceAccountList
	if err := k.Retry.Do(ctx, func() (err error) {
		list, err = k.Core.CoreV1().ServiceAccounts(namespace).List(ctx, metav1.ListOptions{LabelSelector: BridgeLabel + "=true"})
		return err
	}); err != nil {
		return nil, fmt.Errorf("list the service accounts an earlier run made to re-create the admin account with: %w", err)
	}
	var swept []string
	for _, sa := range list.Items {
		ref := ServiceAccountRef{Namespace: namespace, Name: sa.Name}
		if len(sa.Name) <= len(bridgePrefix) || sa.Name[:len(bridgePrefix)] != bridgePrefix {
			continue // carries the label, but kubecreds did not name it
		}
		if time.Since(sa.CreationTimestamp.Time) < BridgeTTL {
			// Perhaps another run's, still in use; a killed run's token
			// died with its process, and the account goes at a later run.
			continue
		}
		if err := deleteAccount(ctx, k, ref); err != nil {
			return swept, err
		}
		swept = append(swept, ref.String())
	}
	return swept, nil
}
