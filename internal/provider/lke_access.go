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

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

var linodeAPIVersions = []string{"v4", "v4beta"}

// linodeAccess is how the provider reaches the Linode API: the Linode
// settings, each falling back to the variable linodego reads, the
// linode-cli config file they may lead to, and the clients built from
// them on first use.
type linodeAccess struct {
	token, url, version, ca, uaPrefix setting
	// The linode-cli config file, read (once, at Configure) only when no
	// token is set: the profile found (nil when there is no file), or why
	// it cannot be used.
	configPath, configProfile setting
	profile                   *linodeProfile
	profileErr                *linodeSettingError

	mu      sync.Mutex
	clients *linodeClients
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

// resolve reads the Linode settings: each attribute, else its variable;
// paths with a leading ~ expanded.
func (a *linodeAccess) resolve(cfg providerModel, diags *diag.Diagnostics) {
	a.token = resolve(cfg.LinodeToken, "linode_token", linodego.APIEnvVar)
	a.url = resolve(cfg.LinodeAPIURL, "linode_api_url", linodego.APIHostVar)
	a.version = resolve(cfg.LinodeAPIVersion, "linode_api_version", linodego.APIVersionVar)
	a.uaPrefix = resolve(cfg.UAPrefix, "ua_prefix", "LINODE_UA_PREFIX")
	// linodego's own variables for its config file (client.go,
	// NewClientFromEnv); terraform-provider-linode reads none.
	a.configProfile = resolve(cfg.ConfigProfile, "config_profile", linodego.APIConfigProfileEnvVar)
	a.ca = resolvePath(cfg.LinodeCAPath, "linode_ca_path", linodego.APIHostCert, diags)
	a.configPath = resolvePath(cfg.ConfigPath, "config_path", linodego.APIConfigEnvVar, diags)
}

// checkVersion reports a linode_api_version (or LINODE_API_VERSION) that
// is neither v4 nor v4beta.
func (a *linodeAccess) checkVersion(diags *diag.Diagnostics) {
	if v := a.version; !v.unknown && v.value != "" && v.value != "v4" && v.value != "v4beta" {
		diags.AddAttributeError(path.Root("linode_api_version"), "Invalid Linode API version",
			fmt.Sprintf("%s (from %s) is %q; allowed values are v4 and v4beta.", v.attr, v.env, v.value))
	}
}

// check reports, at plan, the Linode settings that can never work,
// without a network call: an API URL that is not https, a config file or
// profile named that cannot be used, a User-Agent prefix no header can
// carry, a CA file that cannot be read.
func (a *linodeAccess) check(diags *diag.Diagnostics) {
	if !a.url.unknown {
		if _, _, err := a.endpoint(); err != nil {
			diags.AddAttributeError(path.Root(err.attr), err.summary, strings.TrimSuffix(err.detail, ".")+".")
		}
	}
	// A config file or profile the user named is checked now; problems of
	// one found at the default place only when the Linode API is needed.
	if e := a.profileErr; e != nil && (a.configPath.value != "" || a.configProfile.value != "") {
		diags.AddAttributeError(path.Root(e.attr), e.summary, e.detail)
	}
	if p := a.uaPrefix; strings.ContainsFunc(p.value, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }) {
		diags.AddAttributeError(path.Root("ua_prefix"), "Invalid User-Agent prefix",
			fmt.Sprintf("%s (or %s) holds a line break or another control character, which an HTTP header cannot carry.", p.attr, p.env))
	}
	if !a.ca.unknown {
		if _, err := a.roots(); err != nil {
			diags.AddAttributeError(path.Root("linode_ca_path"), "Unusable Linode CA file", err.Error()+".")
		}
	}
}

// need reports, at plan, that an operation will call the Linode
// API with no token configured (nor a linode-cli profile that gives one).
func (a *linodeAccess) need(diags *diag.Diagnostics, what string) {
	if a.token.unknown || a.token.value != "" || a.configPath.unknown || a.configProfile.unknown {
		return
	}
	if e := a.profileErr; e != nil {
		diags.AddError(e.summary, what+" calls the Linode API, and the provider has no token but a linode-cli config file it cannot use: "+e.detail)
		return
	}
	if a.profile != nil {
		return
	}
	addMissingLinodeToken(diags, what)
}

// addMissingLinodeToken reports that an operation (what) calls the Linode
// API and the provider has no token.
func addMissingLinodeToken(diags *diag.Diagnostics, what string) {
	diags.AddError("Missing Linode API token", what+" calls the Linode API, and the provider has no token: "+missingLinodeTokenHelp)
}

// Linode returns the Linode API clients, building them on first use.
func (d *providerData) Linode(context.Context) (*linodeClients, diag.Diagnostics) {
	return d.linode.connect(d.userAgent, d.requestTimeout, d.retry)
}

// connect returns the Linode API clients, building them on first use with
// the provider's user agent, request timeout and retry policy.
func (a *linodeAccess) connect(userAgent string, timeout time.Duration, policy retry.Policy) (*linodeClients, diag.Diagnostics) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var diags diag.Diagnostics
	if a.clients != nil {
		return a.clients, nil
	}
	needed := []setting{a.token, a.url, a.version, a.ca, a.uaPrefix}
	if a.token.value == "" {
		needed = append(needed, a.configPath, a.configProfile)
	}
	for _, s := range needed {
		if s.unknown {
			diags.AddError("Linode provider setting not known yet",
				fmt.Sprintf("The provider's %s comes from a value that is not known until apply, but this operation needs to call the Linode API now. "+
					"Give it a value known at plan time, or set %s.", s.attr, s.env))
			return nil, diags
		}
	}
	target, serr := a.target()
	if serr != nil {
		diags.AddError(serr.summary, serr.detail)
		return nil, diags
	}
	if target.token == "" {
		addMissingLinodeToken(&diags, "This operation")
		return nil, diags
	}
	roots, err := a.roots()
	if err != nil {
		diags.AddError("Unusable Linode CA file", err.Error())
		return nil, diags
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	// The wrapping transport also keeps linodego from reading LINODE_CA on
	// its own (it exits the process when that file is unreadable).
	hc := &http.Client{Timeout: timeout, Transport: &loggingTransport{
		base: transport, service: "linode", limiter: linodeLimiter, collectionLimiter: linodeCollectionLimiter,
		operations: linodeOperationLimiters,
	}}

	scopes := &lke.LinodeScopes{}
	newClient := func() *linodego.Client {
		c := linodego.NewClient(hc)
		c.SetBaseURL(target.baseURL)
		c.SetAPIVersion(target.version)
		c.SetToken(target.token)
		c.SetUserAgent(a.userAgent(userAgent))
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
	api.SetRetryCount(max(policy.Max, 0))
	api.SetRetryWaitTime(time.Second)
	// A 429's Retry-After can be most of a minute: honour it in full (resty
	// caps waits at the maximum); other failures back off up to 10 s.
	api.SetRetryMaxWaitTime(2 * time.Minute)
	api.SetRetryAfter(retryAfterOrBackoff(policy))
	api.AddRetryCondition(func(r *resty.Response, err error) bool {
		if err != nil {
			return lke.IsTransient(err) && r != nil && r.Request != nil && r.Request.Context().Err() == nil
		}
		return r != nil && (r.StatusCode() == http.StatusInternalServerError || r.StatusCode() == http.StatusBadGateway ||
			r.StatusCode() == http.StatusGatewayTimeout)
	})
	poll.SetRetryCount(0)
	a.clients = &linodeClients{API: api, Poll: poll, Scopes: scopes}
	return a.clients, nil
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

// target resolves the Linode settings: each attribute, else its
// environment variable; the token, api_url and api_version of the
// linode-cli profile only when no token is set (linodego's NewClientFromEnv
// reads the config file only without LINODE_TOKEN); then the real API's
// root and v4. The version is linode_api_version's, else the one in the
// URL's path (they may not differ), else the profile's.
func (a *linodeAccess) target() (linodeTarget, *linodeSettingError) {
	base, version, err := a.endpoint()
	if err != nil {
		return linodeTarget{}, err
	}
	t := linodeTarget{baseURL: base, version: version, token: a.token.value}
	if t.token == "" {
		if a.profileErr != nil {
			return t, a.profileErr
		}
		if p := a.profile; p != nil {
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

// endpoint is linode_api_url (or LINODE_URL), checked, as a root URL
// ("" when unset), and the API version from linode_api_version (or
// LINODE_API_VERSION) or else from the URL's path ("" when neither says).
// A version in the path is read as linodego's Client.UseURL reads it; one
// that differs from linode_api_version is an error naming both, since
// either guess would send every request to a version the user did not ask
// for.
func (a *linodeAccess) endpoint() (base, version string, serr *linodeSettingError) {
	version = a.version.value
	if a.url.value == "" {
		return "", version, nil
	}
	base, inPath, err := parseLinodeURL(a.url.value)
	if err != nil {
		return "", "", &linodeSettingError{attr: "linode_api_url", summary: "Invalid Linode API URL",
			detail: fmt.Sprintf("%s (or %s) is %s; %v", a.url.attr, a.url.env, shownURL(a.url.value), err)}
	}
	switch {
	case inPath == "":
	case version == "" || a.version.unknown:
		version = inPath
	case version != inPath:
		return "", "", &linodeSettingError{attr: "linode_api_url", summary: "Conflicting Linode API versions",
			detail: fmt.Sprintf("%s (or %s) is %s, whose path asks for API version %s, but %s (or %s) is %q. "+
				"Drop the version from the URL, or make the two agree.",
				a.url.attr, a.url.env, shownURL(a.url.value), inPath, a.version.attr, a.version.env, version)}
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

// readConfigFile reads the linode-cli config file when no token is
// set, as linodego's NewClientFromEnv does; with a token, config_path and
// config_profile in the configuration are ignored, and said so.
func (a *linodeAccess) readConfigFile(cfg providerModel, diags *diag.Diagnostics) {
	tok, file, prof := a.token, a.configPath, a.configProfile
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
	a.profile, a.profileErr = loadLinodeProfile(file, prof)
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

// userAgent is the User-Agent of Linode API requests: ua_prefix (or
// LINODE_UA_PREFIX) and a space before the provider's own (base), as
// terraform-provider-linode puts its ua_prefix.
func (a *linodeAccess) userAgent(base string) string {
	ua := base + " " + linodego.DefaultUserAgent
	if p := a.uaPrefix.value; p != "" {
		ua = p + " " + ua
	}
	return ua
}

// roots are the CAs trusted for the Linode API: the system's, plus
// linode_ca_path's (or LINODE_CA's) when set.
func (a *linodeAccess) roots() (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if a.ca.value == "" {
		return roots, nil
	}
	pem, err := os.ReadFile(a.ca.value)
	if err != nil {
		return nil, fmt.Errorf("%s (or %s) names %q, which cannot be read: %w", a.ca.attr, a.ca.env, a.ca.value, err)
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s (or %s) names %q, which holds no PEM certificate", a.ca.attr, a.ca.env, a.ca.value)
	}
	return roots, nil
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

// describeLinodeError explains a Linode API error in terms of what to fix.
// linodego's messages carry the API's reason, never the token.
func describeLinodeError(err error, clusterID int) string {
	if hint := linodeHint(err, clusterID); hint != "" {
		return hint
	}
	return err.Error()
}

// linodeHint says what to fix for the Linode API errors a user can fix:
// a bad token, a token without the LKE scope, missing permission, a wrong
// cluster id, an untrusted certificate or an unknown host. Otherwise "".
func linodeHint(err error, clusterID int) string {
	switch cause := lke.PermanentCause(err); {
	case errors.Is(cause, retry.ErrUntrustedCertificate):
		return "The Linode API's TLS certificate is not trusted (" + err.Error() + "). If it is served through a proxy or a private endpoint with its own CA, " +
			"set linode_ca_path (or LINODE_CA) to that CA's PEM file; otherwise check linode_api_url (or LINODE_URL)."
	case errors.Is(cause, retry.ErrUnknownHost):
		return "The Linode API's host name does not resolve (" + err.Error() + "): check linode_api_url (or LINODE_URL), or leave it unset for https://api.linode.com."
	}
	lerr, ok := lke.LinodeError(err)
	if !ok {
		return ""
	}
	if lke.IsMaintenance(err) {
		return "The Linode API is under maintenance (503 " + lerr.Message + "; see https://status.linode.com). " +
			"Run apply again once it is over: a rotation that stopped part-way resumes where it stopped."
	}
	if lerr.Code >= 400 && !lke.IsLinodeAnswer(err) {
		// A gateway's or CDN's page, or JSON without the API's error list:
		// it says nothing about the token or the cluster.
		return fmt.Sprintf("The answer did not come from the Linode API itself (%s). It is usually passing: run again. "+
			"If it persists, check linode_api_url (or LINODE_URL) and any proxy in between; https://status.linode.com shows outages.", lerr.Message)
	}
	switch lerr.Code {
	case http.StatusUnauthorized:
		if strings.Contains(lerr.Message, "not authorized to use this endpoint") {
			return "The Linode API token lacks the scope this needs (401 " + lerr.Message + "): rotating, and reading a cluster's kubeconfig, need a token with " +
				"lke:read_write (Kubernetes: Read/Write in Cloud Manager); listing and reading clusters need lke:read_only. Create a token with that scope and set linode_token or LINODE_TOKEN."
		}
		return "The Linode API rejected the token (401 " + lerr.Message + "): check linode_token or the LINODE_TOKEN environment variable (or, when neither is set, the token of the linode-cli config profile in use)."
	case http.StatusForbidden:
		return "The Linode API token may not do this (403 " + lerr.Message + "): it needs read/write access to Kubernetes (lke:read_write)."
	case http.StatusNotFound:
		return fmt.Sprintf("LKE cluster %d does not exist, or the token cannot see it (404 %s).", clusterID, lerr.Message)
	}
	return ""
}

// lkeRESTConfig reaches an LKE cluster the way the runbook does: with the
// kubeconfig the Linode API serves, waiting through 503 "not yet available"
// for at most wait.
func (d *providerData) lkeRESTConfig(ctx context.Context, clusterID int, wait time.Duration) (*rest.Config, diag.Diagnostics) {
	clients, diags := d.Linode(ctx)
	if diags.HasError() {
		return nil, diags
	}
	fetchCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	raw, err := lke.FetchKubeconfig(fetchCtx, clients.Poll, clusterID, lke.KubeconfigPollFor(d.retry))
	if err != nil {
		diags.AddError("Cannot get the kubeconfig of LKE cluster "+fmt.Sprint(clusterID), describeLinodeError(err, clusterID))
		return nil, diags
	}
	cfg, err := kubeconfig.ParseServed(raw)
	if err != nil {
		diags.AddError("Unusable kubeconfig for LKE cluster "+fmt.Sprint(clusterID), "The Linode API served a kubeconfig that cannot be used: "+err.Error())
		return nil, diags
	}
	if note := kubeconfig.InsecureNote(cfg); note != "" {
		diags.AddWarning("TLS verification is off", fmt.Sprintf("The kubeconfig the Linode API serves for LKE cluster %d: %s.", clusterID, note))
	}
	cfg.UserAgent = d.userAgent
	cfg.Timeout = d.requestTimeout
	return cfg, diags
}
