package provider

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/attr/xattr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// Custom types whose only purpose is a clear error for a value of the
// right Terraform type but the wrong shape. The framework converts a
// configuration value to the attribute's type before any validator runs,
// and the stock types answer a fractional ID or a "30d" with a message
// meant for provider developers; these answer in the user's terms.

// wholeNumberType is an Int64 that accepts any number from Terraform, so
// that a fractional one reaches ValidateAttribute instead of failing the
// conversion with "This is always an error in the provider".
type wholeNumberType struct {
	basetypes.Int64Type
	// example is a valid value, shown in the error.
	example string
}

var (
	_ basetypes.Int64Typable      = wholeNumberType{}
	_ basetypes.Int64Valuable     = wholeNumber{}
	_ xattr.ValidateableAttribute = wholeNumber{}
	_ basetypes.StringTypable     = durationType{}
	_ basetypes.StringValuable    = duration{}
	_ xattr.ValidateableAttribute = duration{}
)

func (t wholeNumberType) Equal(o attr.Type) bool {
	other, ok := o.(wholeNumberType)
	return ok && other.example == t.example
}

func (t wholeNumberType) String() string { return "provider.wholeNumberType" }

func (t wholeNumberType) ValueType(context.Context) attr.Value {
	return wholeNumber{example: t.example}
}

func (t wholeNumberType) ValueFromInt64(_ context.Context, in basetypes.Int64Value) (basetypes.Int64Valuable, diag.Diagnostics) {
	return wholeNumber{Int64Value: in, example: t.example}, nil
}

func (t wholeNumberType) ValueFromTerraform(ctx context.Context, in tftypes.Value) (attr.Value, error) {
	if in.Type() != nil && in.Type().Is(tftypes.Number) && in.IsKnown() && !in.IsNull() {
		var f *big.Float
		if err := in.As(&f); err == nil && f != nil && !isInt64(f) {
			return wholeNumber{Int64Value: basetypes.NewInt64Unknown(), notWhole: f.Text('f', -1), example: t.example}, nil
		}
	}
	v, err := t.Int64Type.ValueFromTerraform(ctx, in)
	if err != nil {
		return nil, err
	}
	return wholeNumber{Int64Value: v.(basetypes.Int64Value), example: t.example}, nil
}

func isInt64(f *big.Float) bool {
	if !f.IsInt() {
		return false
	}
	_, acc := f.Int64()
	return acc == big.Exact
}

// wholeNumber is the value of a wholeNumberType.
type wholeNumber struct {
	basetypes.Int64Value
	notWhole string // the number as written, when it is not a whole int64
	example  string
}

func newWholeNumber(n int64, example string) wholeNumber {
	return wholeNumber{Int64Value: basetypes.NewInt64Value(n), example: example}
}

func (v wholeNumber) Type(context.Context) attr.Type { return wholeNumberType{example: v.example} }

func (v wholeNumber) Equal(o attr.Value) bool {
	other, ok := o.(wholeNumber)
	return ok && v.Int64Value.Equal(other.Int64Value) && v.notWhole == other.notWhole
}

func (v wholeNumber) ValidateAttribute(_ context.Context, req xattr.ValidateAttributeRequest, resp *xattr.ValidateAttributeResponse) {
	if v.notWhole != "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid number",
			fmt.Sprintf("%s must be a whole number from 1 to %d, such as %s; got %s.", req.Path, int64(math.MaxInt64), v.example, v.notWhole))
	}
}

// durationType is timetypes.GoDurationType whose parse error says the
// attribute's range and example, and that Go durations have no days.
type durationType struct {
	timetypes.GoDurationType
	bounds durationBetween
}

func (t durationType) Equal(o attr.Type) bool {
	other, ok := o.(durationType)
	return ok && other.bounds == t.bounds
}

func (t durationType) String() string { return "provider.durationType" }

func (t durationType) ValueType(context.Context) attr.Value { return duration{bounds: t.bounds} }

func (t durationType) ValueFromString(ctx context.Context, in basetypes.StringValue) (basetypes.StringValuable, diag.Diagnostics) {
	return duration{GoDuration: timetypes.GoDuration{StringValue: in}, bounds: t.bounds}, nil
}

func (t durationType) ValueFromTerraform(ctx context.Context, in tftypes.Value) (attr.Value, error) {
	v, err := t.StringType.ValueFromTerraform(ctx, in)
	if err != nil {
		return nil, err
	}
	return duration{GoDuration: timetypes.GoDuration{StringValue: v.(basetypes.StringValue)}, bounds: t.bounds}, nil
}

// duration is the value of a durationType.
type duration struct {
	timetypes.GoDuration
	bounds durationBetween
}

func nullDuration(bounds durationBetween) duration {
	return duration{GoDuration: timetypes.NewGoDurationNull(), bounds: bounds}
}

func (v duration) Type(context.Context) attr.Type { return durationType{bounds: v.bounds} }

func (v duration) Equal(o attr.Value) bool {
	other, ok := o.(duration)
	return ok && v.GoDuration.Equal(other.GoDuration)
}

func (v duration) StringSemanticEquals(ctx context.Context, o basetypes.StringValuable) (bool, diag.Diagnostics) {
	other, ok := o.(duration)
	if !ok {
		return false, nil
	}
	return v.GoDuration.StringSemanticEquals(ctx, other.GoDuration)
}

// ValidateAttribute reports a value that is not a Go duration; the range is
// the attribute's validator's to check.
func (v duration) ValidateAttribute(ctx context.Context, req xattr.ValidateAttributeRequest, resp *xattr.ValidateAttributeResponse) {
	if v.IsNull() || v.IsUnknown() {
		return
	}
	s := v.ValueString()
	if _, err := time.ParseDuration(s); err == nil {
		return
	}
	hint := ""
	if strings.ContainsAny(s, "dwy") {
		hint = ` Go durations have no days, weeks or years: write hours ("720h" is 30 days).`
	}
	resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration",
		fmt.Sprintf("%s %s; got %q.%s", req.Path, v.bounds.Description(ctx), s, hint))
}
