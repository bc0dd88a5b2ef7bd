//go:build !unit

package provider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
)

// The rotation's steps, in the order a rotation with verify, restart and
// recycle runs them: the boundaries terraform is killed at. They are
// lke.Steps but those in notKilled (TestMatricesCoverEveryStep).
var killPoints = slices.DeleteFunc(slices.Clone(lke.Steps), func(step string) bool { return notKilled[step] != "" })

// notKilled are the runbook steps terraform is not killed after, and why.
var notKilled = map[string]string{
	lke.StepFinishDeletion: "only a resumed rotation runs it, in place of the list and delete steps whose kills make the next run resume; " +
		"the kills after those steps are the resumed runs that go through it",
}

const killedRunConfig = `
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}

resource "kubecreds_lke_secret_rotation" "r" {
  cluster_id    = %d
  recycle_nodes = true
  restart_workloads {
    namespaces = ["fault-apps"]
    kinds      = ["deployment"]
  }
}
`

var killed = struct {
	sync.Mutex
	passed []string
}{}

// TestAccKilledRuns kills terraform (SIGKILL to its process group: terraform
// and the provider) right after each step of a rotation. After each kill the
// Linode API still serves a working kubeconfig (but after lke-admin's
// re-creation, which ends it until the next apply regenerates), the state records no
// rotation that did not finish (only after the last step may terraform have
// recorded it, and then a plan is empty), and the next apply converges (and
// a plan after it is empty).
func TestAccKilledRuns(t *testing.T) {
	t.Parallel() // its cases join the pool of parallel tests (takeCluster)
	t.Cleanup(func() {
		t.Logf("killed runs: %d of %d kill points passed: %s", len(killed.passed), len(killPoints), strings.Join(killed.passed, "; "))
	})
	for _, step := range killPoints {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			c := takeCluster(t)
			ensureDeployment(t, c, "fault-apps", "web")
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "main.tf"), fmt.Appendf(nil, killedRunConfig, c.ID), 0o600); err != nil {
				t.Fatal(err)
			}
			before := servedKubeconfig(t, c)
			out, err := applyKilledAfter(t, dir, step)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if step == lke.StepRecreateServiceAccounts {
				// The gap the docs admit: lke-admin is re-created, so the
				// kubeconfig LKE served is dead until a regeneration (once
				// the API server's 10 s authentication cache lets it go).
				// The kill may land after the regenerate request went out,
				// so what LKE serves now may be a new one already.
				if !tokenRejectedWithin(t, c, kubeconfigToken(t, before), 15*time.Second) {
					t.Fatalf("after a kill following %q the old kubeconfig still works: lke-admin was not re-created", step)
				}
			} else if err := workingKubeconfigFromLinode(t, c); err != nil {
				t.Fatalf("after a kill following %q: %v", step, err)
			}
			if recorded := stateResources(t, dir); len(recorded) != 0 {
				// Terraform may write the state before the kill lands, but
				// only once the rotation has finished: after the last step,
				// and then the state must describe a finished rotation.
				if step != killPoints[len(killPoints)-1] {
					t.Fatalf("killed after %q, the state records %v; no rotation finished, so none may be", step, recorded)
				}
				if out, err := terraformCmd(t, dir, nil, "plan", "-detailed-exitcode", "-input=false"); err != nil {
					t.Fatalf("killed after the last step, the state records %v, but a plan is not empty: %v\n%s", recorded, err, out)
				}
			}
			if out, err := terraformCmd(t, dir, nil, "apply", "-auto-approve", "-input=false"); err != nil {
				t.Fatalf("the apply after the kill did not converge: %v\n%s", err, out)
			}
			if out, err := terraformCmd(t, dir, nil, "plan", "-detailed-exitcode", "-input=false"); err != nil {
				t.Fatalf("plan after the converging apply is not empty: %v\n%s", err, out)
			}
			if err := workingKubeconfigFromLinode(t, c); err != nil {
				t.Fatal(err)
			}
			if _, err := terraformCmd(t, dir, nil, "destroy", "-auto-approve", "-input=false"); err != nil {
				t.Fatal(err)
			}
			killed.Lock()
			killed.passed = append(killed.passed, step)
			killed.Unlock()
		})
	}
}

// stateResources lists the resources terraform.tfstate in dir records (none
// when there is no state file, or an empty one).
func stateResources(t *testing.T, dir string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil // created for the lock, nothing written: terraform reads it as no state
	}
	var state struct {
		Resources []struct {
			Type, Name string
		} `json:"resources"`
	}
	if err := json.Unmarshal(raw, &state); err != nil {
		t.Fatalf("terraform.tfstate: %v", err)
	}
	var out []string
	for _, r := range state.Resources {
		out = append(out, r.Type+"."+r.Name)
	}
	return out
}

// applyKilledAfter runs terraform apply in dir in its own process group and
// kills the group with SIGKILL as soon as the provider logs that step as
// done. It fails if the step never came or a process of the group outlived
// the kill.
func applyKilledAfter(t *testing.T, dir, step string) (string, error) {
	t.Helper()
	return runKilledWhen(t, dir, func(line string) bool {
		if !strings.Contains(line, "rotation step: "+step+":") {
			return false
		}
		t.Logf("killed at: %s", line)
		return true
	}, nil)
}

// runKilledWhen starts terraform apply (TF_LOG=INFO to a pipe) and SIGKILLs
// its process group when a log line satisfies at, or when poll (checked
// every 100 ms, if given) returns true.
func runKilledWhen(t *testing.T, dir string, at func(line string) bool, poll func() bool) (string, error) {
	t.Helper()
	return runKilledWith(t, os.Getenv("TF_ACC_TERRAFORM_PATH"), dir, []string{"apply", "-auto-approve", "-input=false"}, at, poll)
}

// runKilledWith is runKilledWhen for another terraform binary and command.
func runKilledWith(t *testing.T, terraform, dir string, args []string, at func(line string) bool, poll func() bool) (string, error) {
	t.Helper()
	cmd := exec.Command(terraform, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, stderr, err := startLogged(t, cmd, dir)
	if err != nil {
		return "", err
	}
	pgid := cmd.Process.Pid
	var once sync.Once
	kill := func() { once.Do(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }) }
	done := make(chan struct{})
	if poll != nil {
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(100 * time.Millisecond):
					if poll() {
						kill()
						return
					}
				}
			}
		}()
	}
	hit := false
	scanner := bufio.NewScanner(stderr)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		if !hit && at != nil && at(scanner.Text()) {
			hit = true
			kill()
		}
	}
	err = cmd.Wait()
	close(done)
	var exit *exec.ExitError
	killedBySignal := errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled()
	if !killedBySignal {
		return out.String(), fmt.Errorf("terraform was not killed (the kill point never came): %v", err) //nolint:errorlint // err is nil when terraform exited normally, and %w would print %!w(<nil>)
	}
	// Nothing of the group may survive (the provider included).
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			return out.String(), fmt.Errorf("a process of the killed group %d is still running", pgid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return out.String(), nil
}

// startLogged starts cmd (terraform) in dir with the built provider and
// TF_LOG=INFO, its stdout gathered in out and its log readable from stderr.
func startLogged(t *testing.T, cmd *exec.Cmd, dir string) (out *bytes.Buffer, stderr io.Reader, err error) {
	t.Helper()
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+builtProvider(t), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_LOG=INFO")
	out = &bytes.Buffer{}
	cmd.Stdout = out
	if stderr, err = cmd.StderrPipe(); err != nil {
		return nil, nil, err
	}
	return out, stderr, cmd.Start()
}

// TestAccKilledShortLivedRuns kills terraform while a short-lived kubeconfig
// is in use (its bound Secret exists, the local-exec runs), twice: with a
// 10-minute and a 1-hour ttl. A later open, eleven minutes on (on the
// provider's clock), removes the first run's Secret, whose token has
// expired, and leaves the second's, which may still be in use.
func TestAccKilledShortLivedRuns(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	config := `
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}

ephemeral "kubecreds_short_lived_kubeconfig" "k" {
  lke_cluster_id = %d
  ttl            = %q
}

resource "terraform_data" "use" {
  provisioner "local-exec" {
    command     = "touch \"$MARK\" && sleep 120"
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig, MARK = %q }
  }
}
`
	var left []string
	for _, ttl := range []string{"10m", "1h"} {
		dir := t.TempDir()
		mark := filepath.Join(dir, "in-use")
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), fmt.Appendf(nil, config, c.ID, ttl, mark), 0o600); err != nil {
			t.Fatal(err)
		}
		// Killed while the local-exec uses the kubeconfig: after the
		// apply's open, before its close. (Terraform also opens and closes
		// it during the plan; a kill then could race that close.)
		out, err := runKilledWhen(t, dir, nil, func() bool {
			_, err := os.Stat(mark)
			return err == nil
		})
		if err != nil {
			t.Fatalf("ttl %s: %v\n%s", ttl, err, out)
		}
		if recorded := stateResources(t, dir); len(recorded) != 0 {
			t.Fatalf("ttl %s: the killed run's state records %v", ttl, recorded)
		}
		now := boundSecrets(t, c, "kube-system")
		for _, s := range now {
			if !slices.Contains(left, s) {
				left = append(left, s)
			}
		}
	}
	t.Cleanup(func() {
		for _, name := range left {
			_ = adminClient(t, c).CoreV1().Secrets("kube-system").Delete(context.Background(), name, metav1.DeleteOptions{})
		}
	})
	if len(left) != 2 {
		t.Fatalf("the killed runs left bound Secrets %v; want one each", left)
	}
	clk := clocktesting.NewFakeClock(time.Now().Add(11 * time.Minute))
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   ephemeralVersions,
		ProtoV6ProviderFactories: providersWithEcho(providerserver.NewProtocol6WithError(newWithClock("test", clk)())),
		Steps: []resource.TestStep{{
			Config: ephemeralConfig("", fmt.Sprintf("  lke_cluster_id = %d\n  ttl            = \"10m\"", c.ID)),
			Check: func(*terraform.State) error {
				after := boundSecrets(t, c, "kube-system")
				if slices.Contains(after, left[0]) {
					return fmt.Errorf("the expired Secret %s of the killed 10m run was not cleaned up", left[0])
				}
				if !slices.Contains(after, left[1]) {
					return fmt.Errorf("the Secret %s of the 1h run, whose token may still be in use, was removed", left[1])
				}
				return nil
			},
		}},
	})
}
