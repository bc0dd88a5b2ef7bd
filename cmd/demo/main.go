// Command demo shows the provider working, end to end, on this machine: it
// starts the local LKE, builds the provider, runs real `terraform apply` on
// examples/demo (a rotation, then a short-lived kubeconfig used in the same
// run), checks what happened from outside Terraform, prints a summary, and
// removes everything it started. Run it with `make demo`.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	demo := run
	if len(os.Args) > 1 && os.Args[1] == "-ske" {
		demo = runSKE
	}
	if err := demo(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	start := time.Now()
	terraform, err := exec.LookPath("terraform")
	if err != nil {
		return errors.New("terraform is not on PATH (Terraform 1.10 or later is needed)")
	}
	work, err := os.MkdirTemp("", "kubecreds-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	step("starting the local LKE (real kube-apiserver + Linode API emulator)")
	env, err := fakelke.Start(ctx, fakelke.Options{Clusters: 1, KubeconfigDelay: 2 * time.Second})
	if err != nil {
		return err
	}
	defer func() {
		env.Close()
		step("torn down: local LKE stopped, temporary files removed")
	}()
	cluster := env.Clusters()[0]

	step("building the provider")
	cliConfig, err := buildProvider(ctx, work)
	if err != nil {
		return err
	}
	dir := filepath.Join(work, "config")
	report := filepath.Join(work, "report")
	for _, d := range []string{dir, report} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := copyTF("examples/demo", dir); err != nil {
		return err
	}

	admin, err := kubernetes.NewForConfig(cluster.AdminConfig())
	if err != nil {
		return err
	}
	oldKubeconfig := cluster.Kubeconfig()

	step(fmt.Sprintf("terraform apply on examples/demo (cluster %d)", cluster.ID))
	tfEnv := append(os.Environ(), "TF_CLI_CONFIG_FILE="+cliConfig, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1",
		fmt.Sprintf("TF_VAR_cluster_id=%d", cluster.ID), "TF_VAR_report_dir="+report)
	for k, v := range env.LinodeEnv() {
		tfEnv = append(tfEnv, k+"="+v)
	}
	applyStart := time.Now()
	if err := terraformRun(ctx, terraform, dir, tfEnv, os.Stdout, "apply", "-auto-approve", "-no-color"); err != nil {
		return fmt.Errorf("terraform apply: %w", err)
	}
	applyTook := time.Since(applyStart)
	var outBuf bytes.Buffer
	if err := terraformRun(ctx, terraform, dir, tfEnv, &outBuf, "output", "-json"); err != nil {
		return fmt.Errorf("terraform output: %w", err)
	}
	var out struct {
		DeletedSecrets   struct{ Value []string } `json:"deleted_secrets"`
		KubeconfigSHA256 struct{ Value string }   `json:"kubeconfig_sha256"`
		NodesVerified    struct{ Value int }      `json:"nodes_verified"`
		RotatedAt        struct{ Value string }   `json:"rotated_at"`
	}
	if err := json.Unmarshal(outBuf.Bytes(), &out); err != nil {
		return err
	}

	// Check from outside Terraform what the run did.
	served := cluster.Kubeconfig()
	sum := sha256.Sum256(served)
	newWorks := listNodes(ctx, served) == nil
	oldRejected := waitUnauthorized(ctx, oldKubeconfig, 15*time.Second)
	nodes, _ := os.ReadFile(filepath.Join(report, "nodes"))
	expiresAt, _ := os.ReadFile(filepath.Join(report, "expires_at"))
	shortLived, _ := os.ReadFile(filepath.Join(report, "short-lived.kubeconfig"))
	shortRevoked := len(shortLived) > 0 && waitUnauthorized(ctx, shortLived, 15*time.Second)
	left, _ := admin.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "kubecreds.io/short-lived-kubeconfig=true"})

	ok := true
	mark := func(good bool) string {
		if good {
			return "ok  "
		}
		ok = false
		return "FAIL"
	}
	fmt.Printf("\n== kubecreds demo: summary ==\n")
	fmt.Printf("rotation of LKE cluster %d (terraform apply took %s):\n", cluster.ID, applyTook.Round(100*time.Millisecond))
	fmt.Printf("  %s deleted %d service-account-token secrets:\n", mark(len(out.DeletedSecrets.Value) > 0), len(out.DeletedSecrets.Value))
	for _, s := range out.DeletedSecrets.Value {
		fmt.Printf("         - %s\n", s)
	}
	fmt.Printf("  %s new kubeconfig fingerprint sha256:%s… (matches what the Linode API serves)\n",
		mark(hex.EncodeToString(sum[:]) == out.KubeconfigSHA256.Value), short(out.KubeconfigSHA256.Value))
	fmt.Printf("  %s access verified: the provider listed %d nodes with the new kubeconfig; it works from here too\n",
		mark(out.NodesVerified.Value > 0 && newWorks), out.NodesVerified.Value)
	fmt.Printf("  %s old admin token rejected (401)\n", mark(oldRejected))
	fmt.Printf("short-lived kubeconfig, used by kubectl in the same run:\n")
	fmt.Printf("  %s kubectl get nodes with it listed %d nodes\n", mark(len(bytes.Fields(nodes)) > 0), len(bytes.Fields(nodes)))
	fmt.Printf("  %s it expires at %s (ttl 1h)\n", mark(len(expiresAt) > 0), expiresAt)
	fmt.Printf("  %s after the run it is rejected (401): revoked when Terraform closed it; %d bound Secrets left\n",
		mark(shortRevoked && left != nil && len(left.Items) == 0), len(left.Items))
	fmt.Printf("demo finished in %s\n", time.Since(start).Round(100*time.Millisecond))
	if !ok {
		return errors.New("a check above failed")
	}
	return nil
}

func step(s string) { fmt.Printf("\n--> %s\n", s) }

func short(s string) string {
	if len(s) > 16 {
		return s[:16]
	}
	return s
}

// buildProvider builds the provider into work and writes a CLI config that
// makes terraform use it (dev_overrides: no registry, no terraform init).
func buildProvider(ctx context.Context, work string) (string, error) {
	bin := filepath.Join(work, "bin")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, "terraform-provider-kubecreds"), ".")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build: %w", err)
	}
	cfg := filepath.Join(work, "terraformrc")
	rc := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"registry.terraform.io/kubecreds/kubecreds\" = %q\n  }\n  direct {}\n}\n", bin)
	return cfg, os.WriteFile(cfg, []byte(rc), 0o600)
}

func copyTF(from, to string) error {
	files, err := filepath.Glob(filepath.Join(from, "*.tf"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no configuration in %s (run the demo from the repository root): %v", from, err) //nolint:errorlint // err is nil when the glob matches nothing, and %w would print %!w(<nil>)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(f)), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func terraformRun(ctx context.Context, terraform, dir string, env []string, out io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, terraform, args...)
	cmd.Dir, cmd.Env = dir, env
	if out == os.Stdout {
		out = &indent{w: os.Stdout}
	}
	cmd.Stdout, cmd.Stderr = out, out
	return cmd.Run()
}

// indent prefixes terraform's lines so the demo's own stand out.
type indent struct {
	w       io.Writer
	midLine bool
}

func (i *indent) Write(p []byte) (int, error) {
	n := 0
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line == "" {
			continue
		}
		if !i.midLine {
			if _, err := io.WriteString(i.w, "    | "); err != nil {
				return n, err
			}
		}
		written, err := io.WriteString(i.w, line)
		n += written
		if err != nil {
			return n, err
		}
		i.midLine = !strings.HasSuffix(line, "\n")
	}
	return len(p), nil
}

func listNodes(ctx context.Context, kubeconfig []byte) error {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	return err
}

// waitUnauthorized waits (the API server caches tokens for about 10 s) until
// the kubeconfig's credentials are rejected.
func waitUnauthorized(ctx context.Context, kubeconfig []byte, within time.Duration) bool {
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, within, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsUnauthorized(listNodes(ctx, kubeconfig)), nil
	})
	return err == nil
}
