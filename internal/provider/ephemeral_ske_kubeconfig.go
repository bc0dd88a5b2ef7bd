package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/ske"
)

// skeExpirationRange is what the SKE API accepts for a kubeconfig's
// expirationSeconds.
var skeExpirationRange = durationBetween{min: ske.MinKubeconfigExpiration, max: ske.MaxKubeconfigExpiration, example: "1h"}

// An SKE cluster name, as the SKE API's own pattern has it (the clusterName
// path parameter of the v2 API): 1 to 11 lowercase letters, digits and
// hyphens, starting and ending with a letter or digit.
var skeClusterName = regexp.MustCompile(ske.ClusterNamePattern)

const (
	descSKERegion      = "Region of the cluster, e.g. `eu01`."
	descSKEClusterName = "Name of the SKE cluster."
)

func skeClusterNameValidators() []validator.String {
	return []validator.String{stringvalidator.RegexMatches(skeClusterName,
		"must be an SKE cluster name: 1 to 11 lowercase letters, digits and hyphens, starting and ending with a letter or digit (the SKE API's pattern "+ske.ClusterNamePattern+")")}
}

func notEmpty() []validator.String { return []validator.String{stringvalidator.LengthAtLeast(1)} }

type skeKubeconfig struct {
	ephemeralBase
}

var _ ephemeral.EphemeralResourceWithConfigure = (*skeKubeconfig)(nil)

func newSKEKubeconfig() ephemeral.EphemeralResource { return &skeKubeconfig{} }

type skeKubeconfigModel struct {
	ProjectID   types.String `tfsdk:"project_id"`
	Region      types.String `tfsdk:"region"`
	ClusterName types.String `tfsdk:"cluster_name"`
	TTL         duration     `tfsdk:"ttl"`
	Kubeconfig  types.String `tfsdk:"kubeconfig"`
	Host        types.String `tfsdk:"host"`
	ClusterCA   types.String `tfsdk:"cluster_ca_certificate"`
	ClientCert  types.String `tfsdk:"client_certificate"`
	ClientKey   types.String `tfsdk:"client_key"`
	Token       types.String `tfsdk:"token"`
	ExpiresAt   types.String `tfsdk:"expires_at"`
}

func (r *skeKubeconfig) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_ske_kubeconfig"
}

func (r *skeKubeconfig) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "A short-lived admin kubeconfig of a STACKIT SKE cluster, from the SKE API (`POST …/kubeconfig`). " +
			"It never enters the state or a plan. Each open issues a new one. **SKE cannot revoke one before it expires**: the only way to " +
			"invalidate issued kubeconfigs early is to complete a credentials rotation (`kubecreds_ske_credentials_rotation`), which drops " +
			"the CA that signed them; so keep `ttl` short. Needs the provider's `stackit` settings.",
		Attributes: map[string]schema.Attribute{
			"project_id":   schema.StringAttribute{Description: "STACKIT project ID (a UUID).", Required: true, Validators: notEmpty()},
			"region":       schema.StringAttribute{Description: descSKERegion, Required: true, Validators: notEmpty()},
			"cluster_name": schema.StringAttribute{Description: descSKEClusterName, Required: true, Validators: skeClusterNameValidators()},
			"ttl": schema.StringAttribute{
				Description: "How long the kubeconfig is valid, as a Go duration: from `10m` to `4320h` (180 days), " +
					"whole seconds. Default `1h`.",
				CustomType: durationType{bounds: skeExpirationRange},
				Optional:   true,
				Validators: []validator.String{skeExpirationRange},
			},
			"kubeconfig": schema.StringAttribute{
				Description: "The kubeconfig (YAML) the SKE API issued.",
				Computed:    true,
				Sensitive:   true,
			},
			"host": schema.StringAttribute{
				Description: "The cluster's API server URL, for a kubernetes or helm provider block.",
				Computed:    true,
			},
			"cluster_ca_certificate": schema.StringAttribute{
				Description: "PEM-encoded CA certificate(s) of the API server (during a rotation, old and new).",
				Computed:    true,
			},
			"client_certificate": schema.StringAttribute{
				Description: "PEM-encoded client certificate, when the kubeconfig authenticates with one (SKE's do: Gardener's admin kubeconfigs carry a client certificate).",
				Computed:    true,
			},
			"client_key": schema.StringAttribute{
				Description: "PEM-encoded key of the client certificate.",
				Computed:    true,
				Sensitive:   true,
			},
			"token": schema.StringAttribute{
				Description: "Bearer token, when the kubeconfig authenticates with one instead; null otherwise.",
				Computed:    true,
				Sensitive:   true,
			},
			"expires_at": schema.StringAttribute{
				Description: "When the kubeconfig expires (RFC 3339), as the SKE API says.",
				Computed:    true,
			},
		},
	}
}

func (r *skeKubeconfig) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m skeKubeconfigModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	client, diags := r.data.SKE()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	expiration := time.Hour
	if !m.TTL.IsNull() {
		d, diags := m.TTL.ValueGoDuration()
		resp.Diagnostics.Append(diags...)
		if resp.Diagnostics.HasError() {
			return
		}
		expiration = d
	}
	ref := ske.ClusterRef{ProjectID: m.ProjectID.ValueString(), Region: m.Region.ValueString(), Name: m.ClusterName.ValueString()}
	var kc *ske.Kubeconfig
	err := r.data.retry.Do(ctx, func() (err error) {
		kc, err = client.CreateKubeconfig(ctx, ref, expiration)
		return err
	})
	if err != nil {
		resp.Diagnostics.AddError("Cannot get a kubeconfig of SKE cluster "+ref.String(), describeSKEError(err, ref))
		return
	}
	cfg, err := kubeconfig.ParseServed([]byte(kc.Kubeconfig))
	if err != nil {
		resp.Diagnostics.AddError("The SKE API answered an unusable kubeconfig", err.Error())
		return
	}
	m.Kubeconfig = types.StringValue(kc.Kubeconfig)
	m.Host = types.StringValue(cfg.Host)
	m.ClusterCA = stringOrNull(string(cfg.CAData))
	m.ClientCert, m.ClientKey = stringOrNull(string(cfg.CertData)), stringOrNull(string(cfg.KeyData))
	m.Token = stringOrNull(cfg.BearerToken)
	m.ExpiresAt = types.StringValue(kc.ExpirationTimestamp.UTC().Format(time.RFC3339))
	tflog.Info(ctx, "issued a short-lived SKE kubeconfig", map[string]any{"cluster": ref.String(), "expires_at": m.ExpiresAt.ValueString()})
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
}

// describeSKEError says what to fix for the SKE API errors a user can fix.
func describeSKEError(err error, ref ske.ClusterRef) string {
	var te *ske.TokenError
	if errors.As(err, &te) {
		hint := "check the stackit settings: the service account key (its credentials.tokenEndpoint), " +
			"stackit.token_custom_endpoint (STACKIT_TOKEN_BASEURL), and for workload identity federation the federated token"
		if te.Transient() {
			hint = "it may be a passing outage; apply again later"
		}
		return err.Error() + ": " + hint + "."
	}
	switch ske.StatusCode(err) {
	case http.StatusUnauthorized:
		return "The SKE API rejected the credentials (401): check the provider's stackit settings or the STACKIT_* variables. (" + err.Error() + ")"
	case http.StatusForbidden:
		return "The service account may not do this on project " + ref.ProjectID + " (403): it needs the SKE admin role there. (" + err.Error() + ")"
	case http.StatusNotFound:
		if !ske.ClusterNotFound(err) {
			return "The SKE API's address answered 404 without the API's error body (a gateway, or a wrong stackit.ske_custom_endpoint): " + err.Error()
		}
		return fmt.Sprintf("No SKE cluster %q in project %s, region %s (404): check project_id, region and cluster_name. (%s)",
			ref.Name, ref.ProjectID, ref.Region, err.Error())
	}
	return err.Error()
}

func stringOrNull(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}
