//go:build !unit

package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
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

// accountScene is a CI account as teams have it, in a namespace of its own
// on a shared cluster, with every kind of credential a leaver could hold.
type accountScene struct {
	ns  string
	uid string
	// Tokens made before the rotation: `kubectl create token`, one bound
	// to a Secret, and the legacy token secret's.
	minted, bound, legacy string
	legacySecret          string
}

// newAccountScene makes ns/deployer (labels, an image pull secret, a
// RoleBinding to view), its legacy token secret, the tokens, and
// workloads running as it: a deployment, a paused deployment, a bare pod.
func newAccountScene(t *testing.T, c *fakelke.Cluster, ns string, workloads bool) *accountScene {
	t.Helper()
	cs := adminClient(t, c)
	ctx := t.Context()
	// The clusters are shared between tests: start from nothing.
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("namespace %s of an earlier test is not gone: %v", ns, err)
	}
	no := false
	sa, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta:                   metav1.ObjectMeta{Name: "deployer", Labels: map[string]string{"team": "platform"}, Annotations: map[string]string{"owner": "ci"}},
		ImagePullSecrets:             []corev1.LocalObjectReference{{Name: "registry"}},
		AutomountServiceAccountToken: &no,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "deployer"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := &accountScene{ns: ns, uid: string(sa.UID), legacySecret: "deployer-token"}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.legacySecret, Labels: map[string]string{"used-by": "ci"},
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "deployer"}},
		Type: corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.legacy = filledToken(t, cs, ns, s.legacySecret, "")
	s.minted = mintToken(t, cs, ns, "deployer")
	// A token bound to a Secret of the leaver's own: deleting no secret of
	// kubecreds' revokes it; only the account's re-creation does.
	holder, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "leaver-holder"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seconds := int64(7200)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "deployer", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &seconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: holder.Name, UID: holder.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.bound = tr.Status.Token
	for name, tok := range map[string]string{"minted": s.minted, "bound": s.bound, "legacy": s.legacy} {
		if err := tokenAuthenticates(t, c, tok); err != nil {
			t.Fatalf("the %s token does not work before the rotation: %v", name, err)
		}
	}
	if !workloads {
		return s
	}
	for _, name := range []string{"web", "frozen"} {
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deploymentAs(name, "deployer"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A deployment created paused has no pods; pause it once it has them.
	waitPods(t, cs, ns, "app=frozen")
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, "frozen", "application/strategic-merge-patch+json",
		[]byte(`{"spec":{"paused":true}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPods(t, cs, ns, "app=web")
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "debug"},
		Spec:       corev1.PodSpec{ServiceAccountName: "deployer", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func deploymentAs(name, account string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{ServiceAccountName: account, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
}

// waitPods waits until a controller has made pods with the labels (they
// stay Pending: the local LKE runs no kubelet).
func waitPods(t *testing.T, cs kubernetes.Interface, ns, selector string) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		return err == nil && len(pods.Items) > 0, nil
	}); err != nil {
		t.Fatalf("no pods %s in %s: %v", selector, ns, err)
	}
}

// filledToken waits until the token controller has filled a legacy token
// secret with a token other than not, and returns it.
func filledToken(t *testing.T, cs kubernetes.Interface, ns, name, not string) string {
	t.Helper()
	var tok string
	if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // not there yet
		}
		tok = string(s.Data[corev1.ServiceAccountTokenKey])
		return tok != "" && tok != not, nil
	}); err != nil {
		t.Fatalf("legacy token secret %s/%s was not filled: %v", ns, name, err)
	}
	return tok
}

// checkRevoked checks that every token of the scene made before answers 401,
// that the account came back as it was with a new UID, and that its
// RoleBinding applies to the new account.
func (s *accountScene) checkRevoked(t *testing.T, c *fakelke.Cluster) {
	t.Helper()
	for name, tok := range map[string]string{"kubectl create token": s.minted, "Secret-bound": s.bound, "legacy token secret": s.legacy} {
		if !tokenRejectedWithin(t, c, tok, 30*time.Second) {
			t.Errorf("the %s token made before the rotation is still accepted", name)
		}
	}
	cs := adminClient(t, c)
	sa, err := cs.CoreV1().ServiceAccounts(s.ns).Get(t.Context(), "deployer", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the account after the rotation: %v", err)
	}
	if string(sa.UID) == s.uid {
		t.Fatal("the account kept its UID")
	}
	if sa.Labels["team"] != "platform" || sa.Annotations["owner"] != "ci" || len(sa.ImagePullSecrets) != 1 ||
		sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("the re-created account lost what its owners set: %+v", sa)
	}
	fresh := mintToken(t, cs, s.ns, "deployer")
	if _, err := tokenClient(t, c, fresh).CoreV1().Pods(s.ns).List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Errorf("a token of the new account cannot do what its RoleBinding grants: %v", err)
	}
}

// configDir writes main.tf (and files) to a fresh directory.
func configDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tfRun runs the installed terraform in dir.
func tfRun(t *testing.T, dir string, env map[string]string, args ...string) (string, error) {
	t.Helper()
	return terraformCmdWith(t, os.Getenv("TF_ACC_TERRAFORM_PATH"), dir, env, append(args, "-no-color")...)
}

func mustTF(t *testing.T, dir string, env map[string]string, args ...string) string {
	t.Helper()
	out, err := tfRun(t, dir, env, args...)
	if err != nil {
		t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// noLinodeAPI points the provider at no Linode API at all, for the tests
// that reach the cluster through base_kubeconfig only.
var noLinodeAPI = map[string]string{"LINODE_TOKEN": "", "LINODE_URL": "https://127.0.0.1:9/v4"}

// servedAccountDir is a configuration rotating ns/deployer through
// base_kubeconfig set to the kubeconfig LKE serves, which reaches the
// cluster through its proxy, where faults and sticky tokens apply.
func servedAccountDir(t *testing.T, c *fakelke.Cluster, ns string) string {
	t.Helper()
	return configDir(t, map[string]string{"cluster.kubeconfig": string(servedKubeconfig(t, c)), "main.tf": actionProviders + fmt.Sprintf(`
resource "kubecreds_service_account_rotation" "ci" {
  service_accounts = ["%s/deployer"]
  base_kubeconfig  = file("${path.module}/cluster.kubeconfig")
}
`, ns)})
}

// mustPlanEmpty fails the test unless the next plan in dir is empty.
func mustPlanEmpty(t *testing.T, dir string, env map[string]string, after string) {
	t.Helper()
	if out, err := tfRun(t, dir, env, "plan", "-detailed-exitcode", "-input=false"); err != nil || !strings.Contains(out, "No changes.") {
		t.Fatalf("the plan %s is not empty (%v):\n%s", after, err, out)
	}
}

// accountState reads the kubecreds_service_account_rotation's attributes.
func accountState(t *testing.T, dir string) map[string]any {
	t.Helper()
	return stateAttributes(t, dir, "kubecreds_service_account_rotation.ci")
}

// The offboarding guide's CI-account example, applied as written through
// the provider's kubernetes block: every token the CI account had is
// rejected, its legacy token secret holds a working token of the new
// account, the deployment running as it was restarted, the paused one and
// the bare pod are named and untouched, and the next plan is empty.
func TestAccServiceAccountRotation_throughTheKubernetesBlock(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	s := newAccountScene(t, c, "ci", true)
	cs := adminClient(t, c)
	dir := copyExample(t, "examples/guides/offboarding-ci-account")
	vars := map[string]string{"TF_VAR_kubeconfig_path": c.AdminKubeconfigPath()}
	regens := c.Regenerations()
	out := mustTF(t, dir, vars, "apply", "-auto-approve", "-input=false")
	t.Logf("terraform apply printed:\n%s", out)
	s.checkRevoked(t, c)
	if n := c.Regenerations() - regens; n != 0 {
		t.Errorf("the rotation regenerated the LKE kubeconfig %d times; it must not touch it", n)
	}

	// The legacy token secret is back, for the new account, with a new
	// token that works.
	newLegacy := filledToken(t, cs, s.ns, s.legacySecret, s.legacy)
	if err := tokenAuthenticates(t, c, newLegacy); err != nil {
		t.Errorf("the re-created legacy token secret's token does not work: %v", err)
	}
	if sec, err := cs.CoreV1().Secrets(s.ns).Get(t.Context(), s.legacySecret, metav1.GetOptions{}); err != nil || sec.Labels["used-by"] != "ci" {
		t.Errorf("the re-created legacy token secret lost its labels (%v)", err)
	}

	// What runs as the account: web restarted, frozen skipped and named,
	// the bare pod named.
	web, err := cs.AppsV1().Deployments(s.ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil || web.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
		t.Errorf("deployment web, which runs as the account, was not restarted (%v)", err)
	}
	frozen, err := cs.AppsV1().Deployments(s.ns).Get(t.Context(), "frozen", metav1.GetOptions{})
	if err != nil || frozen.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] != "" {
		t.Errorf("the paused deployment was touched (%v)", err)
	}
	for _, want := range []string{"Paused deployments were not restarted", s.ns + "/frozen", "were not restarted", "pod " + s.ns + "/debug"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("the apply does not say %q", want)
		}
	}
	// The restarted deployment's new pods run as the new account. (They
	// stay Pending: with no kubelet here, nothing requests their tokens.)
	if err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		rs, err := cs.AppsV1().ReplicaSets(s.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		return err == nil && len(rs.Items) == 2, nil
	}); err != nil {
		t.Errorf("the restart made no new ReplicaSet for web: %v", err)
	}

	st := accountState(t, dir)
	uids, _ := st["service_account_uids"].(map[string]any)
	sa, _ := cs.CoreV1().ServiceAccounts(s.ns).Get(t.Context(), "deployer", metav1.GetOptions{})
	if sa == nil || uids[s.ns+"/deployer"] != string(sa.UID) {
		t.Errorf("service_account_uids = %v, want the new UID", uids)
	}
	if restarted, _ := st["restarted_workloads"].([]any); !slices.Contains(restarted, any("deployment/"+s.ns+"/web")) {
		t.Errorf("restarted_workloads = %v", restarted)
	}
	if _, err := cs.CoreV1().ConfigMaps(s.ns).Get(t.Context(), "kubecreds-recreate-deployer", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the checkpoint is left after a finished rotation (%v)", err)
	}
	mustPlanEmpty(t, dir, vars, "after the rotation")
}

// The same through base_kubeconfig, with no Linode API at all: a create
// that fails after the account was deleted leaves it missing, the error
// says so, and the next apply creates it from the checkpoint and finishes;
// then an import adopts the accounts without rotating them.
func TestAccServiceAccountRotation_baseKubeconfigResumesAndImports(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	t.Cleanup(func() { testEnv.Emulator.ClearClusterFaults(c.ID) })
	s := newAccountScene(t, c, "sarot-base", false)
	// The kubeconfig LKE serves reaches the cluster through its proxy,
	// where faults can be injected.
	kc := servedKubeconfig(t, c)
	config := actionProviders + fmt.Sprintf(`
resource "kubecreds_service_account_rotation" "ci" {
  service_accounts = ["%s/deployer"]
  base_kubeconfig  = file("${path.module}/cluster.kubeconfig")
}
`, s.ns)
	dir := configDir(t, map[string]string{"main.tf": config, "cluster.kubeconfig": string(kc)})

	testEnv.Emulator.InjectClusterFaults(c.ID, fakelke.KubeCreateServiceAccount, fakelke.Fault{Status: http.StatusForbidden})
	out, err := tfRun(t, dir, noLinodeAPI, "apply", "-auto-approve", "-input=false")
	if err == nil {
		t.Fatalf("the apply succeeded though the account's create was refused:\n%s", out)
	}
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"was deleted", "Run apply again", "kubecreds-recreate-"} {
		if !strings.Contains(flat, want) {
			t.Errorf("the failed apply does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(flat, "nothing was changed") {
		t.Error("the failed apply claims nothing was changed after it deleted the account")
	}
	if _, err := adminClient(t, c).CoreV1().ServiceAccounts(s.ns).Get(t.Context(), "deployer", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the account is not missing after the refused create (%v): the test would prove nothing", err)
	}

	out = mustTF(t, dir, noLinodeAPI, "apply", "-auto-approve", "-input=false")
	if !strings.Contains(out, "created from a stopped run's checkpoint") {
		t.Errorf("the resumed apply does not say it created the account from the checkpoint:\n%s", out)
	}
	s.checkRevoked(t, c)
	mustPlanEmpty(t, dir, noLinodeAPI, "after the resumed apply")
	if raw, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate")); err != nil || strings.Contains(string(raw), kube.TokenOf(kc)) {
		t.Fatalf("the state holds base_kubeconfig's token (%v)", err)
	}

	// Import into another configuration: adopted, not rotated.
	sa, err := adminClient(t, c).CoreV1().ServiceAccounts(s.ns).Get(t.Context(), "deployer", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	imported := configDir(t, map[string]string{"main.tf": config, "cluster.kubeconfig": string(kc)})
	mustTF(t, imported, noLinodeAPI, "import", "-input=false", "kubecreds_service_account_rotation.ci", s.ns+"/deployer")
	mustPlanEmpty(t, imported, noLinodeAPI, "after an import")
	after, err := adminClient(t, c).CoreV1().ServiceAccounts(s.ns).Get(t.Context(), "deployer", metav1.GetOptions{})
	if err != nil || after.UID != sa.UID {
		t.Fatalf("the import re-created the account (%v)", err)
	}
	if got := stateAttributes(t, imported, "kubecreds_service_account_rotation.ci")["rotated_at"]; got != nil {
		t.Errorf("an imported rotation has rotated_at %v; kubecreds has not rotated it", got)
	}
}

// The incident action under Terraform 1.14 revokes every token, reports its
// steps, and keeps nothing in the state.
func TestAccServiceAccountRotation_actionUnderTerraform14(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	s := newAccountScene(t, c, "sarot-action", true)
	dir := actionDir(t, actionProviders+fmt.Sprintf(`
provider "kubecreds" {
  kubernetes {
    config_path = %q
  }
}

action "kubecreds_rotate_service_account" "now" {
  config {
    service_accounts = ["%s/deployer"]
  }
}
`, c.AdminKubeconfigPath(), s.ns))
	out := tf14(t, dir, "apply", "-auto-approve", "-input=false", "-invoke=action.kubecreds_rotate_service_account.now")
	t.Logf("terraform apply -invoke printed:\n%s", out)
	s.checkRevoked(t, c)
	for _, want := range []string{"Rotating 1 service account(s)", kube.StepRecreateAccounts + ":", kube.StepVerifyRejected + ":",
		"Rotated " + s.ns + "/deployer in", "tokens issued before are rejected", "Paused deployments were not restarted"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("the action does not say %q", want)
		}
	}
	// Without recreate_token_secrets the legacy secret went with the
	// account, and the action said so.
	if _, err := adminClient(t, c).CoreV1().Secrets(s.ns).Get(t.Context(), s.legacySecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the legacy token secret is still there (%v)", err)
	}
	if !strings.Contains(out, "Legacy token secrets removed") {
		t.Error("the action does not name the legacy token secrets it removed")
	}
	var shown map[string]any
	if err := json.Unmarshal([]byte(tf14(t, dir, "show", "-json")), &shown); err != nil {
		t.Fatal(err)
	}
	if v, ok := shown["values"]; ok && v != nil {
		t.Errorf("the action left something in the state: %v", v)
	}
}
