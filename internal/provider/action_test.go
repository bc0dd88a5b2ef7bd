//go:build !unit

package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/ske"
)

// terraform14Env names the Terraform 1.14 binary the action tests run
// (actions need 1.14; `make terraform14` builds it from the module proxy).
const terraform14Env = "KUBECREDS_TERRAFORM14"

// terraform14 is the Terraform 1.14 binary, or a clear failure.
func terraform14(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(terraform14Env)
	if bin == "" {
		abs, err := filepath.Abs(filepath.Join("..", "..", ".cache", "bin", "terraform-1.14"))
		if err != nil {
			t.Fatal(err)
		}
		bin = abs
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Terraform v1.14.") {
		t.Fatalf("the action tests need Terraform 1.14 (actions came with it): %s gives %q, %v; run `make terraform14` or set %s",
			bin, firstLine(out), err, terraform14Env)
	}
	return bin
}

// actionDir writes config to a fresh working directory.
func actionDir(t *testing.T, config string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

const actionProviders = `
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}
`

// tf14 runs Terraform 1.14 in dir and fails the test when it fails.
func tf14(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := terraformCmdWith(t, terraform14(t), dir, nil, append(args, "-no-color")...)
	if err != nil {
		t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// rotationState reads the kubecreds_lke_secret_rotation's attributes from
// the state, as terraform show -json gives them.
func rotationState(t *testing.T, dir string) map[string]any {
	t.Helper()
	var shown struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Type   string         `json:"type"`
					Values map[string]any `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(tf14(t, dir, "show", "-json")), &shown); err != nil {
		t.Fatal(err)
	}
	for _, r := range shown.Values.RootModule.Resources {
		if r.Type == "kubecreds_lke_secret_rotation" {
			return r.Values
		}
	}
	t.Fatalf("no kubecreds_lke_secret_rotation in the state")
	return nil
}

// TestAccAction_rotateNowBesideTheResource is the incident: a cluster managed
// by kubecreds_lke_secret_rotation is rotated now with
// `terraform apply -invoke=action.kubecreds_lke_rotate_credentials.now`.
// The old admin token then gets 401 and the new served kubeconfig works;
// the next plan of the same configuration replaces nothing, and a refresh
// records the new kubeconfig in kubeconfig_sha256 with kubeconfig_changed_at.
func TestAccAction_rotateNowBesideTheResource(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	dir := actionDir(t, actionProviders+fmt.Sprintf(`
resource "kubecreds_lke_secret_rotation" "r" {
  cluster_id = %[1]d
}

action "kubecreds_lke_rotate_credentials" "now" {
  config {
    cluster_id = %[1]d
  }
}
`, c.ID))
	tf14(t, dir, "apply", "-auto-approve", "-input=false")
	managed := rotationState(t, dir)
	if managed["kubeconfig_sha256"] != sha256Hex(servedKubeconfig(t, c)) || managed["kubeconfig_changed_at"] != nil {
		t.Fatalf("after the resource's own rotation: kubeconfig_sha256 %v (served %s), kubeconfig_changed_at %v",
			managed["kubeconfig_sha256"], sha256Hex(servedKubeconfig(t, c)), managed["kubeconfig_changed_at"])
	}
	// Right after its own rotation the resource's refresh changes nothing.
	if out := tf14(t, dir, "plan", "-detailed-exitcode", "-input=false"); !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after the resource's rotation is not empty:\n%s", out)
	}

	oldKC := servedKubeconfig(t, c)
	regens := c.Regenerations()
	out := tf14(t, dir, "apply", "-auto-approve", "-input=false", "-invoke=action.kubecreds_lke_rotate_credentials.now")
	if n := c.Regenerations() - regens; n != 1 {
		t.Fatalf("the invoked action regenerated %d times, want 1:\n%s", n, out)
	}
	t.Logf("terraform apply -invoke printed:\n%s", out)
	for _, want := range []string{
		"Rotating the credentials of LKE cluster",
		lke.StepDeleteSecrets + ":",
		lke.StepVerifyOldRejected + ":",
		fmt.Sprintf("Rotated LKE cluster %d in", c.ID),
		"the old admin token is rejected",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the action's progress lacks %q:\n%s", want, out)
		}
	}
	if err := oldTokenRejected(t, oldKC); err != nil {
		t.Error(err)
	}
	newKC := servedKubeconfig(t, c)
	if err := kubeconfigWorks(t, newKC); err != nil {
		t.Errorf("the kubeconfig served after the action does not work: %v", err)
	}
	if out, err := terraformCmdWith(t, terraform14(t), dir, nil, "plan", "-detailed-exitcode", "-input=false", "-no-color"); err != nil {
		t.Errorf("the plan after the action is not empty (or failed): %v\n%s", err, out)
	} else if strings.Contains(out, "must be replaced") || strings.Contains(out, "will be created") {
		t.Errorf("the plan after the action replaces the managed rotation:\n%s", out)
	}
	tf14(t, dir, "apply", "-refresh-only", "-auto-approve", "-input=false")
	managed = rotationState(t, dir)
	if managed["kubeconfig_sha256"] != sha256Hex(newKC) {
		t.Errorf("after refresh kubeconfig_sha256 = %v; the served kubeconfig hashes to %s", managed["kubeconfig_sha256"], sha256Hex(newKC))
	}
	if at, _ := managed["kubeconfig_changed_at"].(string); at == "" {
		t.Errorf("after refresh kubeconfig_changed_at is not set: %v", managed["kubeconfig_changed_at"])
	} else if when, err := time.Parse(time.RFC3339, at); err != nil || time.Since(when) > 5*time.Minute {
		t.Errorf("kubeconfig_changed_at = %q is not a recent RFC 3339 time", at)
	}
	if out := tf14(t, dir, "plan", "-detailed-exitcode", "-input=false"); !strings.Contains(out, "No changes.") {
		t.Errorf("plan after the refresh is not empty:\n%s", out)
	}
}

// TestAccAction_firedByAnIncidentNumber: an action_trigger on a terraform_data
// holding an incident number rotates when the number is set and when it
// changes, and not on an apply that changes nothing.
func TestAccAction_firedByAnIncidentNumber(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	dir := actionDir(t, actionProviders+fmt.Sprintf(`
variable "incident" { type = string }

action "kubecreds_lke_rotate_credentials" "now" {
  config {
    cluster_id = %d
    verify     = true
  }
}

resource "terraform_data" "incident" {
  input = var.incident
  lifecycle {
    action_trigger {
      events  = [after_create, after_update]
      actions = [action.kubecreds_lke_rotate_credentials.now]
    }
  }
}
`, c.ID))
	for _, step := range []struct {
		incident string
		rotates  bool
	}{{"INC-1041", true}, {"INC-1041", false}, {"INC-1042", true}} {
		oldKC := servedKubeconfig(t, c)
		regens := c.Regenerations()
		out := tf14(t, dir, "apply", "-auto-approve", "-input=false", "-var", "incident="+step.incident)
		n := c.Regenerations() - regens
		switch {
		case step.rotates && n != 1:
			t.Fatalf("incident %s: the trigger regenerated %d times, want 1:\n%s", step.incident, n, out)
		case !step.rotates && n != 0:
			t.Fatalf("incident %s again: an apply that changes nothing rotated (%d regenerations):\n%s", step.incident, n, out)
		}
		if step.rotates {
			if err := oldTokenRejected(t, oldKC); err != nil {
				t.Errorf("incident %s: %v", step.incident, err)
			}
			if err := kubeconfigWorks(t, servedKubeconfig(t, c)); err != nil {
				t.Errorf("incident %s: the served kubeconfig does not work: %v", step.incident, err)
			}
		}
	}
}

// TestAccAction_killedDuringInvokeConvergesOnTheNextInvoke kills terraform
// (SIGKILL to its process group) while the invoked action rotates: once
// after it deleted the token secrets and before it regenerated, once after
// the new kubeconfig was served and before it was proven. Each time the
// next invoke finishes the job: the token from before the first invoke is
// rejected and the served kubeconfig works.
func TestAccAction_killedDuringInvokeConvergesOnTheNextInvoke(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	dir := actionDir(t, actionProviders+fmt.Sprintf(`
action "kubecreds_lke_rotate_credentials" "now" {
  config {
    cluster_id = %d
  }
}
`, c.ID))
	builtProvider(t)
	invoke := []string{"apply", "-auto-approve", "-input=false", "-invoke=action.kubecreds_lke_rotate_credentials.now"}
	for _, kill := range []struct {
		after       string
		regenerated int // regenerations done when the kill comes
	}{{lke.StepDeleteSecrets, 0}, {lke.StepWaitKubeconfig, 1}} {
		oldKC := servedKubeconfig(t, c)
		regens := c.Regenerations()
		if out, err := runKilledWith(t, terraform14(t), dir, invoke, func(line string) bool {
			return strings.Contains(line, "rotation step: "+kill.after+":")
		}, nil); err != nil {
			t.Fatalf("killed after %s: %v\n%s", kill.after, err, out)
		}
		if n := c.Regenerations() - regens; n != kill.regenerated {
			t.Fatalf("killed after %s, %d regenerations had happened, want %d: the kill did not come where meant", kill.after, n, kill.regenerated)
		}
		out := tf14(t, dir, invoke...)
		if err := oldTokenRejected(t, oldKC); err != nil {
			t.Errorf("killed after %s, then invoked again: %v", kill.after, err)
		}
		if err := kubeconfigWorks(t, servedKubeconfig(t, c)); err != nil {
			t.Errorf("killed after %s, then invoked again: the served kubeconfig does not work: %v\n%s", kill.after, err, out)
		}
		t.Logf("killed after %s: the next invoke converged (%d regenerations in all)", kill.after, c.Regenerations()-regens)
	}
}

// TestAccAction_badInputIsRejectedBeforeAnyAPICall invokes the action with
// each bad configuration and expects Terraform to refuse it naming the
// attribute and what is allowed, with no request to the Linode API. Not
// parallel, so that the emulator's request count covers these runs only.
func TestAccAction_badInputIsRejectedBeforeAnyAPICall(t *testing.T) {
	bin := terraform14(t)
	bad := []struct {
		name, body, attr, allowed string
	}{
		{"cluster_id zero", `cluster_id = 0`, "cluster_id", "must be at least 1"},
		{"cluster_id fraction", `cluster_id = 1.5`, "cluster_id", "must be a whole number"},
		{"cluster_id missing", ``, "cluster_id", `The argument "cluster_id" is required`},
		{"namespace not a DNS label", "cluster_id = 1\n    namespaces = [\"Kube_System\"]", "namespaces", "lowercase RFC 1123 label"},
		{"namespaces empty", "cluster_id = 1\n    namespaces = []", "namespaces", "set must contain at least 1 elements"},
		{"nothing to regenerate", "cluster_id = 1\n    regenerate_kubeconfig = false\n    regenerate_service_token = false", "regenerate_kubeconfig", "Set at least one of them to true"},
		{"restart without namespaces", "cluster_id = 1\n    restart_workloads {\n      kinds = [\"deployment\"]\n    }", "restart_workloads", "restart_workloads needs namespaces"},
		{"restart kind unknown", "cluster_id = 1\n    restart_workloads {\n      namespaces = [\"apps\"]\n      kinds = [\"pod\"]\n    }", "kinds", `value must be one of: ["deployment" "daemonset" "statefulset"]`},
		{"negative timeout", "cluster_id = 1\n    timeouts {\n      invoke = \"-5m\"\n    }", "timeouts", `timeouts.invoke must be a positive Go duration, such as "30m"`},
		{"timeout not a duration", "cluster_id = 1\n    timeouts {\n      invoke = \"soon\"\n    }", `invoke = "soon"`, `"soon" must be a string containing a sequence of decimal numbers`},
		{"unknown argument", "cluster_id = 1\n    rotate_every = \"720h\"", "rotate_every", `An argument named "rotate_every" is not expected here`},
	}
	before := testEnv.Emulator.CountRequests("")
	rejected := 0
	for _, b := range bad {
		ok := t.Run(b.name, func(t *testing.T) {
			dir := actionDir(t, actionProviders+fmt.Sprintf(`
action "kubecreds_lke_rotate_credentials" "now" {
  config {
    %s
  }
}
`, b.body))
			out, err := terraformCmdWith(t, bin, dir, nil, "apply", "-auto-approve", "-input=false", "-no-color",
				"-invoke=action.kubecreds_lke_rotate_credentials.now")
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the invoke did not fail: %v\n%s", err, out)
			}
			if !regexp.MustCompile(regexp.QuoteMeta(b.attr)).MatchString(out) || !wrapped(b.allowed).MatchString(out) {
				t.Errorf("the error does not name %s and say %q:\n%s", b.attr, b.allowed, out)
			}
		})
		if ok {
			rejected++
		}
	}
	calls := testEnv.Emulator.CountRequests("") - before
	t.Logf("action bad input: %d of %d configurations rejected before any API call; Linode API requests made: %d", rejected, len(bad), calls)
	if calls != 0 {
		t.Errorf("the bad configurations made %d Linode API requests; want none", calls)
	}
}

// TestAccAction_onlyWhereTerraformHasActions: Terraform 1.14 validates a
// configuration with the action; the terraform the rest of the suite runs
// (1.11) and OpenTofu know no actions and refuse the block with their own
// message, while the provider serves them everything else (the rest of the
// suite) and does not crash.
func TestAccAction_onlyWhereTerraformHasActions(t *testing.T) {
	t.Parallel()
	dir := actionDir(t, actionProviders+`
action "kubecreds_lke_rotate_credentials" "now" {
  config {
    cluster_id = 1
  }
}
`)
	version, _ := exec.Command(os.Getenv("TF_ACC_TERRAFORM_PATH"), "version").CombinedOutput()
	out, err := terraformCmd(t, dir, nil, "validate", "-no-color")
	if strings.Contains(out, "panic") || strings.Contains(out, "plugin crashed") {
		t.Fatalf("the provider crashed:\n%s", out)
	}
	if strings.HasPrefix(string(version), "Terraform v1.14.") {
		if err != nil {
			t.Fatalf("Terraform 1.14 does not validate the action: %v\n%s", err, out)
		}
		return
	}
	if err == nil {
		t.Fatalf("an action block validated under %s, which has no actions:\n%s", firstLine(version), out)
	}
	if !strings.Contains(out, "Unsupported block type") || !strings.Contains(out, `action "kubecreds_lke_rotate_credentials"`) {
		t.Errorf("the error does not refuse the action block as a block this version does not know:\n%s", out)
	}
	t.Logf("%s refuses the action block: %s", firstLine(version), regexp.MustCompile(`Error: [^\n]*`).FindString(out))
}

// TestAccAction_SKEPhasesInvokedFromTheCLI runs SKE's two phases as actions:
// a start killed while SKE prepares is finished by the next invoke without
// a second start; start leaves the cluster PREPARED with the old kubeconfig still working;
// starting again starts nothing and warns; complete leaves it COMPLETED,
// the old kubeconfig rejected and one issued in between working;
// completing again completes nothing and warns.
func TestAccAction_SKEPhasesInvokedFromTheCLI(t *testing.T) {
	t.Parallel()
	c := newSKECluster(t, "ci-actions")
	oldKC, _, err := c.Kubeconfig(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := actionDir(t, actionProviders+fmt.Sprintf(`
locals {
  cluster = { project_id = %q, region = %q, cluster_name = %q }
}

action "kubecreds_ske_start_credentials_rotation" "start" {
  config {
    project_id   = local.cluster.project_id
    region       = local.cluster.region
    cluster_name = local.cluster.cluster_name
  }
}

action "kubecreds_ske_complete_credentials_rotation" "complete" {
  config {
    project_id   = local.cluster.project_id
    region       = local.cluster.region
    cluster_name = local.cluster.cluster_name
  }
}
`, c.ProjectID, c.Region, c.Name))
	// Killed while SKE prepares the rotation it was asked for: the next
	// invoke finds it PREPARING, waits for it, and says so, without a
	// second start.
	c.SetPrepareDuration(5 * time.Second)
	start := []string{"apply", "-auto-approve", "-input=false", "-invoke=action.kubecreds_ske_start_credentials_rotation.start"}
	if out, err := runKilledWith(t, terraform14(t), dir, start, func(line string) bool {
		return strings.Contains(line, "SKE credentials rotation started")
	}, nil); err != nil {
		t.Fatalf("killed while preparing: %v\n%s", err, out)
	}
	if phase, _ := c.Phase(); phase != ske.PhasePreparing {
		t.Fatalf("after the kill the phase is %s, want PREPARING", phase)
	}
	out := tf14(t, dir, start...)
	if phase, _ := c.Phase(); phase != ske.PhasePrepared {
		t.Fatalf("after the start action the phase is %s, want PREPARED:\n%s", phase, out)
	}
	if !strings.Contains(out, "credentials rotation PREPARED after") {
		t.Errorf("the start action's progress does not say PREPARED:\n%s", out)
	}
	if starts, _ := c.Rotations(); starts != 1 || !wrapped("was already PREPARING").MatchString(out) {
		t.Errorf("the invoke after the kill: %d starts (want 1), or no word of the rotation already under way:\n%s", starts, out)
	}
	if err := skeKubeconfigWorks(t.Context(), oldKC); err != nil {
		t.Errorf("PREPARED: the kubeconfig from before the start no longer works: %v", err)
	}
	between, _, err := c.Kubeconfig(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	out = tf14(t, dir, "apply", "-auto-approve", "-input=false", "-invoke=action.kubecreds_ske_start_credentials_rotation.start")
	if starts, _ := c.Rotations(); starts != 1 {
		t.Errorf("a second start while PREPARED started again (%d starts)", starts)
	}
	if !wrapped("already had a credentials rotation PREPARED").MatchString(out) {
		t.Errorf("a second start while PREPARED does not warn:\n%s", out)
	}
	out = tf14(t, dir, "apply", "-auto-approve", "-input=false", "-invoke=action.kubecreds_ske_complete_credentials_rotation.complete")
	if phase, _ := c.Phase(); phase != ske.PhaseCompleted {
		t.Fatalf("after the complete action the phase is %s, want COMPLETED:\n%s", phase, out)
	}
	if err := skeKubeconfigWorks(t.Context(), oldKC); err == nil {
		t.Errorf("COMPLETED: the kubeconfig from before the start still works")
	}
	if err := skeKubeconfigWorks(t.Context(), between); err != nil {
		t.Errorf("COMPLETED: the kubeconfig issued while PREPARED does not work: %v", err)
	}
	out = tf14(t, dir, "apply", "-auto-approve", "-input=false", "-invoke=action.kubecreds_ske_complete_credentials_rotation.complete")
	if _, completes := c.Rotations(); completes != 1 {
		t.Errorf("a second complete completed again (%d completes)", completes)
	}
	if !wrapped("had no rotation waiting to be completed").MatchString(out) {
		t.Errorf("a second complete does not warn:\n%s", out)
	}
}

// TestAccAction_SKEBadInputIsRejectedBeforeAnyAPICall: bad settings of the SKE
// actions fail at validate, naming the attribute, with no request to SKE.
func TestAccAction_SKEBadInputIsRejectedBeforeAnyAPICall(t *testing.T) {
	t.Parallel()
	bin := terraform14(t)
	_, api := sharedSKECluster(t)
	// A project of its own: the requests of the tests running beside this
	// one name other projects.
	const project = "0d9f6c1e-bad1-4b0c-8a5e-7f3e2d1c0b9a"
	requests := func() int {
		n := 0
		for _, r := range api.Requests() {
			if strings.Contains(r.Path, project) {
				n++
			}
		}
		return n
	}
	valid := fmt.Sprintf("project_id = %q\n    region = \"eu01\"\n    cluster_name = \"prod\"", project)
	for _, b := range []struct {
		name, action, body, attr, allowed string
	}{
		{"cluster name with capitals", "start", fmt.Sprintf("project_id = %q\n    region = \"eu01\"\n    cluster_name = \"Prod\"", project), "cluster_name", "1 to 11 lowercase letters, digits and hyphens"},
		{"empty project", "complete", "project_id = \"\"\n    region = \"eu01\"\n    cluster_name = \"prod\"", "project_id", "string length must be at least 1"},
		{"region missing", "start", fmt.Sprintf("project_id = %q\n    cluster_name = \"prod\"", project), "region", `The argument "region" is required`},
		{"negative timeout", "complete", valid + "\n    timeouts {\n      invoke = \"-1h\"\n    }", "timeouts", "timeouts.invoke must be a positive Go duration"},
	} {
		t.Run(b.name, func(t *testing.T) {
			dir := actionDir(t, actionProviders+fmt.Sprintf(`
action "kubecreds_ske_%[1]s_credentials_rotation" "x" {
  config {
    %[2]s
  }
}
`, b.action, b.body))
			out, err := terraformCmdWith(t, bin, dir, nil, "apply", "-auto-approve", "-input=false", "-no-color",
				"-invoke=action.kubecreds_ske_"+b.action+"_credentials_rotation.x")
			if err == nil {
				t.Fatalf("the invoke did not fail:\n%s", out)
			}
			if !strings.Contains(out, b.attr) || !wrapped(b.allowed).MatchString(out) {
				t.Errorf("the error does not name %s and say %q:\n%s", b.attr, b.allowed, out)
			}
		})
	}
	if n := requests(); n != 0 {
		t.Errorf("the bad configurations made %d SKE requests; want none", n)
	}
}
