//go:build !unit

package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// The examples are documentation: these tests run them with the terraform
// binary and a provider binary built from this tree, the way a user does
// (dev_overrides, no registry).

var (
	buildOnce   sync.Once
	providerDir string
	buildErr    error
)

// builtProvider builds terraform-provider-kubecreds once per test binary and
// returns a CLI config file that makes terraform use it.
func builtProvider(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		// Built once for the whole test binary, so not t.TempDir: that would
		// be removed when the first test to build it ends.
		providerDir, buildErr = os.MkdirTemp("", "kubecreds-provider-") //nolint:usetesting // shared by every test of the binary (sync.Once); t.TempDir would vanish with the first test
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(providerDir, "terraform-provider-kubecreds"), "github.com/kubecreds/terraform-provider-kubecreds")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		var k8sDir string
		if k8sDir, buildErr = kubernetesProviderDir(); buildErr != nil {
			return
		}
		rc := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"registry.terraform.io/kubecreds/kubecreds\" = %q\n"+
			"    \"registry.terraform.io/hashicorp/kubernetes\" = %q\n    \"registry.terraform.io/hashicorp/helm\" = %q\n  }\n  direct {}\n}\n",
			providerDir, k8sDir, k8sDir)
		buildErr = os.WriteFile(filepath.Join(providerDir, "terraformrc"), []byte(rc), 0o600)
	})
	if buildErr != nil {
		t.Fatalf("cannot build the provider: %v", buildErr)
	}
	return filepath.Join(providerDir, "terraformrc")
}

// KubernetesProviderEnv names the directory holding terraform-provider-kubernetes,
// built from the Go module proxy by `make kubernetes-provider` (the registry
// is unreachable here).
const kubernetesProviderEnv = "KUBECREDS_KUBERNETES_PROVIDER_DIR"

func kubernetesProviderDir() (string, error) {
	dir := os.Getenv(kubernetesProviderEnv)
	if dir == "" {
		abs, err := filepath.Abs(filepath.Join("..", "..", ".cache", "bin"))
		if err != nil {
			return "", err
		}
		dir = abs
	}
	for _, p := range []string{"terraform-provider-kubernetes", "terraform-provider-helm"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return "", fmt.Errorf("%s not built in %s: run `make kubernetes-provider` or set %s", p, dir, kubernetesProviderEnv)
		}
	}
	return dir, nil
}

// terraformCmd runs terraform in dir with the built provider and extra environment.
func terraformCmd(t *testing.T, dir string, env map[string]string, args ...string) (string, error) {
	t.Helper()
	return terraformCmdWith(t, os.Getenv("TF_ACC_TERRAFORM_PATH"), dir, env, args...)
}

// terraformCmdWith is terraformCmd with another terraform binary.
func terraformCmdWith(t *testing.T, terraform, dir string, env map[string]string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), terraform, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+builtProvider(t), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
	cmd.Env = append(cmd.Env, leaks.cliEnv(t, dir, env)...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// copyExample copies an example directory to a temporary working directory.
func copyExample(t *testing.T, rel string) string {
	t.Helper()
	src := filepath.Join("..", "..", rel)
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".tf") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func kubeconfigToken(t *testing.T, kubeconfig []byte) string {
	t.Helper()
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo].Token
}

func exampleDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(filepath.Join("..", "..", "examples"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if tf, _ := filepath.Glob(filepath.Join(p, "*.tf")); len(tf) > 0 {
			rel, _ := filepath.Rel(filepath.Join("..", ".."), p)
			dirs = append(dirs, rel)
		}
		return nil
	})
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	return dirs
}

// hasActionBlock tells whether a .tf file in dir declares an action.
func hasActionBlock(t *testing.T, dir string) bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.tf"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`(?m)^action "`).Match(b) {
			return true
		}
	}
	return false
}

func TestAccExamples_formattedAndValid(t *testing.T) {
	t.Parallel()
	for _, dir := range exampleDirs(t) {
		// Examples with an action need Terraform 1.14; the others run
		// under the terraform the suite runs.
		bin := os.Getenv("TF_ACC_TERRAFORM_PATH")
		if hasActionBlock(t, filepath.Join("..", "..", dir)) {
			bin = terraform14(t)
		}
		if out, err := terraformCmdWith(t, bin, filepath.Join("..", "..", dir), nil, "fmt", "-check", "-diff"); err != nil {
			t.Errorf("%s is not terraform fmt-clean:\n%s", dir, out)
		}
		work := copyExample(t, dir)
		if out, err := terraformCmdWith(t, bin, work, nil, "validate", "-no-color"); err != nil {
			t.Errorf("%s does not validate:\n%s", dir, out)
		}
	}
}

func TestAccExamples_rotationAppliesAsWritten(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	work := copyExample(t, "examples/resources/kubecreds_lke_secret_rotation")
	logPath := filepath.Join(t.TempDir(), "trace.log")
	env := map[string]string{"TF_VAR_cluster_id": strconv.Itoa(c.ID), "TF_LOG": "TRACE", "TF_LOG_PATH": logPath}
	oldKC := servedKubeconfig(t, c)

	start := time.Now()
	out, err := terraformCmd(t, work, env, "apply", "-auto-approve", "-no-color")
	if err != nil {
		t.Fatalf("terraform apply of the example failed:\n%s", out)
	}
	t.Logf("terraform apply of the example (one rotation) took %s", time.Since(start).Round(100*time.Millisecond))
	if err := waitRejected(t, oldKC, 2*time.Second); err != nil {
		t.Errorf("after applying the example the old admin token is still accepted")
	}
	if err := kubeconfigWorks(t, servedKubeconfig(t, c)); err != nil {
		t.Errorf("after applying the example the served kubeconfig does not work: %v", err)
	}
	outJSON, err := terraformCmd(t, work, env, "output", "-json")
	if err != nil {
		t.Fatalf("terraform output: %v\n%s", err, outJSON)
	}
	var outputs map[string]struct{ Value any }
	if err := json.Unmarshal([]byte(outJSON), &outputs); err != nil {
		t.Fatal(err)
	}
	if deleted, _ := outputs["deleted_secrets"].Value.([]any); len(deleted) == 0 {
		t.Errorf("the example's deleted_secrets output is empty: %s", outJSON)
	}
	rotated, _ := time.Parse(time.RFC3339, fmt.Sprint(outputs["rotated_at"].Value))
	next, _ := time.Parse(time.RFC3339, fmt.Sprint(outputs["next_rotation_at"].Value))
	if next.Sub(rotated) != 720*time.Hour {
		t.Errorf("next_rotation_at %v is not rotated_at %v + 720h", next, rotated)
	}

	// No credential in the TRACE log or the state: not the Linode token,
	// not the old admin token, not the new one.
	newKC := servedKubeconfig(t, c)
	secrets := map[string]string{
		"LINODE_TOKEN":    testEnv.Emulator.Token,
		"old admin token": kubeconfigToken(t, oldKC),
		"new admin token": kubeconfigToken(t, newKC),
	}
	for _, file := range []string{logPath, filepath.Join(work, "terraform.tfstate")} {
		b, err := os.ReadFile(file)
		if err != nil || len(b) == 0 {
			t.Fatalf("nothing to scan in %s: %v", file, err)
		}
		for what, value := range secrets {
			if value == "" {
				t.Fatalf("no %s to search for", what)
			}
			if bytes.Contains(b, []byte(value)) {
				t.Errorf("the %s appears in %s", what, filepath.Base(file))
			}
		}
	}

	// Each step is logged, with counts and durations.
	trace, _ := os.ReadFile(logPath)
	for _, step := range []string{"rotation step: list service-account-token secrets", "rotation step: delete service-account-token secrets",
		"rotation step: regenerate kubeconfig and service token", "rotation step: verify the old credentials are rejected"} {
		if !bytes.Contains(trace, []byte(step)) {
			t.Errorf("the TRACE log has no %q line", step)
		}
	}
	if !strings.Contains(grepLines(trace, "rotation step: delete"), " deleted=") || !strings.Contains(grepLines(trace, "rotation step: delete"), " duration_ms=") {
		t.Errorf("step log lines carry no duration or counts:\n%s", grepLines(trace, "rotation step: delete"))
	}

	// Applying again changes nothing.
	if out, err := terraformCmd(t, work, env, "plan", "-detailed-exitcode", "-no-color"); err != nil {
		t.Errorf("a second plan of the example is not empty:\n%s", out)
	}
	if out, err := terraformCmd(t, work, env, "destroy", "-auto-approve", "-no-color"); err != nil {
		t.Errorf("terraform destroy of the example failed:\n%s", out)
	}
}

func grepLines(b []byte, substr string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Things that look like credentials, whatever their value: a JWT, a PEM
// private key, a kubeconfig.
var credentialShapes = map[string]*regexp.Regexp{
	"a JWT":         regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}`),
	"a private key": regexp.MustCompile(`PRIVATE KEY`),
	"a kubeconfig":  regexp.MustCompile(`current-context`),
}

// kubernetesProviderLogLine marks lines the hashicorp/kubernetes provider
// writes to the Terraform log. At DEBUG and TRACE it prints its client
// configuration and every request's Authorization header, whatever token it
// was given: its leak, not ours, and documented in our guides.
const kubernetesProviderLogLine = "provider.terraform-provider-kubernetes:"

// scanForLeaks reports every credential value or shape found in file, and
// returns how many lines were left out because they contain skipLines.
func scanForLeaks(t *testing.T, file string, values map[string]string, skipLines string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil || len(b) == 0 {
		t.Fatalf("nothing to scan in %s: %v", file, err)
	}
	skipped := 0
	if skipLines != "" {
		var kept []string
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, skipLines) {
				skipped++
				continue
			}
			kept = append(kept, line)
		}
		b = []byte(strings.Join(kept, "\n"))
	}
	for what, v := range values {
		if v == "" {
			t.Fatalf("no %s to search for", what)
		}
		if bytes.Contains(b, []byte(v)) {
			t.Errorf("%s: contains the %s", filepath.Base(file), what)
		}
	}
	for what, re := range credentialShapes {
		if loc := re.FindIndex(b); loc != nil {
			t.Errorf("%s: contains %s at byte %d", filepath.Base(file), what, loc[0])
		}
	}
	return skipped
}

func TestAccExamples_shortLivedKubeconfigFeedsTheKubernetesProvider(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	work := copyExample(t, "examples/ephemeral-resources/kubecreds_short_lived_kubeconfig")
	// The test harness keeps what the run was given, to search for it afterwards.
	capture := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "capture_test.tf"), []byte(`
resource "terraform_data" "capture" {
  provisioner "local-exec" {
    command     = "printf '%s' \"$KC\" > \"$CAPTURE/kubeconfig\" && printf '%s' \"$KEY\" > \"$CAPTURE/key\""
    environment = {
      KC      = ephemeral.kubecreds_short_lived_kubeconfig.deploy.kubeconfig
      KEY     = ephemeral.kubecreds_short_lived_kubeconfig.oncall.client_key
      CAPTURE = "`+capture+`"
    }
  }
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := t.TempDir()
	if d := os.Getenv("KUBECREDS_KEEP_LOGS"); d != "" {
		logs = d
	}
	env := func(phase string) map[string]string {
		return map[string]string{"TF_VAR_cluster_id": strconv.Itoa(c.ID), "TF_LOG": "TRACE", "TF_LOG_PATH": filepath.Join(logs, phase+".log")}
	}

	if out, err := terraformCmd(t, work, env("plan"), "plan", "-out=tfplan", "-no-color"); err != nil {
		t.Fatalf("terraform plan of the example failed:\n%s", out)
	}
	planJSON, err := terraformCmd(t, work, nil, "show", "-json", "tfplan")
	if err != nil {
		t.Fatalf("terraform show: %v\n%s", err, planJSON)
	}
	if err := os.WriteFile(filepath.Join(logs, "plan.json"), []byte(planJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if out, err := terraformCmd(t, work, env("apply"), "apply", "-no-color", "tfplan"); err != nil {
		t.Fatalf("terraform apply of the example failed:\n%s", out)
	}
	t.Logf("terraform apply of the saved plan took %s", time.Since(start).Round(100*time.Millisecond))
	for _, rpc := range []string{"OpenEphemeralResource", "CloseEphemeralResource"} {
		t.Logf("%s in the kubecreds provider during apply: %v", rpc, rpcDurations(t, filepath.Join(logs, "apply.log"), rpc))
	}

	// The kubernetes provider, configured with the short-lived token, made the namespace.
	if _, err := adminClient(t, c).CoreV1().Namespaces().Get(t.Context(), "team-a", metav1.GetOptions{}); err != nil {
		t.Fatalf("namespace team-a was not created through the kubernetes provider: %v", err)
	}
	kc, err := os.ReadFile(filepath.Join(capture, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(capture, "key"))
	if err != nil {
		t.Fatal(err)
	}
	token := kubeconfigToken(t, kc)
	if err := waitRejectedToken(t, c, token, 15*time.Second); err != nil {
		t.Errorf("the token of the run still works after it: %v", err)
	}
	values := map[string]string{"token": token, "kubeconfig": string(kc), "client key": string(key), "LINODE_TOKEN": testEnv.Emulator.Token}
	scanForLeaks(t, filepath.Join(work, "terraform.tfstate"), values, "")
	scanForLeaks(t, filepath.Join(logs, "plan.json"), values, "")
	for _, f := range []string{filepath.Join(logs, "plan.log"), filepath.Join(logs, "apply.log")} {
		if skipped := scanForLeaks(t, f, values, kubernetesProviderLogLine); skipped == 0 {
			t.Errorf("%s has no line of the kubernetes provider: the scan did not see the run it meant to", filepath.Base(f))
		}
	}

	if out, err := terraformCmd(t, work, map[string]string{"TF_VAR_cluster_id": strconv.Itoa(c.ID)}, "plan", "-detailed-exitcode", "-no-color"); err != nil {
		t.Errorf("a second plan of the example is not empty:\n%s", out)
	}
	if out, err := terraformCmd(t, work, map[string]string{"TF_VAR_cluster_id": strconv.Itoa(c.ID)}, "destroy", "-auto-approve", "-no-color"); err != nil {
		t.Errorf("terraform destroy of the example failed:\n%s", out)
	}
	if left := boundSecrets(t, c, "kube-system"); len(left) != 0 {
		t.Errorf("bound Secrets left after plan, apply, plan and destroy: %v", left)
	}
}

// rpcDurations reads, from a TRACE log, how long each call of rpc took in the
// kubecreds provider (from "Received request" to "Served request").
func rpcDurations(t *testing.T, logFile, rpc string) []time.Duration {
	t.Helper()
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	reqID := regexp.MustCompile(`tf_req_id=(\S+)`)
	started := map[string]time.Time{}
	var out []time.Duration
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "tf_rpc="+rpc) || !strings.Contains(line, "kubecreds/kubecreds") {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, strings.Fields(line)[0])
		m := reqID.FindStringSubmatch(line)
		if err != nil || m == nil {
			continue
		}
		switch {
		case strings.Contains(line, "Received request"):
			started[m[1]] = at
		case strings.Contains(line, "Served request"):
			if s, ok := started[m[1]]; ok {
				out = append(out, at.Sub(s).Round(time.Millisecond))
			}
		}
	}
	return out
}

// The check the issue asks for, with no exception: a configuration that uses
// the kubeconfig only from a local-exec (no other provider), through a saved
// plan and its apply, at TRACE.
func TestAccLeakScan_shortLivedKubeconfigUsedByLocalExec(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	work, capture, logs := t.TempDir(), t.TempDir(), t.TempDir()
	config := fmt.Sprintf(`
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}

ephemeral "kubecreds_short_lived_kubeconfig" "token" {
  lke_cluster_id = %[1]d
  ttl            = "1h"
}

ephemeral "kubecreds_short_lived_kubeconfig" "cert" {
  lke_cluster_id = %[1]d
  ttl            = "30m"
  mode           = "client_certificate"
  user           = "leak-scan"
}

resource "terraform_data" "kubectl" {
  provisioner "local-exec" {
    command     = "f=$(mktemp) && printf '%%s' \"$KC\" > \"$f\" && kubectl --kubeconfig \"$f\" get nodes -o name; rc=$?; rm -f \"$f\"; printf '%%s' \"$KC\" > \"$CAPTURE/kubeconfig\"; printf '%%s' \"$CERT_KC\" > \"$CAPTURE/cert-kubeconfig\"; exit $rc"
    environment = {
      KC      = ephemeral.kubecreds_short_lived_kubeconfig.token.kubeconfig
      CERT_KC = ephemeral.kubecreds_short_lived_kubeconfig.cert.kubeconfig
      CAPTURE = %[2]q
    }
  }
}
`, c.ID, capture)
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	trace := func(phase string) map[string]string {
		return map[string]string{"TF_LOG": "TRACE", "TF_LOG_PATH": filepath.Join(logs, phase+".log")}
	}
	if out, err := terraformCmd(t, work, trace("plan"), "plan", "-out=tfplan", "-no-color"); err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	planJSON, err := terraformCmd(t, work, nil, "show", "-json", "tfplan")
	if err != nil {
		t.Fatalf("show: %v\n%s", err, planJSON)
	}
	if err := os.WriteFile(filepath.Join(logs, "plan.json"), []byte(planJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := terraformCmd(t, work, trace("apply"), "apply", "-no-color", "tfplan"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	kc, err := os.ReadFile(filepath.Join(capture, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	certKC, err := os.ReadFile(filepath.Join(capture, "cert-kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	certCfg, err := clientcmd.Load(certKC)
	if err != nil {
		t.Fatal(err)
	}
	user := certCfg.AuthInfos[certCfg.Contexts[certCfg.CurrentContext].AuthInfo]
	values := map[string]string{
		"token":              kubeconfigToken(t, kc),
		"kubeconfig":         string(kc),
		"client certificate": string(user.ClientCertificateData),
		"client key":         string(user.ClientKeyData),
		"LINODE_TOKEN":       testEnv.Emulator.Token,
	}
	if b, _ := os.ReadFile(filepath.Join(logs, "apply.log")); !bytes.Contains(b, []byte("issued a short-lived service-account token")) ||
		!bytes.Contains(b, []byte("revoked the short-lived token")) {
		t.Fatalf("the apply log does not show the provider issuing and revoking: the scan would not mean anything")
	}
	for _, f := range []string{"terraform.tfstate", "plan.json", "plan.log", "apply.log"} {
		dir := logs
		if f == "terraform.tfstate" {
			dir = work
		}
		scanForLeaks(t, filepath.Join(dir, f), values, "")
	}
}

// The README's HCL is an example too.
func TestAccExamples_readmeHCLIsFormattedAndValid(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```hcl\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no hcl block")
	}
	for i, m := range blocks {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(m[1]), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := terraformCmd(t, dir, nil, "fmt", "-check", "-diff"); err != nil {
			t.Errorf("README hcl block %d is not fmt-clean:\n%s", i, out)
		}
		if out, err := terraformCmd(t, dir, nil, "validate", "-no-color"); err != nil {
			t.Errorf("README hcl block %d does not validate:\n%s", i, out)
		}
	}
}
