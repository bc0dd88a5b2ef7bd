package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/action/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/action"
	"github.com/hashicorp/terraform-plugin-framework/action/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/ske"
)

var (
	_ action.ActionWithConfigure      = (*skeRotationPhaseAction)(nil)
	_ action.ActionWithValidateConfig = (*skeRotationPhaseAction)(nil)
)

func newSKEStartRotationAction() action.Action { return &skeRotationPhaseAction{complete: false} }

func newSKECompleteRotationAction() action.Action { return &skeRotationPhaseAction{complete: true} }

// skeRotationPhaseAction runs one phase of SKE's credentials rotation when
// invoked: start (to PREPARED) or complete (to COMPLETED), with the same
// code as kubecreds_ske_credentials_rotation, resuming what it finds.
type skeRotationPhaseAction struct {
	complete bool
	actionBase
}

type skeRotationPhaseModel struct {
	ProjectID   types.String   `tfsdk:"project_id"`
	Region      types.String   `tfsdk:"region"`
	ClusterName types.String   `tfsdk:"cluster_name"`
	Timeouts    timeouts.Value `tfsdk:"timeouts"`
}

func (m skeRotationPhaseModel) ref() ske.ClusterRef {
	return ske.ClusterRef{ProjectID: m.ProjectID.ValueString(), Region: m.Region.ValueString(), Name: m.ClusterName.ValueString()}
}

func (a *skeRotationPhaseAction) Metadata(_ context.Context, req action.MetadataRequest, resp *action.MetadataResponse) {
	if a.complete {
		resp.TypeName = req.ProviderTypeName + "_ske_complete_credentials_rotation"
		return
	}
	resp.TypeName = req.ProviderTypeName + "_ske_start_credentials_rotation"
}

func (a *skeRotationPhaseAction) Schema(ctx context.Context, _ action.SchemaRequest, resp *action.SchemaResponse) {
	description := "Starts a STACKIT SKE cluster's credentials rotation now, when invoked " +
		"(`terraform apply -invoke=action.kubecreds_ske_start_credentials_rotation.<name>`), and waits until it is `PREPARED`: the nodes " +
		"are rolled, and old and new credentials both work. Update your out-of-cluster clients then, and complete the rotation with " +
		"`kubecreds_ske_complete_credentials_rotation`. A rotation already `PREPARING` is waited for, one already `PREPARED` is left as it is " +
		"(with a warning), and one `COMPLETING` is waited out before the new one starts. Needs Terraform 1.14 or later and the provider's `stackit` settings."
	if a.complete {
		description = "Completes a STACKIT SKE cluster's credentials rotation now, when invoked " +
			"(`terraform apply -invoke=action.kubecreds_ske_complete_credentials_rotation.<name>`), and waits until it is `COMPLETED`: " +
			"kubeconfigs issued before the start and tokens signed with the old key stop working. A rotation still `PREPARING` is waited for " +
			"first; one already `COMPLETING` is waited for; one already `COMPLETED` is left as it is (with a warning). A cluster that never " +
			"started one is an error. Needs Terraform 1.14 or later and the provider's `stackit` settings."
	}
	resp.Schema = schema.Schema{
		Description: description,
		Attributes: map[string]schema.Attribute{
			"project_id":   schema.StringAttribute{Description: "STACKIT project ID.", Required: true, Validators: notEmpty()},
			"region":       schema.StringAttribute{Description: descSKERegion, Required: true, Validators: notEmpty()},
			"cluster_name": schema.StringAttribute{Description: descSKEClusterName, Required: true, Validators: skeClusterNameValidators()},
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx),
		},
	}
}

func (a *skeRotationPhaseAction) ValidateConfig(ctx context.Context, req action.ValidateConfigRequest, resp *action.ValidateConfigResponse) {
	var m skeRotationPhaseModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	checkInvokeTimeout(ctx, m.Timeouts, &resp.Diagnostics)
}

func (a *skeRotationPhaseAction) Invoke(ctx context.Context, req action.InvokeRequest, resp *action.InvokeResponse) {
	var m skeRotationPhaseModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := m.Timeouts.Invoke(ctx, defaultSKEPhaseTimeout)
	resp.Diagnostics.Append(diags...)
	positiveTimeout("invoke", timeout, diags, &resp.Diagnostics)
	client, diags := a.data.SKE()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	progress := &progressSteps{send: resp.SendProgress, start: a.data.clock.Now(), now: a.data.clock.Now}
	rot := a.data.skeRotator(client, func(ctx context.Context, msg string, fields map[string]any) {
		tflog.Info(ctx, msg, fields)
		progress.say("%s", msg)
	})
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ref := m.ref()
	if !a.complete {
		progress.say("Starting the credentials rotation of SKE cluster %s", ref)
		out, err := rot.Prepare(ctx, ref)
		if err != nil {
			resp.Diagnostics.AddError("Cannot start the credentials rotation of SKE cluster "+ref.String(), describeSKEPhaseError(ctx, err, ref, timeout, "invoke"))
			return
		}
		switch {
		case out.Started:
		case out.Elsewhere:
			resp.Diagnostics.AddWarning("Credentials rotation started elsewhere",
				"While this invoke asked, someone else (the STACKIT portal, another pipeline) started a credentials rotation of SKE cluster "+ref.String()+
					" (started "+startedAt(out.Cluster)+"). SKE refused a second start; this invoke waited until that one was PREPARED.")
		case out.Found == ske.PhasePrepared:
			resp.Diagnostics.AddWarning("Credentials rotation already prepared",
				"SKE cluster "+ref.String()+" already had a credentials rotation PREPARED (started "+startedAt(out.Cluster)+"), so none was started: "+
					"complete it first (kubecreds_ske_complete_credentials_rotation), then start a new one.")
		default:
			// An earlier invoke (or someone else) started it, and it was still
			// PREPARING: this one waited for it rather than starting another.
			resp.Diagnostics.AddWarning("Credentials rotation already under way",
				"SKE cluster "+ref.String()+" was already "+out.Found+" (started "+startedAt(out.Cluster)+"): this invoke waited until it was "+
					"PREPARED instead of starting another.")
		}
		progress.say("SKE cluster %s: credentials rotation %s after %s (started %s); old and new credentials both work until it is completed",
			ref, out.Cluster.Status.CredentialsRotation.Phase, progress.since(), startedAt(out.Cluster))
		return
	}
	progress.say("Completing the credentials rotation of SKE cluster %s", ref)
	out, err := rot.Complete(ctx, ref)
	if err != nil {
		resp.Diagnostics.AddError("Cannot complete the credentials rotation of SKE cluster "+ref.String(), describeSKEPhaseError(ctx, err, ref, timeout, "invoke"))
		return
	}
	switch {
	case out.Completed:
	case out.Elsewhere:
		resp.Diagnostics.AddWarning("Credentials rotation completed elsewhere",
			"While this invoke asked, someone else completed the credentials rotation of SKE cluster "+ref.String()+"; SKE refused a second complete, and this invoke waited until it was COMPLETED.")
	case out.Found == ske.PhaseCompleted:
		resp.Diagnostics.AddWarning("Credentials rotation already completed",
			fmt.Sprintf("SKE cluster %s had no rotation waiting to be completed: it was COMPLETED already, so nothing was done.", ref))
	default:
		// An earlier invoke (or someone else) asked, and it was still
		// COMPLETING: this one waited for it.
		progress.say("SKE cluster %s was already %s: waited for it rather than asking again", ref, out.Found)
	}
	progress.say("SKE cluster %s: credentials rotation %s after %s; credentials from before its start no longer work",
		ref, out.Cluster.Status.CredentialsRotation.Phase, progress.since())
}
