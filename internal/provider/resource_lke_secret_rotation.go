package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
)

var (
	_ resource.Resource                     = (*lkeSecretRotationResource)(nil)
	_ resource.ResourceWithConfigure        = (*lkeSecretRotationResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*lkeSecretRotationResource)(nil)
	_ resource.ResourceWithImportState      = (*lkeSecretRotationResource)(nil)
	_ resource.ResourceWithConfigValidators = (*lkeSecretRotationResource)(nil)
)

// rotate_every may range from an hour to ten years.
var rotateEveryRange = durationBetween{min: time.Hour, max: 87600 * time.Hour, example: "720h"}

// clusterIDExample is an LKE cluster ID, for error messages.
const clusterIDExample = "123456"

const defaultRotationTimeout = 20 * time.Minute

func newLKESecretRotationResource() resource.Resource {
	return &lkeSecretRotationResource{}
}

type lkeSecretRotationResource struct {
	resourceBase
}

type lkeSecretRotationModel struct {
	ID                     types.String           `tfsdk:"id"`
	ClusterID              wholeNumber            `tfsdk:"cluster_id"`
	Keepers                types.Map              `tfsdk:"keepers"`
	RotateEvery            duration               `tfsdk:"rotate_every"`
	Namespaces             types.Set              `tfsdk:"namespaces"`
	RegenerateKubeconfig   types.Bool             `tfsdk:"regenerate_kubeconfig"`
	RegenerateServiceToken types.Bool             `tfsdk:"regenerate_service_token"`
	RestartWorkloads       *restartWorkloadsModel `tfsdk:"restart_workloads"`
	RecycleNodes           types.Bool             `tfsdk:"recycle_nodes"`
	RecreateAdmin          types.Bool             `tfsdk:"recreate_admin_service_account"`
	RevokeServiceAccounts  types.Set              `tfsdk:"revoke_service_accounts"`
	Verify                 types.Bool             `tfsdk:"verify"`
	Timeouts               timeouts.Value         `tfsdk:"timeouts"`
	RotatedAt              timetypes.RFC3339      `tfsdk:"rotated_at"`
	NextRotationAt         timetypes.RFC3339      `tfsdk:"next_rotation_at"`
	DeletedSecrets         types.List             `tfsdk:"deleted_secrets"`
	RevokedShortLived      types.List             `tfsdk:"revoked_short_lived_kubeconfigs"`
	KubeconfigSHA256       types.String           `tfsdk:"kubeconfig_sha256"`
	KubeconfigChangedAt    timetypes.RFC3339      `tfsdk:"kubeconfig_changed_at"`
	NodesVerified          types.Int64            `tfsdk:"nodes_verified"`
}

type restartWorkloadsModel struct {
	Namespaces types.Set `tfsdk:"namespaces"`
	Kinds      types.Set `tfsdk:"kinds"`
}

func (r *lkeSecretRotationResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_lke_secret_rotation"
}

func (r *lkeSecretRotationResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := stringplanmodifier.UseStateForUnknown()
	resp.Schema = schema.Schema{
		Description: "Rotates the credentials of a Linode Kubernetes Engine (LKE) cluster: deletes the service-account-token secrets, " +
			"regenerates the kubeconfig and service token through the Linode API, waits for the new kubeconfig, and proves that it works " +
			"and that the old admin token is rejected. Creating the resource performs one rotation; a change of `keepers`, or `rotate_every` " +
			"elapsing, replaces it and so rotates again. Destroying it only removes it from the state: a rotation cannot be undone.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "The cluster id.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{keep},
			},
			"cluster_id": schema.Int64Attribute{
				Description:   "ID of the LKE cluster to rotate. Changing it forces a new resource (and a rotation of the new cluster).",
				CustomType:    wholeNumberType{example: clusterIDExample},
				Required:      true,
				Validators:    []validator.Int64{int64validator.AtLeast(1)},
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplace()},
			},
			"keepers": schema.MapAttribute{
				Description: "Arbitrary values that trigger a rotation when any of them changes: " +
					"`time_rotating.x.id`, an offboarding ticket number, anything. Changing it forces a new resource.",
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
			"namespaces": schema.SetAttribute{
				Description: descNamespaces,
				ElementType: types.StringType,
				Optional:    true,
				Computed:    true,
				Default:     setdefault.StaticValue(lkeDefaultNamespaces()),
				Validators:  namespacesValidators(),
			},
			"regenerate_kubeconfig": schema.BoolAttribute{
				Description: descRegenerateKubeconfig,
				Optional:    true,
				Computed:    true,
				Default:     booldefault.StaticBool(lkeDefaults.RegenerateKubeconfig),
			},
			"regenerate_service_token": schema.BoolAttribute{
				Description: descRegenerateServiceToken,
				Optional:    true,
				Computed:    true,
				Default:     booldefault.StaticBool(lkeDefaults.RegenerateServiceToken),
			},
			"recycle_nodes": schema.BoolAttribute{
				Description: descRecycleNodes,
				Optional:    true,
				Computed:    true,
				Default:     booldefault.StaticBool(lkeDefaults.RecycleNodes),
			},
			// Optional without a default, null meaning true: a state
			// written before the setting existed plans no change.
			"recreate_admin_service_account": schema.BoolAttribute{
				Description: descRecreateAdmin,
				Optional:    true,
			},
			"revoke_service_accounts": schema.SetAttribute{
				Description: descRevokeServiceAccounts,
				ElementType: types.StringType,
				Optional:    true,
				Validators:  revokeServiceAccountsValidators(),
			},
			"verify": schema.BoolAttribute{
				Description: descVerify,
				Optional:    true,
				Computed:    true,
				Default:     booldefault.StaticBool(lkeDefaults.Verify),
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
			"deleted_secrets": schema.ListAttribute{
				Description:   "The secrets the rotation deleted, as `namespace/name`, sorted.",
				ElementType:   types.StringType,
				Computed:      true,
				PlanModifiers: []planmodifier.List{listplanmodifier.UseStateForUnknown()},
			},
			"revoked_short_lived_kubeconfigs": schema.ListAttribute{
				Description: "The Secrets that `kubecreds_short_lived_kubeconfig` tokens were bound to, deleted by the rotation in every namespace, " +
					"as `namespace/name`, sorted. Deleting such a Secret revokes its token: the rotation revokes every short-lived kubeconfig " +
					"kubecreds issued in `service_account` mode, including those opened with `revoke_on_close = false` and those of killed runs. " +
					"With `verify = true` it proves this with a short-lived token of its own, issued before and rejected after.",
				ElementType:   types.StringType,
				Computed:      true,
				PlanModifiers: []planmodifier.List{listplanmodifier.UseStateForUnknown()},
			},
			"kubeconfig_sha256": schema.StringAttribute{
				Description:   "SHA-256 (hex) of the kubeconfig the Linode API served after the rotation. The kubeconfig itself never enters the state.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{keep},
			},
			"kubeconfig_changed_at": schema.StringAttribute{
				CustomType: timetypes.RFC3339Type{},
				Description: "When a refresh first saw the cluster serve another kubeconfig than `kubeconfig_sha256` named, RFC 3339: the " +
					"cluster was rotated outside this resource (the `kubecreds_lke_rotate_credentials` action, the runbook by hand, Cloud Manager). " +
					"The refresh then updates `kubeconfig_sha256` and plans no replacement; `rotated_at` and the `rotate_every` schedule " +
					"still count from this resource's own last rotation. Null until it happens.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{keep},
			},
			"nodes_verified": schema.Int64Attribute{
				Description:   "How many nodes were listed with the new kubeconfig (0 when `verify` is false).",
				Computed:      true,
				PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
			},
		},
		Blocks: map[string]schema.Block{
			"restart_workloads": restartWorkloadsBlock(
				func(d string, v []validator.Set) schema.Attribute {
					return schema.SetAttribute{Description: d, ElementType: types.StringType, Optional: true, Validators: v}
				},
				func(d string, a map[string]schema.Attribute) schema.Block {
					return schema.SingleNestedBlock{Description: d, Attributes: a}
				}),
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true}),
		},
	}
}

func (r *lkeSecretRotationResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	var v []resource.ConfigValidator
	for _, c := range rotationConfigChecks {
		v = append(v, resourceCheck{c})
	}
	return v
}

// resourceCheck runs a rotation settings check as a resource config validator.
type resourceCheck struct{ rotationConfigCheck }

func (c resourceCheck) ValidateResource(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	c.check(ctx, req.Config, &resp.Diagnostics)
}

// ModifyPlan schedules rotations: when rotate_every has elapsed since the last
// rotation, the plan replaces the resource and says why.
func (r *lkeSecretRotationResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil {
		return // destroy, or validation without a configured provider
	}
	var plan lkeSecretRotationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.data.linode.need(&resp.Diagnostics, "kubecreds_lke_secret_rotation")
	checkTimeouts(ctx, plan.Timeouts, &resp.Diagnostics)
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
		plan.NextRotationAt = timetypes.NewRFC3339Unknown() // known once the rotation has happened
	default:
		var state lkeSecretRotationModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if resp.Diagnostics.HasError() {
			return
		}
		due, next, why := rotationDue(state.RotatedAt, every, r.data.clock.Now(), "rotates the cluster's credentials")
		if due {
			resp.RequiresReplace = append(resp.RequiresReplace, path.Root("rotated_at"))
			plan.RotatedAt = timetypes.NewRFC3339Unknown()
			plan.NextRotationAt = timetypes.NewRFC3339Unknown()
			resp.Diagnostics.AddAttributeWarning(path.Root("rotate_every"), "Rotation due", why)
		} else {
			plan.NextRotationAt = timetypes.NewRFC3339TimeValue(next)
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// rotationDue decides whether rotate_every has elapsed since rotatedAt;
// replaceDoes says, for why, what replacing the resource does.
func rotationDue(rotatedAt timetypes.RFC3339, every time.Duration, now time.Time, replaceDoes string) (due bool, next time.Time, why string) {
	if rotatedAt.IsNull() || rotatedAt.IsUnknown() {
		return true, time.Time{}, fmt.Sprintf("This cluster has not been rotated by kubecreds (the resource was imported) and rotate_every = %q, "+
			"so it is rotated now.", formatDuration(every))
	}
	last, diags := rotatedAt.ValueRFC3339Time()
	if diags.HasError() {
		return true, time.Time{}, "rotated_at in the state is not a valid time, so the cluster is rotated now."
	}
	next = last.Add(every)
	if now.Before(next) {
		return false, next, ""
	}
	return true, next, fmt.Sprintf("The last rotation was at %s and rotate_every = %q, so the next was due at %s: "+
		"this plan replaces the resource, which %s.",
		last.Format(time.RFC3339), formatDuration(every), next.Format(time.RFC3339), replaceDoes)
}

func (r *lkeSecretRotationResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan lkeSecretRotationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultRotationTimeout)
	resp.Diagnostics.Append(diags...)
	opts, diags := rotationOptions(ctx, &plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	runner, diags := r.data.rotationRunner(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.data.timings.tune(&opts)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tflog.Info(ctx, "rotating LKE cluster credentials", map[string]any{"cluster_id": opts.ClusterID, "namespaces": opts.Namespaces})
	result, err := runner.Rotate(ctx, opts)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Rotation of LKE cluster %d failed", opts.ClusterID), describeRotationError(err, opts.ClusterID, timeout, "create"))
		return
	}
	addRotationWarnings(&resp.Diagnostics, opts, result)
	plan.ID = types.StringValue(strconv.Itoa(opts.ClusterID))
	plan.RotatedAt = timetypes.NewRFC3339TimeValue(result.RotatedAt)
	plan.NextRotationAt = timetypes.NewRFC3339Null()
	if every, d := plan.RotateEvery.ValueGoDuration(); !plan.RotateEvery.IsNull() && !d.HasError() {
		plan.NextRotationAt = timetypes.NewRFC3339TimeValue(result.RotatedAt.Add(every))
	}
	deleted, diags := types.ListValueFrom(ctx, types.StringType, nonNil(result.DeletedSecrets))
	resp.Diagnostics.Append(diags...)
	plan.DeletedSecrets = deleted
	revoked, diags := types.ListValueFrom(ctx, types.StringType, nonNil(result.RevokedShortLived))
	resp.Diagnostics.Append(diags...)
	plan.RevokedShortLived = revoked
	plan.KubeconfigSHA256 = types.StringValue(result.KubeconfigSHA256)
	plan.KubeconfigChangedAt = timetypes.NewRFC3339Null()
	plan.NodesVerified = types.Int64Value(int64(result.NodesVerified))
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, previousSHAKey, []byte(strconv.Quote(result.PreviousKubeconfigSHA256)))...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read notices a cluster deleted out of band, and a rotation made outside
// this resource (the kubecreds_lke_rotate_credentials action, the runbook by
// hand, Cloud Manager): the Linode API then serves a kubeconfig other than
// the one kubeconfig_sha256 names. It makes no Kubernetes call.
func (r *lkeSecretRotationResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state lkeSecretRotationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	clients, diags := r.data.Linode(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := int(state.ClusterID.ValueInt64())
	_, err := r.data.clusters.get(ctx, id, r.data.clock.Now(), func(ctx context.Context) (struct{}, error) {
		_, err := clients.API.GetLKECluster(ctx, id)
		return struct{}{}, err
	})
	if lke.IsClusterNotFound(err) {
		gone, listErr := lke.ClusterGone(ctx, clients.API, id)
		if gone {
			tflog.Info(ctx, "LKE cluster is gone; removing the rotation from the state", map[string]any{"cluster_id": id})
			resp.State.RemoveResource(ctx)
			return
		}
		detail := fmt.Sprintf("The Linode API answered 404 for cluster %d (%s), yet the clusters the token lists include it: "+
			"the answer is not about the cluster. Check linode_api_url (or LINODE_URL). The rotation stays in the state.", id, err)
		if listErr != nil {
			detail = fmt.Sprintf("The Linode API answered 404 for cluster %d (%s), and listing the clusters to confirm it is gone failed too: %s "+
				"The rotation stays in the state until the API says the cluster is gone.", id, err, describeLinodeError(listErr, id))
		}
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read LKE cluster %d", id), detail)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read LKE cluster %d", id), describeLinodeError(err, id))
		return
	}
	r.noticeOutOfBandRotation(ctx, clients, &state, req.Private, resp)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// previousSHAKey names the private state holding the SHA-256 of the
// kubeconfig the resource's last rotation revoked: the Linode API may serve
// it for a while after a regeneration (stale), which is not a new rotation.
const previousSHAKey = "previous_kubeconfig_sha256"

// noticeOutOfBandRotation compares the served kubeconfig with the state. It
// asks once, without retries, and lets a failure pass with a warning in the
// log: noticing waits for the next refresh, the plan does not fail for it.
func (r *lkeSecretRotationResource) noticeOutOfBandRotation(ctx context.Context, clients *linodeClients, state *lkeSecretRotationModel,
	private privateState, resp *resource.ReadResponse) {
	id := int(state.ClusterID.ValueInt64())
	served, err := r.data.servedSHAs.get(ctx, id, r.data.clock.Now(), func(ctx context.Context) (string, error) {
		return lke.ServedKubeconfigSHA256(ctx, clients.Poll, id)
	})
	if err != nil {
		tflog.Warn(ctx, "cannot read the kubeconfig the cluster serves; a rotation made outside this resource is noticed at the next refresh",
			map[string]any{"cluster_id": id, "error": describeLinodeError(err, id)})
		return
	}
	previous, diags := private.GetKey(ctx, previousSHAKey)
	if diags.HasError() {
		previous = nil
	}
	recorded := state.KubeconfigSHA256.ValueString()
	switch servedKubeconfigChange(recorded, served, string(previous)) {
	case kubeconfigUnchanged:
		return
	case kubeconfigFirstSeen:
		// Imported: nothing to compare with yet; from now on there is.
		state.KubeconfigSHA256 = types.StringValue(served)
		return
	case kubeconfigStale:
		tflog.Info(ctx, "the cluster still serves the kubeconfig from before the last rotation (the Linode API is behind); not a new rotation",
			map[string]any{"cluster_id": id})
		return
	}
	tflog.Info(ctx, "the cluster serves another kubeconfig than the last rotation left: it was rotated outside this resource",
		map[string]any{"cluster_id": id})
	state.KubeconfigSHA256 = types.StringValue(served)
	state.KubeconfigChangedAt = timetypes.NewRFC3339TimeValue(r.data.clock.Now().UTC().Truncate(time.Second))
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, previousSHAKey, []byte(strconv.Quote(recorded)))...)
}

type kubeconfigChange int

const (
	kubeconfigUnchanged kubeconfigChange = iota
	kubeconfigFirstSeen                  // nothing recorded yet (an imported resource)
	kubeconfigStale                      // the one the last rotation replaced, served again for a while
	kubeconfigRotatedElsewhere
)

// servedKubeconfigChange compares the served kubeconfig's SHA-256 with the
// one recorded in the state and the one the last rotation replaced
// (previousJSON, as kept in the private state: a JSON string, or empty).
func servedKubeconfigChange(recorded, served, previousJSON string) kubeconfigChange {
	switch {
	case served == recorded:
		return kubeconfigUnchanged
	case recorded == "":
		return kubeconfigFirstSeen
	case previousJSON != "" && previousJSON == strconv.Quote(served):
		return kubeconfigStale
	}
	return kubeconfigRotatedElsewhere
}

// privateState is what Read needs of the framework's private state.
type privateState interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
}

// Update changes settings that take effect at the next rotation; it does not rotate.
func (r *lkeSecretRotationResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan lkeSecretRotationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete forgets the rotation: credentials cannot be un-rotated.
func (r *lkeSecretRotationResource) Delete(ctx context.Context, req resource.DeleteRequest, _ *resource.DeleteResponse) {
	var state lkeSecretRotationModel
	req.State.Get(ctx, &state)
	tflog.Info(ctx, "removing the rotation from the state; the cluster is not changed", map[string]any{"cluster_id": state.ClusterID.ValueInt64()})
}

// ImportState adopts a cluster without rotating it: rotated_at stays null, and
// the settings take their defaults.
func (r *lkeSecretRotationResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, err := strconv.Atoi(req.ID)
	if err != nil || id < 1 {
		resp.Diagnostics.AddError("Invalid import id", fmt.Sprintf("Import a rotation by the cluster's numeric id, e.g. `terraform import kubecreds_lke_secret_rotation.x 123456`; got %q.", req.ID))
		return
	}
	state := lkeSecretRotationModel{
		ID:                     types.StringValue(strconv.Itoa(id)),
		ClusterID:              newWholeNumber(int64(id), clusterIDExample),
		Keepers:                types.MapNull(types.StringType),
		RotateEvery:            nullDuration(rotateEveryRange),
		Namespaces:             lkeDefaultNamespaces(),
		RegenerateKubeconfig:   types.BoolValue(lkeDefaults.RegenerateKubeconfig),
		RegenerateServiceToken: types.BoolValue(lkeDefaults.RegenerateServiceToken),
		RecycleNodes:           types.BoolValue(lkeDefaults.RecycleNodes),
		RecreateAdmin:          types.BoolNull(),
		RevokeServiceAccounts:  types.SetNull(types.StringType),
		Verify:                 types.BoolValue(lkeDefaults.Verify),
		Timeouts:               timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType, "update": types.StringType})},
		RotatedAt:              timetypes.NewRFC3339Null(),
		NextRotationAt:         timetypes.NewRFC3339Null(),
		DeletedSecrets:         types.ListValueMust(types.StringType, []attr.Value{}),
		RevokedShortLived:      types.ListValueMust(types.StringType, []attr.Value{}),
		KubeconfigSHA256:       types.StringValue(""),
		KubeconfigChangedAt:    timetypes.NewRFC3339Null(),
		NodesVerified:          types.Int64Value(0),
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func rotationOptions(ctx context.Context, m *lkeSecretRotationModel) (lke.Options, diag.Diagnostics) {
	var diags diag.Diagnostics
	opts := lke.Options{
		ClusterID:              int(m.ClusterID.ValueInt64()),
		RegenerateKubeconfig:   m.RegenerateKubeconfig.ValueBool(),
		RegenerateServiceToken: m.RegenerateServiceToken.ValueBool(),
		RecycleNodes:           m.RecycleNodes.ValueBool(),
		RecreateAdmin:          boolOr(m.RecreateAdmin, lkeDefaults.RecreateAdmin),
		Verify:                 m.Verify.ValueBool(),
	}
	diags.Append(m.Namespaces.ElementsAs(ctx, &opts.Namespaces, false)...)
	diags.Append(restartOptions(ctx, m.RestartWorkloads, &opts)...)
	diags.Append(revokeOptions(ctx, m.RevokeServiceAccounts, &opts)...)
	return opts, diags
}

// boolOr is b's value, or def when b is null or unknown.
func boolOr(b types.Bool, def bool) bool {
	if b.IsNull() || b.IsUnknown() {
		return def
	}
	return b.ValueBool()
}

// revokeOptions sets the accounts revoke_service_accounts lists, sorted
// (validation has checked each).
func revokeOptions(ctx context.Context, set types.Set, opts *lke.Options) diag.Diagnostics {
	if set.IsNull() || set.IsUnknown() {
		return nil
	}
	var names []string
	diags := set.ElementsAs(ctx, &names, false)
	sort.Strings(names)
	for _, n := range names {
		ref, err := kube.ParseServiceAccountRef(n)
		if err != nil {
			diags.AddAttributeError(path.Root("revoke_service_accounts"), "Invalid service account", err.Error())
			continue
		}
		opts.RevokeServiceAccounts = append(opts.RevokeServiceAccounts, ref)
	}
	return diags
}

// restartOptions sets what restart_workloads asks for, if anything.
func restartOptions(ctx context.Context, w *restartWorkloadsModel, opts *lke.Options) diag.Diagnostics {
	var diags diag.Diagnostics
	if w == nil {
		return diags
	}
	opts.RestartWorkloads = &lke.RestartOptions{Kinds: kube.WorkloadKinds}
	diags.Append(w.Namespaces.ElementsAs(ctx, &opts.RestartWorkloads.Namespaces, false)...)
	if !w.Kinds.IsNull() {
		diags.Append(w.Kinds.ElementsAs(ctx, &opts.RestartWorkloads.Kinds, false)...)
	}
	return diags
}

// describeRotationError turns a failed step into what the user should know:
// which step, what was already done, and that re-running apply resumes.
func describeRotationError(err error, clusterID int, timeout time.Duration, timeoutName string) string {
	msg := err.Error()
	if hint := linodeHint(err, clusterID); hint != "" {
		msg += "\n\n" + hint
	}
	if errors.Is(err, context.DeadlineExceeded) {
		msg += fmt.Sprintf("\n\nThe %s timeout (%s) ran out; raise it with timeouts { %s = \"...\" } if the cluster is slow.", timeoutName, timeout, timeoutName)
	}
	return msg
}

// addRotationWarnings tells the user what a successful rotation could not
// settle by itself: what a resumed run found and did, the pods that used a
// deleted token secret, and the paused deployments left alone.
func addRotationWarnings(diags *diag.Diagnostics, opts lke.Options, result *lke.Result) {
	if result.AdoptedFrom != "" {
		diags.AddWarning("Another run rotated this cluster",
			fmt.Sprintf("While this apply waited for the rotation lock (Lease kube-system/%s), another run (%s) rotated the cluster and "+
				"finished at %s, after this apply started. That rotation did what this one was asked to, so this apply changed nothing and "+
				"records it as its own: no second regeneration.", kube.LockName, result.AdoptedFrom, result.AdoptedAt.Format(time.RFC3339)))
		return
	}
	if result.Resumed {
		verified := " It verified the new kubeconfig."
		if !opts.Verify {
			verified = " (verify = false: nothing was verified.)"
		}
		diags.AddWarning("Rotation resumed",
			fmt.Sprintf("The kubeconfig the Linode API served was already rejected: an earlier run (or someone by hand) had deleted its token secret "+
				"and stopped before finishing. This apply regenerated the credentials, then listed the token secrets of every configured namespace (%s) "+
				"with the new kubeconfig and deleted the %d the earlier run had left (those already gone need nothing), and revoked %d short-lived kubeconfigs.%s "+
				"deleted_secrets lists only what this apply deleted.",
				strings.Join(opts.Namespaces, ", "), result.ResumedLeftover, len(result.RevokedShortLived), verified))
	}
	if result.AdminNotRecreated {
		diags.AddAttributeWarning(path.Root("recreate_admin_service_account"), "lke-admin was not re-created",
			"This apply resumed a rotation whose secrets were already deleted, and kube-system/lke-admin still has the UID it had before: "+
				"the earlier run (or whoever deleted the secrets) did not re-create it. The old kubeconfig is rejected, but tokens issued for "+
				"lke-admin with TokenRequest (kubectl create token) before stay valid until they expire. Re-creating it now would end the "+
				"kubeconfig just served, so this apply did not: rotate again (terraform apply -replace, or the kubecreds_lke_rotate_credentials "+
				"action), which re-creates lke-admin first.")
	}
	if opts.RegenerateKubeconfig && !opts.RecreateAdmin {
		diags.AddAttributeWarning(path.Root("recreate_admin_service_account"), "Tokens issued for lke-admin stay valid",
			"recreate_admin_service_account = false: kube-system/lke-admin was kept, so the old kubeconfig is rejected but tokens issued for "+
				"the account with TokenRequest (kubectl create token lke-admin, or bound to a Secret or pod) stay valid until they expire. "+
				"Leave the attribute unset (true) to re-create the account, which ends them all.")
	}
	if len(result.NotRecreatedAfterResume) > 0 {
		diags.AddAttributeWarning(path.Root("revoke_service_accounts"), "LKE control-plane accounts not re-created",
			fmt.Sprintf("This apply resumed a rotation after its regeneration, when re-creating %s would end the token LKE has just made "+
				"for it and stop its component; so it did not. If the interrupted run had not re-created it yet, its TokenRequest tokens "+
				"issued before stay valid until they expire: rotate again (terraform apply -replace), which re-creates it before regenerating.",
				strings.Join(result.NotRecreatedAfterResume, ", ")))
	}
	if len(result.SweptAgain) > 0 {
		diags.AddWarning("Credentials made during the rotation were revoked",
			fmt.Sprintf("Once the old credentials were rejected, a second sweep found %d credential(s) made after the rotation first listed them, "+
				"while the old credentials still worked, and revoked them: %s. LKE makes none of these: someone (or something) holding an old "+
				"credential made them during the rotation. Find out who, from the cluster's audit log if you have one.",
				len(result.SweptAgain), strings.Join(result.SweptAgain, ", ")))
	}
	if len(result.ForeignBoundSecrets) > 0 {
		diags.AddWarning("Secrets with kubecreds' label left alone",
			fmt.Sprintf("These Secrets carry the label %s=true but were not made by kubecreds (not its generated name, or not its annotations), "+
				"so they were not deleted: %s. If a token is bound to one, it is not revoked; remove the label if it was set by mistake.",
				kubeconfig.BoundSecretLabel, strings.Join(result.ForeignBoundSecrets, ", ")))
	}
	if len(result.ExtraControlPlaneSecrets) > 0 {
		diags.AddWarning("More token secrets of LKE's control-plane accounts than LKE makes",
			fmt.Sprintf("After the service-token regeneration, LKE makes one token secret per control-plane account, but these exist: %s. "+
				"One of each account's is LKE's and the others were made by someone else; which is which cannot be told from the cluster, "+
				"so none was deleted (deleting LKE's would stop its component). Inspect them (creation time, managed fields) and delete "+
				"the ones LKE did not make, then rotate again.", strings.Join(result.ExtraControlPlaneSecrets, ", ")))
	}
	if result.DeletedAdminSecretFirst {
		diags.AddWarning("Old admin secret deleted before the new kubeconfig was served",
			"After the regeneration the Linode API kept serving a kubeconfig with the old admin token for more than a minute: LKE rebuilt it "+
				"from the lke-admin token secret that still existed. So the rotation followed the runbook's order, deleted that secret, and waited "+
				"again; LKE then served a kubeconfig with a new token. Between the two, the Linode API served no working kubeconfig.")
	}
	if len(result.PodsUsingDeleted) > 0 {
		var b strings.Builder
		for _, m := range result.PodsUsingDeleted {
			owner := "no owner"
			if m.Owner != "" {
				owner = "owned by " + m.Owner
			}
			fmt.Fprintf(&b, "\n  - pod %s/%s (%s) used secret %s as %s", m.Namespace, m.Pod, owner, m.Secret, m.Via)
		}
		diags.AddWarning("Pods used the deleted token secrets",
			fmt.Sprintf("%d pod(s) used a service-account-token secret this rotation deleted:%s\n\n"+
				"They keep running with the old token until it is rejected, and since Kubernetes 1.24 nothing recreates a deleted legacy token secret, "+
				"so once restarted, evicted or rescheduled they cannot start. Either recreate each secret (a Secret of type kubernetes.io/service-account-token "+
				"with the annotation kubernetes.io/service-account.name; the token controller fills in a new token) and restart the pods, or better, "+
				"move them to projected service-account tokens (the default since Kubernetes 1.22), which rotate by themselves.",
				len(result.PodsUsingDeleted), b.String()))
	}
	if result.PodScanError != "" {
		diags.AddWarning("Could not check which pods used the deleted token secrets",
			"The rotation finished, but listing pods failed: "+result.PodScanError+". Pods that mount a deleted legacy token secret cannot start again "+
				"until it is recreated; check with kubectl get pods -o yaml.")
	}
	if len(result.SkippedPaused) > 0 {
		diags.AddAttributeWarning(path.Root("restart_workloads"), "Paused deployments were not restarted",
			fmt.Sprintf("These deployments are paused, and kubectl rollout restart refuses paused deployments, so they were skipped: %s. "+
				"Run kubectl rollout resume on them (they then roll out any pending change) and restart them, or restart them after you resume them.",
				strings.Join(result.SkippedPaused, ", ")))
	}
	if result.InsecureKubeconfig {
		diags.AddWarning("TLS verification is off",
			"The kubeconfig the Linode API serves for this cluster has insecure-skip-tls-verify: true, so this rotation did not check the API "+
				"server's certificate: anyone on the network path could read the credentials it sent. LKE's own kubeconfigs carry the cluster's CA; "+
				"find out what serves this one.")
	}
	if len(result.NotRestarted) > 0 {
		diags.AddAttributeWarning(path.Root("revoke_service_accounts"), "Pods running as a re-created account were not restarted",
			fmt.Sprintf("Their projected tokens named the old account and are rejected, and no deployment, daemonset or statefulset "+
				"controls them, so no rollout restart reaches them: %s. Delete them (their owner, if any, creates them again) to give them "+
				"tokens of the new account.", strings.Join(result.NotRestarted, ", ")))
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
