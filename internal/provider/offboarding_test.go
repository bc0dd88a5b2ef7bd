//go:build !unit

package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
)

// shortLivedCaptureConfig opens a short-lived kubeconfig for the cluster and
// has a local-exec write it to capture (outside terraform's working
// directory and the leak scan's reach), then run extra shell.
const shortLivedCaptureConfig = `
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}

ephemeral "kubecreds_short_lived_kubeconfig" "k" {
  lke_cluster_id  = %d
  ttl             = "24h"
  revoke_on_close = %t
}

resource "terraform_data" "use" {
  provisioner "local-exec" {
    command     = "printf '%%s' \"$KC\" > \"$OUT.tmp\" && mv \"$OUT.tmp\" \"$OUT\" %s"
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig, OUT = %q }
  }
}
`

// withKubecreds puts the required_providers block a configuration run by
// the CLI needs before body.
func withKubecreds(body string) string {
	return "terraform {\n  required_providers {\n    kubecreds = { source = \"kubecreds/kubecreds\" }\n  }\n}\n" + body
}

func writeConfig(t *testing.T, dir, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// capturedToken reads the token of a kubeconfig a local-exec captured.
func capturedToken(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("no kubeconfig was captured: %v", err)
	}
	return kubeconfigToken(t, b)
}

// legacyToken waits for the token controller to fill a token secret and returns its token.
func legacyToken(t *testing.T, c *fakelke.Cluster, id string) string {
	t.Helper()
	ns, name, _ := strings.Cut(id, "/")
	var token string
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := adminClient(t, c).CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // the secret may not be readable yet: keep polling until the token controller fills it
		}
		token = string(s.Data[corev1.ServiceAccountTokenKey])
		return token != "", nil
	})
	if err != nil {
		t.Fatalf("the token controller did not fill %s: %v", id, err)
	}
	return token
}

// tokenAuthenticates asks the API server who the token is: nil when it is
// accepted (whatever RBAC then allows it), an error when it is rejected.
func tokenAuthenticates(t *testing.T, c *fakelke.Cluster, token string) error {
	t.Helper()
	_, err := tokenClient(t, c, token).AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	return err
}

// stateAttributes returns the attributes terraform.tfstate in dir records
// for the resource at addr (type.name).
func stateAttributes(t *testing.T, dir, addr string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Resources []struct {
			Type, Name string
			Instances  []struct {
				Attributes map[string]any `json:"attributes"`
			}
		}
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Resources {
		if r.Type+"."+r.Name == addr && len(r.Instances) == 1 {
			return r.Instances[0].Attributes
		}
	}
	t.Fatalf("%s is not in the state", addr)
	return nil
}

func stringsOf(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// TestAccOffboarding_guideExampleRevokesEveryCredential applies the
// offboarding guide's example as written and checks the promise: every
// credential that existed before the apply answers 401 after it — the old
// admin kubeconfig, a legacy token secret in each configured namespace, a
// short-lived kubeconfig opened with revoke_on_close = false, one from a run
// killed with SIGKILL, `kubectl create token` tokens of lke-admin and of
// the listed CI account made with the old admin kubeconfig, and a legacy
// token secret and a Secret-bound token planted with it while the rotation
// ran. A deployment running as the CI account is restarted; a paused one is
// named and untouched.
func TestAccOffboarding_guideExampleRevokesEveryCredential(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	oldKC := servedKubeconfig(t, c)
	legacy := map[string]string{}
	for _, id := range []string{createTokenSecret(t, c, "kube-system", "my-ci"), createTokenSecret(t, c, "ci", "deployer")} {
		legacy[id] = legacyToken(t, c, id)
	}

	capture := t.TempDir()
	kept := filepath.Join(capture, "kept.kubeconfig")
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(shortLivedCaptureConfig, c.ID, false, "", kept))
	if out, err := terraformCmd(t, dir, nil, "apply", "-auto-approve", "-input=false", "-no-color"); err != nil {
		t.Fatalf("opening a short-lived kubeconfig with revoke_on_close = false failed: %v\n%s", err, out)
	}
	keptToken := capturedToken(t, kept)

	killedFile := filepath.Join(capture, "killed.kubeconfig")
	killedDir := t.TempDir()
	writeConfig(t, killedDir, fmt.Sprintf(shortLivedCaptureConfig, c.ID, true, "&& sleep 120", killedFile))
	if out, err := runKilledWhen(t, killedDir, nil, func() bool { return fileExists(killedFile) }); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	killedToken := capturedToken(t, killedFile)

	// Workloads running as the CI account: one to restart, one paused.
	cs := adminClient(t, c)
	for _, name := range []string{"offboard-web", "offboard-frozen"} {
		_ = cs.AppsV1().Deployments("ci").Delete(t.Context(), name, metav1.DeleteOptions{}) // left by an earlier run
		if err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			_, err := cs.AppsV1().Deployments("ci").Create(ctx, deploymentAs(name, "deployer"), metav1.CreateOptions{})
			return err == nil, nil
		}); err != nil {
			t.Fatalf("create deployment ci/%s: %v", name, err)
		}
	}
	waitPods(t, cs, "ci", "app=offboard-frozen")
	if _, err := cs.AppsV1().Deployments("ci").Patch(t.Context(), "offboard-frozen", "application/strategic-merge-patch+json",
		[]byte(`{"spec":{"paused":true}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	leaver := kubeconfigClient(t, oldKC)
	before := map[string]string{"the old admin token": kubeconfigToken(t, oldKC),
		"the short-lived token opened with revoke_on_close = false": keptToken,
		"the short-lived token of the killed run":                   killedToken,
		"a `kubectl create token` token of lke-admin":               mintToken(t, leaver, "kube-system", "lke-admin"),
		"a `kubectl create token` token of ci/deployer":             mintToken(t, leaver, "ci", "deployer")}
	for id, tok := range legacy {
		before["the legacy token of "+id] = tok
	}
	for what, tok := range before {
		if err := tokenAuthenticates(t, c, tok); err != nil {
			t.Fatalf("before the rotation, %s is not accepted (%v): the test would prove nothing", what, err)
		}
	}
	boundBefore := boundSecrets(t, c, "kube-system")
	// terraform opens an ephemeral resource at plan and again at apply: the
	// revoke_on_close = false run leaves two Secrets, the killed run one.
	if len(boundBefore) < 2 {
		t.Fatalf("before the rotation the bound Secrets are %v; want at least the two short-lived kubeconfigs'", boundBefore)
	}

	// The leaver's window: right after the rotation deleted the token
	// secrets, and before the old admin credential is rejected, they plant
	// a legacy token secret and mint a token bound to a kubecreds Secret.
	if _, err := cs.CoreV1().ServiceAccounts("kube-system").Create(t.Context(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "backdoor"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	var plantedName, windowBound string
	var plantErr error
	planted := false
	work := copyExample(t, "examples/guides/offboarding")
	if err := os.WriteFile(filepath.Join(work, "terraform.tfvars"), fmt.Appendf(nil, "cluster_id = %d\n", c.ID), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := applyWatching(t, work, func(line string) {
		if planted || !strings.Contains(line, "rotation step: delete service-account-token secrets:") {
			return
		}
		planted = true
		var legacyTok string
		plantedName, legacyTok, plantErr = plantLegacyToken(t.Context(), leaver, "kube-system", "backdoor")
		if plantErr != nil {
			return
		}
		before["a legacy token secret planted in the rotation window"] = legacyTok
		issuer := &kubeconfig.Issuer{Client: leaver, Clock: clock.RealClock{}}
		tok, err := issuer.IssueServiceAccountToken(t.Context(), kubeconfig.ServiceAccountToken{Namespace: "kube-system", Name: "backdoor", TTL: time.Hour})
		if plantErr = err; err == nil {
			before["a Secret-bound token minted in the rotation window"] = tok.Token
			windowBound = tok.Bound.Namespace + "/" + tok.Bound.Name
		}
	})
	if err != nil {
		t.Fatalf("applying the offboarding guide's example failed: %v\n%s", err, out)
	}
	if !planted || plantErr != nil {
		t.Fatalf("the old admin kubeconfig could not plant credentials right after the delete step (planted %v): %v\n%s", planted, plantErr, out)
	}
	if flat := strings.Join(strings.Fields(strings.ReplaceAll(out, "│", " ")), " "); !strings.Contains(flat, "kube-system/"+plantedName) {
		t.Errorf("the apply's warnings do not name the planted legacy token secret kube-system/%s", plantedName)
	}
	applied := time.Now()
	// The apply verified the old admin token and a short-lived canary
	// rejected; the rest were revoked earlier in the run. 15 s covers the API
	// server's 10 s authentication cache in the worst case.
	for what, tok := range before {
		if err := waitRejectedToken(t, c, tok, 15*time.Second); err != nil {
			t.Errorf("after the offboarding apply, %s is still accepted", what)
		}
	}
	t.Logf("all %d credentials from before the apply answer 401, the last %s after the apply ended", len(before), time.Since(applied).Round(100*time.Millisecond))
	if err := kubeconfigWorks(t, servedKubeconfig(t, c)); err != nil {
		t.Errorf("the kubeconfig served after the rotation does not work: %v", err)
	}
	a := stateAttributes(t, work, "kubecreds_lke_secret_rotation.production")
	var wantRevoked []string
	for _, name := range boundBefore {
		wantRevoked = append(wantRevoked, "kube-system/"+name)
	}
	// The second sweep revoked the one minted in the window too.
	wantRevoked = append(wantRevoked, windowBound)
	slices.Sort(wantRevoked)
	if got := stringsOf(a["revoked_short_lived_kubeconfigs"]); !slices.Equal(got, wantRevoked) {
		t.Errorf("revoked_short_lived_kubeconfigs = %v, want %v", got, wantRevoked)
	}
	deleted := stringsOf(a["deleted_secrets"])
	for id := range legacy {
		if !slices.Contains(deleted, id) {
			t.Errorf("deleted_secrets %v does not name %s", deleted, id)
		}
	}
	if left := boundSecrets(t, c, "kube-system"); len(left) != 0 {
		t.Errorf("bound Secrets left after the rotation: %v", left)
	}
	// The deployment running as the re-created ci/deployer was restarted,
	// so that its pods get tokens of the new account; the paused one is
	// named and untouched.
	if web, err := cs.AppsV1().Deployments("ci").Get(t.Context(), "offboard-web", metav1.GetOptions{}); err != nil || web.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
		t.Errorf("ci/offboard-web, which runs as the re-created ci/deployer, was not restarted (%v)", err)
	}
	if frozen, err := cs.AppsV1().Deployments("ci").Get(t.Context(), "offboard-frozen", metav1.GetOptions{}); err != nil || frozen.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] != "" {
		t.Errorf("the paused ci/offboard-frozen was touched (%v)", err)
	}
	if flat := strings.Join(strings.Fields(out), " "); !strings.Contains(flat, "Paused deployments were not restarted") || !strings.Contains(flat, "ci/offboard-frozen") {
		t.Errorf("the apply does not name the paused deployment it skipped:\n%s", out)
	}
	if out, err := terraformCmd(t, work, map[string]string{"TF_VAR_cluster_id": strconv.Itoa(c.ID)}, "plan", "-detailed-exitcode", "-input=false", "-no-color"); err != nil {
		t.Errorf("a plan after the rotation is not empty: %v\n%s", err, out)
	}
}

// TestAccShortLived_closeSurvivesARotationInTheSameRun opens a short-lived
// kubeconfig, uses it, then rotates the same cluster in the same apply, and
// keeps the kubeconfig open until after the rotation. The rotation revokes
// the admin credential Close would have used; Close reaches the cluster
// again through the Linode API, and the apply succeeds.
func TestAccShortLived_closeSurvivesARotationInTheSameRun(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	capture := filepath.Join(t.TempDir(), "used.kubeconfig")
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(shortLivedCaptureConfig, c.ID, true, "", capture)+fmt.Sprintf(`
resource "kubecreds_lke_secret_rotation" "r" {
  cluster_id = %d
  depends_on = [terraform_data.use]
}

# Still uses the kubeconfig after the rotation, so that it is closed only then.
resource "terraform_data" "after" {
  depends_on = [kubecreds_lke_secret_rotation.r]
  provisioner "local-exec" {
    command     = "test -n \"$KC\""
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig }
  }
}
`, c.ID))
	logPath := filepath.Join(t.TempDir(), "trace.log")
	out, err := terraformCmd(t, dir, map[string]string{"TF_LOG": "INFO", "TF_LOG_PATH": logPath}, "apply", "-auto-approve", "-input=false", "-no-color")
	if err != nil {
		t.Fatalf("the apply that opens, rotates and closes failed: %v\n%s", err, out)
	}
	for _, bad := range []string{"Error", "Short-lived token not revoked", "Cannot revoke"} {
		if strings.Contains(out, bad) {
			t.Errorf("the apply's output says %q; Close should have revoked quietly:\n%s", bad, out)
		}
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), "the credential captured at open is rejected; revoking with the kubeconfig the Linode API serves now") {
		t.Errorf("Close did not fall back to the kubeconfig the Linode API serves: the test did not close after the rotation")
	}
	if err := waitRejectedToken(t, c, capturedToken(t, capture), 15*time.Second); err != nil {
		t.Errorf("the short-lived token is still accepted after the run")
	}
	if left := boundSecrets(t, c, "kube-system"); len(left) != 0 {
		t.Errorf("bound Secrets left after the run: %v", left)
	}
}

// TestAccShortLived_closeWithoutLinodeSaysWhatIsLeft: for a base_kubeconfig
// source, Close cannot reach the cluster once a rotation in the same run
// has revoked the credentials it was opened with; it warns, naming the
// Secret and when the token expires, instead of failing the apply.
func TestAccShortLived_closeWithoutLinodeSaysWhatIsLeft(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	dir := t.TempDir()
	base := filepath.Join(t.TempDir(), "base.kubeconfig")
	if err := os.WriteFile(base, servedKubeconfig(t, c), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, fmt.Sprintf(`
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}

ephemeral "kubecreds_short_lived_kubeconfig" "k" {
  base_kubeconfig = file(%q)
  ttl             = "1h"
  service_account {
    namespace = "kube-system"
    name      = "lke-admin"
  }
}

resource "kubecreds_lke_secret_rotation" "r" {
  cluster_id = %d
}

resource "terraform_data" "after" {
  depends_on = [kubecreds_lke_secret_rotation.r]
  provisioner "local-exec" {
    command     = "test -n \"$KC\""
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig }
  }
}
`, base, c.ID))
	out, err := terraformCmd(t, dir, nil, "apply", "-auto-approve", "-input=false", "-no-color")
	if err != nil {
		t.Fatalf("the apply failed; a Close that cannot revoke must warn, not fail: %v\n%s", err, out)
	}
	for _, want := range []string{"Short-lived token not revoked on close", "kube-system/kubecreds-short-lived-", "stays valid until"} {
		if !wrapped(want).MatchString(out) {
			t.Errorf("the apply's output does not say %q:\n%s", want, out)
		}
	}
	// The rotation itself revoked it.
	if left := boundSecrets(t, c, "kube-system"); len(left) != 0 {
		t.Errorf("bound Secrets left after the run: %v", left)
	}
}

// TestAccRotation_warnsAboutPodsUsingDeletedSecretsAndPausedDeployments:
// the data source names the pods that use each token secret; the rotation
// warns about pods that used a secret it deleted, and skips paused
// deployments as kubectl rollout restart does, naming them.
func TestAccRotation_warnsAboutPodsUsingDeletedSecretsAndPausedDeployments(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	cs := adminClient(t, c)
	ctx := t.Context()
	secret := createTokenSecret(t, c, "legacy-apps", "reporter")
	_, secretName, _ := strings.Cut(secret, "/")
	// A real owner: the statefulset controller makes reporter-0 (a pod
	// whose owner does not exist would be garbage-collected).
	one := int32(1)
	if _, err := cs.AppsV1().StatefulSets("legacy-apps").Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "reporter"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "reporter"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "reporter"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app", Env: []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{
					SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Key: "token"}}}}}}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Pods("legacy-apps").Get(ctx, "reporter-0", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("the statefulset controller did not create reporter-0: %v", err)
	}
	replicas := int32(0)
	for name, paused := range map[string]bool{"web": false, "frozen": true} {
		if _, err := cs.AppsV1().Deployments("legacy-apps").Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DeploymentSpec{
				Paused: paused, Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
				},
			},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}

data "kubecreds_lke_service_account_tokens" "before" {
  cluster_id = %[1]d
  namespaces = ["legacy-apps"]
}

output "used_by" {
  value = { for s in data.kubecreds_lke_service_account_tokens.before.tokens : s.name => s.used_by }
}

resource "kubecreds_lke_secret_rotation" "r" {
  cluster_id = %[1]d
  namespaces = ["kube-system", "legacy-apps"]
  restart_workloads {
    namespaces = ["legacy-apps"]
    kinds      = ["deployment"]
  }
}
`, c.ID))
	out, err := terraformCmd(t, dir, nil, "apply", "-auto-approve", "-input=false", "-no-color")
	if err != nil {
		t.Fatalf("apply failed: %v\n%s", err, out)
	}
	outJSON, err := terraformCmd(t, dir, nil, "output", "-json", "used_by")
	if err != nil {
		t.Fatal(err)
	}
	var usedBy map[string][]map[string]string
	if err := json.Unmarshal([]byte(outJSON), &usedBy); err != nil {
		t.Fatalf("%v: %s", err, outJSON)
	}
	want := []map[string]string{{"pod": "reporter-0", "owner": "StatefulSet/reporter", "via": "env"}}
	if got := usedBy[secretName]; len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want[0]) {
		t.Errorf("the data source says %s is used by %v, want %v", secretName, got, want)
	}
	for _, text := range []string{
		"Pods used the deleted token secrets",
		"pod legacy-apps/reporter-0 (owned by StatefulSet/reporter) used secret " + secretName + " as env",
		"projected service-account tokens",
		"Paused deployments were not restarted",
		"legacy-apps/frozen",
	} {
		if !wrapped(text).MatchString(out) {
			t.Errorf("the apply's output does not say %q:\n%s", text, out)
		}
	}
	for name, wantRestarted := range map[string]bool{"web": true, "frozen": false} {
		d, err := cs.AppsV1().Deployments("legacy-apps").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, restarted := d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"]
		if restarted != wantRestarted {
			t.Errorf("deployment %s restarted = %v, want %v", name, restarted, wantRestarted)
		}
	}
}
