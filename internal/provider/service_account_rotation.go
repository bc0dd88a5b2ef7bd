package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

// The settings of a service-account rotation, shared by the
// kubecreds_service_account_rotation resource and the
// kubecreds_rotate_service_account action.
var accountDefaults = struct {
	RecreateTokenSecrets, RestartWorkloads, Verify bool
}{RecreateTokenSecrets: false, RestartWorkloads: true, Verify: true}

// accountRejectWithin bounds the wait for a canary to be rejected: the API
// server caches a successful authentication for 10 s.
const accountRejectWithin = 45 * time.Second

var (
	descServiceAccounts = "Service accounts to rotate, as `namespace/name` (for example `[\"ci/deployer\"]`). Each is deleted and created " +
		"again under its name, keeping its labels, annotations, owner references, `secrets`, `imagePullSecrets` and " +
		"`automountServiceAccountToken`. Every token the API server issued for it carries the old account's UID, so every one is " +
		"rejected afterwards (after the API server's 10-second authentication cache), whoever issued it: `kubectl create token`, " +
		"tokens bound to Secrets or pods, legacy token secrets. RoleBindings and ClusterRoleBindings name the account, so they apply " +
		"to the new one."
	descAccountLKE = "ID of an LKE cluster, reached with the kubeconfig the Linode API serves. Conflicts with `base_kubeconfig`; " +
		"with neither, the provider's `kubernetes` block is used."
	descAccountBase = "A kubeconfig (YAML) whose current context reaches the cluster with the right to delete and create the accounts " +
		"(and, with `restart_workloads`, to patch workloads). Conflicts with `lke_cluster_id`; with neither, the provider's `kubernetes` block is used."
	descRecreateTokenSecrets = "Create again, under the same names, the legacy `kubernetes.io/service-account-token` secrets each account had; " +
		"the token controller fills them with tokens of the new account, so consumers that read them by name get working tokens " +
		"(pods that take the token from an environment variable need a restart). " + defaultsTo(accountDefaults.RecreateTokenSecrets) +
		" With false they are deleted with the account, and the apply names them."
	descAccountRestart = "Do what `kubectl rollout restart` does for the deployments, daemonsets and statefulsets whose pods run as a " +
		"rotated account: their projected tokens carry the old UID and are rejected, and new pods get tokens of the new account. " +
		"Paused deployments are skipped and named, as kubectl skips them; pods that no such workload controls (bare pods, Jobs) are " +
		"named, since only deleting them gives them a new token. " + defaultsTo(accountDefaults.RestartWorkloads)
	descAccountVerify = "Issue a token of each account before re-creating it, and afterwards wait until the API server rejects it " +
		"(about 10 seconds, its authentication cache). " + defaultsTo(accountDefaults.Verify)
)

// serviceAccountsValidators check service_accounts.
func serviceAccountsValidators() []validator.Set {
	return []validator.Set{setvalidator.SizeAtLeast(1), setvalidator.ValueStringsAre(serviceAccountRef{})}
}

// accountRefs reads service_accounts, sorted.
func accountRefs(ctx context.Context, set types.Set) ([]kube.ServiceAccountRef, diag.Diagnostics) {
	var names []string
	diags := set.ElementsAs(ctx, &names, false)
	sort.Strings(names)
	var refs []kube.ServiceAccountRef
	for _, n := range names {
		ref, err := kube.ParseServiceAccountRef(n)
		if err != nil {
			diags.AddAttributeError(path.Root("service_accounts"), "Invalid service account", err.Error())
			continue
		}
		refs = append(refs, ref)
	}
	return refs, diags
}

// accountRotationRequest is one rotation of service accounts, from the
// resource or the action.
type accountRotationRequest struct {
	lkeClusterID wholeNumber
	base         types.String
	allowExec    types.Bool
	block        string // "resource" or "action", for the errors
	opts         kube.AccountRotation
	step         func(ctx context.Context, step string, fields map[string]any)
}

// rotateAccounts reaches the cluster and rotates the accounts.
func (d *providerData) rotateAccounts(ctx context.Context, req accountRotationRequest) (*kube.AccountRotationResult, diag.Diagnostics) {
	cfg, _, diags := d.clusterConfig(ctx, req.lkeClusterID, req.base, req.allowExec, openTimeout/2, "rotate service accounts on", "the "+req.block)
	if diags.HasError() {
		return nil, diags
	}
	k, err := kube.NewClients(cfg, d.userAgent)
	if err != nil {
		diags.AddError("Cannot build a Kubernetes client", err.Error())
		return nil, diags
	}
	k.Retry = d.retry
	opts := req.opts
	opts.Now = d.clock.Now
	opts.RejectWithin = accountRejectWithin
	opts.Step = req.step
	if opts.Step == nil {
		opts.Step = tflogSteps{}.Step
	}
	names := make([]string, len(opts.Accounts))
	for i, a := range opts.Accounts {
		names[i] = a.String()
	}
	tflog.Info(ctx, "rotating service accounts", map[string]any{"service_accounts": names})
	res, err := kube.RotateAccounts(ctx, k, opts)
	if err != nil {
		diags.AddError("Rotation of service accounts failed", describeAccountRotationError(err, cfg.Host))
		return res, diags
	}
	addAccountRotationWarnings(&diags, opts, res)
	return res, diags
}

// describeAccountRotationError says which step failed, what was already
// done, and what to do.
func describeAccountRotationError(err error, host string) string {
	msg := describeKubeError(err, host)
	var rerr *kube.AccountRotationError
	switch {
	case errors.Is(err, kube.ErrAccountMissing):
		return msg
	case errors.Is(err, kube.ErrDeletedNotCreated):
		return msg + "\n\nRun apply again: it creates the missing account from the checkpoint this run wrote (a ConfigMap named " +
			"kubecreds-recreate-<account> in its namespace) before anything else."
	case errors.As(err, &rerr) && len(rerr.Done) > 0:
		return msg + "\n\nRun apply again to finish: it re-creates the accounts again (which revokes no less) and restarts what runs as them."
	}
	return msg
}

// addAccountRotationWarnings tells what the rotation could not settle by
// itself.
func addAccountRotationWarnings(diags *diag.Diagnostics, opts kube.AccountRotation, res *kube.AccountRotationResult) {
	if res.AdoptedFrom != "" {
		diags.AddWarning("Another run rotated these service accounts",
			fmt.Sprintf("While this run waited for the accounts' rotation locks (Leases %s-<account> in their namespaces), another run (%s) "+
				"re-created every one of them, finishing at %s, after this run started. That did what this run was asked to, so it changed "+
				"nothing and records that rotation as its own.", kube.LockName, res.AdoptedFrom, res.AdoptedAt.Format(time.RFC3339)))
		return
	}
	if res.Unlocked != "" {
		diags.AddWarning("Rotated without the rotation lock",
			"The accounts were rotated without taking their rotation locks, because "+res.Unlocked+". A second rotation of the same accounts "+
				"at the same moment (another configuration, the action) would then run too, and the two could fail each other's checks. "+
				"Allow get, create and update on coordination.k8s.io leases in those namespaces to have rotations wait for each other.")
	}
	if len(res.Resumed) > 0 {
		diags.AddWarning("Service accounts created from a stopped run's checkpoint",
			fmt.Sprintf("An earlier run deleted %s and stopped before creating it again; this apply created it from that run's checkpoint, "+
				"as it was. Its old tokens died with the deleted account; no canary was issued for it, since there was no account to issue one for.",
				strings.Join(res.Resumed, ", ")))
	}
	if len(res.TokenSecretsRemoved) > 0 {
		diags.AddAttributeWarning(path.Root("recreate_token_secrets"), "Legacy token secrets removed",
			fmt.Sprintf("These kubernetes.io/service-account-token secrets held tokens of the old accounts and were deleted with them: %s. "+
				"Whatever reads them (a CI system, a pod) now fails. Set recreate_token_secrets = true to have them created again with "+
				"tokens of the new accounts, or move their consumers to short-lived tokens.", strings.Join(res.TokenSecretsRemoved, ", ")))
	}
	if len(res.Paused) > 0 {
		diags.AddAttributeWarning(path.Root("restart_workloads"), "Paused deployments were not restarted",
			fmt.Sprintf("These deployments run as a rotated account but are paused, and kubectl rollout restart refuses paused deployments, "+
				"so they were skipped: %s. Their pods' tokens are rejected now: run kubectl rollout resume on them, then kubectl rollout restart.",
				strings.Join(res.Paused, ", ")))
	}
	if len(res.NotRestarted) > 0 {
		diags.AddAttributeWarning(path.Root("restart_workloads"), "Pods running as a rotated account were not restarted",
			fmt.Sprintf("No deployment, daemonset or statefulset controls these pods, so no rollout restart reaches them, and their tokens "+
				"are rejected now: %s. Delete them (their owner, if any, creates them again with new tokens) or create them again.",
				strings.Join(res.NotRestarted, "; ")))
	}
	if !opts.RestartWorkloads {
		diags.AddAttributeWarning(path.Root("restart_workloads"), "Workloads were not restarted",
			"restart_workloads = false: pods running as a rotated account keep tokens of the old account, which the API server rejects now. "+
				"Restart them (kubectl rollout restart) so that they get tokens of the new account.")
	}
}
