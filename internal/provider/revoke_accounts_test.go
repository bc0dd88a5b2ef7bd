//go:build !unit

package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

// mintToken makes a token of an account as `kubectl create token` does,
// with the credentials of cs (a leaver's copy of the admin kubeconfig).
func mintToken(t *testing.T, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	seconds := int64(2 * time.Hour / time.Second)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create token of %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

// tokenRejectedWithin waits out the API server's 10 s authentication cache
// for a token to answer 401.
func tokenRejectedWithin(t *testing.T, c *fakelke.Cluster, token string, within time.Duration) bool {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, within, true, func(context.Context) (bool, error) {
		return apierrors.IsUnauthorized(tokenAuthenticates(t, c, token)), nil
	})
	return err == nil
}

// ciDeployer makes the CI account of the examples: ci/deployer with a
// label, an image pull secret and a RoleBinding to view, as teams have it.
func ciDeployer(t *testing.T, c *fakelke.Cluster) *corev1.ServiceAccount {
	t.Helper()
	cs := adminClient(t, c)
	ctx := t.Context()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ci"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	// The clusters are shared: another test may have made ci/deployer
	// already (the offboarding guide's example does). Start from this one.
	if err := cs.CoreV1().ServiceAccounts("ci").Delete(ctx, "deployer", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts("ci").Get(ctx, "deployer", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatalf("ci/deployer of an earlier test is not gone: %v", err)
	}
	no := false
	sa, err := cs.CoreV1().ServiceAccounts("ci").Create(ctx, &corev1.ServiceAccount{
		ObjectMeta:                   metav1.ObjectMeta{Name: "deployer", Labels: map[string]string{"team": "platform"}},
		ImagePullSecrets:             []corev1.LocalObjectReference{{Name: "registry"}},
		AutomountServiceAccountToken: &no,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings("ci").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "ci", Name: "deployer"}},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return sa
}

// A rotation with its defaults and one listed account revokes every token
// a leaver could have made before: `kubectl create token` tokens of
// lke-admin and of the listed account, and the listed account's legacy token
// secret. The re-created account keeps what its owners set, its RoleBinding
// applies to it, no bridge account is left, and the next plan is empty.
func TestAccRotation_revokesEveryTokenOfTheAdminAndTheListedAccounts(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	var adminToken, deployerToken, legacyDeployer, adminUID string
	var deployerBefore *corev1.ServiceAccount
	config := rotationConfig(c.ID, `  revoke_service_accounts = ["ci/deployer"]`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					deployerBefore = ciDeployer(t, c)
					leaver := kubeconfigClient(t, servedKubeconfig(t, c))
					adminToken = mintToken(t, leaver, "kube-system", "lke-admin")
					deployerToken = mintToken(t, leaver, "ci", "deployer")
					legacyDeployer = legacyToken(t, c, createTokenSecret(t, c, "ci", "deployer"))
					for name, tok := range map[string]string{"lke-admin's": adminToken, "ci/deployer's": deployerToken, "the legacy": legacyDeployer} {
						if err := tokenAuthenticates(t, c, tok); err != nil {
							t.Fatalf("%s token is rejected before the rotation: %v", name, err)
						}
					}
					sa, err := adminClient(t, c).CoreV1().ServiceAccounts("kube-system").Get(t.Context(), "lke-admin", metav1.GetOptions{})
					if err != nil {
						t.Fatal(err)
					}
					adminUID = string(sa.UID)
				},
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					rotationCheck(func(rotationValues) error {
						// verify = true waited for its own canaries: these are
						// rejected now, or within the API server's cache.
						for name, tok := range map[string]string{
							"a `kubectl create token` token of lke-admin":   adminToken,
							"a `kubectl create token` token of ci/deployer": deployerToken,
							"the legacy token secret of ci/deployer":        legacyDeployer,
						} {
							if !tokenRejectedWithin(t, c, tok, 12*time.Second) {
								return fmt.Errorf("%s made before the rotation is still accepted", name)
							}
						}
						cs := adminClient(t, c)
						admin, err := cs.CoreV1().ServiceAccounts("kube-system").Get(t.Context(), "lke-admin", metav1.GetOptions{})
						if err != nil {
							return err
						}
						if string(admin.UID) == adminUID {
							return errors.New("lke-admin has the UID it had before the rotation")
						}
						sa, err := cs.CoreV1().ServiceAccounts("ci").Get(t.Context(), "deployer", metav1.GetOptions{})
						if err != nil {
							return err
						}
						switch {
						case sa.UID == deployerBefore.UID:
							return errors.New("ci/deployer was not re-created")
						case sa.Labels["team"] != "platform", len(sa.ImagePullSecrets) != 1, sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken:
							return fmt.Errorf("the re-created ci/deployer lost what its owners set: labels %v, imagePullSecrets %v, automount %v",
								sa.Labels, sa.ImagePullSecrets, sa.AutomountServiceAccountToken)
						}
						// Its RoleBinding names the account, so it applies to
						// the new one: a new token may list pods in ci.
						fresh := mintToken(t, cs, "ci", "deployer")
						if _, err := tokenClient(t, c, fresh).CoreV1().Pods("ci").List(t.Context(), metav1.ListOptions{}); err != nil {
							return fmt.Errorf("a token of the re-created ci/deployer cannot do what its RoleBinding allows: %w", err)
						}
						bridges, err := cs.CoreV1().ServiceAccounts("kube-system").List(t.Context(), metav1.ListOptions{LabelSelector: kube.BridgeLabel + "=true"})
						if err != nil {
							return err
						}
						if len(bridges.Items) != 0 {
							return fmt.Errorf("the rotation left its bridge account %s", bridges.Items[0].Name)
						}
						return nil
					}),
					servedKubeconfigMatches(t, c),
				},
			},
			{Config: config, PlanOnly: true},
		},
	})
}

// The create that follows lke-admin's delete is the request a rotation may
// least give up on: faults past one request's retries are ridden out, and
// the rotation finishes with lke-admin re-created.
func TestAccRotation_recreatesTheAdminPastFaultsOnItsCreate(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	t.Cleanup(func() { testEnv.Emulator.ClearClusterFaults(c.ID) })
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			PreConfig: func() {
				// The bridge's own create passes; then six 503s, past the
				// four attempts max_retries = 3 gives one request.
				faults := []fakelke.Fault{{}}
				for range 6 {
					faults = append(faults, fakelke.Fault{Status: http.StatusServiceUnavailable})
				}
				testEnv.Emulator.InjectClusterFaults(c.ID, fakelke.KubeCreateServiceAccount, faults...)
			},
			Config: faultProvider + rotationConfig(c.ID, "  verify = true"),
			ConfigStateChecks: []statecheck.StateCheck{
				rotationCheck(func(rotationValues) error {
					if n := testEnv.Emulator.PendingFaults(c.ID, fakelke.KubeCreateServiceAccount); n != 0 {
						return fmt.Errorf("%d of the create's faults were never met", n)
					}
					if _, err := adminClient(t, c).CoreV1().ServiceAccounts("kube-system").Get(t.Context(), "lke-admin", metav1.GetOptions{}); err != nil {
						return fmt.Errorf("lke-admin after the rotation: %w", err)
					}
					return nil
				}),
				servedKubeconfigMatches(t, c),
			},
		}},
	})
}
