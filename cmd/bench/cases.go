package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
)

const tokenType = "kubernetes.io/service-account-token"

func (b *bench) buildProvider(ctx context.Context) error {
	bin := filepath.Join(b.work, "bin")
	b.provider = filepath.Join(bin, "terraform-provider-kubecreds")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", b.provider, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	b.tfrc = filepath.Join(b.work, "terraformrc")
	rc := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"registry.terraform.io/kubecreds/kubecreds\" = %q\n  }\n  direct {}\n}\n", bin)
	return os.WriteFile(b.tfrc, []byte(rc), 0o600)
}

// terraform runs terraform in dir; its output goes to dir/terraform.log.
func (b *bench) terraform(ctx context.Context, dir string, vars map[string]string, args ...string) error {
	return b.terraformWith(ctx, dir, nil, vars, args...)
}

// terraformWith is terraform with more environment variables.
func (b *bench) terraformWith(ctx context.Context, dir string, env []string, vars map[string]string, args ...string) error {
	cmd := exec.CommandContext(ctx, "terraform", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+b.tfrc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
	cmd.Env = append(cmd.Env, env...)
	for k, v := range b.env.LinodeEnv() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, "TF_VAR_"+k+"="+v)
	}
	log, err := os.OpenFile(filepath.Join(dir, "terraform.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	_, _ = log.Write(out.Bytes())
	if err != nil {
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		return fmt.Errorf("terraform %s: %w\n%s", args[0], err, strings.Join(lines[max(0, len(lines)-25):], "\n"))
	}
	return nil
}

func (b *bench) configDir(name, config string) (string, error) {
	dir := filepath.Join(b.work, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o600)
}

func timed(fn func() error) (float64, error) {
	start := time.Now()
	err := fn()
	return time.Since(start).Seconds(), err
}

const rotationConfig = `
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}
variable "cluster_id" { type = number }
variable "run" { type = string }
resource "kubecreds_lke_secret_rotation" "r" {
  cluster_id = var.cluster_id
  keepers    = { run = var.run }
%s}
`

// The runbook as users script it today, made as fair as it can be: kubectl
// with the field selector, curl to the regenerate endpoint, then polling the
// kubeconfig once a second (the interval the provider's own polling settles
// to) until it holds a token other than the one from before, and kubectl get
// nodes with it.
const manualRunbook = `set -eu
trap 'echo "runbook failed at line $LINENO" >&2' ERR
api="$LINODE_URL/v4/lke/clusters/$CLUSTER_ID"
auth="Authorization: Bearer $LINODE_TOKEN"
old=$(mktemp); new=$(mktemp); trap 'rm -f "$old" "$new"' EXIT
fetch() { curl -sf --cacert "$LINODE_CA" -H "$auth" "$api/kubeconfig" | jq -r .kubeconfig | base64 -d > "$1"; }
token() { grep -m1 -o 'token: .*' "$1" || true; }
fetch "$old"
oldtoken=$(token "$old")
[ -n "$oldtoken" ]
kubectl --kubeconfig "$old" -n kube-system delete secrets --field-selector type=kubernetes.io/service-account-token >/dev/null
curl -sf --cacert "$LINODE_CA" -H "$auth" -H 'Content-Type: application/json' -X POST "$api/regenerate" -d '{"kubeconfig":true,"servicetoken":true}' >/dev/null
until fetch "$new" 2>/dev/null && [ -s "$new" ] && [ "$(token "$new")" != "$oldtoken" ]; do sleep 1; done
kubectl --kubeconfig "$new" get nodes >/dev/null
`

func (b *bench) manualRotation(ctx context.Context, c *fakelke.Cluster) error {
	cmd := exec.CommandContext(ctx, "bash", "-c", manualRunbook)
	cmd.Env = append(os.Environ(), "CLUSTER_ID="+strconv.Itoa(c.ID))
	for k, v := range b.env.LinodeEnv() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("manual runbook: %w\n%s", err, out)
	}
	return nil
}

// detectionLag is how long after the emulator started serving the new
// kubeconfig the first successful GET arrived.
func (b *bench) detectionLag(c *fakelke.Cluster) (float64, bool) {
	ready := c.KubeconfigReadySince()
	if ready.IsZero() {
		return 0, false
	}
	for _, r := range b.env.Emulator.Requests() {
		if r.ClusterID == c.ID && r.Endpoint == fakelke.EndpointGetKubeconfig && r.Status == 200 && !r.At.Before(ready) {
			return r.At.Sub(ready).Seconds(), true
		}
	}
	return 0, false
}

// kubeconfigDraw is how long, after one regeneration, the Linode API keeps
// serving the kubeconfig from before (stale) and then answers 503 (pending)
// before it serves the new one.
type kubeconfigDraw struct{ Stale, Pending float64 }

func (d kubeconfigDraw) total() float64 { return d.Stale + d.Pending }

// drawKubeconfigDelays draws n delays of 0–30 s from a seeded source, each
// split at random into a stale and a pending part: both sides of the
// comparison run against the same draws.
func drawKubeconfigDelays(seed uint64, n int) []kubeconfigDraw {
	rng := rand.New(rand.NewPCG(seed, 0x6b756265))
	draws := make([]kubeconfigDraw, n)
	for i := range draws {
		total := rng.Float64() * 30
		stale := total * rng.Float64()
		draws[i] = kubeconfigDraw{Stale: round1(stale), Pending: round1(total - stale)}
	}
	return draws
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func seconds(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }

// Case 1: a rotation end to end, and how soon the new kubeconfig is noticed,
// over kubeconfig delays drawn at random. Sample i of every variant ran
// against draw i.
func (b *bench) rotationEndToEnd(ctx context.Context) error {
	c := b.env.Clusters()[0]
	draws := drawKubeconfigDelays(b.seed, b.draws)
	name, lagName := rotationCase, detectionCase
	manual := result{Case: name, Variant: variantScript, Baseline: true, Unit: "s", Draws: draws,
		Note: fmt.Sprintf("deletes kube-system's token secrets, regenerates, polls the kubeconfig once a second until its token differs from the old one, "+
			"lists nodes with it; does not check that the old token is rejected. Kubeconfig delays (stale + pending, seconds, seed %d): %s", b.seed, drawList(draws))}
	manualLag := result{Case: lagName, Variant: "manual runbook (1 s poll, new token only)", Baseline: true, Unit: "s"}
	provider := map[bool]*result{}
	providerLag := map[bool]*result{}
	dirs := map[bool]string{}
	for _, verify := range []bool{false, true} {
		dir, err := b.configDir(fmt.Sprintf("rotation-verify-%v", verify), fmt.Sprintf(rotationConfig, fmt.Sprintf("  verify = %v\n", verify)))
		if err != nil {
			return err
		}
		dirs[verify] = dir
		provider[verify] = &result{Case: name, Variant: fmt.Sprintf("terraform apply (verify = %v)", verify), Unit: "s"}
		providerLag[verify] = &result{Case: lagName, Variant: fmt.Sprintf("provider (verify = %v)", verify), Unit: "s"}
	}
	providerLag[false].Note = "from when the emulator starts serving the new kubeconfig to the provider's first GET of it; the provider polls " +
		"every 0.1–0.5 s for its first 10 s of waiting, then once a second (lke.KubeconfigPoll), to stay inside the Linode API's rate limits " +
		"when many clusters rotate at once"
	provider[false].Note = "the whole terraform apply: start-up, plan, delete, regenerate, wait for a kubeconfig with a new token, list nodes with it"
	verifySteps := result{Case: name, Variant: variantVerifySteps, Unit: "s",
		Note: "the steps only verify = true runs (" + strings.Join(verifyOnlySteps, "; ") + "), as the provider logs their durations; " +
			"the tokens of re-created accounts it issues inside the re-creation step are not counted"}
	provider[true].Note = "as verify = false, then also proves the old credentials dead: issues a short-lived canary token and one of lke-admin " +
		"before the revocation, then waits until they and the old admin token get 401. The old credentials are last used before the regeneration, " +
		"so by the time a slow kubeconfig is served the API server's 10 s authentication cache has run out and the wait is over at once"
	// Every run must have fetched the new kubeconfig, or the samples of a
	// variant would no longer line up with the draws.
	lagOf := func(r *result) error {
		l, ok := b.detectionLag(c)
		if !ok {
			return fmt.Errorf("%s: no successful GET of the new kubeconfig was recorded", r.Variant)
		}
		r.Samples = append(r.Samples, l)
		return nil
	}
	for i, d := range draws {
		fmt.Printf("   draw %d/%d: stale %.1f s + pending %.1f s\n", i+1, len(draws), d.Stale, d.Pending)
		c.SetStaleWindow(seconds(d.Stale))
		c.SetKubeconfigDelay(seconds(d.Pending))
		b.env.Emulator.ResetRequests()
		s, err := timed(func() error { return b.manualRotation(ctx, c) })
		if err != nil {
			return err
		}
		manual.Samples = append(manual.Samples, s)
		if err := lagOf(&manualLag); err != nil {
			return err
		}
		for _, verify := range []bool{false, true} {
			time.Sleep(time.Second)
			b.env.Emulator.ResetRequests()
			vars := map[string]string{"cluster_id": strconv.Itoa(c.ID), "run": fmt.Sprintf("%d-%d", time.Now().UnixNano(), i)}
			// Both variants log the provider's steps at INFO (the same
			// cost), so that what verify's own steps took is read, not
			// guessed.
			logPath := filepath.Join(dirs[verify], fmt.Sprintf("provider-%d.log", i))
			env := []string{"TF_LOG_PROVIDER=INFO", "TF_LOG_PATH=" + logPath}
			s, err := timed(func() error {
				return b.terraformWith(ctx, dirs[verify], env, vars, "apply", "-auto-approve", "-no-color")
			})
			if err != nil {
				return err
			}
			provider[verify].Samples = append(provider[verify].Samples, s)
			if verify {
				spent, err := verifyStepsSeconds(logPath)
				if err != nil {
					return err
				}
				verifySteps.Samples = append(verifySteps.Samples, spent)
			}
			if err := lagOf(providerLag[verify]); err != nil {
				return err
			}
		}
		time.Sleep(time.Second)
	}
	c.SetStaleWindow(0)
	c.SetKubeconfigDelay(0)
	b.add(manual)
	b.add(*provider[false])
	b.add(*provider[true])
	b.add(verifySteps)
	b.add(manualLag)
	b.add(*providerLag[false])
	b.add(*providerLag[true])
	return nil
}

// verifyOnlySteps are the rotation steps only verify = true runs.
var verifyOnlySteps = []string{lke.StepIssueCanary, lke.StepVerifyNew, lke.StepVerifyOldRejected, lke.StepSweepAgain}

// stepLine is a rotation step's log line, with its duration.
var stepLine = regexp.MustCompile(`rotation step: ([^:]+): .*\bduration_ms=(\d+)`)

// verifyStepsSeconds adds up, from a provider log, the durations of the
// steps only verify = true runs.
func verifyStepsSeconds(logPath string) (float64, error) {
	raw, err := os.ReadFile(logPath)
	if err != nil {
		return 0, fmt.Errorf("read the provider's log: %w", err)
	}
	var ms, found int
	for _, m := range stepLine.FindAllSubmatch(raw, -1) {
		if slices.Contains(verifyOnlySteps, string(m[1])) {
			n, _ := strconv.Atoi(string(m[2]))
			ms += n
			found++
		}
	}
	if found < len(verifyOnlySteps) {
		return 0, fmt.Errorf("%s logs %d of the %d steps of verify", logPath, found, len(verifyOnlySteps))
	}
	return float64(ms) / 1000, nil
}

const (
	variantVerifySteps = "verify's own steps (verify = true)"
	rotationCase       = "rotation, random kubeconfig delays"
	detectionCase      = "detection lag, random kubeconfig delays"
	variantScript      = "manual runbook (kubectl + curl, 1 s poll, new token only)"
)

func drawList(draws []kubeconfigDraw) string {
	parts := make([]string, len(draws))
	for i, d := range draws {
		parts[i] = fmt.Sprintf("%.1f+%.1f", d.Stale, d.Pending)
	}
	return strings.Join(parts, ", ")
}

const benchNamespaces = 10

// prepareBenchNamespaces creates the namespaces and service accounts the
// secrets go to, and waits until the token controller knows the service
// accounts: until then it deletes token secrets that name them.
func prepareBenchNamespaces(ctx context.Context, cs kubernetes.Interface) error {
	created := false
	for _, ns := range benchNamespaceList() {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "bot"}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		created = created || err == nil
	}
	if !created {
		// Prepared by an earlier case; the token controller may still be
		// busy with the thousands of deletions that case made, so it is not
		// probed again.
		return nil
	}
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := makeTokenSecrets(ctx, cs, benchNamespaces, nil, 10*time.Second); err != nil {
			return false, nil //nolint:nilerr // the token controller is not ready yet: keep polling until it is
		}
		return true, deleteAllTokenSecrets(ctx, cs)
	})
}

func deleteAllTokenSecrets(ctx context.Context, cs kubernetes.Interface) error {
	for _, ns := range benchNamespaceList() {
		if err := cs.CoreV1().Secrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// makeTokenSecrets creates n token secrets spread over the bench namespaces
// and waits until they all hold a token (so the token controller is idle
// while deletion is timed). With ca, the secrets are created filled as the
// token controller would fill them (the cluster's CA, the namespace, a
// token-sized placeholder), which it then leaves alone: setting up 5 000
// secrets takes half the writes. Without, the token controller fills them.
func makeTokenSecrets(ctx context.Context, cs kubernetes.Interface, n int, ca []byte, within time.Duration) error {
	placeholder := []byte(strings.Repeat("p", 900)) // a legacy token is ~900 bytes
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ns := fmt.Sprintf("bench-%d", i%benchNamespaces)
			secret := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "bot-token-", Annotations: map[string]string{corev1.ServiceAccountNameKey: "bot"}},
				Type:       corev1.SecretTypeServiceAccountToken,
			}
			if ca != nil {
				secret.Data = map[string][]byte{corev1.ServiceAccountRootCAKey: ca, corev1.ServiceAccountNamespaceKey: []byte(ns), corev1.ServiceAccountTokenKey: placeholder}
			}
			_, err := cs.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{})
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	var filled, total int
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, within, true, func(ctx context.Context) (bool, error) {
		filled, total = 0, 0
		for _, ns := range benchNamespaceList() {
			list, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, s := range list.Items {
				total++
				if len(s.Data[corev1.ServiceAccountTokenKey]) > 0 {
					filled++
				}
			}
		}
		return filled == n && total == n, nil
	})
	if err != nil {
		return fmt.Errorf("token controller filled %d of %d secrets (%d exist): %w", filled, n, total, err)
	}
	return nil
}

func benchNamespaceList() []string {
	var ns []string
	for i := range benchNamespaces {
		ns = append(ns, fmt.Sprintf("bench-%d", i))
	}
	return ns
}

// Case 2: deleting token secrets at scale.
func (b *bench) deleteAtScale(ctx context.Context) error {
	c := b.env.Clusters()[1]
	d, err := newDeletionSetup(ctx, c)
	if err != nil {
		return err
	}
	ca, cs := d.ca, d.cs
	applyDir, err := b.configDir("delete-apply", deleteApplyConfig)
	if err != nil {
		return err
	}
	variants := []struct {
		name, note string
		baseline   bool
		del        func() error
		maxN       int // 0: every N
	}{
		{"kubectl delete --field-selector (as the runbook says: kubectl's default --wait)", "`kubectl delete secrets -A --field-selector type=...,metadata.namespace!=kube-system`: after deleting, kubectl waits for each secret to be gone " +
			"with one request each, throttled by its client to 5 requests a second (~0.2 s a secret); run at N ≤ -kubectl-wait-max (default 100) to fit the time budget", false, func() error {
			out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", c.AdminKubeconfigPath(), "delete", "secrets", "--all-namespaces",
				"--field-selector", "type="+tokenType+",metadata.namespace!=kube-system").CombinedOutput()
			if err != nil {
				return fmt.Errorf("kubectl: %w: %s", err, out)
			}
			return nil
		}, b.kubectlWaitMax},
		{"kubectl delete --wait=false --field-selector", "`kubectl delete secrets -A --wait=false --field-selector type=...,metadata.namespace!=kube-system`: " +
			"kubectl's fastest form (lists, then deletes one request at a time), the baseline", true, func() error {
			out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", c.AdminKubeconfigPath(), "delete", "secrets", "--all-namespaces", "--wait=false",
				"--field-selector", "type="+tokenType+",metadata.namespace!=kube-system").CombinedOutput()
			if err != nil {
				return fmt.Errorf("kubectl: %w: %s", err, out)
			}
			return nil
		}, 0},
		{variantDeleteApply, "the whole `terraform apply` of a `kubecreds_lke_secret_rotation` with `namespaces` = the 10 bench namespaces, " +
			"`regenerate_service_token = false`, `verify = false`: start-up, plan, list, delete, and the one regenerate of the kubeconfig the resource requires " +
			"(at least one regenerate flag must be true) with its wait", false, func() error {
			vars := map[string]string{"cluster_id": strconv.Itoa(c.ID), "run": strconv.FormatInt(time.Now().UnixNano(), 10)}
			return b.terraform(ctx, applyDir, vars, "apply", "-auto-approve", "-no-color")
		}, 0},
		{"provider deletion step", "list (metadata only, namespaces in parallel) + one DeleteCollection per namespace answered with the deleted names: kube.ListServiceAccountTokens + DeleteTokenSecrets", false, d.providerStep, 0},
		{variantFloor, "the same per-namespace DeleteCollection requests the provider's step sends, all namespaces at once, without listing first or " +
			"recording names. It is the cost of the provider's own approach with nothing around it, not a bound on what any client could do: " +
			"the ratio to it measures the provider's overhead, nothing more", false, d.floor, 0},
	}
	noted := map[string]bool{}
	for _, n := range []int{100, 1000, 5000} {
		name := fmt.Sprintf("delete %d token secrets", n)
		for _, v := range variants {
			if v.maxN > 0 && n > v.maxN {
				continue
			}
			r := result{Case: name, Variant: v.name, Baseline: v.baseline, Unit: "s", Note: v.note}
			if noted[v.name] {
				r.Note = ""
			}
			noted[v.name] = true
			for i := 0; i < b.runs; i++ {
				if err := makeTokenSecrets(ctx, cs, n, ca, 5*time.Minute); err != nil {
					return err
				}
				s, err := timed(v.del)
				if err != nil {
					return err
				}
				left, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{FieldSelector: "type=" + tokenType + ",metadata.namespace!=kube-system"})
				if err != nil {
					return err
				}
				if len(left.Items) != 0 {
					return fmt.Errorf("%s left %d secrets", v.name, len(left.Items))
				}
				r.Samples = append(r.Samples, s)
			}
			b.add(r)
		}
	}
	return nil
}

const (
	variantDeleteApply = "terraform apply (rotation of the bench namespaces, verify = false)"
	variantFloor       = "provider's requests alone: DeleteCollection"
)

// deleteApplyConfig is rotationConfig deleting the bench namespaces' secrets.
var deleteApplyConfig = fmt.Sprintf(rotationConfig, `  namespaces               = [for i in range(10) : "bench-${i}"]
  regenerate_service_token = false
  verify                   = false
`)

const issuanceConfig = `
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}
variable "cluster_id" { type = number }
variable "run" { type = string }
ephemeral "kubecreds_short_lived_kubeconfig" "k" {
  count          = %d
  lke_cluster_id = var.cluster_id
  ttl            = "1h"
}
resource "terraform_data" "use" {
  triggers_replace = [var.run]
  provisioner "local-exec" {
    command     = "test -n \"$TOKENS\""
    environment = { TOKENS = join(",", ephemeral.kubecreds_short_lived_kubeconfig.k[*].token) }
  }
}
`

// Case 3: issuing short-lived kubeconfigs.
func (b *bench) shortLivedIssuance(ctx context.Context) error {
	c := b.env.Clusters()[2]
	cs, err := kubernetes.NewForConfig(unthrottled(c.AdminConfig()))
	if err != nil {
		return err
	}
	for _, n := range []int{1, 20} {
		name := fmt.Sprintf("issue %d short-lived credential(s)", n)
		dir, err := b.configDir(fmt.Sprintf("issue-%d", n), fmt.Sprintf(issuanceConfig, n))
		if err != nil {
			return err
		}
		tf := result{Case: name, Variant: fmt.Sprintf("terraform apply opening %d kubecreds_short_lived_kubeconfig", n), Unit: "s",
			Note: "whole terraform apply: start-up, plan, open (bound Secret + TokenRequest + kubeconfig), local-exec, close (revoke)"}
		kubectl := result{Case: name, Variant: fmt.Sprintf("kubectl create token × %d", n), Baseline: true, Unit: "s",
			Note: "no revocation: kubectl's tokens live until they expire"}
		floor := result{Case: name, Variant: fmt.Sprintf("floor: %d TokenRequest round trips", n), Unit: "s"}
		for i := 0; i < b.runs; i++ {
			vars := map[string]string{"cluster_id": strconv.Itoa(c.ID), "run": strconv.FormatInt(time.Now().UnixNano(), 10)}
			s, err := timed(func() error { return b.terraform(ctx, dir, vars, "apply", "-auto-approve", "-no-color") })
			if err != nil {
				return err
			}
			tf.Samples = append(tf.Samples, s)
			s, err = timed(func() error {
				for range n {
					if out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", c.AdminKubeconfigPath(), "-n", "kube-system",
						"create", "token", "lke-admin", "--duration=1h").CombinedOutput(); err != nil {
						return fmt.Errorf("kubectl create token: %w: %s", err, out)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			kubectl.Samples = append(kubectl.Samples, s)
			secs := int64(3600)
			s, err = timed(func() error {
				for range n {
					if _, err := cs.CoreV1().ServiceAccounts("kube-system").CreateToken(ctx, "lke-admin",
						&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			floor.Samples = append(floor.Samples, s)
		}
		b.add(tf)
		b.add(kubectl)
		b.add(floor)
	}
	return nil
}

// Case 4: footprint.
func (b *bench) footprint(ctx context.Context) error {
	st, err := os.Stat(b.provider)
	if err != nil {
		return err
	}
	b.add(result{Case: "footprint", Variant: "provider binary size", Unit: "MiB", Samples: []float64{float64(st.Size()) / (1 << 20)}})
	dir, err := b.configDir("schema", fmt.Sprintf(rotationConfig, "  verify = true\n"))
	if err != nil {
		return err
	}
	schema := result{Case: "footprint", Variant: "terraform providers schema -json", Unit: "s"}
	for i := 0; i < b.runs; i++ {
		s, err := timed(func() error { return b.terraform(ctx, dir, nil, "providers", "schema", "-json") })
		if err != nil {
			return err
		}
		schema.Samples = append(schema.Samples, s)
	}
	b.add(schema)

	// Peak RSS of the provider process while a rotation deletes 5000 secrets.
	c := b.env.Clusters()[1]
	ca, err := clusterCA(c.AdminConfig())
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(unthrottled(c.AdminConfig()))
	if err != nil {
		return err
	}
	config := fmt.Sprintf(rotationConfig, "  verify     = false\n  namespaces = [\"kube-system\", \""+strings.Join(benchNamespaceList(), `", "`)+"\"]\n")
	rdir, err := b.configDir("rss", config)
	if err != nil {
		return err
	}
	rss := result{Case: "footprint", Variant: "peak RSS of the provider, rotation deleting 5000 secrets", Unit: "MiB",
		Note: "VmHWM of the terraform-provider-kubecreds process, read from /proc while terraform apply runs"}
	if err := prepareBenchNamespaces(ctx, cs); err != nil {
		return err
	}
	for i := 0; i < min(b.runs, 3); i++ {
		if err := makeTokenSecrets(ctx, cs, 5000, ca, 5*time.Minute); err != nil {
			return err
		}
		peak, stop := watchPeakRSS("terraform-provider-kubecreds")
		vars := map[string]string{"cluster_id": strconv.Itoa(c.ID), "run": strconv.FormatInt(time.Now().UnixNano(), 10)}
		err := b.terraform(ctx, rdir, vars, "apply", "-auto-approve", "-no-color")
		stop()
		if err != nil {
			return err
		}
		rss.Samples = append(rss.Samples, float64(*peak)/(1<<20))
	}
	b.add(rss)
	return nil
}

// watchPeakRSS polls /proc for processes named name and keeps the largest
// VmHWM seen, until stop is called.
func watchPeakRSS(name string) (*int64, func()) {
	var peak int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			procs, _ := filepath.Glob("/proc/[0-9]*/comm")
			for _, comm := range procs {
				b, err := os.ReadFile(comm)
				if err != nil || !strings.HasPrefix(strings.TrimSpace(string(b)), name[:15]) {
					continue
				}
				status, err := os.ReadFile(filepath.Join(filepath.Dir(comm), "status"))
				if err != nil {
					continue
				}
				for _, line := range bytes.Split(status, []byte("\n")) {
					if f := strings.Fields(string(line)); len(f) >= 2 && f[0] == "VmHWM:" {
						if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb*1024 > peak {
							peak = kb * 1024
						}
					}
				}
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return &peak, func() { close(done); <-finished }
}

const planConfig = `
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}
variable "cluster_id" { type = number }
resource "kubecreds_lke_secret_rotation" "r" {
  count      = 200
  cluster_id = var.cluster_id
}
import {
  for_each = { for i in range(200) : tostring(i) => i }
  to       = kubecreds_lke_secret_rotation.r[each.value]
  id       = tostring(var.cluster_id)
}
`

// Case 5: plan with 200 rotation resources.
func (b *bench) planAtScale(ctx context.Context) error {
	c := b.env.Clusters()[0]
	dir, err := b.configDir("plan", planConfig)
	if err != nil {
		return err
	}
	vars := map[string]string{"cluster_id": strconv.Itoa(c.ID)}
	if err := b.terraform(ctx, dir, vars, "apply", "-auto-approve", "-no-color"); err != nil {
		return err
	}
	plan := result{Case: "plan, 200 rotation resources", Variant: "terraform plan (wall time)", Unit: "s"}
	calls := result{Case: "plan, 200 rotation resources", Variant: "Linode API calls per plan", Unit: "calls",
		Note: "Read looks each cluster up, and asks for the kubeconfig it serves (to notice rotations made elsewhere), once per run: concurrent reads share one request each, instead of one per resource"}
	for i := 0; i < b.runs; i++ {
		before := b.env.Emulator.CountClusterRequests(c.ID, "")
		s, err := timed(func() error { return b.terraform(ctx, dir, vars, "plan", "-no-color", "-detailed-exitcode") })
		if err != nil {
			return fmt.Errorf("plan after import is not empty or failed: %w", err)
		}
		plan.Samples = append(plan.Samples, s)
		calls.Samples = append(calls.Samples, float64(b.env.Emulator.CountClusterRequests(c.ID, "")-before))
	}
	b.add(plan)
	b.add(calls)
	return nil
}

// unthrottled lifts client-go's client-side rate limit, so that setting up
// thousands of secrets (and the floors) run at the API server's own pace.
func unthrottled(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.RateLimiter = -1, nil
	return cfg
}

// clusterCA is the cluster's CA certificate, as the token controller puts it
// in token secrets.
func clusterCA(cfg *rest.Config) ([]byte, error) {
	if len(cfg.CAData) > 0 {
		return cfg.CAData, nil
	}
	return os.ReadFile(cfg.CAFile)
}

// deletionSetup is what the deletion cases share: one cluster's CA, an
// unthrottled admin client for setting up and for the floor, and the
// provider's clients.
type deletionSetup struct {
	ctx     context.Context
	ca      []byte
	cs      kubernetes.Interface
	clients *kube.Clients
}

func newDeletionSetup(ctx context.Context, c *fakelke.Cluster) (*deletionSetup, error) {
	admin := c.AdminConfig()
	ca, err := clusterCA(admin)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(unthrottled(admin))
	if err != nil {
		return nil, err
	}
	clients, err := kube.NewClients(admin, "kubecreds-bench")
	if err != nil {
		return nil, err
	}
	return &deletionSetup{ctx: ctx, ca: ca, cs: cs, clients: clients}, prepareBenchNamespaces(ctx, cs)
}

// providerStep is the rotation's deletion step: kube.ListServiceAccountTokens
// then kube.DeleteTokenSecrets.
func (d *deletionSetup) providerStep() error {
	secrets, err := kube.ListServiceAccountTokens(d.ctx, d.clients, benchNamespaceList())
	if err != nil {
		return err
	}
	deleted, err := kube.DeleteTokenSecrets(d.ctx, d.clients, secrets, nil, 16)
	if err == nil && len(deleted) != len(secrets) {
		err = fmt.Errorf("recorded %d deleted secrets of %d", len(deleted), len(secrets))
	}
	return err
}

// floor is one DeleteCollection per namespace, all at once.
func (d *deletionSetup) floor() error {
	selector := fields.OneTermEqualSelector("type", tokenType).String()
	var wg sync.WaitGroup
	errs := make([]error, benchNamespaces)
	for i, ns := range benchNamespaceList() {
		wg.Go(func() {
			errs[i] = d.cs.CoreV1().Secrets(ns).DeleteCollection(d.ctx, metav1.DeleteOptions{}, metav1.ListOptions{FieldSelector: selector})
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
