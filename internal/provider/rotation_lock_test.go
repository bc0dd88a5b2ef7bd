//go:build !unit

package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
)

const lockedRotation = `
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}
variable "round" { type = string }
resource "kubecreds_lke_secret_rotation" "r" {
  cluster_id = %d
  keepers    = { round = var.round }
}
`

// Two workspaces rotating one cluster at once, as two overlapping cron
// jobs would: in each round exactly one regenerates, the other waits for
// the rotation lock and adopts that rotation; both applies succeed, both
// states hold it, and the next plans are empty.
func TestAccRotationLock_twoWorkspacesAtOnce(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		writeConfig(t, dir, fmt.Sprintf(lockedRotation, c.ID))
	}
	for round := range 3 {
		vars := map[string]string{"TF_VAR_round": fmt.Sprint(round)}
		before := c.Regenerations()
		outs, errs := make([]string, 2), make([]error, 2)
		var wg sync.WaitGroup
		start := time.Now()
		for i, dir := range dirs {
			wg.Go(func() { outs[i], errs[i] = tfRun(t, dir, vars, "apply", "-auto-approve", "-input=false") })
		}
		wg.Wait()
		took := time.Since(start)
		for i := range dirs {
			if errs[i] != nil {
				t.Fatalf("round %d: workspace %d failed: %v\n%s", round, i, errs[i], outs[i])
			}
		}
		if n := c.Regenerations() - before; n != 1 {
			t.Errorf("round %d: %d regenerations; want exactly 1", round, n)
		}
		adopted := 0
		for _, out := range outs {
			if wrapped("Another run rotated this cluster").MatchString(out) {
				adopted++
			}
		}
		if adopted != 1 {
			t.Errorf("round %d: %d of the two applies say they adopted another's rotation; want 1:\n%s\n----\n%s", round, adopted, outs[0], outs[1])
		}
		for i, dir := range dirs {
			a := stateAttributes(t, dir, "kubecreds_lke_secret_rotation.r")
			if a["rotated_at"] == nil || a["kubeconfig_sha256"] == nil {
				t.Errorf("round %d: workspace %d's state does not hold the rotation: %v", round, i, a)
			}
			mustPlanEmpty(t, dir, vars, fmt.Sprintf("of workspace %d after round %d", i, round))
		}
		if err := kubeconfigWorks(t, servedKubeconfig(t, c)); err != nil {
			t.Errorf("round %d: the served kubeconfig does not work: %v", round, err)
		}
		t.Logf("round %d: both applies done in %s, one regeneration", round, took.Round(100*time.Millisecond))
	}
}

// A holder killed with SIGKILL right after it took the lock delays the next
// run by at most the lease's duration (here not at all: the killed holder
// ran on this machine, and its process is seen to be gone).
func TestAccRotationLock_killedHolderDelaysTheNextRunAtMostTheLease(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	config := fmt.Sprintf(`
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}
resource "kubecreds_lke_secret_rotation" "r" {
  cluster_id = %d
  keepers    = { run = "killed-holder" }
}
`, c.ID)
	killed, next := t.TempDir(), t.TempDir()
	writeConfig(t, killed, config)
	writeConfig(t, next, config)
	out, err := runKilledWhen(t, killed, func(line string) bool {
		return strings.Contains(line, "rotation step: "+lke.StepCheckAccess+":")
	}, nil)
	if err != nil {
		t.Fatalf("the first run was not killed after taking the lock: %v\n%s", err, out)
	}
	lease, err := adminClient(t, c).CoordinationV1().Leases("kube-system").Get(t.Context(), kube.LockName, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Fatalf("the killed run left no held lock (%v): %+v", err, lease)
	}
	logPath := filepath.Join(t.TempDir(), "next.log")
	regens := c.Regenerations()
	out = mustTF(t, next, map[string]string{"TF_LOG_PROVIDER": "INFO", "TF_LOG_PATH": logPath}, "apply", "-auto-approve", "-input=false")
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	m := checkAccessWaited(raw)
	if m == nil {
		t.Fatalf("the next run logged no %q step:\n%s", lke.StepCheckAccess, out)
	}
	waited, _ := strconv.Atoi(string(m[1]))
	if time.Duration(waited)*time.Millisecond >= kube.LockDuration {
		t.Errorf("the next run waited %d ms for the killed holder's lock; at most the lease's %s", waited, kube.LockDuration)
	}
	if n := c.Regenerations() - regens; n != 1 {
		t.Errorf("the next run made %d regenerations; want 1", n)
	}
	t.Logf("the next run waited %d ms for the lock of the killed holder %q", waited, *lease.Spec.HolderIdentity)
}

// The incident action invoked while the scheduled resource rotates the
// same cluster (another configuration, so no shared state lock): one
// regeneration in all, both runs succeed, and the resource's next plan is
// empty.
func TestAccRotationLock_actionBesideTheResource(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	resourceDir := t.TempDir()
	writeConfig(t, resourceDir, fmt.Sprintf(lockedRotation, c.ID))
	actionDir := actionDir(t, actionProviders+fmt.Sprintf(`
action "kubecreds_lke_rotate_credentials" "now" {
  config {
    cluster_id = %d
  }
}
`, c.ID))
	for round := range 2 {
		vars := map[string]string{"TF_VAR_round": fmt.Sprint(round)}
		before := c.Regenerations()
		var wg sync.WaitGroup
		var resOut, actOut string
		var resErr, actErr error
		wg.Go(func() { resOut, resErr = tfRun(t, resourceDir, vars, "apply", "-auto-approve", "-input=false") })
		wg.Go(func() {
			actOut, actErr = terraformCmdWith(t, terraform14(t), actionDir, nil, "apply", "-auto-approve", "-input=false", "-no-color",
				"-invoke=action.kubecreds_lke_rotate_credentials.now")
		})
		wg.Wait()
		if resErr != nil || actErr != nil {
			t.Fatalf("round %d: resource %v, action %v\n%s\n----\n%s", round, resErr, actErr, resOut, actOut)
		}
		if n := c.Regenerations() - before; n != 1 {
			t.Errorf("round %d: %d regenerations; want exactly 1:\n%s\n----\n%s", round, n, resOut, actOut)
		}
		if !wrapped("Another run rotated this cluster").MatchString(resOut + actOut) {
			t.Errorf("round %d: neither run says it adopted the other's rotation:\n%s\n----\n%s", round, resOut, actOut)
		}
		mustPlanEmpty(t, resourceDir, vars, fmt.Sprintf("after round %d", round))
	}
}

// Two workspaces rotating one service account at once: one re-creates it,
// the other waits for the account's lock and adopts that rotation; both
// states hold the account's one new UID, and both next plans are empty.
func TestAccRotationLock_serviceAccountTwoWorkspacesAtOnce(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	s := newAccountScene(t, c, "locked", false)
	dirs := []string{servedAccountDir(t, c, "locked"), servedAccountDir(t, c, "locked")}
	outs, errs := make([]string, 2), make([]error, 2)
	var wg sync.WaitGroup
	for i, dir := range dirs {
		wg.Go(func() { outs[i], errs[i] = tfRun(t, dir, noLinodeAPI, "apply", "-auto-approve", "-input=false") })
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil {
			t.Fatalf("workspace %d failed: %v\n%s", i, errs[i], outs[i])
		}
	}
	if !wrapped("Another run rotated these service accounts").MatchString(outs[0] + outs[1]) {
		t.Errorf("neither apply says it adopted the other's rotation:\n%s\n----\n%s", outs[0], outs[1])
	}
	sa, err := adminClient(t, c).CoreV1().ServiceAccounts("locked").Get(t.Context(), "deployer", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(sa.UID) == s.uid {
		t.Fatal("the account was not re-created")
	}
	for i, dir := range dirs {
		uids, _ := accountState(t, dir)["service_account_uids"].(map[string]any)
		if uids["locked/deployer"] != string(sa.UID) {
			t.Errorf("workspace %d records UID %v; the account's is %s", i, uids["locked/deployer"], sa.UID)
		}
		mustPlanEmpty(t, dir, noLinodeAPI, fmt.Sprintf("of workspace %d", i))
	}
}

// A served kubeconfig rejected with no run on this machine behind it (a
// person deleted its secret, or a rotation elsewhere is between
// re-creating lke-admin and the new kubeconfig): the run waits the lease's
// duration for a rotation under way to show progress, then resumes.
func TestAccRotationLock_byHandWaitsThenResumes(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(lockedRotation, c.ID))
	_ = os.Remove(lke.HolderFile(c.ID))
	for name, sa := range tokenSecrets(t, c, "kube-system") {
		if sa == "lke-admin" {
			ns, n, _ := strings.Cut(name, "/")
			if err := adminClient(t, c).CoreV1().Secrets(ns).Delete(t.Context(), n, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := waitRejected(t, servedKubeconfig(t, c), 20*time.Second); err != nil {
		t.Fatal("the old token is still accepted 20 s after its secret was deleted")
	}
	logPath := filepath.Join(t.TempDir(), "apply.log")
	out := mustTF(t, dir, map[string]string{"TF_VAR_round": "by-hand", "TF_LOG_PROVIDER": "INFO", "TF_LOG_PATH": logPath}, "apply", "-auto-approve", "-input=false")
	if !wrapped("Rotation resumed").MatchString(out) {
		t.Errorf("the apply does not say it resumed:\n%s", out)
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	m := checkAccessWaited(raw)
	if m == nil {
		t.Fatalf("no %q step logged", lke.StepCheckAccess)
	}
	waited, _ := strconv.Atoi(string(m[1]))
	if w := time.Duration(waited) * time.Millisecond; w < kube.LockDuration || w > kube.LockDuration+15*time.Second {
		t.Errorf("waited %s before resuming; want the lease's %s (and little more)", w, kube.LockDuration)
	}
	if err := kubeconfigWorks(t, servedKubeconfig(t, c)); err != nil {
		t.Errorf("the served kubeconfig does not work after the resumed rotation: %v", err)
	}
	t.Logf("waited %d ms for a rotation under way, then resumed", waited)
}

// checkAccessWaited finds the check-access step's line (the step's own, not
// a note logged while it waited: those name what they wait for) and its
// waited_ms.
func checkAccessWaited(log []byte) [][]byte {
	all := regexp.MustCompile(`rotation step: `+regexp.QuoteMeta(lke.StepCheckAccess)+`: [^\n]*\bresumed=[^\n]*`).FindAll(log, -1)
	if len(all) == 0 {
		return nil
	}
	return regexp.MustCompile(`\bwaited_ms=(\d+)`).FindSubmatch(all[len(all)-1])
}
