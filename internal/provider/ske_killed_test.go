//go:build !unit

package provider

import (
	"slices"
	"strings"
	"testing"
	"time"

	fakeske "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/ske"
)

// TestAccKilledSKERuns kills terraform (SIGKILL, the whole process group)
// while each phase of an SKE credentials rotation runs, and checks that the
// next apply finishes that phase without asking SKE again: the rotation is
// started once and completed once.
func TestAccKilledSKERuns(t *testing.T) {
	t.Parallel()
	c := newSKECluster(t, "killed")
	c.SetPrepareDuration(5 * time.Second)
	dir := t.TempDir()
	config := func(complete bool) string {
		body := ""
		if complete {
			body = "  complete = true\n"
		}
		return withKubecreds(skeRotationConfig(c, body))
	}

	// Killed while PREPARING: nothing is in the state yet.
	writeConfig(t, dir, config(false))
	if out, err := runKilledWhen(t, dir, func(line string) bool {
		return strings.Contains(line, "SKE credentials rotation started; waiting until it is prepared")
	}, nil); err != nil {
		t.Fatalf("killing during PREPARING: %v\n%s", err, out)
	}
	if phase, _ := c.Phase(); phase != fakeske.PhasePreparing {
		t.Fatalf("after the kill the cluster is %s; the kill was meant to come while PREPARING", phase)
	}
	out, err := terraformCmd(t, dir, nil, "apply", "-auto-approve", "-input=false", "-no-color")
	if err != nil {
		t.Fatalf("the apply after the kill: %v\n%s", err, out)
	}
	if !wrapped("Credentials rotation adopted").MatchString(out) {
		t.Errorf("the apply after the kill does not say it adopted the rotation under way:\n%s", out)
	}
	if phase, _ := c.Phase(); phase != fakeske.PhasePrepared {
		t.Fatalf("after the next apply the cluster is %s; want PREPARED", phase)
	}
	if got := stateResources(t, dir); !slices.Contains(got, "kubecreds_ske_credentials_rotation.r") {
		t.Fatalf("the state holds %v after the next apply", got)
	}

	// Killed while COMPLETING: the state still says PREPARED.
	writeConfig(t, dir, config(true))
	if out, err := runKilledWhen(t, dir, func(line string) bool {
		return strings.Contains(line, "SKE credentials rotation completing")
	}, nil); err != nil {
		t.Fatalf("killing during COMPLETING: %v\n%s", err, out)
	}
	out, err = terraformCmd(t, dir, nil, "apply", "-auto-approve", "-input=false", "-no-color")
	if err != nil {
		t.Fatalf("the apply after the second kill: %v\n%s", err, out)
	}
	if phase, _ := c.Phase(); phase != fakeske.PhaseCompleted {
		t.Fatalf("after the next apply the cluster is %s; want COMPLETED", phase)
	}
	if starts, completes := c.Rotations(); starts != 1 || completes != 1 {
		t.Errorf("SKE acted on %d starts and %d completions; each phase should have been asked for once", starts, completes)
	}
	out, err = terraformCmd(t, dir, nil, "plan", "-detailed-exitcode", "-input=false", "-no-color")
	if err != nil {
		t.Errorf("a plan after the rotation completed is not empty (%v):\n%s", err, out)
	}
}
