package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
		providerDir, buildErr = os.MkdirTemp("", "kubecreds-provider-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(providerDir, "terraform-provider-kubecreds"), "github.com/kubecreds/terraform-provider-kubecreds")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		rc := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"registry.terraform.io/kubecreds/kubecreds\" = %q\n  }\n  direct {}\n}\n", providerDir)
		buildErr = os.WriteFile(filepath.Join(providerDir, "terraformrc"), []byte(rc), 0o600)
	})
	if buildErr != nil {
		t.Fatalf("cannot build the provider: %v", buildErr)
	}
	return filepath.Join(providerDir, "terraformrc")
}

// terraformCmd runs terraform in dir with the built provider and extra environment.
func terraformCmd(t *testing.T, dir string, env map[string]string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Getenv("TF_ACC_TERRAFORM_PATH"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+builtProvider(t), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
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

func TestExamples_formattedAndValid(t *testing.T) {
	t.Parallel()
	for _, dir := range exampleDirs(t) {
		if out, err := terraformCmd(t, filepath.Join("..", "..", dir), nil, "fmt", "-check", "-diff"); err != nil {
			t.Errorf("%s is not terraform fmt-clean:\n%s", dir, out)
		}
		work := copyExample(t, dir)
		if out, err := terraformCmd(t, work, nil, "validate", "-no-color"); err != nil {
			t.Errorf("%s does not validate:\n%s", dir, out)
		}
	}
}

func TestExamples_rotationAppliesAsWritten(t *testing.T) {
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
		"rotation step: regenerate kubeconfig and service token", "rotation step: verify the old token is rejected"} {
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
