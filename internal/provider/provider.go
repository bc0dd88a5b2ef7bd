// Package provider is the Terraform face of kubecreds: schemas, models, the
// CRUD and Open/Close glue, validators and diagnostics. The procedures
// themselves live in internal/rotation and internal/kubeconfig.
package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/action"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
)

var (
	_ provider.Provider                       = (*kubecredsProvider)(nil)
	_ provider.ProviderWithEphemeralResources = (*kubecredsProvider)(nil)
	_ provider.ProviderWithActions            = (*kubecredsProvider)(nil)
)

// New returns the provider factory for providerserver.Serve and tests.
func New(version string) func() provider.Provider {
	return newWithClock(version, clock.RealClock{})
}

// newWithClock lets tests move time forward instead of sleeping.
func newWithClock(version string, clk clock.PassiveClock) func() provider.Provider {
	return newTuned(version, clk, timings{})
}

// newTuned also shortens the rotation's waits (zero: the defaults), so
// that a test of what happens after a minute-long watch does not spend the
// minute. Users get the defaults: the provider exposes no setting for them.
func newTuned(version string, clk clock.PassiveClock, t timings) func() provider.Provider {
	return func() provider.Provider {
		return &kubecredsProvider{version: version, clock: clk, timings: t}
	}
}

type kubecredsProvider struct {
	version string
	clock   clock.PassiveClock
	timings timings
}

// timings replace lke.Options' defaults where set.
type timings struct {
	// actSettle: how long a regenerate or recycle whose answer was lost is
	// watched for its effect (default 60s).
	actSettle time.Duration
	// kubeconfigFailFor: how long the kubeconfig poll goes on through
	// failures other than "not yet available" (default 1m).
	kubeconfigFailFor time.Duration
}

// tune applies the timings to a rotation's options.
func (t timings) tune(o *lke.Options) {
	if t.actSettle > 0 {
		o.ActSettle = t.actSettle
	}
	if t.kubeconfigFailFor > 0 {
		o.KubeconfigPoll.FailFor = t.kubeconfigFailFor
	}
}

type providerModel struct {
	LinodeToken      types.String     `tfsdk:"linode_token"`
	LinodeAPIURL     types.String     `tfsdk:"linode_api_url"`
	LinodeAPIVersion types.String     `tfsdk:"linode_api_version"`
	LinodeCAPath     types.String     `tfsdk:"linode_ca_path"`
	UAPrefix         types.String     `tfsdk:"ua_prefix"`
	ConfigPath       types.String     `tfsdk:"config_path"`
	ConfigProfile    types.String     `tfsdk:"config_profile"`
	RequestTimeout   duration         `tfsdk:"request_timeout"`
	MaxRetries       types.Int64      `tfsdk:"max_retries"`
	Kubernetes       *kubernetesModel `tfsdk:"kubernetes"`
	STACKIT          *stackitModel    `tfsdk:"stackit"`
}

// stackitModel holds STACKIT's settings, named as terraform-provider-stackit
// names them.
type stackitModel struct {
	ServiceAccountKeyPath types.String `tfsdk:"service_account_key_path"`
	ServiceAccountKey     types.String `tfsdk:"service_account_key"`
	PrivateKeyPath        types.String `tfsdk:"private_key_path"`
	PrivateKey            types.String `tfsdk:"private_key"`
	ServiceAccountToken   types.String `tfsdk:"service_account_token"`
	SKECustomEndpoint     types.String `tfsdk:"ske_custom_endpoint"`
	TokenCustomEndpoint   types.String `tfsdk:"token_custom_endpoint"`
	CredentialsPath       types.String `tfsdk:"credentials_path"`
	ServiceAccountEmail   types.String `tfsdk:"service_account_email"`
	FederatedToken        types.String `tfsdk:"service_account_federated_token"`
	FederatedTokenPath    types.String `tfsdk:"service_account_federated_token_path"`
	UseOIDC               types.Bool   `tfsdk:"use_oidc"`
	OIDCRequestURL        types.String `tfsdk:"oidc_request_url"`
	OIDCRequestToken      types.String `tfsdk:"oidc_request_token"`
}

type kubernetesModel struct {
	ConfigPath           types.String `tfsdk:"config_path"`
	ConfigContext        types.String `tfsdk:"config_context"`
	Host                 types.String `tfsdk:"host"`
	Token                types.String `tfsdk:"token"`
	ClusterCACertificate types.String `tfsdk:"cluster_ca_certificate"`
	ClientCertificate    types.String `tfsdk:"client_certificate"`
	ClientKey            types.String `tfsdk:"client_key"`
	Insecure             types.Bool   `tfsdk:"insecure"`
	ConfigPaths          types.List   `tfsdk:"config_paths"`
	TLSServerName        types.String `tfsdk:"tls_server_name"`
	ProxyURL             types.String `tfsdk:"proxy_url"`
	Exec                 *execModel   `tfsdk:"exec"`
	AllowExecPlugins     types.Bool   `tfsdk:"allow_exec_plugins"`
}

// execAPIVersions are the ExecCredential versions client-go speaks.
var execAPIVersions = []string{"client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"}

type execModel struct {
	APIVersion types.String `tfsdk:"api_version"`
	Command    types.String `tfsdk:"command"`
	Args       types.List   `tfsdk:"args"`
	Env        types.Map    `tfsdk:"env"`
}

func (p *kubecredsProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "kubecreds"
	resp.Version = p.version
}

func (p *kubecredsProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Rotates Kubernetes credentials as part of plan and apply: LKE secret rotation through the " +
			"Linode API, and short-lived kubeconfigs that are revoked when the run ends.",
		Attributes: map[string]schema.Attribute{
			"linode_token": schema.StringAttribute{
				Description: "Linode API personal access token with read/write access to Kubernetes. " +
					"Falls back to the LINODE_TOKEN environment variable, then to the `token` of a linode-cli config file profile " +
					"(see `config_path` and `config_profile`). Needed only by resources that reach a cluster through the Linode API.",
				Optional:  true,
				Sensitive: true,
			},
			"linode_api_url": schema.StringAttribute{
				Description: "URL of the Linode API: its root (default `https://api.linode.com`), or the root with the API version as its path " +
					"(`https://api.linode.com/v4` or `https://api.linode.com/v4beta`), as linodego reads it; a version there sets the API version, " +
					"and a different `linode_api_version` is an error. Any other path is an error. Must use https. " +
					"Falls back to the LINODE_URL environment variable, then to the `api_url` of the linode-cli config profile when the token comes from one.",
				Optional: true,
			},
			"linode_api_version": schema.StringAttribute{
				Description: "Linode API version: `v4` or `v4beta`. Falls back to the LINODE_API_VERSION environment variable, then to the version " +
					"in the path of `linode_api_url`, then to the `api_version` of the linode-cli config profile when the token comes from one, then `v4`.",
				Optional:   true,
				Validators: []validator.String{stringvalidator.OneOf(linodeAPIVersions...)},
			},
			"linode_ca_path": schema.StringAttribute{
				Description: "Path to a PEM file of extra CA certificates to trust for the Linode API (for a proxy or a local emulator); " +
					"a leading `~` is the home directory. Falls back to the LINODE_CA environment variable.",
				Optional: true,
			},
			"ua_prefix": schema.StringAttribute{
				Description: "Text put, followed by a space, before the User-Agent of every Linode API request, as terraform-provider-linode's " +
					"`ua_prefix` does (for example `acme-ci/1.0`, to tell your automation's requests apart). " +
					"Falls back to the LINODE_UA_PREFIX environment variable; by default there is none.",
				Optional: true,
			},
			"config_path": schema.StringAttribute{
				Description: "Path to the linode-cli config file (INI, one section per profile, read as linodego reads it) that the token is taken " +
					"from when neither `linode_token` nor LINODE_TOKEN is set; a leading `~` is the home directory. " +
					"Falls back to the LINODE_CONFIG environment variable, then to `~/.config/linode` or else `~/.config/linode-cli`, " +
					"whichever exists (none existing is no error). A file named here or in LINODE_CONFIG must be readable.",
				Optional: true,
			},
			"config_profile": schema.StringAttribute{
				Description: "Profile (section) of the linode-cli config file to use when neither `linode_token` nor LINODE_TOKEN is set: " +
					"its `token`, and its `api_url` and `api_version` where `linode_api_url` and `linode_api_version` are unset. " +
					"A profile inherits the keys of the `[default]` section. Falls back to the LINODE_PROFILE environment variable, then `default`. " +
					"A profile named here or in LINODE_PROFILE must exist.",
				Optional: true,
			},
			"request_timeout": schema.StringAttribute{
				Description: "Longest time one HTTP request to the Linode API or a Kubernetes API server may take before it is " +
					"abandoned (and retried), as a Go duration between 1s and 10m. Default `30s`.",
				CustomType: durationType{bounds: requestTimeoutRange},
				Optional:   true,
				Validators: []validator.String{requestTimeoutRange},
			},
			"max_retries": schema.Int64Attribute{
				Description: "How many times a request that fails with a transient error (429, 500, 502, 503, 504, a timeout or a " +
					"dropped connection) is retried, waiting 1 s, then twice as long each time up to 10 s, or as long as a " +
					"`Retry-After` header asks. Between 0 and 20; default 5. Other errors are not retried.",
				Optional:   true,
				Validators: []validator.Int64{int64validator.Between(0, 20)},
			},
		},
		Blocks: map[string]schema.Block{
			"stackit": schema.SingleNestedBlock{
				Description: "How to reach STACKIT's SKE API (for `kubecreds_ske_credentials_rotation`, both SKE actions and `kubecreds_ske_kubeconfig`), " +
					"with the settings and environment variables of terraform-provider-stackit and stackit-sdk-go, tried in stackit-sdk-go's order: " +
					"workload identity federation (a service account's email and a federated OIDC token: a value, a file, or GitHub Actions' or " +
					"Azure DevOps' ID token with `use_oidc`), a service-account key (key flow), a service-account token (token flow, deprecated by STACKIT), " +
					"then the credentials file (`credentials_path`).",
				Attributes: map[string]schema.Attribute{
					"service_account_key_path": schema.StringAttribute{
						Description: "Path to the service account's key (JSON); a leading `~` is the home directory. Falls back to STACKIT_SERVICE_ACCOUNT_KEY_PATH.",
						Optional:    true,
					},
					"service_account_key": schema.StringAttribute{
						Description: "The service account's key (JSON) itself. Falls back to STACKIT_SERVICE_ACCOUNT_KEY.",
						Optional:    true,
						Sensitive:   true,
					},
					"private_key_path": schema.StringAttribute{
						Description: "Path to the private key (PEM) of the service-account key, when the key does not hold it; a leading `~` is the home directory. " +
							"Falls back to STACKIT_PRIVATE_KEY_PATH.",
						Optional: true,
					},
					"private_key": schema.StringAttribute{
						Description: "The private key (PEM) itself. Falls back to STACKIT_PRIVATE_KEY.",
						Optional:    true,
						Sensitive:   true,
					},
					"service_account_token": schema.StringAttribute{
						Description: "A service-account access token (token flow). Falls back to STACKIT_SERVICE_ACCOUNT_TOKEN. " +
							"STACKIT deprecated the token flow (terraform-provider-stackit announced its removal); plans that use it warn.",
						DeprecationMessage: tokenFlowDeprecation,
						Optional:           true,
						Sensitive:          true,
					},
					"credentials_path": schema.StringAttribute{
						Description: "Path of a STACKIT credentials file (JSON with `STACKIT_SERVICE_ACCOUNT_KEY_PATH`, `STACKIT_SERVICE_ACCOUNT_KEY`, " +
							"`STACKIT_PRIVATE_KEY_PATH`, `STACKIT_PRIVATE_KEY` or `STACKIT_SERVICE_ACCOUNT_TOKEN`), read when no other credential is set; " +
							"a leading `~` is the home directory. Falls back to STACKIT_CREDENTIALS_PATH, then `~/.stackit/credentials.json`.",
						Optional: true,
					},
					"service_account_email": schema.StringAttribute{
						Description: "The service account's email, its client id for workload identity federation. Falls back to STACKIT_SERVICE_ACCOUNT_EMAIL.",
						Optional:    true,
					},
					"service_account_federated_token": schema.StringAttribute{
						Description: "A federated OIDC ID token (a JWT from an identity provider the service account trusts), for workload identity federation.",
						Optional:    true,
						Sensitive:   true,
					},
					"service_account_federated_token_path": schema.StringAttribute{
						Description: "Path of a file holding the federated OIDC ID token, read again whenever a new access token is needed; a leading `~` is the " +
							"home directory. Falls back to STACKIT_FEDERATED_TOKEN_FILE (stackit-sdk-go's default: " +
							"`/var/run/secrets/stackit.cloud/serviceaccount/token`).",
						Optional: true,
					},
					"use_oidc": schema.BoolAttribute{
						Description: "Workload identity federation with the CI system's own ID token: GitHub Actions' (ACTIONS_ID_TOKEN_REQUEST_URL and " +
							"ACTIONS_ID_TOKEN_REQUEST_TOKEN; the job needs `permissions: id-token: write`) or Azure DevOps' (SYSTEM_OIDCREQUESTURI and " +
							"SYSTEM_ACCESSTOKEN). Falls back to STACKIT_USE_OIDC (`true` or `1`). Default false.",
						Optional: true,
					},
					"oidc_request_url": schema.StringAttribute{
						Description: "Where to ask for the ID token with `use_oidc`; falls back to ACTIONS_ID_TOKEN_REQUEST_URL, then SYSTEM_OIDCREQUESTURI.",
						Optional:    true,
					},
					"oidc_request_token": schema.StringAttribute{
						Description: "The bearer token for `oidc_request_url`; falls back to ACTIONS_ID_TOKEN_REQUEST_TOKEN, then SYSTEM_ACCESSTOKEN.",
						Optional:    true,
						Sensitive:   true,
					},
					"ske_custom_endpoint": schema.StringAttribute{
						Description: "Base URL of the SKE API, e.g. for a private endpoint; default `https://ske.api.stackit.cloud`. Falls back to STACKIT_SKE_CUSTOM_ENDPOINT.",
						Optional:    true,
					},
					"token_custom_endpoint": schema.StringAttribute{
						Description: "Token endpoint of the key flow and of workload identity federation, when not STACKIT's; an https:// URL " +
							"(the token requests carry signed assertions). Falls back to STACKIT_TOKEN_BASEURL.",
						Optional: true,
					},
				},
			},
			"kubernetes": schema.SingleNestedBlock{
				Description: "How to reach a Kubernetes cluster that is not reached through the Linode API " +
					"(used by `kubecreds_short_lived_kubeconfig` when it names neither `lke_cluster_id` nor `base_kubeconfig`). " +
					"Each attribute falls back to the environment variable the kubernetes provider reads.",
				Attributes: map[string]schema.Attribute{
					"config_path": schema.StringAttribute{
						Description: "Path to a kubeconfig file; a leading `~` is the home directory, as the kubernetes provider expands it. Falls back to KUBE_CONFIG_PATH.",
						Optional:    true,
					},
					"config_context": schema.StringAttribute{
						Description: "Context of the kubeconfig to use instead of its current context. Falls back to KUBE_CTX.",
						Optional:    true,
					},
					"host": schema.StringAttribute{
						Description: "URL of the Kubernetes API server, e.g. `https://203.0.113.10:6443`. Falls back to KUBE_HOST.",
						Optional:    true,
					},
					"token": schema.StringAttribute{
						Description: "Bearer token. Falls back to KUBE_TOKEN.",
						Optional:    true,
						Sensitive:   true,
					},
					"cluster_ca_certificate": schema.StringAttribute{
						Description: "PEM-encoded CA certificate of the API server. Falls back to KUBE_CLUSTER_CA_CERT_DATA.",
						Optional:    true,
					},
					"client_certificate": schema.StringAttribute{
						Description: "PEM-encoded client certificate. Falls back to KUBE_CLIENT_CERT_DATA.",
						Optional:    true,
					},
					"client_key": schema.StringAttribute{
						Description: "PEM-encoded client key. Falls back to KUBE_CLIENT_KEY_DATA.",
						Optional:    true,
						Sensitive:   true,
					},
					"insecure": schema.BoolAttribute{
						Description: "Skip verification of the API server's certificate. Defaults to false; " +
							"setting it produces a warning, since anyone on the path can then read the credentials. Falls back to KUBE_INSECURE.",
						Optional: true,
					},
					"config_paths": schema.ListAttribute{
						Description: "Kubeconfig files merged as kubectl merges `$KUBECONFIG` (the first file to set a value wins), " +
							"instead of `config_path`; a leading `~` in each is the home directory. Falls back to KUBE_CONFIG_PATHS (separated by `:`; `;` on Windows).",
						ElementType: types.StringType,
						Optional:    true,
						Validators: []validator.List{
							listvalidator.SizeAtLeast(1),
							listvalidator.ConflictsWith(path.MatchRelative().AtParent().AtName("config_path")),
						},
					},
					"tls_server_name": schema.StringAttribute{
						Description: "Name the API server's certificate is checked against, when it is not the host's. Falls back to KUBE_TLS_SERVER_NAME.",
						Optional:    true,
					},
					"proxy_url": schema.StringAttribute{
						Description: "URL of the proxy to reach the API server through (`http://`, `https://` or `socks5://`). Falls back to KUBE_PROXY_URL. " +
							"Sensitive, since it may carry a password.",
						Optional:  true,
						Sensitive: true,
					},
					"allow_exec_plugins": schema.BoolAttribute{
						Description: "Let a credential plugin that the current context of `config_path` / `config_paths` names " +
							"(`users[].exec`, such as `aws eks get-token`) run. Without it, such a kubeconfig is refused before anything runs, " +
							"naming the plugin; the `exec` block, which names its plugin here, always runs. A plugin gets the provider's " +
							"environment without its cloud credentials (`LINODE_*` and `STACKIT_*` are set to empty). Defaults to `false`.",
						Optional: true,
					},
				},
				Blocks: map[string]schema.Block{
					"exec": schema.SingleNestedBlock{
						Description: "A client-go exec credential plugin that supplies the credentials (as a kubeconfig's `users[].user.exec`), " +
							"such as a cloud's `get-token` command. It is never run interactively.",
						Attributes: map[string]schema.Attribute{
							"api_version": schema.StringAttribute{
								Description: "The ExecCredential API version the plugin speaks: `client.authentication.k8s.io/v1` or `client.authentication.k8s.io/v1beta1`.",
								Optional:    true,
								Validators:  []validator.String{stringvalidator.OneOf(execAPIVersions...)},
							},
							"command": schema.StringAttribute{
								Description: "The plugin to run: a path, or a name looked up on PATH.",
								Optional:    true,
							},
							"args": schema.ListAttribute{
								Description: "Arguments to the plugin. Sensitive, since they may carry a secret.",
								ElementType: types.StringType,
								Optional:    true,
								Sensitive:   true,
							},
							"env": schema.MapAttribute{
								Description: "Environment variables set for the plugin, beside the provider's own environment " +
									"(whose `LINODE_*` and `STACKIT_*` the plugin does not get). Sensitive, since they may carry a secret.",
								ElementType: types.StringType,
								Optional:    true,
								Sensitive:   true,
							},
						},
					},
				},
			},
		},
	}
}

func (p *kubecredsProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	data := newProviderData(ctx, p.version, req.TerraformVersion, cfg, &resp.Diagnostics)
	data.clock = p.clock
	data.timings = p.timings
	resp.DataSourceData = data
	resp.ResourceData = data
	resp.EphemeralResourceData = data
	resp.ActionData = data
}

// Actions need Terraform 1.14 or later; older Terraform and OpenTofu do not
// ask for them, and the rest of the provider works there as before.
func (p *kubecredsProvider) Actions(context.Context) []func() action.Action {
	return []func() action.Action{newLKERotateCredentialsAction, newSKEStartRotationAction, newSKECompleteRotationAction, newRotateServiceAccountAction}
}

func (p *kubecredsProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{newLKESecretRotationResource, newSKERotationResource, newServiceAccountRotationResource}
}

func (p *kubecredsProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{newLKEServiceAccountTokensDataSource}
}

func (p *kubecredsProvider) EphemeralResources(context.Context) []func() ephemeral.EphemeralResource {
	return []func() ephemeral.EphemeralResource{newShortLivedKubeconfig, newSKEKubeconfig}
}
