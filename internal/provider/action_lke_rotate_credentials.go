package provider

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/action/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/action"
	"github.com/hashicorp/terraform-plugin-framework/action/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
)

var (
	_ action.ActionWithConfigure        = (*lkeRotateCredentialsAction)(nil)
	_ action.ActionWithConfigValidators = (*lkeRotateCredentialsAction)(nil)
	_ action.ActionWithValidateConfig   = (*lkeRotateCredentialsAction)(nil)
)

func newLKERotateCredentialsAction() action.Action {
	return &lkeRotateCredentialsAction{}
}

// lkeRotateCredentialsAction rotates an LKE cluster's credentials when
// invoked (terraform apply -invoke=action.kubecreds_lke_rotate_credentials.x,
// or an action_trigger): the same runbook as kubecreds_lke_secret_rotation,
// with nothing kept in the state.
type lkeRotateCredentialsAction struct {
	actionBase
}

type lkeRotateCredentialsModel struct {
	ClusterID              wholeNumber            `tfsdk:"cluster_id"`
	Namespaces             types.Set              `tfsdk:"namespaces"`
	RegenerateKubeconfig   types.Bool             `tfsdk:"regenerate_kubeconfig"`
	RegenerateServiceToken types.Bool             `tfsdk:"regenerate_service_token"`
	RestartWorkloads       *restartWorkloadsModel `tfsdk:"restart_workloads"`
	RecycleNodes           types.Bool             `tfsdk:"recycle_nodes"`
	RecreateAdmin          types.Bool             `tfsdk:"recreate_admin_service_account"`
	RevokeServiceAccounts  types.Set              `tfsdk:"revoke_service_accounts"`
	Verify                 types.Bool             `tfsdk:"verify"`
	Timeouts               timeouts.Value         `tfsdk:"timeouts"`
}

func (a *lkeRotateCredentialsAction) Metadata(_ context.Context, req action.MetadataRequest, resp *action.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_lke_rotate_credentials"
}

func (a *lkeRotateCredentialsAction) Schema(ctx context.Context, _ action.SchemaRequest, resp *action.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Rotates an LKE cluster's credentials now, when invoked: `terraform apply -invoke=action.kubecreds_lke_rotate_credentials.<name>`, " +
			"or from an `action_trigger` in a resource's `lifecycle`. It runs the same runbook as `kubecreds_lke_secret_rotation` (delete the " +
			"service-account-token secrets, regenerate through the Linode API, wait for the new kubeconfig, prove it works and the old one does not) " +
			"and reports each step as it finishes. It keeps nothing in the state; a `kubecreds_lke_secret_rotation` managing the same cluster notices " +
			"the rotation at its next refresh (`kubeconfig_changed_at`). Needs Terraform 1.14 or later.",
		Attributes: map[string]schema.Attribute{
			"cluster_id": schema.Int64Attribute{
				Description: "ID of the LKE cluster to rotate.",
				CustomType:  wholeNumberType{example: clusterIDExample},
				Required:    true,
				Validators:  []validator.Int64{int64validator.AtLeast(1)},
			},
			"namespaces": schema.SetAttribute{
				Description: descNamespaces,
				ElementType: types.StringType,
				Optional:    true,
				Validators:  namespacesValidators(),
			},
			"regenerate_kubeconfig":          schema.BoolAttribute{Description: descRegenerateKubeconfig, Optional: true},
			"regenerate_service_token":       schema.BoolAttribute{Description: descRegenerateServiceToken, Optional: true},
			"recycle_nodes":                  schema.BoolAttribute{Description: descRecycleNodes, Optional: true},
			"recreate_admin_service_account": schema.BoolAttribute{Description: descRecreateAdmin, Optional: true},
			"revoke_service_accounts": schema.SetAttribute{
				Description: descRevokeServiceAccounts,
				ElementType: types.StringType,
				Optional:    true,
				Validators:  revokeServiceAccountsValidators(),
			},
			"verify": schema.BoolAttribute{Description: descVerify, Optional: true},
		},
		Blocks: map[string]schema.Block{
			"restart_workloads": restartWorkloadsBlock(
				func(d string, v []validator.Set) schema.Attribute {
					return schema.SetAttribute{Description: d, ElementType: types.StringType, Optional: true, Validators: v}
				},
				func(d string, a map[string]schema.Attribute) schema.Block {
					return schema.SingleNestedBlock{Description: d, Attributes: a}
				}),
			"timeouts": timeouts.Block(ctx),
		},
	}
}

// actionCheck runs a rotation settings check as an action config validator.
type actionCheck struct{ rotationConfigCheck }

func (c actionCheck) ValidateAction(ctx context.Context, req action.ValidateConfigRequest, resp *action.ValidateConfigResponse) {
	c.check(ctx, req.Config, &resp.Diagnostics)
}

func (a *lkeRotateCredentialsAction) ConfigValidators(context.Context) []action.ConfigValidator {
	var v []action.ConfigValidator
	for _, c := range rotationConfigChecks {
		v = append(v, actionCheck{c})
	}
	return v
}

// ValidateConfig rejects a timeout that is not positive, before anything runs.
func (a *lkeRotateCredentialsAction) ValidateConfig(ctx context.Context, req action.ValidateConfigRequest, resp *action.ValidateConfigResponse) {
	var m lkeRotateCredentialsModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	checkInvokeTimeout(ctx, m.Timeouts, &resp.Diagnostics)
}

// checkInvokeTimeout reports an action's timeouts.invoke that is not
// positive (unknown or unset: nothing to check yet).
func checkInvokeTimeout(ctx context.Context, t timeouts.Value, diags *diag.Diagnostics) {
	if diags.HasError() || t.IsNull() || t.IsUnknown() {
		return
	}
	d, dd := t.Invoke(ctx, time.Minute)
	positiveTimeout("invoke", d, dd, diags)
}

func (a *lkeRotateCredentialsAction) Invoke(ctx context.Context, req action.InvokeRequest, resp *action.InvokeResponse) {
	var m lkeRotateCredentialsModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := m.Timeouts.Invoke(ctx, defaultRotationTimeout)
	resp.Diagnostics.Append(diags...)
	positiveTimeout("invoke", timeout, diags, &resp.Diagnostics)
	opts, diags := m.options(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	runner, diags := a.data.rotationRunner(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	a.data.timings.tune(&opts)
	progress := &progressSteps{send: resp.SendProgress, start: a.data.clock.Now(), now: a.data.clock.Now}
	runner.Log = progress
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tflog.Info(ctx, "rotating LKE cluster credentials (action)", map[string]any{"cluster_id": opts.ClusterID, "namespaces": opts.Namespaces})
	progress.say("Rotating the credentials of LKE cluster %d (namespaces %s)", opts.ClusterID, strings.Join(opts.Namespaces, ", "))
	result, err := runner.Rotate(ctx, opts)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Rotation of LKE cluster %d failed", opts.ClusterID),
			describeRotationError(err, opts.ClusterID, timeout, "invoke")+
				"\n\nInvoke the action again to finish the rotation: it resumes where this one stopped.")
		return
	}
	addRotationWarnings(&resp.Diagnostics, opts, result)
	if result.AdoptedFrom != "" {
		progress.say("LKE cluster %d was rotated by another run while this one waited (finished %s): nothing more to do",
			opts.ClusterID, result.AdoptedAt.Format(time.RFC3339))
		return
	}
	verified := "not verified (verify = false)"
	if opts.Verify {
		verified = fmt.Sprintf("the new kubeconfig lists %d nodes and the old admin token is rejected", result.NodesVerified)
	}
	progress.say("Rotated LKE cluster %d in %s: deleted %d token secrets, revoked %d short-lived kubeconfigs; %s",
		opts.ClusterID, progress.since(), len(result.DeletedSecrets), len(result.RevokedShortLived), verified)
}

// options are the rotation's options, with the resource's defaults for what
// the action's configuration leaves out.
func (m *lkeRotateCredentialsModel) options(ctx context.Context) (lke.Options, diag.Diagnostics) {
	var diags diag.Diagnostics
	or := boolOr
	opts := lke.Options{
		ClusterID:              int(m.ClusterID.ValueInt64()),
		RegenerateKubeconfig:   or(m.RegenerateKubeconfig, lkeDefaults.RegenerateKubeconfig),
		RegenerateServiceToken: or(m.RegenerateServiceToken, lkeDefaults.RegenerateServiceToken),
		RecycleNodes:           or(m.RecycleNodes, lkeDefaults.RecycleNodes),
		RecreateAdmin:          or(m.RecreateAdmin, lkeDefaults.RecreateAdmin),
		Verify:                 or(m.Verify, lkeDefaults.Verify),
		Namespaces:             slices.Clone(lkeDefaults.Namespaces),
	}
	if !m.Namespaces.IsNull() {
		opts.Namespaces = nil
		diags.Append(m.Namespaces.ElementsAs(ctx, &opts.Namespaces, false)...)
		sort.Strings(opts.Namespaces)
	}
	diags.Append(restartOptions(ctx, m.RestartWorkloads, &opts)...)
	diags.Append(revokeOptions(ctx, m.RevokeServiceAccounts, &opts)...)
	return opts, diags
}

// progressSteps turns the runner's step lines into the action's progress
// events, keeping only counts and durations: never a name that came from
// the cluster, never a secret. Each line also goes to the log, as for the
// resource.
type progressSteps struct {
	send  func(action.InvokeProgressEvent)
	start time.Time
	now   func() time.Time

	mu sync.Mutex
}

func (p *progressSteps) Step(ctx context.Context, step string, fields map[string]any) {
	tflogSteps{}.Step(ctx, step, fields)
	var parts []string
	for k, v := range fields {
		switch v.(type) {
		case int, int64, int32, bool:
		default:
			continue // strings may carry names or error text; not shown here
		}
		if k == "cluster_id" || k == "duration_ms" || k == "waited_ms" {
			continue // the step's duration says it
		}
		parts = append(parts, fmt.Sprintf("%s %v", strings.ReplaceAll(k, "_", " "), v))
	}
	sort.Strings(parts)
	msg := step
	if ms, ok := fields["duration_ms"].(int64); ok {
		msg += fmt.Sprintf(": %s", (time.Duration(ms) * time.Millisecond).String())
	}
	if _, failed := fields["error"]; failed {
		msg += " (failed)"
	}
	if len(parts) > 0 {
		msg += " (" + strings.Join(parts, ", ") + ")"
	}
	p.say("%s", msg)
}

func (p *progressSteps) say(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.send != nil {
		p.send(action.InvokeProgressEvent{Message: fmt.Sprintf(format, args...)})
	}
}

func (p *progressSteps) since() time.Duration {
	return p.now().Sub(p.start).Round(100 * time.Millisecond)
}
