package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/ephemeralvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
)

var (
	_ ephemeral.EphemeralResource                     = (*shortLivedKubeconfig)(nil)
	_ ephemeral.EphemeralResourceWithConfigure        = (*shortLivedKubeconfig)(nil)
	_ ephemeral.EphemeralResourceWithClose            = (*shortLivedKubeconfig)(nil)
	_ ephemeral.EphemeralResourceWithValidateConfig   = (*shortLivedKubeconfig)(nil)
	_ ephemeral.EphemeralResourceWithConfigValidators = (*shortLivedKubeconfig)(nil)
)

const (
	modeServiceAccount    = "service_account"
	modeClientCertificate = "client_certificate"
	openTimeout           = 5 * time.Minute
)

// csrSignTimeout bounds the wait for a client certificate after its request
// is approved: a signer answers within a second or two, and a cluster
// without one never does.
const csrSignTimeout = 10 * time.Second

// ttl may range from the API server's TokenRequest minimum to six months.
var ttlRange = durationBetween{min: kubeconfig.MinTTL, max: 4320 * time.Hour, example: "1h"}

func newShortLivedKubeconfig() ephemeral.EphemeralResource { return &shortLivedKubeconfig{} }

type shortLivedKubeconfig struct {
	ephemeralBase
}

type shortLivedKubeconfigModel struct {
	LKEClusterID   wholeNumber  `tfsdk:"lke_cluster_id"`
	BaseKubeconfig types.String `tfsdk:"base_kubeconfig"`
	// AllowExecPlugins lets base_kubeconfig's exec plugin run.
	AllowExecPlugins types.Bool           `tfsdk:"allow_exec_plugins"`
	TTL              duration             `tfsdk:"ttl"`
	Mode             types.String         `tfsdk:"mode"`
	ServiceAccount   *serviceAccountModel `tfsdk:"service_account"`
	Audiences        types.List           `tfsdk:"audiences"`
	RevokeOnClose    types.Bool           `tfsdk:"revoke_on_close"`
	User             types.String         `tfsdk:"user"`
	Groups           types.List           `tfsdk:"groups"`
	Kubeconfig       types.String         `tfsdk:"kubeconfig"`
	Host             types.String         `tfsdk:"host"`
	ClusterCA        types.String         `tfsdk:"cluster_ca_certificate"`
	Token            types.String         `tfsdk:"token"`
	ClientCert       types.String         `tfsdk:"client_certificate"`
	ClientKey        types.String         `tfsdk:"client_key"`
	ExpiresAt        types.String         `tfsdk:"expires_at"`
	ContextName      types.String         `tfsdk:"context_name"`
}

type serviceAccountModel struct {
	Namespace types.String `tfsdk:"namespace"`
	Name      types.String `tfsdk:"name"`
}

func (r *shortLivedKubeconfig) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_short_lived_kubeconfig"
}

func (r *shortLivedKubeconfig) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Issues a kubeconfig that lives only as long as it is needed: it expires after `ttl`, never enters the state or a plan, " +
			"and (in `service_account` mode) is revoked when the Terraform run ends. Use it to configure the kubernetes or helm provider, " +
			"or a `local-exec`, without a long-lived admin kubeconfig. The cluster is `lke_cluster_id` (reached through the Linode API), " +
			"`base_kubeconfig`, or else the provider's `kubernetes` block — exactly one. Needs Terraform 1.10 or later (or OpenTofu 1.11).",
		Attributes: map[string]schema.Attribute{
			"lke_cluster_id": schema.Int64Attribute{
				CustomType:  wholeNumberType{example: clusterIDExample},
				Description: "ID of an LKE cluster, reached with the kubeconfig the Linode API serves. Conflicts with `base_kubeconfig`.",
				Optional:    true,
				Validators:  []validator.Int64{int64validator.AtLeast(1)},
			},
			"base_kubeconfig": schema.StringAttribute{
				Description: "A kubeconfig (YAML) whose current context reaches the cluster, e.g. `base64decode(linode_lke_cluster.x.kubeconfig)`. " +
					"Conflicts with `lke_cluster_id`.",
				Optional:   true,
				Sensitive:  true,
				Validators: []validator.String{validKubeconfig{}},
			},
			"allow_exec_plugins": schema.BoolAttribute{Description: descAllowExecPlugins, Optional: true},
			"ttl": schema.StringAttribute{
				Description: "How long the credentials are valid, as a Go duration between 10m (the API server's minimum for a token) " +
					"and 4320h (six months), e.g. `\"1h\"`.",
				CustomType: durationType{bounds: ttlRange},
				Required:   true,
				Validators: []validator.String{ttlRange},
			},
			"mode": schema.StringAttribute{
				Description: "`service_account` (default): a TokenRequest token bound to a Secret created for this run, revocable. " +
					"`client_certificate`: a client certificate for `user` and `groups`, signed by the cluster's " +
					"`kubernetes.io/kube-apiserver-client` signer; certificates cannot be revoked before they expire.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.OneOf(modeServiceAccount, modeClientCertificate)},
			},
			"audiences": schema.ListAttribute{
				Description: "Audiences of the token (service_account mode). Defaults to the API server's.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1))},
			},
			"revoke_on_close": schema.BoolAttribute{
				Description: "Delete the token's bound Secret when the run ends, which revokes the token (service_account mode). Defaults to true. " +
					"With false the token stays valid until it expires; its Secret is removed by a later open after that.",
				Optional: true,
			},
			"user": schema.StringAttribute{
				Description: "User name (certificate CN), in client_certificate mode, where it is required.",
				Optional:    true,
				Validators:  []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"groups": schema.ListAttribute{
				Description: "Groups (certificate O), in client_certificate mode. `system:masters` is not allowed: the API server refuses " +
					"to let the kubernetes.io/kube-apiserver-client signer issue certificates for it.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.List{listvalidator.ValueStringsAre(
					stringvalidator.LengthAtLeast(1),
					stringvalidator.NoneOfCaseInsensitive("system:masters"),
				)},
			},
			"kubeconfig": schema.StringAttribute{
				Description: "The kubeconfig (YAML): one cluster, user and context, current-context set.",
				Computed:    true,
				Sensitive:   true,
			},
			"host": schema.StringAttribute{
				Description: "URL of the API server.",
				Computed:    true,
			},
			"cluster_ca_certificate": schema.StringAttribute{
				Description: "PEM-encoded CA certificate of the API server.",
				Computed:    true,
			},
			"token": schema.StringAttribute{
				Description: "The bearer token (service_account mode; null otherwise).",
				Computed:    true,
				Sensitive:   true,
			},
			"client_certificate": schema.StringAttribute{
				Description: "PEM-encoded client certificate (client_certificate mode; null otherwise).",
				Computed:    true,
			},
			"client_key": schema.StringAttribute{
				Description: "PEM-encoded private key of the client certificate (client_certificate mode; null otherwise). Generated in the provider; never sent to the cluster.",
				Computed:    true,
				Sensitive:   true,
			},
			"expires_at": schema.StringAttribute{
				Description: "When the credentials expire, RFC 3339: from the API server's answer, or the certificate's NotAfter.",
				Computed:    true,
			},
			"context_name": schema.StringAttribute{
				Description: "Name of the kubeconfig's context: `<cluster>-<user>`.",
				Computed:    true,
			},
		},
		Blocks: map[string]schema.Block{
			"service_account": schema.SingleNestedBlock{
				Description: "Service account whose token is issued (service_account mode). For `lke_cluster_id` it defaults to `kube-system/lke-admin`; " +
					"otherwise it is required.",
				Attributes: map[string]schema.Attribute{
					"namespace": schema.StringAttribute{
						Description: "Namespace of the service account.",
						Optional:    true,
						Validators:  namespaceNameValidators(),
					},
					"name": schema.StringAttribute{
						Description: "Name of the service account.",
						Optional:    true,
						Validators:  []validator.String{serviceAccountName},
					},
				},
			},
		},
	}
}

func (r *shortLivedKubeconfig) ConfigValidators(context.Context) []ephemeral.ConfigValidator {
	return []ephemeral.ConfigValidator{
		ephemeralvalidator.Conflicting(path.MatchRoot("lke_cluster_id"), path.MatchRoot("base_kubeconfig")),
	}
}

// ValidateConfig checks that the attributes fit the mode.
func (r *shortLivedKubeconfig) ValidateConfig(ctx context.Context, req ephemeral.ValidateConfigRequest, resp *ephemeral.ValidateConfigResponse) {
	var m shortLivedKubeconfigModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || m.Mode.IsUnknown() {
		return
	}
	set := func(v interface{ IsNull() bool }) bool { return !v.IsNull() }
	if m.Mode.ValueString() == modeClientCertificate {
		if m.User.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("user"), "Missing user", `mode = "client_certificate" needs user: the user name the certificate is for (its CN).`)
		}
		for name, isSet := range map[string]bool{"service_account": m.ServiceAccount != nil, "audiences": set(m.Audiences), "revoke_on_close": set(m.RevokeOnClose)} {
			if isSet {
				resp.Diagnostics.AddAttributeError(path.Root(name), "Not for client certificates",
					name+` applies to mode = "service_account" only; a client certificate cannot be revoked before it expires.`)
			}
		}
		return
	}
	for name, isSet := range map[string]bool{"user": set(m.User), "groups": set(m.Groups)} {
		if isSet {
			resp.Diagnostics.AddAttributeError(path.Root(name), "Not for service-account tokens",
				name+` applies to mode = "client_certificate" only; a service-account token's identity is its service account.`)
		}
	}
	if sa := m.ServiceAccount; sa != nil && (sa.Namespace.IsNull() || sa.Name.IsNull()) {
		resp.Diagnostics.AddAttributeError(path.Root("service_account"), "Incomplete service account",
			"service_account needs both namespace and name.")
	}
}

// closeHandle is what Close needs to revoke a token. It stays in this
// provider process: Terraform opens and closes an ephemeral resource within
// one run of the provider, and the private data handed back to Terraform
// then holds no credential.
type closeHandle struct {
	issuer  *kubeconfig.Issuer
	bound   kubeconfig.BoundSecret
	expires time.Time
	// lkeClusterID is the LKE cluster the token was issued on (0 for other
	// sources): when a rotation in the same run has revoked the credential
	// captured at Open, Close reaches the cluster again through the
	// kubeconfig the Linode API serves now.
	lkeClusterID int
	data         *providerData
}

var openHandles sync.Map // handle id → *closeHandle

type privateData struct {
	Handle string `json:"handle"`
	Secret string `json:"secret"` // namespace/name, for messages
}

func (r *shortLivedKubeconfig) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m shortLivedKubeconfigModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	ttl, diags := m.TTL.ValueGoDuration()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	cfg, clusterName, diags := r.clusterConfig(ctx, &m)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if cfg.Insecure {
		// Without a CA to check against, a kubeconfig that verified would
		// not work: it is issued as its base is, and says so.
		resp.Diagnostics.AddWarning("The issued kubeconfig skips TLS verification",
			"The kubeconfig this ephemeral resource issues carries insecure-skip-tls-verify: true, as the configuration it was "+
				"issued from does: whoever uses it does not check the API server's certificate either. Give the source a "+
				"certificate-authority-data (or kubernetes.cluster_ca_certificate) instead.")
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		resp.Diagnostics.AddError("Cannot build a Kubernetes client", err.Error())
		return
	}
	issuer := &kubeconfig.Issuer{Client: client, Clock: r.data.clock}

	var creds kubeconfig.Credentials
	var expires time.Time
	if m.Mode.ValueString() == modeClientCertificate {
		var groups []string
		resp.Diagnostics.Append(m.Groups.ElementsAs(ctx, &groups, false)...)
		// A failed attempt removes its CertificateSigningRequest, so trying
		// again leaves nothing behind.
		var cert *kubeconfig.IssuedCertificate
		err := r.data.retry.Do(ctx, func() (err error) {
			cert, err = issuer.IssueClientCertificate(ctx, kubeconfig.ClientCertificate{
				User: m.User.ValueString(), Groups: groups, TTL: ttl, SignTimeout: csrSignTimeout,
			})
			return err
		})
		if errors.Is(err, kubeconfig.ErrCSRNotSigned) {
			resp.Diagnostics.AddAttributeError(path.Root("mode"), "This cluster does not sign client certificates",
				fmt.Sprintf("The CertificateSigningRequest was approved, but no certificate was issued within %s: the cluster's "+
					"kubernetes.io/kube-apiserver-client signer is off (as on managed control planes that do not sign client certificates). "+
					"Use mode = \"service_account\" instead: it issues a revocable token and needs no signer. (Nothing was left behind: the request was removed.)", csrSignTimeout))
			return
		}
		if err != nil {
			resp.Diagnostics.AddError("Cannot issue a client certificate", describeKubeError(err, cfg.Host))
			return
		}
		creds = kubeconfig.Credentials{User: m.User.ValueString(), ClientCertificate: cert.CertificatePEM, ClientKey: cert.KeyPEM}
		expires = cert.NotAfter
		m.ClientCert, m.ClientKey, m.Token = types.StringValue(string(cert.CertificatePEM)), types.StringValue(string(cert.KeyPEM)), types.StringNull()
	} else {
		ns, name, ok := r.serviceAccount(&m)
		if !ok {
			resp.Diagnostics.AddAttributeError(path.Root("service_account"), "Missing service account",
				"Name the service account whose token to issue: service_account { namespace = \"...\", name = \"...\" }. "+
					"(It defaults to kube-system/lke-admin only for lke_cluster_id.)")
			return
		}
		if n, err := issuer.CleanupExpired(ctx, ns); err != nil {
			tflog.Warn(ctx, "could not clean up expired bound Secrets", map[string]any{"namespace": ns, "error": err.Error()})
		} else if n > 0 {
			tflog.Info(ctx, "removed bound Secrets of expired short-lived tokens", map[string]any{"namespace": ns, "count": n})
		}
		var audiences []string
		resp.Diagnostics.Append(m.Audiences.ElementsAs(ctx, &audiences, false)...)
		// A failed attempt removes the Secret it made, so trying again
		// leaves nothing behind.
		var tok *kubeconfig.IssuedToken
		err := r.data.retry.Do(ctx, func() (err error) {
			tok, err = issuer.IssueServiceAccountToken(ctx, kubeconfig.ServiceAccountToken{Namespace: ns, Name: name, Audiences: audiences, TTL: ttl})
			return err
		})
		if err != nil {
			resp.Diagnostics.AddError("Cannot issue a service-account token", describeKubeError(err, cfg.Host))
			return
		}
		creds = kubeconfig.Credentials{User: name, Token: tok.Token}
		expires = tok.ExpiresAt
		m.Token, m.ClientCert, m.ClientKey = types.StringValue(tok.Token), types.StringNull(), types.StringNull()
		priv := privateData{Secret: tok.Bound.Namespace + "/" + tok.Bound.Name}
		if m.RevokeOnClose.IsNull() || m.RevokeOnClose.ValueBool() {
			priv.Handle = newHandle()
			openHandles.Store(priv.Handle, &closeHandle{
				issuer: issuer, bound: tok.Bound, expires: tok.ExpiresAt,
				lkeClusterID: int(m.LKEClusterID.ValueInt64()), data: r.data,
			})
		}
		b, _ := json.Marshal(priv)
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, "open", b)...)
		tflog.Info(ctx, "issued a short-lived service-account token", map[string]any{
			"service_account": ns + "/" + name, "bound_secret": priv.Secret, "expires_at": expires.UTC().Format(time.RFC3339), "revoke_on_close": priv.Handle != "",
		})
	}
	rendered, err := kubeconfig.Render(cfg, clusterName, creds)
	if err != nil {
		resp.Diagnostics.AddError("Cannot render the kubeconfig", err.Error())
		return
	}
	m.Kubeconfig = types.StringValue(string(rendered.YAML))
	m.Host = types.StringValue(rendered.Host)
	m.ClusterCA = types.StringValue(string(rendered.CAPEM))
	m.ExpiresAt = types.StringValue(expires.UTC().Format(time.RFC3339))
	// Signers backdate long certificates by 5 minutes, NotAfter included:
	// only a larger shortfall is a cap.
	if granted := expires.Sub(r.data.clock.Now()); granted < ttl-10*time.Minute {
		resp.Diagnostics.AddAttributeWarning(path.Root("ttl"), "The API server shortened the requested ttl",
			fmt.Sprintf("ttl asked for %s, but the API server granted only about %s (its --service-account-max-token-expiration, "+
				"or the signer's --cluster-signing-duration, is shorter): the credentials expire at %s, as expires_at says. "+
				"Ask for a ttl within the cluster's limit to silence this warning.",
				ttl, granted.Round(time.Minute), expires.UTC().Format(time.RFC3339)))
	}
	m.ContextName = types.StringValue(rendered.ContextName)
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
}

// Close revokes the token by deleting the Secret it is bound to.
func (r *shortLivedKubeconfig) Close(ctx context.Context, req ephemeral.CloseRequest, resp *ephemeral.CloseResponse) {
	b, diags := req.Private.GetKey(ctx, "open")
	resp.Diagnostics.Append(diags...)
	var priv privateData
	if len(b) == 0 || json.Unmarshal(b, &priv) != nil || priv.Handle == "" {
		return // nothing to revoke (client certificate, or revoke_on_close = false)
	}
	v, ok := openHandles.LoadAndDelete(priv.Handle)
	if !ok {
		resp.Diagnostics.AddError("Cannot revoke the short-lived token",
			fmt.Sprintf("This provider process did not open it, so it cannot reach the cluster to delete the Secret %s that the token is bound to. "+
				"Delete that Secret to revoke the token now; otherwise it stays valid until it expires.", priv.Secret))
		return
	}
	h := v.(*closeHandle)
	err := h.data.retry.Do(ctx, func() error { return h.issuer.Revoke(ctx, h.bound) })
	if apierrors.IsUnauthorized(err) {
		// The credential captured at Open is rejected now: a rotation in this
		// run (kubecreds_lke_secret_rotation revokes short-lived tokens too)
		// or someone else replaced it.
		if h.lkeClusterID == 0 {
			resp.Diagnostics.AddWarning("Short-lived token not revoked on close",
				fmt.Sprintf("The credentials this kubeconfig was issued with are now rejected (401), so Close cannot delete the Secret %s that the token "+
					"is bound to. If a rotation in this run replaced them, it may have revoked the token already. If the Secret still exists, delete it "+
					"to revoke the token now; otherwise the token stays valid until %s.", priv.Secret, h.expires.UTC().Format(time.RFC3339)))
			return
		}
		tflog.Info(ctx, "the credential captured at open is rejected; revoking with the kubeconfig the Linode API serves now",
			map[string]any{"lke_cluster_id": h.lkeClusterID, "bound_secret": priv.Secret})
		err = h.revokeThroughLinode(ctx)
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot revoke the short-lived token",
			fmt.Sprintf("%v. The token stays valid until %s; delete the Secret %s to revoke it now.", err, h.expires.UTC().Format(time.RFC3339), priv.Secret))
		return
	}
	tflog.Info(ctx, "revoked the short-lived token", map[string]any{"bound_secret": priv.Secret})
}

// revokeThroughLinode deletes the bound Secret with the kubeconfig the
// Linode API serves now. A Secret already gone (a rotation revoked it) is
// revoked all the same.
func (h *closeHandle) revokeThroughLinode(ctx context.Context) error {
	cfg, diags := h.data.lkeRESTConfig(ctx, h.lkeClusterID, openTimeout/2)
	if diags.HasError() {
		return fmt.Errorf("the credentials captured at open are rejected, and the current kubeconfig of LKE cluster %d cannot be had: %s", h.lkeClusterID, diags[0].Detail())
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	issuer := &kubeconfig.Issuer{Client: client, Clock: h.issuer.Clock}
	return h.data.retry.Do(ctx, func() error { return issuer.Revoke(ctx, h.bound) })
}

// clusterConfig resolves where the cluster is: lke_cluster_id,
// base_kubeconfig, or the provider's kubernetes block.
func (r *shortLivedKubeconfig) clusterConfig(ctx context.Context, m *shortLivedKubeconfigModel) (*rest.Config, string, diag.Diagnostics) {
	return r.data.clusterConfig(ctx, m.LKEClusterID, m.BaseKubeconfig, m.AllowExecPlugins, openTimeout/2, "issue a kubeconfig for", "the ephemeral resource")
}

// clusterConfig reaches a cluster as the types for any cluster do: an LKE
// cluster through the kubeconfig the Linode API serves (waiting at most
// wait), a base_kubeconfig, or else the provider's kubernetes block. It
// also names the cluster for a rendered kubeconfig. forWhat completes
// "No cluster to ..."; where names the block lke_cluster_id and
// base_kubeconfig are set on.
func (d *providerData) clusterConfig(ctx context.Context, lkeClusterID wholeNumber, base types.String, allowExec types.Bool, wait time.Duration,
	forWhat, where string) (*rest.Config, string, diag.Diagnostics) {
	var diags diag.Diagnostics
	switch {
	case !lkeClusterID.IsNull() && !lkeClusterID.IsUnknown():
		id := int(lkeClusterID.ValueInt64())
		cfg, d := d.lkeRESTConfig(ctx, id, wait)
		return cfg, fmt.Sprintf("lke%d", id), d
	case !base.IsNull() && !base.IsUnknown():
		raw := []byte(base.ValueString())
		cfg, err := kubeconfig.ParseValue(raw, allowExec.ValueBool())
		if err != nil {
			diags.AddAttributeError(path.Root("base_kubeconfig"), "Unusable base_kubeconfig", err.Error())
			return nil, "", diags
		}
		if note := kubeconfig.InsecureNote(cfg); note != "" {
			diags.AddAttributeWarning(path.Root("base_kubeconfig"), "TLS verification is off", "base_kubeconfig: "+note+".")
		}
		cfg.UserAgent = d.userAgent
		cfg.Timeout = d.requestTimeout
		name := kubeconfig.ClusterName(raw)
		if name == "" {
			name = "cluster"
		}
		return cfg, name, diags
	default:
		cfg, dd := d.KubernetesConfig()
		diags.Append(dd.Warnings()...)
		if dd.HasError() {
			diags.AddError("No cluster to "+forWhat,
				"Set lke_cluster_id or base_kubeconfig on "+where+", or configure the provider's kubernetes block. "+dd[0].Detail())
			return nil, "", diags
		}
		cfg.Timeout = d.requestTimeout
		return cfg, "kubernetes", diags
	}
}

func (r *shortLivedKubeconfig) serviceAccount(m *shortLivedKubeconfigModel) (namespace, name string, ok bool) {
	if sa := m.ServiceAccount; sa != nil {
		return sa.Namespace.ValueString(), sa.Name.ValueString(), true
	}
	if !m.LKEClusterID.IsNull() {
		return "kube-system", "lke-admin", true
	}
	return "", "", false
}

// describeKubeError adds what to do for errors a user can fix.
func describeKubeError(err error, host string) string {
	var status apierrors.APIStatus
	switch {
	case errors.Is(err, kubeconfig.ErrServiceAccountNotFound):
		return err.Error() + ": create it, or name an existing one in service_account { namespace, name }."
	case errors.As(err, &status):
		return err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return err.Error()
	default:
		return fmt.Sprintf("Cannot reach the Kubernetes API server at %s: %v", shownURL(host), err) // a password in the URL is masked
	}
}

func newHandle() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// validKubeconfig checks at validate time that a string is a kubeconfig with
// a usable current context, whose credentials are inline, and that names an
// exec plugin only when the allow_exec_plugins beside it is true
// (kubeconfig.CheckValue). The message never quotes the document.
type validKubeconfig struct{}

func (validKubeconfig) Description(context.Context) string {
	return "must be a kubeconfig (YAML) whose current context names a cluster and a user"
}

func (v validKubeconfig) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v validKubeconfig) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	var allow types.Bool
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, req.Path.ParentPath().AtName("allow_exec_plugins"), &allow)...)
	err := kubeconfig.ValidateValue([]byte(req.ConfigValue.ValueString()), allow.ValueBool() || allow.IsUnknown())
	switch {
	case errors.Is(err, kubeconfig.ErrRefused):
		resp.Diagnostics.AddAttributeError(req.Path, "Refused kubeconfig", fmt.Sprintf("%s: %v.", req.Path, err))
	case err != nil:
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid kubeconfig", fmt.Sprintf("%s %s: %v.", req.Path, v.Description(ctx), err))
	}
}

// descAllowExecPlugins describes allow_exec_plugins beside a base_kubeconfig.
const descAllowExecPlugins = "Let a credential plugin that `base_kubeconfig` names (`users[].exec`, such as `aws eks get-token` " +
	"or `gke-gcloud-auth-plugin`) run. Without it, a `base_kubeconfig` naming one fails at plan and nothing runs: a kubeconfig given " +
	"as a value often comes from remote state or a module input, and its plugin is a program run as the user Terraform runs as. " +
	"The plugin gets the provider's environment without its cloud credentials (`LINODE_*` and `STACKIT_*` are set to empty). " +
	"Defaults to `false`."
