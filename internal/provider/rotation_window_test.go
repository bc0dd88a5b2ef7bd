//go:build !unit

package provider

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
)

const windowRunConfig = `
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}

resource "kubecreds_lke_secret_rotation" "r" {
  cluster_id = %d
}
`

// applyWatching runs terraform apply (TF_LOG=INFO to a pipe) and calls on
// with every log line, synchronously: while on runs, terraform's logging
// waits, as it would behind any slow reader.
func applyWatching(t *testing.T, dir string, on func(line string)) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Getenv("TF_ACC_TERRAFORM_PATH"), "apply", "-auto-approve", "-input=false", "-no-color")
	out, stderr, err := startLogged(t, cmd, dir)
	if err != nil {
		return "", err
	}
	scanner := bufio.NewScanner(stderr)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		on(scanner.Text())
	}
	return out.String(), cmd.Wait()
}

// plantLegacyToken creates, with cs, a legacy token secret for ns/account
// and returns its name and token once the token controller filled it.
func plantLegacyToken(ctx context.Context, cs kubernetes.Interface, ns, account string) (string, string, error) {
	s, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{GenerateName: account + "-token-", Annotations: map[string]string{corev1.ServiceAccountNameKey: account}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	if err != nil {
		return "", "", err
	}
	var token string
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := cs.CoreV1().Secrets(ns).Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		token = string(got.Data[corev1.ServiceAccountTokenKey])
		return token != "", nil
	})
	return s.Name, token, err
}

// A leaver who still holds the admin kubeconfig while a rotation runs
// plants, after the rotation deleted the token secrets and before the old
// credential is rejected, a legacy token secret of a service account and a
// short-lived token bound to a kubecreds Secret. The second sweep, once the
// old credentials are rejected, finds and revokes both, and the apply's
// warning names them; the next plan is empty.
func TestAccRotation_secondSweepRevokesWhatWasMadeInTheWindow(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), fmt.Appendf(nil, windowRunConfig, c.ID), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := adminClient(t, c).CoreV1().ServiceAccounts("kube-system").Create(t.Context(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "backdoor"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	leaver := kubeconfigClient(t, servedKubeconfig(t, c))
	var legacyName, legacy, bound string
	var boundSecret kubeconfig.BoundSecret
	var plantErr error
	planted := false
	out, err := applyWatching(t, dir, func(line string) {
		if planted || !strings.Contains(line, "rotation step: delete service-account-token secrets:") {
			return
		}
		planted = true
		legacyName, legacy, plantErr = plantLegacyToken(t.Context(), leaver, "kube-system", "backdoor")
		if plantErr != nil {
			return
		}
		issuer := &kubeconfig.Issuer{Client: leaver, Clock: clock.RealClock{}}
		tok, err := issuer.IssueServiceAccountToken(t.Context(), kubeconfig.ServiceAccountToken{Namespace: "kube-system", Name: "backdoor", TTL: time.Hour})
		if err != nil {
			plantErr = err
			return
		}
		bound, boundSecret = tok.Token, tok.Bound
	})
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if !planted {
		t.Fatalf("the apply never logged the delete step\n%s", out)
	}
	if plantErr != nil {
		t.Fatalf("the old admin kubeconfig could not plant credentials right after the delete step (the window this test needs): %v", plantErr)
	}
	for name, tok := range map[string]string{"the legacy token planted in the window": legacy, "the bound token minted in the window": bound} {
		if !tokenRejectedWithin(t, c, tok, 12*time.Second) {
			t.Errorf("%s is still accepted after the rotation", name)
		}
	}
	cs := adminClient(t, c)
	if _, err := cs.CoreV1().Secrets("kube-system").Get(t.Context(), legacyName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the planted legacy token secret kube-system/%s is still there (%v)", legacyName, err)
	}
	if _, err := cs.CoreV1().Secrets(boundSecret.Namespace).Get(t.Context(), boundSecret.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the bound Secret %s/%s is still there (%v)", boundSecret.Namespace, boundSecret.Name, err)
	}
	// Terraform draws a bar before each line of a diagnostic.
	flat := strings.Join(strings.Fields(strings.ReplaceAll(out, "│", " ")), " ")
	if !strings.Contains(flat, "Credentials made during the rotation were revoked") || !strings.Contains(flat, "kube-system/"+legacyName) {
		t.Errorf("the apply's warnings do not name the planted legacy token secret kube-system/%s:\n%s", legacyName, out)
	}
	if out, err := terraformCmd(t, dir, nil, "plan", "-detailed-exitcode", "-input=false"); err != nil {
		t.Fatalf("the plan after the rotation is not empty: %v\n%s", err, out)
	}
}

// A leaver's short-lived token, used a moment before the rotation revokes
// it, is rejected when the apply ends, not some seconds later: the API
// server keeps a token it authenticated for 10 s (kube.AuthCacheTTL), and
// the rotation waits that long after its last revocation. The kubeconfig
// is served 5 s after the regeneration, so the token is used well after
// the rotation's own canaries were, and their rejection alone would end
// the apply while this token still works (as it did before the wait).
func TestAccRotation_aTokenUsedJustBeforeItsRevocationIsRejectedWhenTheApplyEnds(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	c.SetKubeconfigDelay(5 * time.Second)
	t.Cleanup(func() { c.SetKubeconfigDelay(0) })
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), fmt.Appendf(nil, windowRunConfig, c.ID), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := adminClient(t, c).CoreV1().ServiceAccounts("kube-system").Create(t.Context(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "backdoor"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	// Minted before the rotation with the admin kubeconfig, as a leaver's
	// kubecreds_short_lived_kubeconfig with revoke_on_close = false is.
	issuer := &kubeconfig.Issuer{Client: kubeconfigClient(t, servedKubeconfig(t, c)), Clock: clock.RealClock{}}
	tok, err := issuer.IssueServiceAccountToken(t.Context(), kubeconfig.ServiceAccountToken{Namespace: "kube-system", Name: "backdoor", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var usedAt time.Time
	var useErr error
	out, err := applyWatching(t, dir, func(line string) {
		if !usedAt.IsZero() || !strings.Contains(line, "rotation step: "+lke.StepWaitKubeconfig+":") || !strings.Contains(line, "duration_ms=") {
			return
		}
		usedAt, useErr = time.Now(), tokenAuthenticates(t, c, tok.Token)
	})
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	ended := time.Now()
	if usedAt.IsZero() || useErr != nil {
		t.Fatalf("the leaver's token was not used and accepted once the new kubeconfig was served (the moment this test needs): %v\n%s", useErr, out)
	}
	if err := tokenAuthenticates(t, c, tok.Token); !apierrors.IsUnauthorized(err) {
		t.Fatalf("the leaver's short-lived token, used %s before the apply ended, is still accepted after it (%v)", ended.Sub(usedAt).Round(100*time.Millisecond), err)
	}
	if _, err := adminClient(t, c).CoreV1().Secrets(tok.Bound.Namespace).Get(t.Context(), tok.Bound.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the leaver's bound Secret %s/%s is still there (%v)", tok.Bound.Namespace, tok.Bound.Name, err)
	}
	t.Logf("the leaver's token was used %s before the apply ended, and is rejected", ended.Sub(usedAt).Round(100*time.Millisecond))
}
