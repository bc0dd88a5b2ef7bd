package provider

import (
	"context"
	"math/big"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr/xattr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// The custom types turn a value of the right Terraform type but the wrong
// shape into a message in the user's terms, instead of a conversion error
// "always an error in the provider".
func TestWholeNumberTellsWhatIsWrongWithAFraction(t *testing.T) {
	ctx := context.Background()
	typ := wholeNumberType{example: clusterIDExample}
	for _, c := range []struct {
		in      *big.Float
		wantErr string
		want    int64
	}{
		{big.NewFloat(123456), "", 123456},
		{big.NewFloat(1.5), "cluster_id must be a whole number from 1 to 9223372036854775807, such as 123456; got 1.5.", 0},
		{new(big.Float).SetFloat64(1e20), "got 100000000000000000000.", 0},
	} {
		v, err := typ.ValueFromTerraform(ctx, tftypes.NewValue(tftypes.Number, c.in))
		if err != nil {
			t.Fatalf("%s: conversion failed (%v); the error must come from validation, with the attribute's name", c.in, err)
		}
		var resp xattr.ValidateAttributeResponse
		v.(xattr.ValidateableAttribute).ValidateAttribute(ctx, xattr.ValidateAttributeRequest{Path: path.Root("cluster_id")}, &resp)
		switch {
		case c.wantErr == "" && resp.Diagnostics.HasError():
			t.Errorf("%s: %v", c.in, resp.Diagnostics)
		case c.wantErr == "" && v.(wholeNumber).ValueInt64() != c.want:
			t.Errorf("%s read as %d", c.in, v.(wholeNumber).ValueInt64())
		case c.wantErr != "" && (!resp.Diagnostics.HasError() || !strings.Contains(resp.Diagnostics[0].Detail(), c.wantErr)):
			t.Errorf("%s: %v; want an error saying %q", c.in, resp.Diagnostics, c.wantErr)
		}
	}
}

func TestDurationSaysTheRangeAndThatThereAreNoDays(t *testing.T) {
	ctx := context.Background()
	typ := durationType{bounds: rotateEveryRange}
	for in, want := range map[string]string{
		"720h":    "",
		"30d":     `rotate_every must be a Go duration between 1h and 87600h, such as "720h"; got "30d". Go durations have no days, weeks or years`,
		"monthly": `got "monthly".`,
	} {
		v, err := typ.ValueFromTerraform(ctx, tftypes.NewValue(tftypes.String, in))
		if err != nil {
			t.Fatal(err)
		}
		var resp xattr.ValidateAttributeResponse
		v.(xattr.ValidateableAttribute).ValidateAttribute(ctx, xattr.ValidateAttributeRequest{Path: path.Root("rotate_every")}, &resp)
		if want == "" {
			if resp.Diagnostics.HasError() {
				t.Errorf("%q: %v", in, resp.Diagnostics)
			}
			if d, diags := v.(duration).ValueGoDuration(); diags.HasError() || d.Hours() != 720 {
				t.Errorf("%q read as %v (%v)", in, d, diags)
			}
			continue
		}
		if !resp.Diagnostics.HasError() || !strings.Contains(resp.Diagnostics[0].Detail(), want) {
			t.Errorf("%q: %v; want an error saying %q", in, resp.Diagnostics, want)
		}
	}
}

// Kubernetes names are checked with apimachinery's validation, as the API
// server checks them.
func TestKubeNamesAreCheckedAsTheAPIServerChecksThem(t *testing.T) {
	for _, c := range []struct {
		v    kubeName
		in   string
		fail bool
	}{
		{namespaceName, "kube-system", false},
		{namespaceName, "Kube_System", true},
		{namespaceName, strings.Repeat("a", 64), true},
		{namespaceName, "a.b", true},
		{serviceAccountName, "ci.deployer", false},
		{serviceAccountName, "Deploy_Bot", true},
		{serviceAccountName, "", true},
	} {
		if got := len(c.v.check(c.in)) > 0; got != c.fail {
			t.Errorf("%s %q: rejected %t, want %t", c.v.what, c.in, got, c.fail)
		}
	}
}
