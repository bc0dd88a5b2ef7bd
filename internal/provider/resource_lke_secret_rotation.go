package provider

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
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
	"github.com/linode/linodego"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/rotation"
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
	data *providerData
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
	Verify                 types.Bool             `tfsdk:"verify"`
	Timeouts               timeouts.Value         `tfsdk:"timeouts"`
	RotatedAt              timetypes.RFC3339      `tfsdk:"rotated_at"`
	NextRotationAt         timetypes.RFC3339      `tfsdk:"next_rotation_at"`
	DeletedSecrets         types.List             `tfsdk:"deleted_secrets"`
	RevokedShortLived      types.List             `tfsdk:"revoked_short_lived_kubeconfigs"`
	KubeconfigSHA256       types.String           `tfsdk:"kubeconfig_sha256"`
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
				Description: "Namespaces whose `kubernetes.io/service-account-token` secrets are deleted. Defaults to `[\"kube-system\"]`, " +
					"as the LKE runbook does; add namespaces that hold your own token secrets. In kube-system, the tokens of LKE's " +
					"control-plane components (`ccm-user`, `cluster-autoscaler-user`, `kubernetes-dashboard-lke-user`) are deleted only when " +
					"`regenerate_service_token` is true, and `lke-admin`'s only when `regenerate_kubeconfig` is true, since nothing else replaces them.",
				ElementType: types.StringType,
				Optional:    true,
				Computed:    true,
				Default:     setdefault.StaticValue(types.SetValueMust(types.StringType, []attr.Value{types.StringValue("kube-system")})),
				Validators: []validator.Set{
					setvalidator.SizeAtLeast(1),
					setvalidator.ValueStringsAre(namespaceNameValidators()...),
				},
			},
			"regenerate_kubeconfig": schema.BoolAttribute{
				Description: "Regenerate the kubeconfig (the `lke-admin` token) through the Linode API. Defaults to true. " +
					"At least one of `regenerate_kubeconfig` and `regenerate_service_token` must be true.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"regenerate_service_token": schema.BoolAttribute{
				Description: "Regenerate the service token of LKE's control-plane components through the Linode API. Defaults to true. " +
					"On standard (non-HA) clusters this briefly restarts the control plane.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"recycle_nodes": schema.BoolAttribute{
				Description: "After rotating, recycle every node through the Linode API and wait until the replacement nodes are Ready. Defaults to false.",
				Optional:    true,
				Computed:    true,
				Default:     booldefault.StaticBool(false),
			},
			"verify": schema.BoolAttribute{
				Description: "Wait for the new kubeconfig, list nodes with it, and confirm that the previous admin token and a short-lived token " +
					"issued before the revocation are rejected (the API server caches authentication for about 10 seconds, so this adds 10–15 seconds). Defaults to true.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
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
			"nodes_verified": schema.Int64Attribute{
				Description:   "How many nodes were listed with the new kubeconfig (0 when `verify` is false).",
				Computed:      true,
				PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
			},
		},
		Blocks: map[string]schema.Block{
			"restart_workloads": schema.SingleNestedBlock{
				Description: "After the new credentials are in place, do what `kubectl rollout restart` does (set the " +
					"`kubectl.kubernetes.io/restartedAt` annotation of the pod template) for these workloads, so that their pods are recreated " +
					"and mount fresh projected service-account tokens. Paused deployments are skipped with a warning, as kubectl skips them. " +
					"A restart does not help a pod that mounts a deleted legacy token secret: nothing recreates that secret, so the new pod " +
					"cannot start until the secret is recreated or the pod moves to projected tokens (the rotation warns about such pods).",
				Attributes: map[string]schema.Attribute{
					"namespaces": schema.SetAttribute{
						Description: "Namespaces whose workloads are restarted. Required in the block.",
						ElementType: types.StringType,
						Optional:    true,
						Validators: []validator.Set{
							setvalidator.SizeAtLeast(1),
							setvalidator.ValueStringsAre(namespaceNameValidators()...),
						},
					},
					"kinds": schema.SetAttribute{
						Description: "Kinds of workload to restart: `deployment`, `daemonset`, `statefulset`. Defaults to all three.",
						ElementType: types.StringType,
						Optional:    true,
						Validators: []validator.Set{
							setvalidator.SizeAtLeast(1),
							setvalidator.ValueStringsAre(stringvalidator.OneOf(rotation.WorkloadKinds...)),
						},
					},
				},
			},
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true}),
		},
	}
}

func (r *lkeSecretRotationResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{regenerateSomething{}, restartNamespacesRequired{}}
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

func (restartNamespacesRequired) ValidateResource(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var block types.Object
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("restart_workloads"), &block)...)
	if block.IsNull() || block.IsUnknown() {
		return
	}
	var ns types.Set
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("restart_workloads").AtName("namespaces"), &ns)...)
	if ns.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("restart_workloads").AtName("namespaces"), "Missing namespaces",
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

func (regenerateSomething) ValidateResource(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var kc, st types.Bool
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("regenerate_kubeconfig"), &kc)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("regenerate_service_token"), &st)...)
	falseSet := func(b types.Bool) bool { return !b.IsNull() && !b.IsUnknown() && !b.ValueBool() }
	if falseSet(kc) && falseSet(st) {
		resp.Diagnostics.AddAttributeError(path.Root("regenerate_kubeconfig"), "Nothing to regenerate",
			"regenerate_kubeconfig and regenerate_service_token are both false, so a rotation would only delete secrets "+
				"and leave the cluster without working credentials. Set at least one of them to true (both default to true).")
	}
}

func (r *lkeSecretRotationResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if req.ProviderData != nil {
		r.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
	}
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
	r.data.needLinodeToken(&resp.Diagnostics, "kubecreds_lke_secret_rotation")
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
		due, next, why := rotationDue(state.RotatedAt, every, r.data.clock.Now())
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

// rotationDue decides whether rotate_every has elapsed since rotatedAt.
func rotationDue(rotatedAt timetypes.RFC3339, every time.Duration, now time.Time) (due bool, next time.Time, why string) {
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
		"this plan replaces the resource, which rotates the cluster's credentials.",
		last.Format(time.RFC3339), formatDuration(every), next.Format(time.RFC3339))
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
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tflog.Info(ctx, "rotating LKE cluster credentials", map[string]any{"cluster_id": opts.ClusterID, "namespaces": opts.Namespaces})
	result, err := runner.Rotate(ctx, opts)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Rotation of LKE cluster %d failed", opts.ClusterID), describeRotationError(err, opts.ClusterID, timeout))
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
	plan.NodesVerified = types.Int64Value(int64(result.NodesVerified))
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read notices a cluster deleted out of band. It makes no Kubernetes call:
// a rotation's results do not drift.
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
	err := r.data.clusters.get(ctx, id, r.data.clock.Now(), func(ctx context.Context) error {
		_, err := clients.API.GetLKECluster(ctx, id)
		return err
	})
	if linodego.IsNotFound(err) {
		tflog.Info(ctx, "LKE cluster is gone; removing the rotation from the state", map[string]any{"cluster_id": id})
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read LKE cluster %d", id), describeLinodeError(err, id))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
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
		Namespaces:             types.SetValueMust(types.StringType, []attr.Value{types.StringValue("kube-system")}),
		RegenerateKubeconfig:   types.BoolValue(true),
		RegenerateServiceToken: types.BoolValue(true),
		RecycleNodes:           types.BoolValue(false),
		Verify:                 types.BoolValue(true),
		Timeouts:               timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType, "update": types.StringType})},
		RotatedAt:              timetypes.NewRFC3339Null(),
		NextRotationAt:         timetypes.NewRFC3339Null(),
		DeletedSecrets:         types.ListValueMust(types.StringType, []attr.Value{}),
		RevokedShortLived:      types.ListValueMust(types.StringType, []attr.Value{}),
		KubeconfigSHA256:       types.StringValue(""),
		NodesVerified:          types.Int64Value(0),
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func rotationOptions(ctx context.Context, m *lkeSecretRotationModel) (rotation.Options, diag.Diagnostics) {
	var diags diag.Diagnostics
	opts := rotation.Options{
		ClusterID:              int(m.ClusterID.ValueInt64()),
		RegenerateKubeconfig:   m.RegenerateKubeconfig.ValueBool(),
		RegenerateServiceToken: m.RegenerateServiceToken.ValueBool(),
		RecycleNodes:           m.RecycleNodes.ValueBool(),
		Verify:                 m.Verify.ValueBool(),
	}
	diags.Append(m.Namespaces.ElementsAs(ctx, &opts.Namespaces, false)...)
	if w := m.RestartWorkloads; w != nil {
		opts.RestartWorkloads = &rotation.RestartOptions{Kinds: rotation.WorkloadKinds}
		diags.Append(w.Namespaces.ElementsAs(ctx, &opts.RestartWorkloads.Namespaces, false)...)
		if !w.Kinds.IsNull() {
			diags.Append(w.Kinds.ElementsAs(ctx, &opts.RestartWorkloads.Kinds, false)...)
		}
	}
	return opts, diags
}

// describeRotationError turns a failed step into what the user should know:
// which step, what was already done, and that re-running apply resumes.
func describeRotationError(err error, clusterID int, timeout time.Duration) string {
	msg := err.Error()
	if hint := linodeHint(err, clusterID); hint != "" {
		msg += "\n\n" + hint
	}
	if errors.Is(err, context.DeadlineExceeded) {
		msg += fmt.Sprintf("\n\nThe create timeout (%s) ran out; raise it with timeouts { create = \"...\" } if the cluster is slow.", timeout)
	}
	return msg
}

// addRotationWarnings tells the user what a successful rotation could not
// settle by itself: what a resumed run found and did, the pods that used a
// deleted token secret, and the paused deployments left alone.
func addRotationWarnings(diags *diag.Diagnostics, opts rotation.Options, result *rotation.Result) {
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
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
