package provider

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

var (
	_ datasource.DataSource              = (*lkeServiceAccountTokensDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*lkeServiceAccountTokensDataSource)(nil)
)

func newLKEServiceAccountTokensDataSource() datasource.DataSource {
	return &lkeServiceAccountTokensDataSource{}
}

type lkeServiceAccountTokensDataSource struct {
	dataSourceBase
}

type lkeServiceAccountTokensModel struct {
	ID         types.String       `tfsdk:"id"`
	ClusterID  wholeNumber        `tfsdk:"cluster_id"`
	Namespaces types.Set          `tfsdk:"namespaces"`
	Tokens     []tokenSecretModel `tfsdk:"tokens"`
}

type tokenSecretModel struct {
	Namespace      types.String  `tfsdk:"namespace"`
	Name           types.String  `tfsdk:"name"`
	ServiceAccount types.String  `tfsdk:"service_account"`
	CreatedAt      types.String  `tfsdk:"created_at"`
	Age            types.String  `tfsdk:"age"`
	UsedBy         []podUseModel `tfsdk:"used_by"`
}

type podUseModel struct {
	Pod   types.String `tfsdk:"pod"`
	Owner types.String `tfsdk:"owner"`
	Via   types.String `tfsdk:"via"`
}

func (d *lkeServiceAccountTokensDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_lke_service_account_tokens"
}

func (d *lkeServiceAccountTokensDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Lists the `kubernetes.io/service-account-token` secrets of an LKE cluster: the first step of the rotation runbook, " +
			"as an audit and a preview of what `kubecreds_lke_secret_rotation` would delete, with the pods that use each one. Secrets are read as " +
			"metadata only, so token values never reach Terraform; pods are listed once per namespace.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Description: "The cluster id.",
				Computed:    true,
			},
			"cluster_id": schema.Int64Attribute{
				CustomType:  wholeNumberType{example: clusterIDExample},
				Description: "ID of the LKE cluster, as the Linode API and `linode_lke_cluster.id` give it.",
				Required:    true,
				Validators:  []validator.Int64{int64validator.AtLeast(1)},
			},
			"namespaces": schema.SetAttribute{
				Description: "Namespaces to list token secrets in. Defaults to " + defaultNamespacesDoc() + ".",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  namespacesValidators(),
			},
			"tokens": schema.ListNestedAttribute{
				Description: "The token secrets, sorted by namespace and name.",
				Computed:    true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"namespace":       schema.StringAttribute{Computed: true, Description: "Namespace of the secret."},
					"name":            schema.StringAttribute{Computed: true, Description: "Name of the secret."},
					"service_account": schema.StringAttribute{Computed: true, Description: "Service account the token belongs to (the `kubernetes.io/service-account.name` annotation)."},
					"created_at":      schema.StringAttribute{Computed: true, Description: "When the secret was created, RFC 3339."},
					"age":             schema.StringAttribute{Computed: true, Description: "Age of the secret at read time, as a Go duration string such as `2160h5m0s`."},
					"used_by": schema.ListNestedAttribute{
						Computed: true,
						Description: "The pods (in the secret's namespace) that use this secret, sorted by pod name. A rotation deletes the secret, " +
							"and since Kubernetes 1.24 nothing recreates it, so these pods cannot start again afterwards until it is recreated " +
							"or they move to projected service-account tokens.",
						NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
							"pod":   schema.StringAttribute{Computed: true, Description: "Name of the pod."},
							"owner": schema.StringAttribute{Computed: true, Description: "The pod's controller as `Kind/name` (e.g. `ReplicaSet/web-5d4f8`), or empty."},
							"via":   schema.StringAttribute{Computed: true, Description: "How the pod uses it: `volume`, `projected volume` or `env` (`secretKeyRef` or `envFrom`)."},
						}},
					},
				}},
			},
		},
	}
}

// namespaceNameValidators check a Kubernetes namespace name.
func namespaceNameValidators() []validator.String {
	return []validator.String{namespaceName}
}

func (d *lkeServiceAccountTokensDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m lkeServiceAccountTokensModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	clusterID := int(m.ClusterID.ValueInt64())
	namespaces := slices.Clone(lkeDefaults.Namespaces)
	if !m.Namespaces.IsNull() {
		namespaces = nil
		resp.Diagnostics.Append(m.Namespaces.ElementsAs(ctx, &namespaces, false)...)
	}
	cfg, diags := d.data.lkeRESTConfig(ctx, clusterID, 5*time.Minute)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	clients, err := kube.NewClients(cfg, d.data.userAgent)
	if err != nil {
		resp.Diagnostics.AddError("Cannot build a Kubernetes client", err.Error())
		return
	}
	clients.Retry = d.data.retry
	secrets, err := kube.ListServiceAccountTokens(ctx, clients, namespaces)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot list token secrets of LKE cluster %d", clusterID), err.Error())
		return
	}
	names := map[string]bool{}
	for _, s := range secrets {
		names[s.ID()] = true
	}
	mounts, err := kube.PodsMounting(ctx, clients, namespaces, names)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot list the pods of LKE cluster %d", clusterID), err.Error())
		return
	}
	usedBy := map[string][]podUseModel{}
	for _, u := range mounts {
		id := u.Namespace + "/" + u.Secret
		usedBy[id] = append(usedBy[id], podUseModel{Pod: types.StringValue(u.Pod), Owner: types.StringValue(u.Owner), Via: types.StringValue(u.Via)})
	}
	now := d.data.clock.Now()
	m.ID = types.StringValue(strconv.Itoa(clusterID))
	m.Tokens = make([]tokenSecretModel, 0, len(secrets))
	for _, s := range secrets {
		m.Tokens = append(m.Tokens, tokenSecretModel{
			Namespace:      types.StringValue(s.Namespace),
			Name:           types.StringValue(s.Name),
			ServiceAccount: types.StringValue(s.ServiceAccount),
			CreatedAt:      types.StringValue(s.Created.UTC().Format(time.RFC3339)),
			Age:            types.StringValue(now.Sub(s.Created).Round(time.Second).String()),
			UsedBy:         nonNilUses(usedBy[s.ID()]),
		})
	}
	tflog.Info(ctx, "listed service-account-token secrets", map[string]any{"cluster_id": clusterID, "count": len(secrets), "namespaces": namespaces, "pod_uses": len(mounts)})
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func nonNilUses(u []podUseModel) []podUseModel {
	if u == nil {
		return []podUseModel{}
	}
	return u
}
