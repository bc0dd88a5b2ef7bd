package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/action/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/actionvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/action"
	"github.com/hashicorp/terraform-plugin-framework/action/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

var (
	_ action.ActionWithConfigure        = (*rotateServiceAccountAction)(nil)
	_ action.ActionWithConfigValidators = (*rotateServiceAccountAction)(nil)
	_ action.ActionWithValidateConfig   = (*rotateServiceAccountAction)(nil)
)

func newRotateServiceAccountAction() action.Action { return &rotateServiceAccountAction{} }

// rotateServiceAccountAction re-creates service accounts when invoked, for
// incidents: the same procedure as kubecreds_service_account_rotation,
// with nothing kept in the state.
type rotateServiceAccountAction struct {
	actionBase
}

type rotateServiceAccountModel struct {
	ServiceAccounts      types.Set      `tfsdk:"service_accounts"`
	LKEClusterID         wholeNumber    `tfsdk:"lke_cluster_id"`
	BaseKubeconfig       types.String   `tfsdk:"base_kubeconfig"`
	AllowExecPlugins     types.Bool     `tfsdk:"allow_exec_plugins"`
	RecreateTokenSecrets types.Bool     `tfsdk:"recreate_token_secrets"`
	RestartWorkloads     types.Bool     `tfsdk:"restart_workloads"`
	Verify               types.Bool     `tfsdk:"verify"`
	Timeouts             timeouts.Value `tfsdk:"timeouts"`
}

func (a *rotateServiceAccountAction) Metadata(_ context.Context, req action.MetadataRequest, resp *action.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_rotate_service_account"
}

func (a *rotateServiceAccountAction) Schema(ctx context.Context, _ action.SchemaRequest, resp *action.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Revokes every token of service accounts now, when invoked: `terraform apply -invoke=action.kubecreds_rotate_service_account.<name>`, " +
			"or from an `action_trigger`. It does what `kubecreds_service_account_rotation` does (re-create each account under its name, restart " +
			"what runs as it, prove the old tokens are rejected) and reports each step as it finishes; it keeps nothing in the state. " +
			"Invoked again after a failure, it finishes the job. Needs Terraform 1.14 or later.",
		Attributes: map[string]schema.Attribute{
			"service_accounts": schema.SetAttribute{
				Description: descServiceAccounts,
				ElementType: types.StringType,
				Required:    true,
				Validators:  serviceAccountsValidators(),
			},
			"lke_cluster_id": schema.Int64Attribute{
				CustomType:  wholeNumberType{example: clusterIDExample},
				Description: descAccountLKE,
				Optional:    true,
				Validators:  []validator.Int64{int64validator.AtLeast(1)},
			},
			"base_kubeconfig": schema.StringAttribute{
				Description: descAccountBase + " Write-only: it can take an ephemeral value.",
				Optional:    true,
				WriteOnly:   true,
				Validators:  []validator.String{validKubeconfig{}},
			},
			"allow_exec_plugins":     schema.BoolAttribute{Description: descAllowExecPlugins, Optional: true},
			"recreate_token_secrets": schema.BoolAttribute{Description: descRecreateTokenSecrets, Optional: true},
			"restart_workloads":      schema.BoolAttribute{Description: descAccountRestart, Optional: true},
			"verify":                 schema.BoolAttribute{Description: descAccountVerify, Optional: true},
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx),
		},
	}
}

func (a *rotateServiceAccountAction) ConfigValidators(context.Context) []action.ConfigValidator {
	return []action.ConfigValidator{
		actionvalidator.Conflicting(path.MatchRoot("lke_cluster_id"), path.MatchRoot("base_kubeconfig")),
	}
}

// ValidateConfig rejects a timeout that is not positive, before anything runs.
func (a *rotateServiceAccountAction) ValidateConfig(ctx context.Context, req action.ValidateConfigRequest, resp *action.ValidateConfigResponse) {
	var m rotateServiceAccountModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	checkInvokeTimeout(ctx, m.Timeouts, &resp.Diagnostics)
}

func (a *rotateServiceAccountAction) Invoke(ctx context.Context, req action.InvokeRequest, resp *action.InvokeResponse) {
	var m rotateServiceAccountModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := m.Timeouts.Invoke(ctx, defaultRotationTimeout)
	resp.Diagnostics.Append(diags...)
	positiveTimeout("invoke", timeout, diags, &resp.Diagnostics)
	accounts, diags := accountRefs(ctx, m.ServiceAccounts)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	progress := &progressSteps{send: resp.SendProgress, start: a.data.clock.Now(), now: a.data.clock.Now}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	progress.say("Rotating %d service account(s)", len(accounts))
	res, diags := a.data.rotateAccounts(ctx, accountRotationRequest{
		lkeClusterID: m.LKEClusterID,
		base:         m.BaseKubeconfig,
		allowExec:    m.AllowExecPlugins,
		block:        "action",
		opts: kube.AccountRotation{
			Accounts:             accounts,
			RecreateTokenSecrets: boolOr(m.RecreateTokenSecrets, accountDefaults.RecreateTokenSecrets),
			RestartWorkloads:     boolOr(m.RestartWorkloads, accountDefaults.RestartWorkloads),
			Verify:               boolOr(m.Verify, accountDefaults.Verify),
		},
		step: progress.Step,
	})
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		if ctx.Err() != nil {
			resp.Diagnostics.AddError("Timed out", fmt.Sprintf("The invoke timeout (%s) ran out; raise it with timeouts { invoke = \"...\" }.", timeout))
		}
		return
	}
	verified := "not verified (verify = false)"
	if res.Verified {
		verified = "tokens issued before are rejected"
	}
	names := make([]string, len(res.Recreated))
	for i, r := range res.Recreated {
		names[i] = r.String()
	}
	progress.say("Rotated %s in %s: restarted %d workload(s), re-created %d token secret(s); %s",
		strings.Join(names, ", "), progress.since(), len(res.Restarted), len(res.TokenSecretsRecreated), verified)
}
