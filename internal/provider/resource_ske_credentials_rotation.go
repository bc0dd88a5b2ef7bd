package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/ske"
)

var (
	_ resource.ResourceWithConfigure   = (*skeRotationResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*skeRotationResource)(nil)
	_ resource.ResourceWithImportState = (*skeRotationResource)(nil)
)

// complete_after may range from nothing to a year.
var completeAfterRange = durationBetween{min: 0, max: 8760 * time.Hour, example: "168h"}

// The SDK's own waiters give each phase 45 minutes.
const defaultSKEPhaseTimeout = 45 * time.Minute

func newSKERotationResource() resource.Resource { return &skeRotationResource{} }

type skeRotationResource struct {
	resourceBase
}

type skeRotationModel struct {
	ID            types.String      `tfsdk:"id"`
	ProjectID     types.String      `tfsdk:"project_id"`
	Region        types.String      `tfsdk:"region"`
	ClusterName   types.String      `tfsdk:"cluster_name"`
	Keepers       types.Map         `tfsdk:"keepers"`
	RotateEvery   duration          `tfsdk:"rotate_every"`
	CompleteAfter duration          `tfsdk:"complete_after"`
	Complete      types.Bool        `tfsdk:"complete"`
	Timeouts      timeouts.Value    `tfsdk:"timeouts"`
	Phase         types.String      `tfsdk:"phase"`
	StartedAt     timetypes.RFC3339 `tfsdk:"started_at"`
	CompletedAt   timetypes.RFC3339 `tfsdk:"completed_at"`
	CompletesAt   timetypes.RFC3339 `tfsdk:"completes_at"`
}

func (r *skeRotationResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_ske_credentials_rotation"
}

func (r *skeRotationResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	requiresReplace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		Description: "Rotates a STACKIT SKE cluster's credentials (its CA, etcd encryption key and service-account signing key) in SKE's two " +
			"phases, across applies. The apply that creates the resource (or replaces it: `keepers` changed, `rotate_every` due) **starts** " +
			"a rotation and waits until it is `PREPARED`: the nodes are rolled and old and new credentials both work. Update your " +
			"out-of-cluster clients then (for example with `kubecreds_ske_kubeconfig`). A later apply **completes** it, once `complete_after` " +
			"has passed since the start or when `complete = true`: the old credentials (kubeconfigs issued before the start, tokens signed " +
			"with the old key) stop working. The plan shows the phase the apply moves the cluster to (`phase`), and a warning says why. " +
			"A phase found under way (`PREPARING`, `COMPLETING`) is waited for, not started again, so a failed or killed apply is finished " +
			"by the next one. Needs the provider's `stackit` settings.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description:   "`project_id/region/cluster_name`.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"project_id": schema.StringAttribute{
				Description:   "STACKIT project ID. Changing it forces a new resource.",
				Required:      true,
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
				PlanModifiers: requiresReplace,
			},
			"region": schema.StringAttribute{
				Description:   "Region of the cluster, e.g. `eu01`. Changing it forces a new resource.",
				Required:      true,
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
				PlanModifiers: requiresReplace,
			},
			"cluster_name": schema.StringAttribute{
				Description:   "Name of the SKE cluster. Changing it forces a new resource.",
				Required:      true,
				Validators:    skeClusterNameValidators(),
				PlanModifiers: requiresReplace,
			},
			"keepers": schema.MapAttribute{
				Description: "Arbitrary values that start a new rotation when any of them changes (forces a new resource). " +
					"A rotation still `PREPARED` is then adopted, not started again: complete it first.",
				ElementType:   types.StringType,
				Optional:      true,
				Validators:    []validator.Map{mapvalidator.NoNullValues()},
				PlanModifiers: []planmodifier.Map{mapplanmodifier.RequiresReplace()},
			},
			"rotate_every": schema.StringAttribute{
				CustomType: durationType{bounds: rotateEveryRange},
				Description: "Start a new rotation when the last one (completed) started longer ago than this Go duration, between 1h and " +
					"87600h. The plan then replaces the resource, with a warning saying why.",
				Optional:   true,
				Validators: []validator.String{rotateEveryRange},
			},
			"complete_after": schema.StringAttribute{
				CustomType: durationType{bounds: completeAfterRange},
				Description: "Complete the rotation at the first apply this long (Go duration, 0s to 8760h) after it started, time to " +
					"update the out-of-cluster clients. Unset: complete only when `complete = true`.",
				Optional:   true,
				Validators: []validator.String{completeAfterRange},
			},
			"complete": schema.BoolAttribute{
				Description: "Complete the rotation at the next apply, whatever `complete_after` says (once your clients have new credentials). " +
					"Defaults to false. The apply that starts a rotation never completes it.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"phase": schema.StringAttribute{
				Description: "The rotation's phase, as SKE reports it: `NEVER`, `PREPARING`, `PREPARED`, `COMPLETING`, `COMPLETED`. " +
					"In a plan, the phase the apply moves the cluster to.",
				Computed: true,
			},
			"started_at": schema.StringAttribute{
				CustomType:  timetypes.RFC3339Type{},
				Description: "When the rotation started (SKE's `lastInitiationTime`), RFC 3339.",
				Computed:    true,
			},
			"completed_at": schema.StringAttribute{
				CustomType:  timetypes.RFC3339Type{},
				Description: "When the rotation completed (SKE's `lastCompletionTime`), RFC 3339; null until then.",
				Computed:    true,
			},
			"completes_at": schema.StringAttribute{
				CustomType:  timetypes.RFC3339Type{},
				Description: "When `complete_after` makes completion due, RFC 3339; null without `complete_after` or once completed.",
				Computed:    true,
			},
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true}),
		},
	}
}

func (m *skeRotationModel) ref() ske.ClusterRef {
	return ske.ClusterRef{ProjectID: m.ProjectID.ValueString(), Region: m.Region.ValueString(), Name: m.ClusterName.ValueString()}
}

// fromCluster records what SKE reports.
func (m *skeRotationModel) fromCluster(c *ske.Cluster) {
	rot := c.Status.CredentialsRotation
	m.Phase = types.StringValue(rot.Phase)
	m.StartedAt = rfc3339OrNull(rot.LastInitiationTime)
	m.CompletedAt = timetypes.NewRFC3339Null()
	if rot.Phase == ske.PhaseCompleted && rot.LastCompletionTime != nil {
		m.CompletedAt = rfc3339OrNull(rot.LastCompletionTime)
	}
	m.CompletesAt = timetypes.NewRFC3339Null()
	if every, d := m.CompleteAfter.ValueGoDuration(); !m.CompleteAfter.IsNull() && !d.HasError() && m.CompletedAt.IsNull() && rot.LastInitiationTime != nil {
		m.CompletesAt = timetypes.NewRFC3339TimeValue(rot.LastInitiationTime.Add(every).UTC())
	}
}

func rfc3339OrNull(t *time.Time) timetypes.RFC3339 {
	if t == nil {
		return timetypes.NewRFC3339Null()
	}
	return timetypes.NewRFC3339TimeValue(t.UTC().Truncate(time.Second))
}

// ModifyPlan decides what the apply does and says why: on create, start a
// rotation (to PREPARED); on update, complete one (to COMPLETED) when
// `complete` is set or complete_after has passed; replace (start anew)
// when rotate_every has passed since the last start.
func (r *skeRotationResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.data == nil {
		return
	}
	var plan skeRotationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.data.stackit.need(&resp.Diagnostics, "kubecreds_ske_credentials_rotation")
	checkTimeouts(ctx, plan.Timeouts, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	if req.State.Raw.IsNull() {
		plan.Phase = types.StringValue(ske.PhasePrepared)
		plan.StartedAt, plan.CompletedAt, plan.CompletesAt = timetypes.NewRFC3339Unknown(), timetypes.NewRFC3339Null(), timetypes.NewRFC3339Unknown()
		if plan.CompleteAfter.IsNull() {
			plan.CompletesAt = timetypes.NewRFC3339Null()
		}
		resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
		return
	}
	var state skeRotationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	plan.Phase, plan.StartedAt, plan.CompletedAt, plan.CompletesAt = state.Phase, state.StartedAt, state.CompletedAt, state.CompletesAt
	now := r.data.clock.Now()
	phase := state.Phase.ValueString()
	switch {
	case phase == ske.PhasePreparing || phase == ske.PhasePrepared || phase == ske.PhaseCompleting:
		if why := completionDue(plan, state, now); why != "" {
			plan.Phase, plan.CompletedAt, plan.CompletesAt = types.StringValue(ske.PhaseCompleted), timetypes.NewRFC3339Unknown(), timetypes.NewRFC3339Null()
			resp.Diagnostics.AddWarning("Credentials rotation will be completed",
				"This apply completes the credentials rotation of SKE cluster "+state.ref().String()+" (phase "+phase+" → COMPLETED): "+why+
					" Kubeconfigs issued before the rotation started, and service-account tokens signed with the old key, stop working.")
		} else if !plan.CompleteAfter.IsNull() {
			if every, d := plan.CompleteAfter.ValueGoDuration(); !d.HasError() {
				if started, d := state.StartedAt.ValueRFC3339Time(); !d.HasError() && !state.StartedAt.IsNull() {
					plan.CompletesAt = timetypes.NewRFC3339TimeValue(started.Add(every).UTC())
				}
			}
		}
	case !plan.RotateEvery.IsNull() && !plan.RotateEvery.IsUnknown():
		every, d := plan.RotateEvery.ValueGoDuration()
		if d.HasError() {
			resp.Diagnostics.Append(d...)
			return
		}
		due, _, why := rotationDue(state.StartedAt, every, now, "starts a new credentials rotation (to PREPARED)")
		if due {
			resp.RequiresReplace = append(resp.RequiresReplace, path.Root("started_at"))
			plan.Phase, plan.StartedAt, plan.CompletedAt = types.StringValue(ske.PhasePrepared), timetypes.NewRFC3339Unknown(), timetypes.NewRFC3339Null()
			resp.Diagnostics.AddAttributeWarning(path.Root("rotate_every"), "Credentials rotation due",
				why)
		}
	}
	if plan.CompleteAfter.IsNull() {
		plan.CompletesAt = timetypes.NewRFC3339Null()
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// completionDue says why this apply completes the rotation, or "" if it
// does not.
func completionDue(plan, state skeRotationModel, now time.Time) string {
	if plan.Complete.ValueBool() {
		return "complete = true."
	}
	if plan.CompleteAfter.IsNull() || plan.CompleteAfter.IsUnknown() {
		return ""
	}
	every, d := plan.CompleteAfter.ValueGoDuration()
	started, d2 := state.StartedAt.ValueRFC3339Time()
	if d.HasError() || d2.HasError() || state.StartedAt.IsNull() {
		return ""
	}
	if due := started.Add(every); !now.Before(due) {
		return fmt.Sprintf("it started at %s and complete_after = %q, so completion was due at %s.",
			started.UTC().Format(time.RFC3339), formatDuration(every), due.UTC().Format(time.RFC3339))
	}
	return ""
}

func (r *skeRotationResource) rotator(ctx context.Context) (*ske.Rotator, diag.Diagnostics) {
	client, diags := r.data.SKE()
	if diags.HasError() {
		return nil, diags
	}
	return r.data.skeRotator(client, func(ctx context.Context, msg string, fields map[string]any) { tflog.Info(ctx, msg, fields) }), nil
}

// skeRotator runs SKE's rotation phases with this provider's retries; the
// resource and the actions share it.
func (d *providerData) skeRotator(client *ske.Client, log func(ctx context.Context, msg string, fields map[string]any)) *ske.Rotator {
	return &ske.Rotator{API: client, Retry: d.retry, Log: log,
		Warn: func(ctx context.Context, msg string, fields map[string]any) { tflog.Warn(ctx, msg, fields) }}
}

func (r *skeRotationResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan skeRotationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultSKEPhaseTimeout)
	resp.Diagnostics.Append(diags...)
	rot, diags := r.rotator(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ref := plan.ref()
	out, err := rot.Prepare(ctx, ref)
	if err != nil {
		resp.Diagnostics.AddError("Cannot start the credentials rotation of SKE cluster "+ref.String(), describeSKEPhaseError(ctx, err, ref, timeout, "create"))
		return
	}
	if !out.Started {
		resp.Diagnostics.AddWarning("Credentials rotation adopted",
			"SKE cluster "+ref.String()+" already had a credentials rotation under way (started "+startedAt(out.Cluster)+"): this apply waited for it "+
				"to be PREPARED and adopted it instead of starting another.")
	}
	plan.ID = types.StringValue(ref.String())
	plan.fromCluster(out.Cluster)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func startedAt(c *ske.Cluster) string {
	if t := c.Status.CredentialsRotation.LastInitiationTime; t != nil {
		return t.UTC().Format(time.RFC3339)
	}
	return "at an unknown time"
}

func (r *skeRotationResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state skeRotationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	client, diags := r.data.SKE()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ref := state.ref()
	var c *ske.Cluster
	err := r.data.retry.Do(ctx, func() (err error) {
		c, err = client.GetCluster(ctx, ref)
		return err
	})
	if err != nil {
		// Only the SKE API's own word that the cluster is gone takes the
		// rotation out of the state: a token endpoint's or a gateway's 404
		// must not (the next apply would start a rotation nobody asked for).
		gone, confirmErr := client.ClusterGone(ctx, ref, err)
		if gone {
			tflog.Info(ctx, "SKE cluster is gone; removing the rotation from the state", map[string]any{"cluster": ref.String()})
			resp.State.RemoveResource(ctx)
			return
		}
		err = confirmErr
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read SKE cluster "+ref.String(), describeSKEError(err, ref))
		return
	}
	state.ID = types.StringValue(ref.String())
	state.fromCluster(c)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update completes the rotation when the plan says so; otherwise it only
// records the new settings.
func (r *skeRotationResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state skeRotationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.Phase.ValueString() != ske.PhaseCompleted || state.Phase.ValueString() == ske.PhaseCompleted {
		resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultSKEPhaseTimeout)
	resp.Diagnostics.Append(diags...)
	rot, diags := r.rotator(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ref := plan.ref()
	out, err := rot.Complete(ctx, ref)
	if err != nil {
		resp.Diagnostics.AddError("Cannot complete the credentials rotation of SKE cluster "+ref.String(), describeSKEPhaseError(ctx, err, ref, timeout, "update"))
		return
	}
	if !out.Completed {
		how := "this apply found it " + out.Found
		if out.Elsewhere {
			how = "the SKE API refused this apply's complete because another run had just sent one"
		}
		resp.Diagnostics.AddWarning("Credentials rotation completed by another run",
			"The credentials rotation of SKE cluster "+ref.String()+" was completed by someone else ("+how+
				"). This apply waited until it was COMPLETED and recorded that, without completing it again.")
	}
	plan.fromCluster(out.Cluster)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete forgets the rotation; the cluster is not changed (a rotation still
// PREPARED stays so until someone completes it).
func (r *skeRotationResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state skeRotationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if p := state.Phase.ValueString(); p == ske.PhasePrepared || p == ske.PhasePreparing {
		resp.Diagnostics.AddWarning("Credentials rotation left "+p,
			"The resource is removed from the state, but SKE cluster "+state.ref().String()+" stays in phase "+p+
				": the old credentials keep working until the rotation is completed (in the STACKIT portal, or by a resource like this one).")
	}
}

// ImportState adopts a cluster in whatever phase it is: the ID is
// `project_id/region/cluster_name`.
func (r *skeRotationResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	parts := strings.Split(req.ID, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || !skeClusterName.MatchString(parts[2]) {
		resp.Diagnostics.AddError("Invalid import id",
			fmt.Sprintf("Import an SKE credentials rotation as project_id/region/cluster_name, e.g. "+
				"`terraform import kubecreds_ske_credentials_rotation.x 8b8d1a3e-…/eu01/prod`; got %q.", req.ID))
		return
	}
	state := skeRotationModel{
		ID: types.StringValue(req.ID), ProjectID: types.StringValue(parts[0]), Region: types.StringValue(parts[1]), ClusterName: types.StringValue(parts[2]),
		Keepers: types.MapNull(types.StringType), RotateEvery: nullDuration(rotateEveryRange), CompleteAfter: nullDuration(completeAfterRange),
		Complete: types.BoolValue(false),
		Timeouts: timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{"create": types.StringType, "update": types.StringType})},
		Phase:    types.StringUnknown(), StartedAt: timetypes.NewRFC3339Null(), CompletedAt: timetypes.NewRFC3339Null(), CompletesAt: timetypes.NewRFC3339Null(),
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// describeSKEPhaseError is describeSKEError for a phase that failed or ran
// out of time: it says that applying again resumes.
func describeSKEPhaseError(ctx context.Context, err error, ref ske.ClusterRef, timeout time.Duration, timeoutName string) string {
	msg := describeSKEError(err, ref)
	switch {
	case errors.Is(err, ske.ErrNotRotatable):
		msg += "\n\nNothing was changed."
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		// The phase's own timeout (ctx's) ran out, whatever the request
		// under way made of it.
		msg += fmt.Sprintf("\n\nThe timeout (%s) ran out; the phase goes on in SKE. Apply again to wait for it (it is not started again), "+
			"or raise the timeout with timeouts { %s = \"...\" }.", timeout, timeoutName)
	default:
		msg += "\n\nApply again to resume: a phase under way is waited for, not started again."
	}
	return msg
}
