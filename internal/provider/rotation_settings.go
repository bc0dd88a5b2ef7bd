package provider

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
)

// lkeDefaults is what an LKE rotation does where its configuration is
// silent, as the LKE runbook does it: the resource's schema defaults and
// import, the action's options, the data source's namespaces and the
// descriptions below all read it.
var lkeDefaults = lke.Options{
	Namespaces:             []string{"kube-system"},
	RegenerateKubeconfig:   true,
	RegenerateServiceToken: true,
	RecycleNodes:           false,
	RecreateAdmin:          true,
	Verify:                 true,
}

// lkeDefaultNamespaces is lkeDefaults.Namespaces as a set, the resource's
// default and an imported resource's value.
func lkeDefaultNamespaces() types.Set {
	var v []attr.Value
	for _, ns := range lkeDefaults.Namespaces {
		v = append(v, types.StringValue(ns))
	}
	return types.SetValueMust(types.StringType, v)
}

// defaultNamespacesDoc is lkeDefaults.Namespaces as a description writes
// it: `["kube-system"]`.
func defaultNamespacesDoc() string {
	quoted := make([]string, len(lkeDefaults.Namespaces))
	for i, ns := range lkeDefaults.Namespaces {
		quoted[i] = strconv.Quote(ns)
	}
	return "`[" + strings.Join(quoted, ", ") + "]`"
}

// defaultsTo is the sentence a description gives a boolean default.
func defaultsTo(b bool) string { return fmt.Sprintf("Defaults to %t.", b) }

// The settings of an LKE rotation, shared by the kubecreds_lke_secret_rotation
// resource and the kubecreds_lke_rotate_credentials action: one runbook, one
// description of each setting, the same checks.
var (
	descNamespaces = "Namespaces whose `kubernetes.io/service-account-token` secrets are deleted. Defaults to " + defaultNamespacesDoc() + ", " +
		"as the LKE runbook does; add namespaces that hold your own token secrets. In kube-system, the tokens of LKE's " +
		"control-plane components (`ccm-user`, `cluster-autoscaler-user`, `kubernetes-dashboard-lke-user`) are deleted only when " +
		"`regenerate_service_token` is true, and `lke-admin`'s only when `regenerate_kubeconfig` is true, since nothing else replaces them."
	descRegenerateKubeconfig = "Regenerate the kubeconfig (the `lke-admin` token) through the Linode API. " + defaultsTo(lkeDefaults.RegenerateKubeconfig) + " " +
		"At least one of `regenerate_kubeconfig` and `regenerate_service_token` must be true."
	descRegenerateServiceToken = "Regenerate the service token of LKE's control-plane components through the Linode API. " +
		defaultsTo(lkeDefaults.RegenerateServiceToken) + " " +
		"On standard (non-HA) clusters this briefly restarts the control plane."
	descRecycleNodes = "After rotating, recycle every node through the Linode API and wait until the replacement nodes are Ready. " +
		defaultsTo(lkeDefaults.RecycleNodes)
	descVerify = "Wait for the new kubeconfig, list nodes with it, and confirm that the previous admin token, a short-lived token " +
		"issued before the revocation, and a token of each re-created account are rejected. The API server keeps a token's successful " +
		"authentication for 10 seconds; the rotation last uses the old credentials before it regenerates, so this waits only when LKE " +
		"serves the new kubeconfig sooner than that, and then for the rest of the 10 seconds. When the rotation revokes a credential " +
		"later (a short-lived kubeconfig someone kept, a token secret made during the rotation), it also waits until 10 seconds after " +
		"that revocation, so that nothing a holder used a moment before still works when the apply ends. " +
		defaultsTo(lkeDefaults.Verify)
	descRestartWorkloads = "After the new credentials are in place, do what `kubectl rollout restart` does (set the " +
		"`kubectl.kubernetes.io/restartedAt` annotation of the pod template) for these workloads, so that their pods are recreated " +
		"and mount fresh projected service-account tokens. Paused deployments are skipped with a warning, as kubectl skips them. " +
		"A restart does not help a pod that mounts a deleted legacy token secret: nothing recreates that secret, so the new pod " +
		"cannot start until the secret is recreated or the pod moves to projected tokens (the rotation warns about such pods)."
	descRecreateAdmin = "Delete and re-create the `kube-system/lke-admin` service account (same name, labels, annotations, `secrets`, " +
		"`imagePullSecrets`, `automountServiceAccountToken`) before regenerating the kubeconfig, so that every token it ever had is rejected: " +
		"tokens made with `kubectl create token lke-admin`, tokens bound to Secrets, legacy token secrets. Its ClusterRoleBindings name the " +
		"account, so they apply to the new one, and the regenerated kubeconfig's token is the new account's. Takes effect only when " +
		"`regenerate_kubeconfig` is true. Unset means true. From the re-creation until the Linode API serves the new kubeconfig the cluster " +
		"has no working admin kubeconfig; a run stopped in that gap finishes on the next apply. Set to false to keep the account: then " +
		"tokens issued for it with TokenRequest stay valid until they expire."
	descRevokeServiceAccounts = "Service accounts to delete and re-create before the admin account, as `namespace/name` (for example " +
		"`[\"ci/deployer\"]`), so that every token they ever had is rejected, whoever issued it. What the owners set on each account is kept, " +
		"and RoleBindings apply to the new account. The projected tokens of pods running as a listed account name the old one and are " +
		"rejected, so the deployments, daemonsets and statefulsets whose pods run as it are restarted after the rotation, as " +
		"`kubectl rollout restart` does (paused deployments and pods no rollout reaches are named in a warning). `kube-system/lke-admin` is re-created by `recreate_admin_service_account`; LKE's " +
		"control-plane accounts (" + strings.Join(lke.ControlPlaneAccounts(), ", ") + ") may be listed only when `regenerate_service_token` " +
		"is true, since only that gives them new tokens."
	descRestartNamespaces = "Namespaces whose workloads are restarted. Required in the block."
	descRestartKinds      = "Kinds of workload to restart: `deployment`, `daemonset`, `statefulset`. Defaults to all three."
)

// restartWorkloadsBlock is the restart_workloads block of the resource and
// the action, in the types of their schema packages: set makes an optional
// set of strings, block a single nested block.
func restartWorkloadsBlock[A, B any](set func(description string, validators []validator.Set) A,
	block func(description string, attributes map[string]A) B) B {
	return block(descRestartWorkloads, map[string]A{
		"namespaces": set(descRestartNamespaces, namespacesValidators()),
		"kinds":      set(descRestartKinds, workloadKindsValidators()),
	})
}

// namespacesValidators check a set of namespace names: at least one, each
// a DNS label.
func namespacesValidators() []validator.Set {
	return []validator.Set{setvalidator.SizeAtLeast(1), setvalidator.ValueStringsAre(namespaceNameValidators()...)}
}

// revokeServiceAccountsValidators check revoke_service_accounts.
func revokeServiceAccountsValidators() []validator.Set {
	ref := serviceAccountRef{reserved: map[string]string{
		lke.AdminAccount.String(): lke.AdminAccount.String() + " is re-created by recreate_admin_service_account (true unless set to false), " +
			"after the listed accounts, since the rotation authenticates with its token until then. Remove it from revoke_service_accounts.",
	}}
	return []validator.Set{setvalidator.SizeAtLeast(1), setvalidator.ValueStringsAre(ref)}
}

// controlPlaneAccountsNeedServiceToken refuses LKE's control-plane accounts
// in revoke_service_accounts when the service token is not regenerated:
// nothing would give the re-created accounts tokens, and LKE's components
// would stop working.
type controlPlaneAccountsNeedServiceToken struct{}

func (controlPlaneAccountsNeedServiceToken) Description(context.Context) string {
	return "LKE's control-plane accounts may be re-created only when regenerate_service_token is true"
}

func (v controlPlaneAccountsNeedServiceToken) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (controlPlaneAccountsNeedServiceToken) check(ctx context.Context, config tfsdk.Config, diags *diag.Diagnostics) {
	var st types.Bool
	var accounts types.Set
	diags.Append(config.GetAttribute(ctx, path.Root("regenerate_service_token"), &st)...)
	diags.Append(config.GetAttribute(ctx, path.Root("revoke_service_accounts"), &accounts)...)
	if !isFalse(st) || accounts.IsNull() || accounts.IsUnknown() {
		return
	}
	for _, e := range accounts.Elements() {
		s, ok := e.(types.String)
		if !ok || s.IsNull() || s.IsUnknown() {
			continue
		}
		ref, err := kube.ParseServiceAccountRef(s.ValueString())
		if err == nil && lke.ControlPlaneAccount(ref) {
			diags.AddAttributeError(path.Root("revoke_service_accounts"), "LKE control-plane account needs a new service token",
				fmt.Sprintf("revoke_service_accounts lists %s, one of the accounts LKE's control-plane components authenticate with (%s), "+
					"and regenerate_service_token is false: nothing would give the re-created account a token, and the component would stop working. "+
					"Set regenerate_service_token = true, or remove %s from the list.", ref, strings.Join(lke.ControlPlaneAccounts(), ", "), ref))
		}
	}
}

// recreateAdminNeedsKubeconfig refuses recreate_admin_service_account =
// true without regenerate_kubeconfig, which could not take effect.
type recreateAdminNeedsKubeconfig struct{}

func (recreateAdminNeedsKubeconfig) Description(context.Context) string {
	return "recreate_admin_service_account = true needs regenerate_kubeconfig = true"
}

func (v recreateAdminNeedsKubeconfig) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (recreateAdminNeedsKubeconfig) check(ctx context.Context, config tfsdk.Config, diags *diag.Diagnostics) {
	var kc, admin types.Bool
	diags.Append(config.GetAttribute(ctx, path.Root("regenerate_kubeconfig"), &kc)...)
	diags.Append(config.GetAttribute(ctx, path.Root("recreate_admin_service_account"), &admin)...)
	if !admin.IsNull() && !admin.IsUnknown() && admin.ValueBool() && isFalse(kc) {
		diags.AddAttributeError(path.Root("recreate_admin_service_account"), "lke-admin cannot be re-created without a new kubeconfig",
			"recreate_admin_service_account = true needs regenerate_kubeconfig = true: only the kubeconfig's regeneration gives the re-created "+
				"lke-admin a token. Set regenerate_kubeconfig = true, or leave recreate_admin_service_account unset.")
	}
}

// isFalse: set, known, and false.
func isFalse(b types.Bool) bool { return !b.IsNull() && !b.IsUnknown() && !b.ValueBool() }

// workloadKindsValidators check restart_workloads.kinds.
func workloadKindsValidators() []validator.Set {
	return []validator.Set{setvalidator.SizeAtLeast(1), setvalidator.ValueStringsAre(stringvalidator.OneOf(kube.WorkloadKinds...))}
}

// restartNamespacesRequired requires namespaces inside a restart_workloads
// block (a required attribute of an optional block would be demanded even
// when the block is absent).
type restartNamespacesRequired struct{}

func (restartNamespacesRequired) Description(context.Context) string {
	return "restart_workloads needs namespaces"
}

func (v restartNamespacesRequired) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (restartNamespacesRequired) check(ctx context.Context, config tfsdk.Config, diags *diag.Diagnostics) {
	var block types.Object
	diags.Append(config.GetAttribute(ctx, path.Root("restart_workloads"), &block)...)
	if block.IsNull() || block.IsUnknown() {
		return
	}
	var ns types.Set
	diags.Append(config.GetAttribute(ctx, path.Root("restart_workloads").AtName("namespaces"), &ns)...)
	if ns.IsNull() {
		diags.AddAttributeError(path.Root("restart_workloads").AtName("namespaces"), "Missing namespaces",
			"restart_workloads needs namespaces: the namespaces whose deployments, daemonsets and statefulsets are restarted after the rotation.")
	}
}

// regenerateSomething rejects a rotation that would regenerate nothing.
type regenerateSomething struct{}

func (regenerateSomething) Description(context.Context) string {
	return "at least one of regenerate_kubeconfig and regenerate_service_token must be true"
}

func (v regenerateSomething) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (regenerateSomething) check(ctx context.Context, config tfsdk.Config, diags *diag.Diagnostics) {
	var kc, st types.Bool
	diags.Append(config.GetAttribute(ctx, path.Root("regenerate_kubeconfig"), &kc)...)
	diags.Append(config.GetAttribute(ctx, path.Root("regenerate_service_token"), &st)...)
	falseSet := func(b types.Bool) bool { return !b.IsNull() && !b.IsUnknown() && !b.ValueBool() }
	if falseSet(kc) && falseSet(st) {
		diags.AddAttributeError(path.Root("regenerate_kubeconfig"), "Nothing to regenerate",
			"regenerate_kubeconfig and regenerate_service_token are both false, so a rotation would only delete secrets "+
				"and leave the cluster without working credentials. Set at least one of them to true (both default to true).")
	}
}

// rotationConfigCheck is a check of the rotation settings, run by the
// resource and the action alike.
type rotationConfigCheck interface {
	Description(context.Context) string
	MarkdownDescription(context.Context) string
	check(ctx context.Context, config tfsdk.Config, diags *diag.Diagnostics)
}

var rotationConfigChecks = []rotationConfigCheck{
	regenerateSomething{}, restartNamespacesRequired{}, controlPlaneAccountsNeedServiceToken{}, recreateAdminNeedsKubeconfig{},
}

// positiveTimeout reports a timeout that is not positive: the timeouts
// library parses "-5m" without complaint, and a rotation given no time at
// all would fail half-way.
func positiveTimeout(name string, d time.Duration, dd diag.Diagnostics, diags *diag.Diagnostics) {
	if dd.HasError() {
		return // the library has said what is wrong
	}
	if d <= 0 {
		diags.AddAttributeError(path.Root("timeouts").AtName(name), "Invalid timeout",
			fmt.Sprintf("timeouts.%s must be a positive Go duration, such as \"30m\"; got %s.", name, d))
	}
}
