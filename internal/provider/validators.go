package provider

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

var requestTimeoutRange = durationBetween{min: time.Second, max: 10 * time.Minute, example: "30s"}

// kubeName checks a Kubernetes object name with apimachinery's own
// validation (the API server's): namespaces are RFC 1123 labels, service
// accounts RFC 1123 subdomains.
type kubeName struct {
	what  string // "namespace name", "service account name"
	rule  string // what it allows, for the message
	check func(string) []string
}

var (
	namespaceName = kubeName{what: "a Kubernetes namespace name",
		rule: "lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", check: validation.IsDNS1123Label}
	serviceAccountName = kubeName{what: "a Kubernetes service account name",
		rule: "lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters", check: validation.IsDNS1123Subdomain}
)

var _ validator.String = kubeName{}

func (v kubeName) Description(context.Context) string {
	return "must be " + v.what + ": " + v.rule
}

func (v kubeName) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v kubeName) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if errs := v.check(req.ConfigValue.ValueString()); len(errs) > 0 {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid Kubernetes name",
			fmt.Sprintf("%s %s; got %q (%s).", req.Path, v.Description(ctx), req.ConfigValue.ValueString(), strings.Join(errs, "; ")))
	}
}

// durationBetween accepts a Go duration string within [min, max], as
// time_rotating-style users write them ("720h").
type durationBetween struct {
	min, max time.Duration
	example  string
}

var _ validator.String = durationBetween{}

func (v durationBetween) Description(context.Context) string {
	return fmt.Sprintf("must be a Go duration between %s and %s, such as %q", formatDuration(v.min), formatDuration(v.max), v.example)
}

func (v durationBetween) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v durationBetween) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	d, err := time.ParseDuration(s)
	if err != nil || d < v.min || d > v.max {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration",
			fmt.Sprintf("%s %s; got %q.", req.Path, v.Description(ctx), s))
	}
}

// formatDuration prints whole hours and minutes without trailing zero units
// ("10m", "4320h"), as users write them.
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return d.String()
	}
}

// checkTimeouts reports, at plan, a timeouts value that is not positive.
func checkTimeouts(ctx context.Context, t timeouts.Value, diags *diag.Diagnostics) {
	for name, get := range map[string]func(context.Context, time.Duration) (time.Duration, diag.Diagnostics){
		"create": t.Create, "update": t.Update,
	} {
		d, dd := get(ctx, time.Minute)
		positiveTimeout(name, d, dd, diags)
	}
}

// serviceAccountRef checks a "namespace/name" service account reference
// with the API server's rules (kube.ParseServiceAccountRef), and refuses
// the accounts a rotation re-creates by another setting.
type serviceAccountRef struct {
	// reserved are accounts that may not be listed, each with the reason.
	reserved map[string]string
}

var _ validator.String = serviceAccountRef{}

func (v serviceAccountRef) Description(context.Context) string {
	return "must be namespace/name: a namespace (lower-case letters, digits and '-', at most 63 characters) and a service account name " +
		"(lower-case letters, digits, '-' and '.', at most 253 characters), each starting and ending with a letter or digit"
}

func (v serviceAccountRef) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v serviceAccountRef) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	if _, err := kube.ParseServiceAccountRef(s); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid service account",
			fmt.Sprintf("Each element of %s %s; %s.", req.Path.ParentPath(), v.Description(ctx), err))
		return
	}
	if why, ok := v.reserved[s]; ok {
		resp.Diagnostics.AddAttributeError(req.Path, "Service account re-created by another setting", why)
	}
}
