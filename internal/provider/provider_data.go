package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	"github.com/linode/linodego"
	"golang.org/x/time/rate"
	"gopkg.in/ini.v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

var linodeAPIVersions = []string{"v4", "v4beta"}

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

	linodeToken, linodeURL, linodeVersion, linodeCA, linodeUAPrefix setting
	// The linode-cli config file, read (once, at Configure) only when no
	// token is set: the profile found (nil when there is no file), or why
	// it cannot be used.
	linodeConfigPath, linodeConfigProfile setting
	linodeProfile                         *linodeProfile
	linodeProfileErr                      *linodeSettingError

	stackit stackitAccess

	kube            kubeconfig.Settings
	kubeUnknown     []string // attributes of the kubernetes block not known yet
	kubeInsecureSet bool

	requestTimeout time.Duration
	retry          retry.Policy

	mu       sync.Mutex
	linode   *linodeClients
	clusters lookups[struct{}]
	// servedSHAs are the SHA-256 of the kubeconfig each cluster serves, as
	// refresh compares them with the state; for seconds only, since they
	// change whenever someone regenerates.
	servedSHAs lookups[string]
}

// linodeClients are two clients sharing settings: API retries 429 and 5xx
// answers as linodego does; Poll does not, so that polling for a kubeconfig
// sees each 503 "not yet available" and notices the kubeconfig at once.
type linodeClients struct {
	API  *linodego.Client
	Poll *linodego.Client
	// Scopes are the token's OAuth scopes, as the answers of both report them.
	Scopes *lke.LinodeScopes
}

func newProviderData(ctx context.Context, version, tfVersion string, cfg providerModel, diags *diag.Diagnostics) *providerData {
	d := &providerData{
		clock:      clock.RealClock{},
		clusters:   lookups[struct{}]{ttl: 30 * time.Second},
		servedSHAs: lookups[string]{ttl: 10 * time.Second},
		userAgent: fmt.Sprintf("terraform-provider-kubecreds/%s (+https://registry.terraform.io/providers/kubecreds/kubecreds) Terraform/%s",
			version, tfVersion),
		linodeToken:    resolve(cfg.LinodeToken, "linode_token", linodego.APIEnvVar),
		linodeURL:      resolve(cfg.LinodeAPIURL, "linode_api_url", linodego.APIHostVar),
		linodeVersion:  resolve(cfg.LinodeAPIVersion, "linode_api_version", linodego.APIVersionVar),
		linodeUAPrefix: resolve(cfg.UAPrefix, "ua_prefix", "LINODE_UA_PREFIX"),
		// linodego's own variables for its config file (client.go,
		// NewClientFromEnv); terraform-provider-linode reads none.
		linodeConfigProfile: resolve(cfg.ConfigProfile, "config_profile", linodego.APIConfigProfileEnvVar),
	}
	d.linodeCA = resolvePath(cfg.LinodeCAPath, "linode_ca_path", linodego.APIHostCert, diags)
	d.linodeConfigPath = resolvePath(cfg.ConfigPath, "config_path", linodego.APIConfigEnvVar, diags)
	d.stackit = newSTACKITAccess(cfg.STACKIT, diags)
	if v := d.linodeVersion; !v.unknown && v.value != "" && v.value != "v4" && v.value != "v4beta" {
		diags.AddAttributeError(path.Root("linode_api_version"), "Invalid Linode API version",
			fmt.Sprintf("%s (from %s) is %q; allowed values are v4 and v4beta.", v.attr, v.env, v.value))
	}
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
	d.resolveKubernetes(cfg.Kubernetes, diags)
	d.readLinodeConfigFile(cfg, diags)
	d.checkSettings(diags)
	tflog.Debug(ctx, "kubecreds provider configured", map[string]any{
		"linode_token_set":      d.linodeToken.value != "" || d.linodeToken.unknown,
		"linode_api_url":        d.linodeURL.value,
		"linode_config_profile": d.linodeProfile.describe(),
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

func (d *providerData) resolveKubernetes(m *kubernetesModel, diags *diag.Diagnostics) {
	if m == nil {
		m = &kubernetesModel{}
	}
	str := func(v types.String, attr, env string) string {
		s := resolve(v, attr, env)
		if s.unknown {
			d.kubeUnknown = append(d.kubeUnknown, "kubernetes."+attr)
		}
		return s.value
	}
	d.kube = kubeconfig.Settings{
		ConfigPath:           d.kubePath(str(m.ConfigPath, "config_path", "KUBE_CONFIG_PATH"), "config_path", "KUBE_CONFIG_PATH", diags),
		ConfigContext:        str(m.ConfigContext, "config_context", "KUBE_CTX"),
		Host:                 str(m.Host, "host", "KUBE_HOST"),
		Token:                str(m.Token, "token", "KUBE_TOKEN"),
		ClusterCACertificate: str(m.ClusterCACertificate, "cluster_ca_certificate", "KUBE_CLUSTER_CA_CERT_DATA"),
		ClientCertificate:    str(m.ClientCertificate, "client_certificate", "KUBE_CLIENT_CERT_DATA"),
		ClientKey:            str(m.ClientKey, "client_key", "KUBE_CLIENT_KEY_DATA"),
	}
	d.kube.TLSServerName = str(m.TLSServerName, "tls_server_name", "KUBE_TLS_SERVER_NAME")
	d.kube.ProxyURL = str(m.ProxyURL, "proxy_url", "KUBE_PROXY_URL")
	d.kube.ConfigPaths = d.stringList(m.ConfigPaths, "kubernetes.config_paths")
	if d.kube.ConfigPaths == nil && m.ConfigPaths.IsNull() && m.ConfigPath.IsNull() {
		if v := os.Getenv("KUBE_CONFIG_PATHS"); v != "" && d.kube.ConfigPath == "" {
			d.kube.ConfigPaths = filepath.SplitList(v)
		}
	}
	for i, p := range d.kube.ConfigPaths {
		d.kube.ConfigPaths[i] = d.kubePath(p, "config_paths", "KUBE_CONFIG_PATHS", diags)
	}
	if e := m.Exec; e != nil {
		d.kube.Exec = &kubeconfig.Exec{
			APIVersion: str(e.APIVersion, "exec.api_version", ""),
			Command:    str(e.Command, "exec.command", ""),
			Args:       d.stringList(e.Args, "kubernetes.exec.args"),
		}
		switch {
		case e.Env.IsUnknown():
			d.kubeUnknown = append(d.kubeUnknown, "kubernetes.exec.env")
		case !e.Env.IsNull():
			env := map[string]string{}
			diags.Append(e.Env.ElementsAs(context.Background(), &env, false)...)
			d.kube.Exec.Env = env
		}
	}
	switch {
	case m.Insecure.IsUnknown():
		d.kubeUnknown = append(d.kubeUnknown, "kubernetes.insecure")
	case !m.Insecure.IsNull():
		d.kube.Insecure = m.Insecure.ValueBool()
	default:
		if v := os.Getenv("KUBE_INSECURE"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				diags.AddError("Invalid KUBE_INSECURE", fmt.Sprintf("KUBE_INSECURE is %q; allowed values are true and false.", v))
			}
			d.kube.Insecure = b
		}
	}
	if d.kube.Insecure {
		diags.AddAttributeWarning(path.Root("kubernetes").AtName("insecure"), "TLS verification is off",
			"kubernetes.insecure (or KUBE_INSECURE) is true: the Kubernetes API server's certificate is not verified, "+
				"so anyone on the network path can read the credentials this provider sends and issues.")
	}
}

// kubePath expands a leading ~ in a kubeconfig path, as the kubernetes
// provider does (homedir.Expand, on the attribute's value or its variable's).
func (d *providerData) kubePath(p, attr, env string, diags *diag.Diagnostics) string {
	expanded, err := expandHome(p)
	if err != nil {
		diags.AddAttributeError(path.Root("kubernetes").AtName(attr), "Invalid path",
			fmt.Sprintf("kubernetes.%s (or %s) names %q: %v.", attr, env, p, err))
		return p
	}
	return expanded
}

// stringList reads a list of strings of the kubernetes block (nil when null;
// an unknown one is recorded as such).
func (d *providerData) stringList(l types.List, attr string) []string {
	switch {
	case l.IsUnknown():
		d.kubeUnknown = append(d.kubeUnknown, attr)
		return nil
	case l.IsNull():
		return nil
	}
	var out []string
	for _, e := range l.Elements() {
		if s, ok := e.(types.String); ok && !s.IsNull() {
			if s.IsUnknown() {
				d.kubeUnknown = append(d.kubeUnknown, attr)
				return nil
			}
			out = append(out, s.ValueString())
		}
	}
	return out
}

// Linode returns the Linode API clients, building them on first use.
func (d *providerData) Linode(ctx context.Context) (*linodeClients, diag.Diagnostics) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var diags diag.Diagnostics
	if d.linode != nil {
		return d.linode, nil
	}
	needed := []setting{d.linodeToken, d.linodeURL, d.linodeVersion, d.linodeCA, d.linodeUAPrefix}
	if d.linodeToken.value == "" {
		needed = append(needed, d.linodeConfigPath, d.linodeConfigProfile)
	}
	for _, s := range needed {
		if s.unknown {
			diags.AddError("Linode provider setting not known yet",
				fmt.Sprintf("The provider's %s comes from a value that is not known until apply, but this operation needs to call the Linode API now. "+
					"Give it a value known at plan time, or set %s.", s.attr, s.env))
			return nil, diags
		}
	}
	target, serr := d.linodeTarget()
	if serr != nil {
		diags.AddError(serr.summary, serr.detail)
		return nil, diags
	}
	if target.token == "" {
		diags.AddError("Missing Linode API token", "This operation calls the Linode API and no token is configured: "+missingLinodeTokenHelp)
		return nil, diags
	}
	roots, err := d.linodeRoots()
	if err != nil {
		diags.AddError("Unusable Linode CA file", err.Error())
		return nil, diags
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	// The wrapping transport also keeps linodego from reading LINODE_CA on
	// its own (it exits the process when that file is unreadable).
	hc := &http.Client{Timeout: d.requestTimeout, Transport: &loggingTransport{
		base: transport, service: "linode", limiter: linodeLimiter, collectionLimiter: linodeCollectionLimiter,
		operations: linodeOperationLimiters,
	}}

	scopes := &lke.LinodeScopes{}
	newClient := func() *linodego.Client {
		c := linodego.NewClient(hc)
		c.SetBaseURL(target.baseURL)
		c.SetAPIVersion(target.version)
		c.SetToken(target.token)
		c.SetUserAgent(d.linodeUserAgent())
		// LINODE_DEBUG would print response bodies, kubeconfigs included.
		c.SetDebug(false)
		// Every non-2xx answer is an error with its status and headers
		// (linodego takes some for success); the token's scopes are noted.
		c.OnAfterResponse(lke.CheckLinodeAnswer)
		c.OnAfterResponse(scopes.Observe)
		return &c
	}
	api, poll := newClient(), newClient()
	// linodego retries 429 and 503 itself (honouring Retry-After); it is
	// also to retry the other transient failures, as often as max_retries says.
	api.SetRetryCount(max(d.retry.Max, 0))
	api.SetRetryWaitTime(time.Second)
	// A 429's Retry-After can be most of a minute: honour it in full (resty
	// caps waits at the maximum); other failures back off up to 10 s.
	api.SetRetryMaxWaitTime(2 * time.Minute)
	api.SetRetryAfter(retryAfterOrBackoff(d.retry))
	api.AddRetryCondition(func(r *resty.Response, err error) bool {
		if err != nil {
			return lke.IsTransient(err) && r != nil && r.Request != nil && r.Request.Context().Err() == nil
		}
		return r != nil && (r.StatusCode() == http.StatusInternalServerError || r.StatusCode() == http.StatusBadGateway ||
			r.StatusCode() == http.StatusGatewayTimeout)
	})
	poll.SetRetryCount(0)
	d.linode = &linodeClients{API: api, Poll: poll, Scopes: scopes}
	return d.linode, nil
}

// retryAfterOrBackoff is how long linodego waits before retrying, by the
// retry policy: what the answer's Retry-After asks, or else its backoff
// (1 s doubling per attempt up to 10 s).
func retryAfterOrBackoff(p retry.Policy) linodego.RetryAfter {
	return func(_ *resty.Client, resp *resty.Response) (time.Duration, error) {
		var after time.Duration
		attempt := 1
		if resp != nil {
			after = retry.RetryAfterHeader(resp.Header())
			if resp.Request != nil {
				attempt = max(resp.Request.Attempt, 1)
			}
		}
		return max(p.Delay(attempt-1, nil), after), nil
	}
}

// missingLinodeTokenHelp says every way to give the provider a Linode token.
const missingLinodeTokenHelp = "set linode_token in the provider configuration, or the LINODE_TOKEN environment variable, " +
	"to a personal access token with the lke:read_write scope (Kubernetes: Read/Write); or put the token in a linode-cli config file " +
	"profile (`token = ...`) and point config_path (or LINODE_CONFIG; default ~/.config/linode, then ~/.config/linode-cli) " +
	"and config_profile (or LINODE_PROFILE; default \"default\") at it."

const defaultLinodeURL = "https://api.linode.com"

// linodeSettingError is a Linode setting, or the linode-cli config file it
// leads to, that can never work: the attribute to name and what is wrong.
type linodeSettingError struct {
	attr            string
	summary, detail string
}

// linodeTarget is where the Linode API clients send their requests, and
// with which token.
type linodeTarget struct {
	baseURL, version, token string
}

// linodeTarget resolves the Linode settings: each attribute, else its
// environment variable; the token, api_url and api_version of the
// linode-cli profile only when no token is set (linodego's NewClientFromEnv
// reads the config file only without LINODE_TOKEN); then the real API's
// root and v4. The version is linode_api_version's, else the one in the
// URL's path (they may not differ), else the profile's.
func (d *providerData) linodeTarget() (linodeTarget, *linodeSettingError) {
	base, version, err := d.linodeEndpoint()
	if err != nil {
		return linodeTarget{}, err
	}
	t := linodeTarget{baseURL: base, version: version, token: d.linodeToken.value}
	if t.token == "" {
		if d.linodeProfileErr != nil {
			return t, d.linodeProfileErr
		}
		if p := d.linodeProfile; p != nil {
			t.token = p.token
			if t.baseURL == "" {
				t.baseURL = p.baseURL
			}
			if t.version == "" {
				t.version = p.version
			}
		}
	}
	if t.baseURL == "" {
		t.baseURL = defaultLinodeURL
	}
	if t.version == "" {
		t.version = linodego.APIVersion
	}
	return t, nil
}

// linodeEndpoint is linode_api_url (or LINODE_URL), checked, as a root URL
// ("" when unset), and the API version from linode_api_version (or
// LINODE_API_VERSION) or else from the URL's path ("" when neither says).
// A version in the path is read as linodego's Client.UseURL reads it; one
// that differs from linode_api_version is an error naming both, since
// either guess would send every request to a version the user did not ask
// for.
func (d *providerData) linodeEndpoint() (base, version string, serr *linodeSettingError) {
	version = d.linodeVersion.value
	if d.linodeURL.value == "" {
		return "", version, nil
	}
	base, inPath, err := parseLinodeURL(d.linodeURL.value)
	if err != nil {
		return "", "", &linodeSettingError{attr: "linode_api_url", summary: "Invalid Linode API URL",
			detail: fmt.Sprintf("%s (or %s) is %s; %v", d.linodeURL.attr, d.linodeURL.env, shownURL(d.linodeURL.value), err)}
	}
	switch {
	case inPath == "":
	case version == "" || d.linodeVersion.unknown:
		version = inPath
	case version != inPath:
		return "", "", &linodeSettingError{attr: "linode_api_url", summary: "Conflicting Linode API versions",
			detail: fmt.Sprintf("%s (or %s) is %s, whose path asks for API version %s, but %s (or %s) is %q. "+
				"Drop the version from the URL, or make the two agree.",
				d.linodeURL.attr, d.linodeURL.env, shownURL(d.linodeURL.value), inPath, d.linodeVersion.attr, d.linodeVersion.env, version)}
	}
	return base, version, nil
}

// parseLinodeURL splits a Linode API URL into its root (scheme and host)
// and the API version in its path, if any. Accepted: https://host,
// https://host/v4 and https://host/v4beta, each with or without a trailing
// slash. linodego's SetBaseURL would append the version to any path
// (https://host/v4 becoming …/v4/v4, a 404 for every request), and UseURL
// drops any other path silently; other paths are refused instead.
func parseLinodeURL(raw string) (base, version string, err error) {
	const forms = "it must be an https:// URL with a host and, at most, the API version as its path: " +
		"https://api.linode.com, https://api.linode.com/v4 or https://api.linode.com/v4beta"
	u, perr := url.Parse(raw)
	if perr != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", "", errors.New(forms)
	}
	switch p := strings.TrimSuffix(u.Path, "/"); p {
	case "":
	case "/v4", "/v4beta":
		version = p[1:]
	default:
		return "", "", fmt.Errorf("its path %q is not an API version; %s", u.Path, forms)
	}
	return u.Scheme + "://" + u.Host, version, nil
}

// shownURL quotes a URL for a message, with any password masked.
func shownURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return strconv.Quote(u.Redacted())
	}
	return strconv.Quote(raw)
}

// linodeProfile is the profile of a linode-cli config file that the token
// (and, where unset, the API URL and version) come from.
type linodeProfile struct {
	file, name              string
	token, baseURL, version string
}

// describe names the profile for a log line (never its token).
func (p *linodeProfile) describe() string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%s in %s", p.name, p.file)
}

// readLinodeConfigFile reads the linode-cli config file when no token is
// set, as linodego's NewClientFromEnv does; with a token, config_path and
// config_profile in the configuration are ignored, and said so.
func (d *providerData) readLinodeConfigFile(cfg providerModel, diags *diag.Diagnostics) {
	tok, file, prof := d.linodeToken, d.linodeConfigPath, d.linodeConfigProfile
	if tok.unknown || file.unknown || prof.unknown {
		return
	}
	if tok.value != "" {
		for _, a := range []struct {
			v    types.String
			name string
		}{{cfg.ConfigPath, "config_path"}, {cfg.ConfigProfile, "config_profile"}} {
			if !a.v.IsNull() && !a.v.IsUnknown() {
				diags.AddAttributeWarning(path.Root(a.name), "Linode config file not read",
					fmt.Sprintf("%s is set, but so is a token (linode_token or LINODE_TOKEN), which is used instead of any linode-cli config file "+
						"profile: its token, api_url and api_version are not read. Remove %s, or the token, to use the profile.", a.name, a.name))
			}
		}
		return
	}
	d.linodeProfile, d.linodeProfileErr = loadLinodeProfile(file, prof)
}

// loadLinodeProfile reads one profile of a linode-cli config file as
// linodego's LoadConfig and UseProfile read it (config.go): the file is
// config_path, else the first of linodego's DefaultConfigPaths that exists
// (none: no profile, no error); section names are case-insensitive; every
// profile starts from the [default] section's keys, then api.linode.com and
// v4; a profile without a token is an error. linodego applies what it reads
// to a client and keeps it private, so the same steps are taken here, on the
// same ini package, to check the values at plan. Messages never quote the
// file's lines: one may hold the token.
func loadLinodeProfile(file, prof setting) (*linodeProfile, *linodeSettingError) {
	where := fmt.Sprintf("%s (or %s) names %q", file.attr, file.env, file.value)
	if file.value == "" {
		if file.value = defaultLinodeConfigFile(); file.value != "" {
			where = fmt.Sprintf("the linode-cli config file %s (found where %s defaults to)", file.value, file.attr)
		}
	}
	if file.value == "" {
		if prof.value != "" {
			return nil, &linodeSettingError{attr: prof.attr, summary: "Linode config file not found",
				detail: fmt.Sprintf("%s (or %s) is %q, but there is no linode-cli config file to read it from: neither ~/.config/linode nor "+
					"~/.config/linode-cli exists. Set %s (or %s) to the file.", prof.attr, prof.env, prof.value, file.attr, file.env)}
		}
		return nil, nil
	}
	fileErr := func(why string) *linodeSettingError {
		return &linodeSettingError{attr: file.attr, summary: "Unusable Linode config file", detail: where + ", which " + why + "."}
	}
	f, err := ini.Load(file.value)
	var pathErr *fs.PathError
	switch {
	case errors.As(err, &pathErr):
		return nil, fileErr(fmt.Sprintf("cannot be read: %v", pathErr.Err))
	case err != nil:
		return nil, fileErr("is not a config file of profiles ([name] sections of key = value lines)")
	}
	name := prof.value
	if name == "" {
		name = linodego.DefaultConfigProfile
	}
	base := linodego.ConfigProfile{APIURL: linodego.APIHost, APIVersion: linodego.APIVersion}
	versionSet := false
	if f.HasSection("default") {
		if err := f.Section("default").MapTo(&base); err != nil {
			return nil, fileErr("has a [default] section that cannot be read")
		}
		versionSet = f.Section("default").HasKey("api_version")
	}
	var names, withToken []string
	var section *ini.Section
	defaultHasToken := f.HasSection("default") && f.Section("default").HasKey("token")
	for _, sec := range f.Sections() {
		// Later sections win, as in LoadConfig's map of profiles.
		if strings.EqualFold(sec.Name(), name) {
			section = sec
		}
		if n := strings.ToLower(sec.Name()); len(sec.Keys()) > 0 && !slices.Contains(names, n) {
			names = append(names, n)
			if sec.HasKey("token") || defaultHasToken {
				withToken = append(withToken, n)
			}
		}
	}
	profAttr := fmt.Sprintf("%s (or %s, default %q)", prof.attr, prof.env, linodego.DefaultConfigProfile)
	if section == nil {
		return nil, &linodeSettingError{attr: prof.attr, summary: "Linode config profile not found",
			detail: fmt.Sprintf("%s is %q, but %s, which has no such profile; its profiles: %s.", profAttr, name, where, listOrNone(names))}
	}
	p := base
	if err := section.MapTo(&p); err != nil {
		return nil, fileErr(fmt.Sprintf("has a [%s] section that cannot be read", section.Name()))
	}
	versionSet = versionSet || section.HasKey("api_version")
	profErr := func(what string) *linodeSettingError {
		return &linodeSettingError{attr: prof.attr, summary: "Unusable Linode config profile",
			detail: fmt.Sprintf("%s is %q, and %s, whose profile %s.", profAttr, name, where, what)}
	}
	if p.APIToken == "" {
		what := "has no token (a line `token = ...`); profiles with a token: " + listOrNone(withToken)
		// linode-cli's own file names its profile in [DEFAULT] default-user.
		if user := f.Section(ini.DefaultSection).Key("default-user").String(); user != "" && prof.value == "" {
			what += fmt.Sprintf("; linode-cli names its default user in [DEFAULT] default-user: set %s = %q to use that one", prof.attr, user)
		}
		return nil, profErr(what)
	}
	rawURL := p.APIURL
	if !strings.Contains(rawURL, "://") {
		rawURL = "https://" + rawURL // linodego's default is the bare host, as its SetBaseURL takes it
	}
	baseURL, inPath, err := parseLinodeURL(rawURL)
	if err != nil {
		return nil, profErr(fmt.Sprintf("has api_url = %s; %v", shownURL(p.APIURL), err))
	}
	version := p.APIVersion
	switch {
	case !slices.Contains(linodeAPIVersions, version):
		return nil, profErr(fmt.Sprintf("has api_version = %q; allowed values are v4 and v4beta", version))
	case inPath != "" && versionSet && inPath != version:
		return nil, profErr(fmt.Sprintf("has api_url = %s, whose path asks for API version %s, but api_version = %q; drop the version from api_url, "+
			"or make the two agree", shownURL(p.APIURL), inPath, version))
	case inPath != "":
		version = inPath
	}
	return &linodeProfile{file: file.value, name: strings.ToLower(name), token: p.APIToken, baseURL: baseURL, version: version}, nil
}

// defaultLinodeConfigFile is the first of linodego's DefaultConfigPaths
// (~/.config/linode, ~/.config/linode-cli) that exists, or "".
func defaultLinodeConfigFile() string {
	for _, candidate := range linodego.DefaultConfigPaths {
		p, err := linodego.FormatConfigPath(candidate)
		if err != nil {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// linodeUserAgent is the User-Agent of Linode API requests: ua_prefix (or
// LINODE_UA_PREFIX) and a space before the provider's own, as
// terraform-provider-linode puts its ua_prefix.
func (d *providerData) linodeUserAgent() string {
	ua := d.userAgent + " " + linodego.DefaultUserAgent
	if p := d.linodeUAPrefix.value; p != "" {
		ua = p + " " + ua
	}
	return ua
}

// linodeRoots are the CAs trusted for the Linode API: the system's, plus
// linode_ca_path's (or LINODE_CA's) when set.
func (d *providerData) linodeRoots() (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if d.linodeCA.value == "" {
		return roots, nil
	}
	pem, err := os.ReadFile(d.linodeCA.value)
	if err != nil {
		return nil, fmt.Errorf("%s (or %s) names %q, which cannot be read: %v", d.linodeCA.attr, d.linodeCA.env, d.linodeCA.value, err)
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s (or %s) names %q, which holds no PEM certificate", d.linodeCA.attr, d.linodeCA.env, d.linodeCA.value)
	}
	return roots, nil
}

// checkSettings reports, when the provider is configured (at plan), the
// settings that can never work, without a network call: a Linode API URL
// that is not https, a CA file that cannot be read, a kubeconfig path that
// does not exist. Settings not known yet are checked when they are.
func (d *providerData) checkSettings(diags *diag.Diagnostics) {
	if !d.linodeURL.unknown {
		if _, _, err := d.linodeEndpoint(); err != nil {
			diags.AddAttributeError(path.Root(err.attr), err.summary, strings.TrimSuffix(err.detail, ".")+".")
		}
	}
	// A config file or profile the user named is checked now; problems of
	// one found at the default place only when the Linode API is needed.
	if e := d.linodeProfileErr; e != nil && (d.linodeConfigPath.value != "" || d.linodeConfigProfile.value != "") {
		diags.AddAttributeError(path.Root(e.attr), e.summary, e.detail)
	}
	if p := d.linodeUAPrefix; strings.ContainsFunc(p.value, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }) {
		diags.AddAttributeError(path.Root("ua_prefix"), "Invalid User-Agent prefix",
			fmt.Sprintf("%s (or %s) holds a line break or another control character, which an HTTP header cannot carry.", p.attr, p.env))
	}
	if !d.linodeCA.unknown {
		if _, err := d.linodeRoots(); err != nil {
			diags.AddAttributeError(path.Root("linode_ca_path"), "Unusable Linode CA file", err.Error()+".")
		}
	}
	d.stackit.check(diags)
	if p := d.kube.ConfigPath; p != "" {
		if _, err := os.Stat(p); err != nil {
			diags.AddAttributeError(path.Root("kubernetes").AtName("config_path"), "Kubeconfig file not found",
				fmt.Sprintf("kubernetes.config_path (or KUBE_CONFIG_PATH) names %q, which cannot be read: %v.", p, err))
		}
	}
	for _, p := range d.kube.ConfigPaths {
		if _, err := os.Stat(p); err != nil {
			diags.AddAttributeError(path.Root("kubernetes").AtName("config_paths"), "Kubeconfig file not found",
				fmt.Sprintf("kubernetes.config_paths (or KUBE_CONFIG_PATHS) names %q, which cannot be read: %v.", p, err))
		}
	}
	if p := d.kube.ProxyURL; p != "" {
		if u, err := url.Parse(p); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
			// A proxy URL may carry a password: never repeat it.
			shown := "not a URL"
			if err == nil {
				shown = fmt.Sprintf("%q", u.Redacted())
			}
			diags.AddAttributeError(path.Root("kubernetes").AtName("proxy_url"), "Invalid proxy URL",
				fmt.Sprintf("kubernetes.proxy_url (or KUBE_PROXY_URL) is %s; it must be an http://, https:// or socks5:// URL with a host, such as http://proxy.example:3128.", shown))
		}
	}
	if e := d.kube.Exec; e != nil && e.Command == "" && !slices.Contains(d.kubeUnknown, "kubernetes.exec.command") {
		diags.AddAttributeError(path.Root("kubernetes").AtName("exec").AtName("command"), "Missing exec plugin command",
			"kubernetes.exec needs command (the credential plugin to run, such as \"aws\" or \"/usr/local/bin/get-token\") and api_version ("+
				strings.Join(execAPIVersions, " or ")+").")
	} else if e != nil && e.APIVersion == "" && !slices.Contains(d.kubeUnknown, "kubernetes.exec.api_version") {
		diags.AddAttributeError(path.Root("kubernetes").AtName("exec").AtName("api_version"), "Missing exec plugin API version",
			"kubernetes.exec needs api_version, the ExecCredential version the plugin speaks: "+strings.Join(execAPIVersions, " or ")+".")
	}
}

// needLinodeToken reports, at plan, that an operation will call the Linode
// API with no token configured (nor a linode-cli profile that gives one).
func (d *providerData) needLinodeToken(diags *diag.Diagnostics, what string) {
	if d.linodeToken.unknown || d.linodeToken.value != "" || d.linodeConfigPath.unknown || d.linodeConfigProfile.unknown {
		return
	}
	if e := d.linodeProfileErr; e != nil {
		diags.AddError(e.summary, what+" calls the Linode API, and the provider has no token but a linode-cli config file it cannot use: "+e.detail)
		return
	}
	if d.linodeProfile != nil {
		return
	}
	diags.AddError("Missing Linode API token", what+" calls the Linode API, and the provider has no token: "+missingLinodeTokenHelp)
}

// needSTACKIT reports, at plan, that an operation will call the SKE API
// with no STACKIT credentials configured.
func (d *providerData) needSTACKIT(diags *diag.Diagnostics, what string) { d.stackit.need(diags, what) }

// Defaults of request_timeout and max_retries.
const (
	defaultRequestTimeout = 30 * time.Second
	defaultMaxRetries     = 5
)

// KubernetesConfig returns the client configuration of the provider's
// kubernetes block (or KUBE_* variables).
func (d *providerData) KubernetesConfig() (*rest.Config, diag.Diagnostics) {
	var diags diag.Diagnostics
	if len(d.kubeUnknown) > 0 {
		diags.AddError("Kubernetes provider setting not known yet",
			fmt.Sprintf("The provider's %v come from values not known until apply, but this operation needs the cluster now.", d.kubeUnknown))
		return nil, diags
	}
	cfg, err := d.kube.RESTConfig()
	if err == kubeconfig.ErrNotConfigured {
		diags.AddError("No Kubernetes cluster configured",
			"This operation needs a cluster from the provider configuration: set kubernetes { config_path } (or KUBE_CONFIG_PATH), "+
				"or kubernetes { host } with credentials (or KUBE_HOST and KUBE_TOKEN / KUBE_CLIENT_CERT_DATA).")
		return nil, diags
	}
	if err != nil {
		diags.AddError("Invalid Kubernetes provider configuration", "The provider's kubernetes block (or KUBE_* variables): "+err.Error())
		return nil, diags
	}
	cfg.UserAgent = d.userAgent
	return cfg, nil
}

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

// operationLimiters keep each Linode API command (a write: regenerate,
// recycle) below the limit the API reference gives "all commands" besides
// the general one: 400 requests a minute (linode-api-docs openapi.yaml
// v4.176.0, "Rate Limiting"; the recordings' X-RateLimit-Limit shows 400 on
// some LKE operations). A fleet rotated in one apply would otherwise meet it.
type operationLimiters struct {
	perMinute float64
	burst     int
	m         sync.Map // operation -> *rate.Limiter
}

func (o *operationLimiters) wait(r *http.Request) error {
	if r.Method == http.MethodGet {
		// Reads are paced by the general limiter: the recordings show
		// X-RateLimit-Limit 1600 on the kubeconfig and cluster reads, and
		// pacing the kubeconfig poll to 400 a minute would slow every
		// rotation's wait for its new kubeconfig.
		return nil
	}
	key := r.Method + " " + operationPattern(r.URL.Path)
	l, ok := o.m.Load(key)
	if !ok {
		l, _ = o.m.LoadOrStore(key, rate.NewLimiter(rate.Limit(o.perMinute/60), o.burst))
	}
	return l.(*rate.Limiter).Wait(r.Context())
}

// operationPattern is a Linode API path with its version and ids left out:
// /v4/lke/clusters/12/kubeconfig is lke/clusters/{}/kubeconfig.
func operationPattern(p string) string {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	out := parts[:0]
	for i, part := range parts {
		if i == 0 && (part == "v4" || part == "v4beta") {
			continue
		}
		if _, err := strconv.Atoi(part); err == nil {
			part = "{}"
		}
		out = append(out, part)
	}
	return strings.Join(out, "/")
}

var linodeOperationLimiters = &operationLimiters{perMinute: 380, burst: 20}

// linodeLimiter paces every Linode API request of this provider process,
// however many resources run in parallel, below the API's limit of 1 600
// requests a minute per token (with room for the user's other tools).
var linodeLimiter = rate.NewLimiter(rate.Limit(1500.0/60), 50)

// linodeCollectionLimiter keeps GETs of paginated collections (node pools,
// clusters) below their own limit of 200 a minute per token.
var linodeCollectionLimiter = rate.NewLimiter(rate.Limit(180.0/60), 10)

// isCollectionGET tells a GET of a paginated Linode collection
// (/lke/clusters/1/pools) from one of a single object (/lke/clusters/1,
// /lke/clusters/1/pools/2, /lke/clusters/1/kubeconfig).
func isCollectionGET(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	last := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	if _, err := strconv.Atoi(last); err == nil {
		return false
	}
	switch last {
	case "kubeconfig", "dashboard", "control_plane_acl":
		return false
	}
	return true
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

// rotationRunner wires the rotation procedure to this provider's clients,
// clock and logs.
func (d *providerData) rotationRunner(ctx context.Context) (*lke.Runner, diag.Diagnostics) {
	clients, diags := d.Linode(ctx)
	if diags.HasError() {
		return nil, diags
	}
	return &lke.Runner{
		Linode:  clients.API,
		Poll:    clients.Poll,
		Scopes:  clients.Scopes,
		Connect: kube.Connect(d.userAgent, d.requestTimeout, d.retry),
		Retry:   d.retry,
		Clock:   d.clock,
		Log:     tflogSteps{},
	}, nil
}

// tflogSteps logs each rotation step at info level.
type tflogSteps struct{}

func (tflogSteps) Step(ctx context.Context, step string, fields map[string]any) {
	tflog.Info(ctx, "rotation step: "+step, fields)
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
