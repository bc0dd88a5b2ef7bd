package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
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
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/rotation"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/ske"
)

var linodeAPIVersions = []string{"v4", "v4beta"}

// setting is one provider setting resolved from the configuration or, when
// the configuration leaves it null, its environment variable.
type setting struct {
	value   string
	unknown bool   // fed from a value not known until apply
	attr    string // attribute name, for messages
	env     string // environment variable, for messages
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

	linodeToken, linodeURL, linodeVersion, linodeCA setting

	skeKeyPath, skeKey, skePrivateKeyPath, skePrivateKey, skeToken, skeEndpoint, skeTokenEndpoint setting
	ske                                                                                           *ske.Client

	kube            kubeconfig.Settings
	kubeUnknown     []string // attributes of the kubernetes block not known yet
	kubeInsecureSet bool

	requestTimeout time.Duration
	retry          rotation.Retry

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
	Scopes *rotation.LinodeScopes
}

func newProviderData(ctx context.Context, version, tfVersion string, cfg providerModel, diags *diag.Diagnostics) *providerData {
	d := &providerData{
		clock:      clock.RealClock{},
		clusters:   lookups[struct{}]{ttl: 30 * time.Second},
		servedSHAs: lookups[string]{ttl: 10 * time.Second},
		userAgent: fmt.Sprintf("terraform-provider-kubecreds/%s (+https://registry.terraform.io/providers/kubecreds/kubecreds) Terraform/%s",
			version, tfVersion),
		linodeToken:   resolve(cfg.LinodeToken, "linode_token", linodego.APIEnvVar),
		linodeURL:     resolve(cfg.LinodeAPIURL, "linode_api_url", linodego.APIHostVar),
		linodeVersion: resolve(cfg.LinodeAPIVersion, "linode_api_version", linodego.APIVersionVar),
		linodeCA:      resolve(cfg.LinodeCAPath, "linode_ca_path", linodego.APIHostCert),
	}
	var st stackitModel
	if cfg.STACKIT != nil {
		st = *cfg.STACKIT
	}
	d.skeKeyPath = resolve(st.ServiceAccountKeyPath, "stackit.service_account_key_path", "STACKIT_SERVICE_ACCOUNT_KEY_PATH")
	d.skeKey = resolve(st.ServiceAccountKey, "stackit.service_account_key", "STACKIT_SERVICE_ACCOUNT_KEY")
	d.skePrivateKeyPath = resolve(st.PrivateKeyPath, "stackit.private_key_path", "STACKIT_PRIVATE_KEY_PATH")
	d.skePrivateKey = resolve(st.PrivateKey, "stackit.private_key", "STACKIT_PRIVATE_KEY")
	d.skeToken = resolve(st.ServiceAccountToken, "stackit.service_account_token", "STACKIT_SERVICE_ACCOUNT_TOKEN")
	d.skeEndpoint = resolve(st.SKECustomEndpoint, "stackit.ske_custom_endpoint", "STACKIT_SKE_CUSTOM_ENDPOINT")
	d.skeTokenEndpoint = resolve(st.TokenCustomEndpoint, "stackit.token_custom_endpoint", "STACKIT_TOKEN_BASEURL")
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
	d.retry = rotation.Retry{Max: defaultMaxRetries}
	if v := cfg.MaxRetries; !v.IsNull() && !v.IsUnknown() {
		d.retry.Max = int(v.ValueInt64())
		if d.retry.Max == 0 {
			d.retry = rotation.NoRetry
		}
	}
	d.resolveKubernetes(cfg.Kubernetes, diags)
	d.checkSettings(diags)
	tflog.Debug(ctx, "kubecreds provider configured", map[string]any{
		"linode_token_set": d.linodeToken.value != "" || d.linodeToken.unknown,
		"linode_api_url":   d.linodeURL.value,
		"kubernetes_host":  d.kube.Host,
		"kubernetes_path":  d.kube.ConfigPath,
	})
	return d
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
		ConfigPath:           str(m.ConfigPath, "config_path", "KUBE_CONFIG_PATH"),
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
	for _, s := range []setting{d.linodeToken, d.linodeURL, d.linodeVersion, d.linodeCA} {
		if s.unknown {
			diags.AddError("Linode provider setting not known yet",
				fmt.Sprintf("The provider's %s comes from a value that is not known until apply, but this operation needs to call the Linode API now. "+
					"Give it a value known at plan time, or set %s.", s.attr, s.env))
			return nil, diags
		}
	}
	if d.linodeToken.value == "" {
		diags.AddError("Missing Linode API token",
			"This operation calls the Linode API and no token is configured: set linode_token in the provider configuration "+
				"or the LINODE_TOKEN environment variable to a personal access token with read/write access to Kubernetes.")
		return nil, diags
	}
	baseURL, err := d.linodeBaseURL()
	if err != nil {
		diags.AddError("Invalid Linode API URL", err.Error())
		return nil, diags
	}
	apiVersion := d.linodeVersion.value
	if apiVersion == "" {
		apiVersion = "v4"
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

	scopes := &rotation.LinodeScopes{}
	newClient := func() *linodego.Client {
		c := linodego.NewClient(hc)
		c.SetBaseURL(baseURL)
		c.SetAPIVersion(apiVersion)
		c.SetToken(d.linodeToken.value)
		c.SetUserAgent(d.userAgent + " " + linodego.DefaultUserAgent)
		// LINODE_DEBUG would print response bodies, kubeconfigs included.
		c.SetDebug(false)
		// Every non-2xx answer is an error with its status and headers
		// (linodego takes some for success); the token's scopes are noted.
		c.OnAfterResponse(rotation.CheckLinodeAnswer)
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
	api.SetRetryAfter(retryAfterOrBackoff)
	api.AddRetryCondition(func(r *resty.Response, err error) bool {
		if err != nil {
			return rotation.IsTransient(err) && r != nil && r.Request != nil && r.Request.Context().Err() == nil
		}
		return r != nil && (r.StatusCode() == http.StatusInternalServerError || r.StatusCode() == http.StatusBadGateway ||
			r.StatusCode() == http.StatusGatewayTimeout)
	})
	poll.SetRetryCount(0)
	d.linode = &linodeClients{API: api, Poll: poll, Scopes: scopes}
	return d.linode, nil
}

// retryAfterOrBackoff is how long linodego waits before retrying: what the
// answer's Retry-After asks, or else 1 s doubling per attempt up to 10 s.
func retryAfterOrBackoff(_ *resty.Client, resp *resty.Response) (time.Duration, error) {
	if resp != nil {
		if after := rotation.RetryAfterHeader(resp.Header()); after > 0 {
			return after, nil
		}
	}
	attempt := 1
	if resp != nil && resp.Request != nil {
		attempt = max(resp.Request.Attempt, 1)
	}
	return min(time.Second<<min(attempt-1, 4), 10*time.Second), nil
}

// SKE returns the SKE API client, built on first use from the stackit
// block (or the STACKIT_* variables).
func (d *providerData) SKE() (*ske.Client, diag.Diagnostics) {
	var diags diag.Diagnostics
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ske != nil {
		return d.ske, nil
	}
	creds := ske.Credentials{
		ServiceAccountKeyPath: d.skeKeyPath.value, ServiceAccountKey: d.skeKey.value,
		PrivateKeyPath: d.skePrivateKeyPath.value, PrivateKey: d.skePrivateKey.value,
		Token: d.skeToken.value, TokenURL: d.skeTokenEndpoint.value,
	}
	if creds.Empty() {
		diags.AddError("Missing STACKIT credentials",
			"This calls STACKIT's SKE API and no credentials are configured: set stackit.service_account_key_path "+
				"(or STACKIT_SERVICE_ACCOUNT_KEY_PATH), stackit.service_account_key (STACKIT_SERVICE_ACCOUNT_KEY), or "+
				"stackit.service_account_token (STACKIT_SERVICE_ACCOUNT_TOKEN).")
		return nil, diags
	}
	base := ske.DefaultBaseURL
	if e := d.skeEndpoint.value; e != "" {
		u, err := url.Parse(e)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			diags.AddError("Invalid SKE endpoint", fmt.Sprintf("%s (or %s) is %q; it must be an https:// URL with a host, such as %s",
				d.skeEndpoint.attr, d.skeEndpoint.env, e, ske.DefaultBaseURL))
			return nil, diags
		}
		base = e
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	hc, err := ske.NewHTTPClient(creds, &loggingTransport{base: transport, service: "ske"}, d.requestTimeout)
	if err != nil {
		diags.AddError("Unusable STACKIT credentials", err.Error())
		return nil, diags
	}
	d.ske = &ske.Client{BaseURL: base, HTTP: hc, UserAgent: d.userAgent}
	return d.ske, nil
}

// linodeBaseURL is linode_api_url (or LINODE_URL), checked: an https URL
// with a host. Unset, it is the real API's.
func (d *providerData) linodeBaseURL() (string, error) {
	if d.linodeURL.value == "" {
		return "https://api.linode.com", nil
	}
	u, err := url.Parse(d.linodeURL.value)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%s (or %s) is %q; it must be an https:// URL with a host, such as https://api.linode.com",
			d.linodeURL.attr, d.linodeURL.env, d.linodeURL.value)
	}
	return d.linodeURL.value, nil
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
		if _, err := d.linodeBaseURL(); err != nil {
			diags.AddAttributeError(path.Root("linode_api_url"), "Invalid Linode API URL", err.Error()+".")
		}
	}
	if !d.linodeCA.unknown {
		if _, err := d.linodeRoots(); err != nil {
			diags.AddAttributeError(path.Root("linode_ca_path"), "Unusable Linode CA file", err.Error()+".")
		}
	}
	if e := d.skeEndpoint; !e.unknown && e.value != "" {
		if u, err := url.Parse(e.value); err != nil || u.Scheme != "https" || u.Host == "" {
			diags.AddAttributeError(path.Root("stackit").AtName("ske_custom_endpoint"), "Invalid SKE endpoint",
				fmt.Sprintf("%s (or %s) is %q; it must be an https:// URL with a host, such as %s.", e.attr, e.env, e.value, ske.DefaultBaseURL))
		}
	}
	for _, f := range []setting{d.skeKeyPath, d.skePrivateKeyPath} {
		if f.unknown || f.value == "" {
			continue
		}
		if _, err := os.ReadFile(f.value); err != nil {
			name, _ := strings.CutPrefix(f.attr, "stackit.")
			diags.AddAttributeError(path.Root("stackit").AtName(name), "Unreadable STACKIT key file",
				fmt.Sprintf("%s (or %s) names %q, which cannot be read: %v.", f.attr, f.env, f.value, err))
		}
	}
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
// API with no token configured.
func (d *providerData) needLinodeToken(diags *diag.Diagnostics, what string) {
	if d.linodeToken.unknown || d.linodeToken.value != "" {
		return
	}
	diags.AddError("Missing Linode API token",
		what+" calls the Linode API, and the provider has no token: set the provider's linode_token, or the LINODE_TOKEN environment "+
			"variable, to a personal access token with the lke:read_write scope (Kubernetes: Read/Write).")
}

// needSTACKIT reports, at plan, that an operation will call the SKE API
// with no STACKIT credentials configured.
func (d *providerData) needSTACKIT(diags *diag.Diagnostics, what string) {
	for _, s := range []setting{d.skeKeyPath, d.skeKey, d.skeToken} {
		if s.unknown || s.value != "" {
			return
		}
	}
	diags.AddError("Missing STACKIT credentials",
		what+" calls STACKIT's SKE API, and the provider has no credentials: set stackit.service_account_key_path "+
			"(or STACKIT_SERVICE_ACCOUNT_KEY_PATH), stackit.service_account_key (STACKIT_SERVICE_ACCOUNT_KEY), or "+
			"stackit.service_account_token (STACKIT_SERVICE_ACCOUNT_TOKEN), for a service account with the SKE admin role.")
}

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

// operationLimiters keep each Linode API operation below the limit the API
// reference gives "all commands" besides the general one: 400 requests a
// minute (linode-api-docs openapi.yaml v4.176.0, "Rate Limiting"; the
// recordings' X-RateLimit-Limit shows 400 on some LKE operations). Polling
// many clusters' kubeconfigs at once would otherwise meet it.
type operationLimiters struct {
	perMinute float64
	burst     int
	m         sync.Map // operation -> *rate.Limiter
}

func (o *operationLimiters) wait(r *http.Request) error {
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
func (d *providerData) rotationRunner(ctx context.Context) (*rotation.Runner, diag.Diagnostics) {
	clients, diags := d.Linode(ctx)
	if diags.HasError() {
		return nil, diags
	}
	return &rotation.Runner{
		Linode:  clients.API,
		Poll:    clients.Poll,
		Scopes:  clients.Scopes,
		Connect: rotation.ConnectWith(d.userAgent, d.requestTimeout, d.retry),
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
