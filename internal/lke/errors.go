package lke

import (
	"errors"
	"fmt"
	"strings"
)

// Steps of the runbook, named as errors and logs name them.
const (
	StepGetCluster              = "get cluster"
	StepFetchKubeconfig         = "fetch current kubeconfig"
	StepCheckAccess             = "check access with the current kubeconfig"
	StepListSecrets             = "list service-account-token secrets"
	StepDeleteSecrets           = "delete service-account-token secrets"
	StepRecreateServiceAccounts = "re-create service accounts"
	StepRegenerate              = "regenerate kubeconfig and service token"
	StepWaitKubeconfig          = "wait for the new kubeconfig"
	StepWaitControlPlane        = "wait for the control plane after the service-token regeneration"
	StepFinishDeletion          = "delete the token secrets the interrupted run left"
	StepDeleteOldSecret         = "delete the old kubeconfig's token secret"
	StepIssueCanary             = "issue a short-lived canary token"
	StepRevokeShortLived        = "revoke short-lived kubeconfigs"
	StepVerifyNew               = "verify the new kubeconfig"
	StepVerifyOldRejected       = "verify the old credentials are rejected"
	StepSweepAgain              = "sweep again once the old credentials are rejected"
	StepRestartWorkloads        = "restart workloads"
	StepRecycleNodes            = "recycle nodes"
)

// Steps are every step of the runbook, in the order Rotate runs them: a
// rotation with verify, restart and recycle runs them all but
// StepFinishDeletion, which only a resumed rotation runs (in its place).
// Tests check that Rotate runs no step missing here, and the provider's
// fault and kill matrices that they cover each one.
var Steps = []string{
	StepGetCluster,
	StepFetchKubeconfig,
	StepCheckAccess,
	StepListSecrets,
	StepDeleteSecrets,
	StepIssueCanary,
	StepRecreateServiceAccounts,
	StepRegenerate,
	StepWaitKubeconfig,
	StepWaitControlPlane,
	StepFinishDeletion,
	StepDeleteOldSecret,
	StepRevokeShortLived,
	StepVerifyNew,
	StepVerifyOldRejected,
	StepSweepAgain,
	StepRestartWorkloads,
	StepRecycleNodes,
}

// ErrMissingScope means the Linode API token lacks a scope the rotation needs.
var ErrMissingScope = errors.New("the Linode API token lacks the scope this needs")

// ErrClusterNotFound means the Linode API answered 404 for the cluster.
var ErrClusterNotFound = errors.New("cluster not found")

// StepError says which step failed, what the run had already done, and that
// running it again resumes.
type StepError struct {
	Step      string
	ClusterID int
	Done      []string // what earlier steps changed, in order
	// Locked out: the kubeconfig the Linode API serves is rejected (its
	// account was re-created, or an earlier run deleted its secret) and
	// no regenerated one is served yet.
	LockedOut bool
	Err       error
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s for cluster %d: %v", e.Step, e.ClusterID, e.Err)
	if len(e.Done) == 0 {
		// Only this run's changes are known here: an earlier run that was
		// interrupted may have changed things before it.
		b.WriteString(" (this run had changed nothing when it stopped; run apply again to retry)")
	} else if e.LockedOut {
		fmt.Fprintf(&b, " (%s; the kubeconfig the Linode API serves is rejected until a regenerated one is served: "+
			"run apply again to resume, which regenerates it)", strings.Join(e.Done, ", "))
	} else {
		fmt.Fprintf(&b, " (%s; run apply again to resume)", strings.Join(e.Done, ", "))
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }
