package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

var (
	_ resource.ResourceWithConfigure        = (*serviceAccountRotationResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*serviceAccountRotationResource)(nil)
	_ resource.ResourceWithImportState      = (*serviceAccountRotationResource)(nil)
	_ resource.ResourceWithConfigValidators = (*serviceAccountRotationResource)(nil)
)

func newServiceAccountRotationResource() resource.Resource { return &serviceAccountRotationResource{} }

// serviceAccountRotationResource revokes every token of service accounts
// on any cluster by re-creating them, on a schedule or when keepers change.
type serviceAccountRotationResource struct {
	resourceBase
}

type serviceAccountRotationModel struct {
	ID                    types.String      `tfsdk:"id"`
	ServiceAccounts       types.Set         `tfsdk:"service_accounts"`
	LKEClusterID          wholeNumber       `tfsdk:"lke_cluster_id"`
	BaseKubeconfig        types.String      `tfsdk:"base_kubeconfig"`
	AllowExecPlugins      types.Bool        `tfsdk:"allow_exec_plugins"`
	Keepers               types.Map         `tfsdk:"keepers"`
	RotateEvery           duration          `tfsdk:"rotate_every"`
	RecreateTokenSecrets  types.Bool        `tfsdk:"recreate_token_secrets"`
	RestartWorkloads      types.Bool        `tfsdk:"restart_workloads"`
	Verify                types.Bool        `tfsdk:"verify"`
	Timeouts              timeouts.Value    `tfsdk:"timeouts"`
	RotatedAt             timetypes.RFC3339 `tfsdk:"rotated_at"`
	NextRotationAt        timetypes.RFC3339 `tfsdk:"next_rotation_at"`
	ServiceAccountUIDs    types.Map         `tfsdk:"service_account_uids"`
	RecreatedTokenSecrets types.List        `tfsdk:"recreated_token_secrets"`
	RestartedWorkloads    types.List        `tfsdk:"restarted_workloads"`
}

func (r *serviceAccountRotationResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_service_account_rotation"
}

func (r *serviceAccountRotationResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := stringplanmodifier.UseStateForUnknown()
	keepList := listplanmodifier.UseStateForUnknown()
	resp.Schema = schema.Schema{
		Description: "Revokes every token that service accounts ever had, on any Kubernetes cluster, by deleting each account and creating " +
			"it again under its name (a new UID): the answer to a CI bot's leaked token or a leaver's `kubectl create token`. Then restarts " +
			"the workloads that run as the accounts and proves, with a token issued before, that the old tokens are rejected. Creating the " +
			"resource rotates once; a change of `keepers` or `service_accounts`, or `rotate_every` elapsing, replaces it and so rotates again. " +
			"Destroying it only removes it from the state. The cluster is `lke_cluster_id`, `base_kubeconfig`, or else the provider's " +
			"`kubernetes` block. Needs Terraform 1.11 or later (`base_kubeconfig` is write-only).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "The rotated accounts, `namespace/name`, sorted and joined with commas.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{keep},
			},
			"service_accounts": schema.SetAttribute{
				Description:   descServiceAccounts + " Changing it forces a new resource (a rotation of every listed account).",
				ElementType:   types.StringType,
				Required:      true,
				Validators:    serviceAccountsValidators(),
				PlanModifiers: []planmodifier.Set{setplanmodifier.RequiresReplace()},
			},
			"lke_cluster_id": schema.Int64Attribute{
				CustomType:  wholeNumberType{example: clusterIDExample},
				Description: descAccountLKE + " Changing it from one cluster to another forces a new resource; setting it on an imported resource does not.",
				Optional:    true,
				Validators:  []validator.Int64{int64validator.AtLeast(1)},
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplaceIf(func(_ context.Context, req planmodifier.Int64Request, resp *int64planmodifier.RequiresReplaceIfFuncResponse) {
					resp.RequiresReplace = !req.StateValue.IsNull()
				}, "Moving to another LKE cluster rotates its accounts.", "Moving to another LKE cluster rotates its accounts.")},
			},
			"base_kubeconfig": schema.StringAttribute{
				Description: descAccountBase + " Write-only: never stored in the state or the plan, and can take an ephemeral value " +
					"(e.g. `ephemeral.kubecreds_short_lived_kubeconfig.admin.kubeconfig`).",
				Optional:   true,
				Sensitive:  true,
				WriteOnly:  true,
				Validators: []validator.String{validKubeconfig{}},
			},
			"allow_exec_plugins": schema.BoolAttribute{Description: descAllowExecPlugins, Optional: true},
			"keepers": schema.MapAttribute{
				Description: "Arbitrary values that trigger a rotation when any of them changes: `time_rotating.x.id`, an incident " +
					"ticket number, anything. Changing it forces a new resource.",
				ElementType:   types.StringType,
				Optional:      true,
				Validators:    []validator.Map{mapvalidator.NoNullValues()},
				PlanModifiers: []planmodifier.Map{mapplanmodifier.RequiresReplace()},
			},
			"rotate_every": schema.StringAttribute{
				CustomType: durationType{bounds: rotateEveryRange},
				Description: "Rotate again when the last rotation is older than this Go duration, between 1h and 87600h (e.g. `\"720h\"`). " +
					"The plan then shows the resource being replaced, with a warning saying why. Unset: rotate only when `keepers` change.",
				Optional:   true,
				Validators: []validator.String{rotateEveryRange},
			},
			"recreate_token_secrets": schema.BoolAttribute{
				Description: descRecreateTokenSecrets, Optional: true, Computed: true,
				Default: booldefault.StaticBool(accountDefaults.RecreateTokenSecrets),
			},
			"restart_workloads": schema.BoolAttribute{
				Description: descAccountRestart, Optional: true, Computed: true,
				Default: booldefault.StaticBool(accountDefaults.RestartWorkloads),
			},
			"verify": schema.BoolAttribute{
				Description: descAccountVerify, Optional: true, Computed: true,
				Default: booldefault.StaticBool(accountDefaults.Verify),
			},
			"rotated_at": schema.StringAttribute{
				CustomType:    timetypes.RFC3339Type{},
				Description:   "When the rotation finished, RFC 3339. Null for a resource adopted by import, which kubecreds has not rotated.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{keep},
			},
			"next_rotation_at": schema.StringAttribute{
				CustomType:  timetypes.RFC3339Type{},
				Description: "When `rotate_every` makes the next rotation due, RFC 3339. Null without `rotate_every`.",
				Computed:    true,
			},
			"service_account_uids": schema.MapAttribute{
				Description:   "The UID of each account after the rotation, by `namespace/name`: tokens that carry another UID are rejected.",
				ElementType:   types.StringType,
				Computed:      true,
				PlanModifiers: []planmodifier.Map{mapplanmodifier.UseStateForUnknown()},
			},
			"recreated_token_secrets": schema.ListAttribute{
				Description:   "The legacy token secrets created again for the new accounts, `namespace/name`, sorted.",
				ElementType:   types.StringType,
				Computed:      true,
				PlanModifiers: []planmodifier.List{keepList},
			},
			"restarted_workloads": schema.ListAttribute{
				Description:   "The workloads restarted, `kind/namespace/name`, sorted.",
				ElementType:   types.StringType,
				Computed:      true,
				PlanModifiers: []planmodifier.List{keepList},
			},
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true}),
		},
	}
}

func (r *serviceAccountRotationResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.Conflicting(path.MatchRoot("lke_cluster_id"), path.MatchRoot("base_kubeconfig")),
	}
}

// ModifyPlan schedules rotations as the LKE resource does, and checks the
// timeouts and the way to the cluster before anything runs.
func (r *serviceAccountRotationResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil {
		return
	}
	var plan serviceAccountRotationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	checkTimeouts(ctx, plan.Timeouts, &resp.Diagnostics)
	if !plan.LKEClusterID.IsNull() {
		r.data.linode.need(&resp.Diagnostics, "kubecreds_service_account_rotation with lke_cluster_id")
	}
	if resp.Diagnostics.HasError() {
		return
	}
	every, diags := plan.RotateEvery.ValueGoDuration()
	switch {
	case plan.RotateEvery.IsUnknown():
		plan.NextRotationAt = timetypes.NewRFC3339Unknown()
	case plan.RotateEvery.IsNull():
		plan.NextRotationAt = timetypes.NewRFC3339Null()
	case diags.HasError():
		resp.Diagnostics.Append(diags...)
		return
	case req.State.Raw.IsNull():
		plan.NextRotationAt = timetypes.NewRFC3339Unknown()
	default:
		var state serviceAccountRotationModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if resp.Diagnostics.HasError() {
			return
		}
		due, next, why := rotationDue(state.RotatedAt, every, r.data.clock.Now(), "re-creates the service accounts")
		if due {
			resp.RequiresReplace = append(resp.RequiresReplace, path.Root("rotated_at"))
			plan.RotatedAt = timetypes.NewRFC3339Unknown()
			plan.NextRotationAt = timetypes.NewRFC3339Unknown()
			resp.Diagnostics.AddAttributeWarning(path.Root("rotate_every"), "Rotation due", strings.Replace(why, "This cluster has", "These accounts have", 1))
		} else {
			plan.NextRotationAt = timetypes.NewRFC3339TimeValue(next)
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *serviceAccountRotationResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan, config serviceAccountRotationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...) // base_kubeconfig is write-only: only the configuration has it
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultRotationTimeout)
	resp.Diagnostics.Append(diags...)
	accounts, diags := accountRefs(ctx, plan.ServiceAccounts)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, diags := r.data.rotateAccounts(ctx, accountRotationRequest{
		lkeClusterID: plan.LKEClusterID,
		base:         config.BaseKubeconfig,
		allowExec:    plan.AllowExecPlugins,
		block:        "resource",
		opts: kube.AccountRotation{
			Accounts:             accounts,
			RecreateTokenSecrets: plan.RecreateTokenSecrets.ValueBool(),
			RestartWorkloads:     plan.RestartWorkloads.ValueBool(),
			Verify:               plan.Verify.ValueBool(),
		},
	})
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		if ctx.Err() != nil {
			resp.Diagnostics.AddError("Timed out", fmt.Sprintf("The create timeout (%s) ran out; raise it with timeouts { create = \"...\" }.", timeout))
		}
		return
	}
	now := r.data.clock.Now().UTC().Truncate(1e9)
	if res.AdoptedFrom != "" {
		now = res.AdoptedAt.UTC()
	}
	ids := make([]string, len(accounts))
	uids := map[string]attr.Value{}
	for i, a := range accounts {
		ids[i] = a.String()
	}
	for _, rec := range res.Recreated {
		uids[rec.String()] = types.StringValue(rec.NewUID)
	}
	plan.ID = types.StringValue(strings.Join(ids, ","))
	plan.BaseKubeconfig = types.StringNull()
	plan.RotatedAt = timetypes.NewRFC3339TimeValue(now)
	plan.NextRotationAt = timetypes.NewRFC3339Null()
	if every, d := plan.RotateEvery.ValueGoDuration(); !plan.RotateEvery.IsNull() && !d.HasError() {
		plan.NextRotationAt = timetypes.NewRFC3339TimeValue(now.Add(every))
	}
	plan.ServiceAccountUIDs = types.MapValueMust(types.StringType, uids)
	plan.RecreatedTokenSecrets = stringList(res.TokenSecretsRecreated)
	plan.RestartedWorkloads = stringList(res.Restarted)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func stringList(s []string) types.List {
	v := make([]attr.Value, len(s))
	for i, e := range s {
		v[i] = types.StringValue(e)
	}
	return types.ListValueMust(types.StringType, v)
}

// Read keeps the state as it is: the rotation happened, and nothing the
// cluster says now undoes it. (An account deleted since is for the next
// rotation to report.)
func (r *serviceAccountRotationResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state serviceAccountRotationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update changes settings that take effect at the next rotation.
func (r *serviceAccountRotationResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan serviceAccountRotationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	plan.BaseKubeconfig = types.StringNull()
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete forgets the rotation: a re-created account cannot be un-created.
func (r *serviceAccountRotationResource) Delete(ctx context.Context, req resource.DeleteRequest, _ *resource.DeleteResponse) {
	var state serviceAccountRotationModel
	req.State.Get(ctx, &state)
	tflog.Info(ctx, "removing the service-account rotation from the state; the cluster is not changed", map[string]any{"id": state.ID.ValueString()})
}

// ImportState adopts accounts without rotating them: rotated_at stays null
// and the settings take their defaults. The id is the accounts,
// namespace/name, joined with commas.
func (r *serviceAccountRotationResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	var ids []string
	for _, s := range strings.Split(req.ID, ",") {
		ref, err := kube.ParseServiceAccountRef(strings.TrimSpace(s))
		if err != nil {
			resp.Diagnostics.AddError("Invalid import id",
				fmt.Sprintf("Import by the accounts, namespace/name joined with commas, e.g. "+
					"`terraform import kubecreds_service_account_rotation.x ci/deployer,ci/bot`: %v.", err))
			return
		}
		if !slices.Contains(ids, ref.String()) {
			ids = append(ids, ref.String())
		}
	}
	slices.Sort(ids)
	elems := make([]attr.Value, len(ids))
	for i, id := range ids {
		elems[i] = types.StringValue(id)
	}
	state := serviceAccountRotationModel{
		ID:                    types.StringValue(strings.Join(ids, ",")),
		ServiceAccounts:       types.SetValueMust(types.StringType, elems),
		LKEClusterID:          wholeNumber{Int64Value: types.Int64Null(), example: clusterIDExample},
		BaseKubeconfig:        types.StringNull(),
		AllowExecPlugins:      types.BoolNull(),
		Keepers:               types.MapNull(types.StringType),
		RotateEvery:           nullDuration(rotateEveryRange),
		RecreateTokenSecrets:  types.BoolValue(accountDefaults.RecreateTokenSecrets),
		RestartWorkloads:      types.BoolValue(accountDefaults.RestartWorkloads),
		Verify:                types.BoolValue(accountDefaults.Verify),
		Timeouts:              timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType, "update": types.StringType})},
		RotatedAt:             timetypes.NewRFC3339Null(),
		NextRotationAt:        timetypes.NewRFC3339Null(),
		ServiceAccountUIDs:    types.MapValueMust(types.StringType, map[string]attr.Value{}),
		RecreatedTokenSecrets: stringList(nil),
		RestartedWorkloads:    stringList(nil),
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}
