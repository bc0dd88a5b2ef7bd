package provider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"k8s.io/client-go/rest"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
)

// kubernetesAccess is how the provider reaches a cluster of its own
// kubernetes block: the block's settings, each falling back to the KUBE_*
// variable the kubernetes provider reads, as kubeconfig.Settings takes
// them.
type kubernetesAccess struct {
	kubeconfig.Settings
	unknown []string // attributes of the kubernetes block not known yet
}

// newKubernetesAccess resolves the kubernetes block: each attribute, else
// its variable; paths with a leading ~ expanded.
func newKubernetesAccess(m *kubernetesModel, diags *diag.Diagnostics) kubernetesAccess {
	var k kubernetesAccess
	if m == nil {
		m = &kubernetesModel{}
	}
	str := func(v types.String, attr, env string) string {
		s := resolve(v, attr, env)
		if s.unknown {
			k.unknown = append(k.unknown, "kubernetes."+attr)
		}
		return s.value
	}
	k.Settings = kubeconfig.Settings{
		ConfigPath:           kubePath(str(m.ConfigPath, "config_path", "KUBE_CONFIG_PATH"), "config_path", "KUBE_CONFIG_PATH", diags),
		ConfigContext:        str(m.ConfigContext, "config_context", "KUBE_CTX"),
		Host:                 str(m.Host, "host", "KUBE_HOST"),
		Token:                str(m.Token, "token", "KUBE_TOKEN"),
		ClusterCACertificate: str(m.ClusterCACertificate, "cluster_ca_certificate", "KUBE_CLUSTER_CA_CERT_DATA"),
		ClientCertificate:    str(m.ClientCertificate, "client_certificate", "KUBE_CLIENT_CERT_DATA"),
		ClientKey:            str(m.ClientKey, "client_key", "KUBE_CLIENT_KEY_DATA"),
	}
	switch {
	case m.AllowExecPlugins.IsUnknown():
		k.unknown = append(k.unknown, "kubernetes.allow_exec_plugins")
	default:
		k.AllowExecPlugins = m.AllowExecPlugins.ValueBool()
	}
	k.TLSServerName = str(m.TLSServerName, "tls_server_name", "KUBE_TLS_SERVER_NAME")
	k.ProxyURL = str(m.ProxyURL, "proxy_url", "KUBE_PROXY_URL")
	k.ConfigPaths = k.stringList(m.ConfigPaths, "kubernetes.config_paths")
	if k.ConfigPaths == nil && m.ConfigPaths.IsNull() && m.ConfigPath.IsNull() {
		if v := os.Getenv("KUBE_CONFIG_PATHS"); v != "" && k.ConfigPath == "" {
			k.ConfigPaths = filepath.SplitList(v)
		}
	}
	for i, p := range k.ConfigPaths {
		k.ConfigPaths[i] = kubePath(p, "config_paths", "KUBE_CONFIG_PATHS", diags)
	}
	if e := m.Exec; e != nil {
		k.Exec = &kubeconfig.Exec{
			APIVersion: str(e.APIVersion, "exec.api_version", ""),
			Command:    str(e.Command, "exec.command", ""),
			Args:       k.stringList(e.Args, "kubernetes.exec.args"),
		}
		switch {
		case e.Env.IsUnknown():
			k.unknown = append(k.unknown, "kubernetes.exec.env")
		case !e.Env.IsNull():
			env := map[string]string{}
			diags.Append(e.Env.ElementsAs(context.Background(), &env, false)...)
			k.Exec.Env = env
		}
	}
	switch {
	case m.Insecure.IsUnknown():
		k.unknown = append(k.unknown, "kubernetes.insecure")
	case !m.Insecure.IsNull():
		k.Insecure = m.Insecure.ValueBool()
	default:
		if v := os.Getenv("KUBE_INSECURE"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				diags.AddError("Invalid KUBE_INSECURE", fmt.Sprintf("KUBE_INSECURE is %q; allowed values are true and false.", v))
			}
			k.Insecure = b
		}
	}
	if k.Insecure {
		diags.AddAttributeWarning(path.Root("kubernetes").AtName("insecure"), "TLS verification is off",
			"kubernetes.insecure (or KUBE_INSECURE) is true: the Kubernetes API server's certificate is not verified, "+
				"so anyone on the network path can read the credentials this provider sends and issues.")
	}
	return k
}

// kubePath expands a leading ~ in a kubeconfig path, as the kubernetes
// provider does (homedir.Expand, on the attribute's value or its variable's).
func kubePath(p, attr, env string, diags *diag.Diagnostics) string {
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
func (k *kubernetesAccess) stringList(l types.List, attr string) []string {
	switch {
	case l.IsUnknown():
		k.unknown = append(k.unknown, attr)
		return nil
	case l.IsNull():
		return nil
	}
	var out []string
	for _, e := range l.Elements() {
		if s, ok := e.(types.String); ok && !s.IsNull() {
			if s.IsUnknown() {
				k.unknown = append(k.unknown, attr)
				return nil
			}
			out = append(out, s.ValueString())
		}
	}
	return out
}

// check reports, at plan, the settings of the kubernetes block that can
// never work: a kubeconfig path that does not exist, a proxy URL that is
// not one, an exec plugin without its command or API version.
func (k *kubernetesAccess) check(diags *diag.Diagnostics) {
	if p := k.ConfigPath; p != "" {
		if _, err := os.Stat(p); err != nil {
			diags.AddAttributeError(path.Root("kubernetes").AtName("config_path"), "Kubeconfig file not found",
				fmt.Sprintf("kubernetes.config_path (or KUBE_CONFIG_PATH) names %q, which cannot be read: %v.", p, err))
		}
	}
	for _, p := range k.ConfigPaths {
		if _, err := os.Stat(p); err != nil {
			diags.AddAttributeError(path.Root("kubernetes").AtName("config_paths"), "Kubeconfig file not found",
				fmt.Sprintf("kubernetes.config_paths (or KUBE_CONFIG_PATHS) names %q, which cannot be read: %v.", p, err))
		}
	}
	if p := k.ProxyURL; p != "" {
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
	if e := k.Exec; e != nil && e.Command == "" && !slices.Contains(k.unknown, "kubernetes.exec.command") {
		diags.AddAttributeError(path.Root("kubernetes").AtName("exec").AtName("command"), "Missing exec plugin command",
			"kubernetes.exec needs command (the credential plugin to run, such as \"aws\" or \"/usr/local/bin/get-token\") and api_version ("+
				strings.Join(execAPIVersions, " or ")+").")
	} else if e != nil && e.APIVersion == "" && !slices.Contains(k.unknown, "kubernetes.exec.api_version") {
		diags.AddAttributeError(path.Root("kubernetes").AtName("exec").AtName("api_version"), "Missing exec plugin API version",
			"kubernetes.exec needs api_version, the ExecCredential version the plugin speaks: "+strings.Join(execAPIVersions, " or ")+".")
	}
}

// KubernetesConfig returns the client configuration of the provider's
// kubernetes block (or KUBE_* variables).
func (d *providerData) KubernetesConfig() (*rest.Config, diag.Diagnostics) {
	return d.kube.config(d.userAgent)
}

// config is the client configuration of the kubernetes block, sending
// userAgent.
func (k *kubernetesAccess) config(userAgent string) (*rest.Config, diag.Diagnostics) {
	var diags diag.Diagnostics
	if len(k.unknown) > 0 {
		diags.AddError("Kubernetes provider setting not known yet",
			fmt.Sprintf("The provider's %v come from values not known until apply, but this operation needs the cluster now.", k.unknown))
		return nil, diags
	}
	cfg, err := k.RESTConfig()
	if errors.Is(err, kubeconfig.ErrNotConfigured) {
		diags.AddError("No Kubernetes cluster configured",
			"This operation needs a cluster from the provider configuration: set kubernetes { config_path } (or KUBE_CONFIG_PATH), "+
				"or kubernetes { host } with credentials (or KUBE_HOST and KUBE_TOKEN / KUBE_CLIENT_CERT_DATA).")
		return nil, diags
	}
	if errors.Is(err, kubeconfig.ErrRefused) {
		diags.AddAttributeError(path.Root("kubernetes").AtName("config_path"), "Refused kubeconfig",
			"The kubeconfig of the provider's kubernetes block (config_path, config_paths or KUBE_CONFIG_PATH): "+err.Error()+
				". Set kubernetes { allow_exec_plugins = true } to let it run.")
		return nil, diags
	}
	if err != nil {
		diags.AddError("Invalid Kubernetes provider configuration", "The provider's kubernetes block (or KUBE_* variables): "+err.Error())
		return nil, diags
	}
	if note := kubeconfig.InsecureNote(cfg); note != "" && !k.Insecure {
		// kubernetes.insecure itself was warned about at configure.
		diags.AddAttributeWarning(path.Root("kubernetes").AtName("config_path"), "TLS verification is off",
			"The kubeconfig of the provider's kubernetes block: "+note+".")
	}
	cfg.UserAgent = userAgent
	return cfg, nil
}
