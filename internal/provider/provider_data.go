package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// setting is one provider setting resolved from the configuration or, when
// the configuration leaves it null, its environment variable.
type setting struct {
	value   string
	unknown bool   // fed from a value not known until apply
	attr    string // attribute name, for messages
	env     string // environment variable, for messages
	fromEnv bool   // value is the variable's: the attribute is not set
}

func resolve(v types.String, attr, env string) setting {
	s := setting{attr: attr, env: env}
	switch {
	case v.IsUnknown():
		s.unknown = true
	case !v.IsNull():
		s.value = v.ValueString()
	default:
		s.value = os.Getenv(env)
		s.fromEnv = s.value != ""
	}
	return s
}

// providerData is what Configure hands to resources. Values may still be
// unknown during plan (fed from other resources), so clients are built
// lazily, the first time something needs them, and a missing credential is
// reported only then.
type providerData struct {
	userAgent string
	clock     clock.PassiveClock
	timings   timings

	// How the provider reaches each cloud: settings, checks, clients.
	linode  linodeAccess
	stackit stackitAccess
	kube    kubernetesAccess

	requestTimeout time.Duration
	retry          retry.Policy

	clusters lookups[struct{}]
	// servedSHAs are the SHA-256 of the kubeconfig each cluster serves, as
	// refresh compares them with the state; for seconds only, since they
	// change whenever someone regenerates.
	servedSHAs lookups[string]
}

func newProviderData(ctx context.Context, version, tfVersion string, cfg providerModel, diags *diag.Diagnostics) *providerData {
	d := &providerData{
		clock:      clock.RealClock{},
		clusters:   lookups[struct{}]{ttl: 30 * time.Second},
		servedSHAs: lookups[string]{ttl: 10 * time.Second},
		userAgent: fmt.Sprintf("terraform-provider-kubecreds/%s (+https://registry.terraform.io/providers/kubecreds/kubecreds) Terraform/%s",
			version, tfVersion),
	}
	// The steps come in this order so that diagnostics do as they always
	// have.
	d.linode.resolve(cfg, diags)
	d.stackit = newSTACKITAccess(cfg.STACKIT, diags)
	d.linode.checkVersion(diags)
	d.requestTimeout = defaultRequestTimeout
	if v := cfg.RequestTimeout; !v.IsNull() && !v.IsUnknown() {
		t, more := v.ValueGoDuration()
		diags.Append(more...)
		d.requestTimeout = t
	}
	d.retry = retry.Policy{Max: defaultMaxRetries}
	if v := cfg.MaxRetries; !v.IsNull() && !v.IsUnknown() {
		d.retry.Max = int(v.ValueInt64())
		if d.retry.Max == 0 {
			d.retry = retry.NoRetry
		}
	}
	d.kube = newKubernetesAccess(cfg.Kubernetes, diags)
	d.linode.readConfigFile(cfg, diags)
	d.checkSettings(diags)
	tflog.Debug(ctx, "kubecreds provider configured", map[string]any{
		"linode_token_set":      d.linode.token.value != "" || d.linode.token.unknown,
		"linode_api_url":        d.linode.url.value,
		"linode_config_profile": d.linode.profile.describe(),
		"kubernetes_host":       d.kube.Host,
		"kubernetes_path":       d.kube.ConfigPath,
	})
	return d
}

// resolvePath resolves a setting that names a file, with a leading ~
// expanded (reported, naming the attribute, when it cannot be).
func resolvePath(v types.String, attr, env string, diags *diag.Diagnostics) setting {
	s := resolve(v, attr, env)
	if s.unknown {
		return s
	}
	p, err := expandHome(s.value)
	if err != nil {
		diags.AddAttributeError(attrPath(attr), "Invalid path",
			fmt.Sprintf("%s (or %s) is %q: %v.", s.attr, s.env, s.value, err))
		return s
	}
	s.value = p
	return s
}

// expandHome expands a leading ~ in a path a user typed, as the kubernetes
// provider does with go-homedir's Expand: "~" and "~/…" are the home
// directory (os.UserHomeDir, where linodego looks for its config file too);
// "~user/…" is an error rather than a file name.
func expandHome(p string) (string, error) {
	if p == "" || p[0] != '~' {
		return p, nil
	}
	if len(p) > 1 && p[1] != '/' && p[1] != '\\' {
		return "", errors.New("only a leading ~ or ~/ (your own home directory) is expanded, not ~user")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("~ cannot be expanded: %w", err)
	}
	return filepath.Join(home, p[1:]), nil
}

// shownURL quotes a URL for a message, with any password masked.
func shownURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return strconv.Quote(u.Redacted())
	}
	return strconv.Quote(raw)
}

// attrPath is the path of a provider attribute named as in messages
// ("stackit.private_key_path").
func attrPath(attr string) path.Path {
	parts := strings.Split(attr, ".")
	p := path.Root(parts[0])
	for _, name := range parts[1:] {
		p = p.AtName(name)
	}
	return p
}

// checkSettings reports, when the provider is configured (at plan), the
// settings that can never work, without a network call: each cloud's
// access checks its own. Settings not known yet are checked when they are.
func (d *providerData) checkSettings(diags *diag.Diagnostics) {
	d.linode.check(diags)
	d.stackit.check(diags)
	d.kube.check(diags)
}

// Defaults of request_timeout and max_retries.
const (
	defaultRequestTimeout = 30 * time.Second
	defaultMaxRetries     = 5
)

// loggingTransport logs each HTTP exchange (method, path, status, duration)
// at debug level. Headers and bodies are never logged: they carry tokens
// and kubeconfigs.
type loggingTransport struct {
	base    http.RoundTripper
	service string
	// limiter, when set, paces the requests; collectionLimiter, when set,
	// paces GETs of paginated collections on top of it.
	limiter, collectionLimiter *rate.Limiter
	// operations, when set, paces each operation (method and path pattern)
	// on its own as well.
	operations *operationLimiters
}

func (t *loggingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.limiter != nil {
		if err := t.limiter.Wait(r.Context()); err != nil {
			return nil, err
		}
	}
	if t.operations != nil {
		if err := t.operations.wait(r); err != nil {
			return nil, err
		}
	}
	if t.collectionLimiter != nil && isCollectionGET(r) {
		if err := t.collectionLimiter.Wait(r.Context()); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	fields := map[string]any{
		"service":     t.service,
		"method":      r.Method,
		"path":        r.URL.Path,
		"duration_ms": time.Since(start).Milliseconds(),
	}
	if err != nil {
		fields["error"] = "request failed"
	} else {
		fields["status"] = resp.StatusCode
		if resp.StatusCode == http.StatusTooManyRequests {
			fields["retry_after"] = resp.Header.Get("Retry-After")
			tflog.Info(r.Context(), "rate limited by the "+t.service+" API; waiting as it asks", fields)
		}
	}
	tflog.Debug(r.Context(), "HTTP request", fields)
	return resp, err
}

// providerDataFrom checks what Configure handed over, as the time provider
// does: anything but *providerData is a bug, reported as a diagnostic rather
// than a panic.
func providerDataFrom(v any, diags *diag.Diagnostics) *providerData {
	d, ok := v.(*providerData)
	if !ok {
		diags.AddError("Unexpected provider data",
			fmt.Sprintf("Expected *providerData, got %T. This is a bug in terraform-provider-kubecreds; please report it.", v))
		return nil
	}
	return d
}
