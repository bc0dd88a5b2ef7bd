package provider

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/ske"
)

// stackitAccess is how the provider reaches STACKIT's SKE API: the
// settings of the stackit block, each falling back to the variable
// stackit-sdk-go/core or terraform-provider-stackit reads, and the client
// built from them on first use.
type stackitAccess struct {
	keyPath, key, privateKeyPath, privateKey, token setting
	endpoint, tokenEndpoint                         setting
	// The credentials file (core: STACKIT_CREDENTIALS_PATH, default
	// ~/.stackit/credentials.json).
	credentialsPath setting
	// Workload identity federation: the service account's email (its
	// client id) and where the federated (OIDC) token comes from.
	email, federatedToken, federatedTokenPath, useOIDC, oidcRequestURL, oidcRequestToken setting

	mu     sync.Mutex
	client *ske.Client
}

// missingSTACKITHelp names every way to give the provider STACKIT
// credentials, in the order stackit-sdk-go/core tries them.
const missingSTACKITHelp = "set one of: " +
	"stackit.service_account_email (STACKIT_SERVICE_ACCOUNT_EMAIL) with stackit.service_account_federated_token, " +
	"stackit.service_account_federated_token_path (STACKIT_FEDERATED_TOKEN_FILE), or stackit.use_oidc = true (STACKIT_USE_OIDC) " +
	"in GitHub Actions or Azure DevOps, for workload identity federation; " +
	"stackit.service_account_key_path (STACKIT_SERVICE_ACCOUNT_KEY_PATH) or stackit.service_account_key (STACKIT_SERVICE_ACCOUNT_KEY), " +
	"for the key flow; a credentials file, at stackit.credentials_path (STACKIT_CREDENTIALS_PATH; default ~/.stackit/credentials.json); " +
	"or stackit.service_account_token (STACKIT_SERVICE_ACCOUNT_TOKEN), the token flow STACKIT deprecated. " +
	"The service account needs the SKE admin role on the project."

// tokenFlowDeprecation is STACKIT's word on the token flow.
const tokenFlowDeprecation = "STACKIT deprecated authentication with a service-account token (terraform-provider-stackit: it \"will be removed on " +
	"December 17, 2025\"); it still works here while STACKIT's endpoints accept it. Use a service-account key " +
	"(stackit.service_account_key_path) or workload identity federation instead: " +
	"https://docs.stackit.cloud/platform/access-and-identity/service-accounts/migrate-flows/"

// newSTACKITAccess resolves the stackit block. (Its result is named, and
// filled in place, since a stackitAccess holds a mutex.)
func newSTACKITAccess(st *stackitModel, diags *diag.Diagnostics) (a stackitAccess) {
	var m stackitModel
	if st != nil {
		m = *st
	}
	a = stackitAccess{
		keyPath:        resolvePath(m.ServiceAccountKeyPath, "stackit.service_account_key_path", "STACKIT_SERVICE_ACCOUNT_KEY_PATH", diags),
		key:            resolve(m.ServiceAccountKey, "stackit.service_account_key", "STACKIT_SERVICE_ACCOUNT_KEY"),
		privateKeyPath: resolvePath(m.PrivateKeyPath, "stackit.private_key_path", "STACKIT_PRIVATE_KEY_PATH", diags),
		privateKey:     resolve(m.PrivateKey, "stackit.private_key", "STACKIT_PRIVATE_KEY"),
		token:          resolve(m.ServiceAccountToken, "stackit.service_account_token", "STACKIT_SERVICE_ACCOUNT_TOKEN"),
		endpoint:       resolve(m.SKECustomEndpoint, "stackit.ske_custom_endpoint", "STACKIT_SKE_CUSTOM_ENDPOINT"),
		tokenEndpoint:  resolve(m.TokenCustomEndpoint, "stackit.token_custom_endpoint", "STACKIT_TOKEN_BASEURL"),

		credentialsPath:    resolvePath(m.CredentialsPath, "stackit.credentials_path", "STACKIT_CREDENTIALS_PATH", diags),
		email:              resolve(m.ServiceAccountEmail, "stackit.service_account_email", "STACKIT_SERVICE_ACCOUNT_EMAIL"),
		federatedToken:     resolve(m.FederatedToken, "stackit.service_account_federated_token", ""),
		federatedTokenPath: resolvePath(m.FederatedTokenPath, "stackit.service_account_federated_token_path", "STACKIT_FEDERATED_TOKEN_FILE", diags),
		useOIDC:            resolveBool(m.UseOIDC, "stackit.use_oidc", "STACKIT_USE_OIDC"),
	}
	// A key is given as a path or as content; core takes the first of:
	// content set in the configuration, path set there, path from the
	// environment, content from the environment (auth.go getKey). So an
	// attribute beats either variable, and a path variable beats a
	// content variable.
	preferAsCore(&a.keyPath, &a.key)
	preferAsCore(&a.privateKeyPath, &a.privateKey)
	// The CI systems' own variables, as terraform-provider-stackit reads
	// them: GitHub Actions', else Azure DevOps'.
	a.oidcRequestURL = resolveFirst(m.OIDCRequestURL, "stackit.oidc_request_url", "ACTIONS_ID_TOKEN_REQUEST_URL", "SYSTEM_OIDCREQUESTURI")
	a.oidcRequestToken = resolveFirst(m.OIDCRequestToken, "stackit.oidc_request_token", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "SYSTEM_ACCESSTOKEN")
	return
}

// preferAsCore drops whichever of a path and a content setting core would
// not read (see newSTACKITAccess).
func preferAsCore(path, content *setting) {
	switch {
	case path.unknown || content.unknown:
	case path.fromEnv && content.value != "" && !content.fromEnv:
		path.value, path.fromEnv = "", false
	case content.fromEnv && path.value != "":
		content.value, content.fromEnv = "", false
	}
}

// resolveFirst is resolve with fallbacks: the first variable that is set.
func resolveFirst(v types.String, attr string, envs ...string) setting {
	s := resolve(v, attr, envs[0])
	if s.unknown || !v.IsNull() {
		return s
	}
	for _, e := range envs {
		if val := os.Getenv(e); val != "" {
			s.value, s.env = val, e
			return s
		}
	}
	return s
}

// resolveBool resolves a bool setting as terraform-provider-stackit reads
// STACKIT_USE_OIDC: "true" or "1" (any case) is true. value is "true" or "".
func resolveBool(v types.Bool, attr, env string) setting {
	s := setting{attr: attr, env: env}
	switch {
	case v.IsUnknown():
		s.unknown = true
	case !v.IsNull():
		if v.ValueBool() {
			s.value = "true"
		}
	default:
		if b := strings.ToLower(os.Getenv(env)); b == "true" || b == "1" {
			s.value = "true"
		}
	}
	return s
}

// credentials are the settings as ske.NewHTTPClient takes them.
func (a *stackitAccess) credentials() ske.Credentials {
	c := ske.Credentials{
		ServiceAccountKeyPath: a.keyPath.value, ServiceAccountKey: a.key.value,
		PrivateKeyPath: a.privateKeyPath.value, PrivateKey: a.privateKey.value,
		Token: a.token.value, TokenURL: a.tokenEndpoint.value,
		CredentialsPath: a.credentialsPath.value, ServiceAccountEmail: a.email.value,
		FederatedToken: a.federatedToken.value, FederatedTokenPath: a.federatedTokenPath.value,
		UseOIDC: a.useOIDC.value == "true",
	}
	if c.UseOIDC && a.oidcRequestURL.value != "" && a.oidcRequestToken.value != "" {
		c.OIDCRequest = &ske.OIDCRequest{URL: a.oidcRequestURL.value, Token: a.oidcRequestToken.value,
			AzureDevOps: a.oidcRequestURL.env == "SYSTEM_OIDCREQUESTURI"}
	}
	return c
}

// anyUnknown tells whether a credential setting is not known until apply.
func (a *stackitAccess) anyUnknown() bool {
	for _, s := range []setting{a.keyPath, a.key, a.token, a.credentialsPath, a.email, a.federatedToken, a.federatedTokenPath, a.useOIDC} {
		if s.unknown {
			return true
		}
	}
	return false
}

// credentialsFile is the credentials file core would read: the one named,
// else ~/.stackit/credentials.json.
func (a *stackitAccess) credentialsFile() string {
	if p := a.credentialsPath.value; p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".stackit", "credentials.json")
}

// configured tells whether some way to authenticate is set up: a setting,
// or a credentials file where core looks for one.
func (a *stackitAccess) configured() bool {
	if a.anyUnknown() {
		return true
	}
	c := a.credentials()
	if c.ServiceAccountKey != "" || c.ServiceAccountKeyPath != "" || c.Token != "" || c.WorkloadIdentity() {
		return true
	}
	if f := a.credentialsFile(); f != "" {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return false
}

// check reports, at plan, the settings that cannot work.
func (a *stackitAccess) check(diags *diag.Diagnostics) {
	if !a.endpoint.unknown {
		if _, invalid := a.baseURL(); invalid != "" {
			diags.AddAttributeError(path.Root("stackit").AtName("ske_custom_endpoint"), "Invalid SKE endpoint", invalid)
		}
	}
	if e := a.tokenEndpoint; !e.unknown && e.value != "" {
		if u, err := url.Parse(e.value); err != nil || u.Scheme != "https" || u.Host == "" {
			diags.AddAttributeError(path.Root("stackit").AtName("token_custom_endpoint"), "Invalid STACKIT token endpoint",
				fmt.Sprintf("%s (or %s) is %s; it must be an https:// URL with a host, such as https://service-account.api.stackit.cloud/token.",
					e.attr, e.env, shownURL(e.value)))
		}
	}
	for _, f := range []setting{a.keyPath, a.privateKeyPath, a.credentialsPath, a.federatedTokenPath} {
		if f.unknown || f.value == "" {
			continue
		}
		if _, err := os.ReadFile(f.value); err != nil {
			name, _ := strings.CutPrefix(f.attr, "stackit.")
			diags.AddAttributeError(path.Root("stackit").AtName(name), "Unreadable STACKIT file",
				fmt.Sprintf("%s (or %s) names %q, which cannot be read: %v.", f.attr, f.env, f.value, err))
		}
	}
	wif := a.federatedToken.value != "" || a.federatedTokenPath.value != "" || a.useOIDC.value == "true"
	if wif && !a.email.unknown && a.email.value == "" {
		diags.AddAttributeError(path.Root("stackit").AtName("service_account_email"), "Missing service account email",
			"Workload identity federation (a federated token, its path, or use_oidc) needs the service account's email, its client id: "+
				"set stackit.service_account_email or STACKIT_SERVICE_ACCOUNT_EMAIL.")
	}
	if a.useOIDC.value == "true" && a.federatedToken.value == "" && a.federatedTokenPath.value == "" &&
		!a.oidcRequestURL.unknown && !a.oidcRequestToken.unknown && (a.oidcRequestURL.value == "" || a.oidcRequestToken.value == "") {
		if _, err := os.Stat(defaultFederatedTokenFile); err != nil {
			diags.AddAttributeError(path.Root("stackit").AtName("use_oidc"), "No OIDC token source",
				"use_oidc is true, but there is no way to get an ID token: outside GitHub Actions (ACTIONS_ID_TOKEN_REQUEST_URL and "+
					"ACTIONS_ID_TOKEN_REQUEST_TOKEN, with `permissions: id-token: write`) and Azure DevOps (SYSTEM_OIDCREQUESTURI and "+
					"SYSTEM_ACCESSTOKEN), set stackit.oidc_request_url and stackit.oidc_request_token, or a federated token or its path.")
		}
	}
}

// baseURL is the SKE API's: ske_custom_endpoint (or
// STACKIT_SKE_CUSTOM_ENDPOINT), else the default; or, for an endpoint that
// is not an https:// URL with a host, what is wrong with it.
func (a *stackitAccess) baseURL() (base, invalid string) {
	e := a.endpoint
	if e.value == "" {
		return ske.DefaultBaseURL, ""
	}
	if u, err := url.Parse(e.value); err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Sprintf("%s (or %s) is %q; it must be an https:// URL with a host, such as %s.", e.attr, e.env, e.value, ske.DefaultBaseURL)
	}
	return e.value, ""
}

// defaultFederatedTokenFile is where core's workload identity flow reads
// the federated token when no path is set (clients/workload_identity_flow.go).
const defaultFederatedTokenFile = "/var/run/secrets/stackit.cloud/serviceaccount/token"

// need reports, at plan, that an operation will call the SKE API without
// credentials; and warns when it would use the deprecated token flow.
func (a *stackitAccess) need(diags *diag.Diagnostics, what string) {
	if !a.configured() {
		addMissingSTACKIT(diags, what)
		return
	}
	if c := a.credentials(); c.Flow() == "token" {
		diags.AddAttributeWarning(path.Root("stackit").AtName("service_account_token"), "STACKIT token flow is deprecated",
			fmt.Sprintf("%s authenticates with %s (or %s). %s", what, a.token.attr, a.token.env, tokenFlowDeprecation))
	}
}

// addMissingSTACKIT reports that an operation (what) calls the SKE API
// and the provider has no STACKIT credentials.
func addMissingSTACKIT(diags *diag.Diagnostics, what string) {
	diags.AddError("Missing STACKIT credentials", what+" calls STACKIT's SKE API, and the provider has no credentials: "+missingSTACKITHelp)
}

// SKE returns the SKE API client, built on first use from the stackit
// block (or the STACKIT_* variables).
func (d *providerData) SKE() (*ske.Client, diag.Diagnostics) {
	return d.stackit.connect(d.userAgent, d.requestTimeout)
}

// connect returns the SKE API client, building it on first use with the
// provider's user agent and request timeout.
func (a *stackitAccess) connect(userAgent string, timeout time.Duration) (*ske.Client, diag.Diagnostics) {
	var diags diag.Diagnostics
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client != nil {
		return a.client, nil
	}
	if !a.configured() {
		addMissingSTACKIT(&diags, "This operation")
		return nil, diags
	}
	base, invalid := a.baseURL()
	if invalid != "" {
		diags.AddError("Invalid SKE endpoint", invalid)
		return nil, diags
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	hc, err := ske.NewHTTPClient(a.credentials(), &loggingTransport{base: transport, service: "ske"}, timeout)
	if err != nil {
		diags.AddError("Unusable STACKIT credentials", err.Error())
		return nil, diags
	}
	a.client = &ske.Client{BaseURL: base, HTTP: hc, UserAgent: userAgent}
	return a.client, nil
}
