//go:build !unit

package provider

import (
	"testing"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
)

// notFaulted are the runbook steps the fault matrix plays no faults in,
// and why each is covered all the same.
var notFaulted = map[string]string{
	lke.StepWaitControlPlane: "it polls the API server until it answers again after LKE restarts it; any failure is one more poll " +
		"(lke/controlplane.go), and the restart it waits through is what each service-token regeneration of the local LKE plays",
	lke.StepFinishDeletion: "only a resumed rotation runs it, with the deletion (kube.DeleteTokenSecrets) the delete step's faults cover; " +
		"TestAccRotation_resumesWhenTheServedKubeconfigIsAlreadyRejected runs it",
	lke.StepIssueCanary: "its TokenRequest and TokenReview go through the same kube.Clients.Retry.Do as the verify step the matrix faults; " +
		"TestAccShortLived_honoursRetriesAndTimeoutForEverySource faults TokenRequest itself",
	lke.StepRevokeShortLived: "it lists and deletes Secrets through the endpoints and retry path the list and delete steps' faults cover",
	lke.StepSweepAgain: "it lists and deletes token secrets and bound Secrets through the endpoints and retry path (kube.ListServiceAccountTokens, " +
		"kube.DeleteTokenSecrets, kube.ListBoundSecrets, kube.DeleteEach) the list and delete steps' faults cover",
	lke.StepVerifyOldRejected: "it polls until the old tokens answer 401, each poll through the same Retry.Do as the check-access step " +
		"(SelfSubjectReview) the matrix faults",
}

// Every step of the LKE runbook (lke.Steps, which its own test checks
// against Rotate) is in the fault matrix and among the kill points, or is
// exempted with a reason: a step added to the runbook fails this until it
// is tested or the reason is written down.
func TestMatricesCoverEveryStep(t *testing.T) {
	faulted := map[string]bool{}
	for _, s := range faultedSteps {
		faulted[s.step] = true
	}
	killed := map[string]bool{}
	for _, s := range killPoints {
		killed[s] = true
	}
	known := map[string]bool{}
	for _, step := range lke.Steps {
		known[step] = true
		switch {
		case faulted[step] && notFaulted[step] != "":
			t.Errorf("step %q is in the fault matrix and exempted from it: drop the exemption", step)
		case !faulted[step] && notFaulted[step] == "":
			t.Errorf("step %q meets no fault in the fault matrix (faultedSteps): add it, or say in notFaulted why not", step)
		}
		if !killed[step] && notKilled[step] == "" {
			t.Errorf("terraform is never killed after step %q: it is missing from killPoints", step)
		}
	}
	for step := range notFaulted {
		if !known[step] {
			t.Errorf("notFaulted names %q, which is not a step of the runbook", step)
		}
	}
	for step := range notKilled {
		if !known[step] {
			t.Errorf("notKilled names %q, which is not a step of the runbook", step)
		}
	}
	for step := range faulted {
		if !known[step] {
			t.Errorf("faultedSteps names %q, which is not a step of the runbook", step)
		}
	}
}

// The fault matrix plays the transient faults of a group of steps in one
// apply (faultGroups); that is only the same test as faulting each step
// alone if every step is in exactly one group, the steps of a group run the
// same rotation (the same settings), and no two of them reach the same
// endpoint.
func TestFaultGroupsShareNoEndpoint(t *testing.T) {
	seen := map[string]int{}
	for i, g := range faultGroups(faultedSteps) {
		endpoints := map[string]string{}
		for _, s := range g {
			seen[s.step]++
			if settings(s) != settings(g[0]) {
				t.Errorf("group %d has %q and %q, which run with different settings: one's faults would meet another rotation than its own case's", i, g[0].step, s.step)
			}
			if other, ok := endpoints[s.endpoint]; ok {
				t.Errorf("group %d has %q and %q, which both reach %s: the faults of one could be met by the other", i, other, s.step, s.endpoint)
			}
			endpoints[s.endpoint] = s.step
		}
	}
	for _, s := range faultedSteps {
		if seen[s.step] != 1 {
			t.Errorf("step %q is in %d groups; it must be in one", s.step, seen[s.step])
		}
	}
}
