package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/action"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/resource"
)

// The bases every resource, data source, ephemeral resource and action
// embeds, as terraform-provider-linode's helper.BaseResource: each keeps
// what the provider's Configure handed over, and is that type's Configure.
// data stays nil until the provider is configured (validation may run
// before); anything but *providerData is reported by providerDataFrom.

type resourceBase struct{ data *providerData }

func (b *resourceBase) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	keepProviderData(&b.data, req.ProviderData, &resp.Diagnostics)
}

type dataSourceBase struct{ data *providerData }

func (b *dataSourceBase) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	keepProviderData(&b.data, req.ProviderData, &resp.Diagnostics)
}

type ephemeralBase struct{ data *providerData }

func (b *ephemeralBase) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	keepProviderData(&b.data, req.ProviderData, &resp.Diagnostics)
}

type actionBase struct{ data *providerData }

func (b *actionBase) Configure(_ context.Context, req action.ConfigureRequest, resp *action.ConfigureResponse) {
	keepProviderData(&b.data, req.ProviderData, &resp.Diagnostics)
}

// keepProviderData keeps what Configure handed over, once there is
// something: Terraform calls Configure before the provider is configured too,
// with no provider data.
func keepProviderData(data **providerData, v any, diags *diag.Diagnostics) {
	if v != nil {
		*data = providerDataFrom(v, diags)
	}
}
