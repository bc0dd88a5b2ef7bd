package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// TestSKEClusterNamesAsTheAPIHasThem: cluster_name takes every name the SKE
// API's pattern takes (hyphens, a digit first, as the portal's generated
// names are) and refuses the others with that pattern in the message.
func TestSKEClusterNamesAsTheAPIHasThem(t *testing.T) {
	accepted := []string{"a", "1", "prod", "1prod", "cl-ab12cd34", "prod-eu01-x", "a-b", "a--b", "abcdefghijk", "0123456789a"}
	refused := []string{"", "-", "-prod", "prod-", "Prod", "cl_ab12", "prod.eu", "abcdefghijkl", "prod eu", "prød"}
	check := func(name string) []string {
		var msgs []string
		for _, v := range skeClusterNameValidators() {
			resp := &validator.StringResponse{}
			v.ValidateString(context.Background(), validator.StringRequest{Path: path.Root("cluster_name"), ConfigValue: types.StringValue(name)}, resp)
			for _, d := range resp.Diagnostics.Errors() {
				msgs = append(msgs, d.Detail())
			}
		}
		return msgs
	}
	for _, n := range accepted {
		if msgs := check(n); len(msgs) > 0 {
			t.Errorf("cluster_name %q is a valid SKE cluster name, refused: %v", n, msgs)
		}
	}
	for _, n := range refused {
		msgs := check(n)
		if len(msgs) == 0 {
			t.Errorf("cluster_name %q is not a valid SKE cluster name, accepted", n)
			continue
		}
		if !strings.Contains(strings.Join(msgs, " "), `^[a-z0-9]([a-z0-9-]{0,9}[a-z0-9])?$`) {
			t.Errorf("the error for %q does not give the API's pattern: %v", n, msgs)
		}
	}
}
