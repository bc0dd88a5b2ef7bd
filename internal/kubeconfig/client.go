// Package kubeconfig turns cluster settings into client configurations and
// renders kubeconfigs with client-go's clientcmd. Short-lived credentials are
// issued here too. It knows nothing of Terraform.
package kubeconfig

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Settings say how to reach a cluster, as the kubernetes provider's
// configuration does: a kubeconfig file (and context), explicit values, or
// both, explicit values winning.
type Settings struct {
	ConfigPath string
	// ConfigPaths are kubeconfig files merged as kubectl merges $KUBECONFIG
	// (the first file to set a value wins); used when ConfigPath is empty.
	ConfigPaths          []string
	ConfigContext        string
	Host                 string
	Token                string
	ClusterCACertificate string // PEM
	ClientCertificate    string // PEM
	ClientKey            string // PEM
	Insecure             bool
	TLSServerName        string // the name the server's certificate is checked against, when not the host's
	ProxyURL             string // http, https or socks5 proxy for the API server
	// Exec gets credentials from a client-go credential plugin.
	Exec *Exec
	// AllowExecPlugins lets a plugin named by the kubeconfig files run;
	// Exec, named here, always runs.
	AllowExecPlugins bool
}

// Exec is a client-go exec credential plugin, as a kubeconfig's
// users[].user.exec names it. It never prompts.
type Exec struct {
	APIVersion string // client.authentication.k8s.io/v1 or v1beta1
	Command    string
	Args       []string
	Env        map[string]string
}

// ErrNotConfigured means the settings name no cluster at all.
var ErrNotConfigured = errors.New("no Kubernetes cluster configured")

// RESTConfig resolves the settings into a client configuration. Only the file
// named by ConfigPath is read: like the kubernetes provider, and unlike
// kubectl, ~/.kube/config and $KUBECONFIG are never used implicitly.
func (s Settings) RESTConfig() (*rest.Config, error) {
	if s.ConfigPath == "" && len(s.ConfigPaths) == 0 && s.Host == "" {
		return nil, ErrNotConfigured
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: s.ConfigPath}
	if s.ConfigPath == "" {
		rules.Precedence = s.ConfigPaths
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: s.ConfigContext}
	overrides.ClusterInfo.Server = s.Host
	overrides.ClusterInfo.TLSServerName = s.TLSServerName
	overrides.ClusterInfo.ProxyURL = s.ProxyURL
	if s.Exec != nil {
		exec := &clientcmdapi.ExecConfig{APIVersion: s.Exec.APIVersion, Command: s.Exec.Command, Args: s.Exec.Args,
			InteractiveMode: clientcmdapi.NeverExecInteractiveMode}
		for name, value := range s.Exec.Env {
			exec.Env = append(exec.Env, clientcmdapi.ExecEnvVar{Name: name, Value: value})
		}
		sort.Slice(exec.Env, func(i, j int) bool { return exec.Env[i].Name < exec.Env[j].Name })
		overrides.AuthInfo.Exec = exec
	}
	if s.ClusterCACertificate != "" {
		overrides.ClusterInfo.CertificateAuthorityData = []byte(s.ClusterCACertificate)
	}
	overrides.ClusterInfo.InsecureSkipTLSVerify = s.Insecure
	overrides.AuthInfo.Token = s.Token
	if s.ClientCertificate != "" {
		overrides.AuthInfo.ClientCertificateData = []byte(s.ClientCertificate)
	}
	if s.ClientKey != "" {
		overrides.AuthInfo.ClientKeyData = []byte(s.ClientKey)
	}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := loader.ClientConfig()
	if err != nil {
		if s.ConfigPath == "" && len(s.ConfigPaths) == 0 && clientcmd.IsEmptyConfig(err) {
			return nil, ErrNotConfigured
		}
		return nil, err
	}
	// Building the configuration ran nothing: client-go starts a plugin
	// at the first request. A plugin the files name runs only if allowed.
	if (cfg.AuthProvider != nil || (cfg.ExecProvider != nil && s.Exec == nil)) && !s.AllowExecPlugins {
		what := "a credential plugin"
		if raw, rerr := loader.RawConfig(); rerr == nil {
			name := s.ConfigContext
			if name == "" {
				name = raw.CurrentContext
			}
			if c := raw.Contexts[name]; c != nil {
				if u := raw.AuthInfos[c.AuthInfo]; u != nil {
					only := clientcmdapi.NewConfig()
					only.AuthInfos[c.AuthInfo] = u
					what = strings.Join(Inspect(only).Plugins, ", ")
				}
			}
		}
		return nil, fmt.Errorf("%w: its current context names %s, which runs only when allowed; nothing was run", ErrRefused, what)
	}
	ScrubPluginEnv(cfg)
	return cfg, nil
}

// sanitize drops the text of YAML parse errors, which may quote the line
// that failed to parse (and so a token or key) back at the user.
func sanitize(err error) error {
	if clientcmd.IsConfigurationInvalid(err) || clientcmd.IsEmptyConfig(err) {
		return err // names contexts, clusters and users, never their credentials
	}
	return errors.New("the document is not a valid kubeconfig")
}
