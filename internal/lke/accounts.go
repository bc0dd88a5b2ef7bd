package lke

import (
	"context"
	"errors"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
)

// AdminAccount is the account behind the kubeconfig the Linode API serves.
var AdminAccount = kube.ServiceAccountRef{Namespace: "kube-system", Name: adminServiceAccount}

// ControlPlaneAccount reports whether ref is one of the accounts LKE's
// control-plane components authenticate with, whose tokens only the
// service token's regeneration replaces.
func ControlPlaneAccount(ref kube.ServiceAccountRef) bool {
	return ref.Namespace == "kube-system" && slices.Contains(controlPlaneServiceAccounts, ref.Name)
}

// ControlPlaneAccounts are those accounts, as namespace/name.
func ControlPlaneAccounts() []string {
	out := make([]string, len(controlPlaneServiceAccounts))
	for i, name := range controlPlaneServiceAccounts {
		out[i] = "kube-system/" + name
	}
	return out
}

// accountCanary is a token of an account issued before its re-creation.
type accountCanary struct {
	account kube.ServiceAccountRef
	token   string
}

// recreateServiceAccounts re-creates the accounts the user listed, then
// lke-admin, so that every token they ever had is rejected: tokens made with
// `kubectl create token`, tokens bound to Secrets, legacy token secrets. The
// regeneration that follows issues the new kubeconfig's token for the new
// lke-admin. lke-admin goes last because re-creating it ends the old admin
// credential, the only one this run has until the new kubeconfig is served;
// a run stopped after that resumes from the regeneration. It is re-created
// through a bridge (kube.OpenBridge), since the old credential may die
// before the create is sent; bridges a killed run left are deleted first.
//
// Before each re-creation it issues one token of the account (as a leaver
// would), checked after the rotation to be rejected.
func (r *run) recreateServiceAccounts(ctx context.Context) (map[string]any, error) {
	accounts := slices.Clone(r.opts.RevokeServiceAccounts)
	if r.recreatesAdmin() {
		accounts = append(accounts, AdminAccount)
	}
	// What LKE's own token secrets are now, to tell later whether a
	// regenerate whose answer was lost took effect: once lke-admin is
	// re-created, nothing can be read until the new kubeconfig is served.
	uids, err := lkeTokenUIDs(ctx, r.old)
	if err != nil {
		return nil, err
	}
	r.lkeTokensBefore = uids
	var canaries []accountCanary
	if r.opts.Verify {
		for _, a := range accounts {
			tok, err := kube.IssueAccountCanary(ctx, r.old, a)
			if err != nil {
				return nil, err
			}
			canaries = append(canaries, accountCanary{account: a, token: tok})
		}
	}
	fields := map[string]any{}
	swept, err := kube.SweepBridges(ctx, r.old, AdminAccount.Namespace)
	if err != nil {
		return nil, err
	}
	if len(swept) > 0 {
		fields["bridges_swept"] = len(swept)
	}
	for _, a := range r.opts.RevokeServiceAccounts {
		if err := r.recreate(ctx, r.old, a); err != nil {
			return nil, err
		}
	}
	r.accountCanaries = canaries
	if !r.recreatesAdmin() {
		fields["recreated"] = len(r.result.RecreatedServiceAccounts)
		return fields, nil
	}
	// The old admin token dies with its account, yet the account must be
	// created again: a bridge (a short-lived account of its own) does it.
	bridge, err := kube.OpenBridge(ctx, r.old, AdminAccount.Namespace, r.connectWithToken)
	if err != nil {
		return nil, err
	}
	err = r.recreate(ctx, bridge.Clients, AdminAccount)
	if errors.Is(err, kube.ErrDeletedNotCreated) {
		r.adminDeleted = true
	}
	if cerr := bridge.Close(ctx); cerr != nil {
		// Its token never left this process and expires by itself;
		// the next run sweeps the account.
		r.note(ctx, StepRecreateServiceAccounts+": could not delete the bridge account; the next run does",
			map[string]any{"cluster_id": r.opts.ClusterID, "error": cerr.Error()})
	}
	if err != nil {
		return nil, err
	}
	// The token controller deletes the old admin secret now; the
	// regeneration must not wait for it (see waitForKubeconfig).
	r.adminRecreated = true
	r.lkeTokensBefore = nil
	fields["recreated"] = len(r.result.RecreatedServiceAccounts)
	return fields, nil
}

// recreate re-creates one account with k, and records it.
func (r *run) recreate(ctx context.Context, k *kube.Clients, a kube.ServiceAccountRef) error {
	_, err := kube.RecreateServiceAccount(ctx, k, a)
	if err == nil || errors.Is(err, kube.ErrDeletedNotCreated) {
		r.revokedNow() // the account's tokens die with it
	}
	if err != nil {
		return err
	}
	r.result.RecreatedServiceAccounts = append(r.result.RecreatedServiceAccounts, a.String())
	r.done = append(r.done, "service account "+a.String()+" re-created")
	return nil
}

// connectWithToken connects to the cluster of the old kubeconfig with
// another token.
func (r *run) connectWithToken(token string) (*kube.Clients, error) {
	kc, err := kubeconfig.WithToken(r.oldKubeconfig, token)
	if err != nil {
		return nil, err
	}
	return r.Connect(kc)
}

// recreatesAdmin: lke-admin is re-created only when the kubeconfig is
// regenerated, since only the regeneration gives the new account a token.
func (r *run) recreatesAdmin() bool { return r.opts.RecreateAdmin && r.opts.RegenerateKubeconfig }

// recreateListedAfterResume re-creates, in a resumed rotation, the listed
// accounts with the new kubeconfig: the earlier run may have stopped before
// it reached them. lke-admin is not re-created again (that would end the
// kubeconfig just served); whether the earlier run re-created it is read
// from the UIDs: the old kubeconfig's token names the account it was issued
// for.
func (r *run) recreateListedAfterResume(ctx context.Context) error {
	for _, a := range r.opts.RevokeServiceAccounts {
		if ControlPlaneAccount(a) {
			// Re-created now, it would lose the token LKE has just made
			// for it, and its component would stop working.
			r.result.NotRecreatedAfterResume = append(r.result.NotRecreatedAfterResume, a.String())
			continue
		}
		if err := r.recreate(ctx, r.new, a); err != nil {
			return err
		}
	}
	if _, err := kube.SweepBridges(ctx, r.new, AdminAccount.Namespace); err != nil {
		return err
	}
	if !r.recreatesAdmin() {
		return nil
	}
	oldUID := kube.TokenAccountUID(kube.TokenOf(r.oldKubeconfig))
	var current string
	err := r.new.Retry.Do(ctx, func() error {
		sa, err := r.new.Core.CoreV1().ServiceAccounts(AdminAccount.Namespace).Get(ctx, AdminAccount.Name, metav1.GetOptions{})
		if err == nil {
			current = string(sa.UID)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("read service account %s: %w", AdminAccount, err)
	}
	if oldUID == current {
		r.result.AdminNotRecreated = true
	}
	return nil
}

// acceptedAccountCanaries are the accounts whose token issued before their
// re-creation the API server still accepts.
func (r *run) acceptedAccountCanaries(ctx context.Context) ([]string, error) {
	var still []string
	for _, c := range r.accountCanaries {
		rejected, err := kube.TokenRejected(ctx, r.new, c.token)
		if err != nil {
			return nil, err
		}
		if !rejected {
			still = append(still, c.account.String())
		}
	}
	return still, nil
}
