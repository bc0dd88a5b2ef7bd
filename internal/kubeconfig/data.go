package kubeconfig

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// A kubeconfig is data, but client-go does more than read it: a user's exec
// plugin is a program it runs (with the process's whole environment), an
// auth-provider is code it calls, and tokenFile, client-certificate,
// client-key and certificate-authority are files it reads, the first sent
// as a bearer token to whatever server the kubeconfig names. So a
// kubeconfig that is a value (base_kubeconfig, often from remote state or
// a module) or an API's answer is inspected before client-go sees it.

// ErrRefused is a kubeconfig that names something kubecreds will not run
// or read for it.
var ErrRefused = errors.New("kubeconfig refused")

// Reach is what a kubeconfig's entries would make a client do beyond
// sending requests to the server it names; each entry says where, as
// `users["ci"].exec (command "aws")`. Commands and paths are shown, never
// arguments, environments or contents.
type Reach struct {
	Plugins  []string // users[].exec, users[].auth-provider
	Files    []string // users[].tokenFile, client-certificate, client-key; clusters[].certificate-authority
	Insecure []string // clusters[].insecure-skip-tls-verify: true
}

// Inspect lists what every user and cluster of cfg reaches, in name order.
func Inspect(cfg *clientcmdapi.Config) Reach {
	var r Reach
	for _, name := range sortedKeys(cfg.AuthInfos) {
		u := cfg.AuthInfos[name]
		if u == nil {
			continue
		}
		at := fmt.Sprintf("users[%q]", name)
		if u.Exec != nil {
			r.Plugins = append(r.Plugins, fmt.Sprintf("%s.exec (command %q)", at, u.Exec.Command))
		}
		if u.AuthProvider != nil {
			r.Plugins = append(r.Plugins, fmt.Sprintf("%s.auth-provider (%q)", at, u.AuthProvider.Name))
		}
		for _, f := range []struct{ key, path string }{{"tokenFile", u.TokenFile}, {"client-certificate", u.ClientCertificate}, {"client-key", u.ClientKey}} {
			if f.path != "" {
				r.Files = append(r.Files, fmt.Sprintf("%s.%s (%q)", at, f.key, f.path))
			}
		}
	}
	for _, name := range sortedKeys(cfg.Clusters) {
		c := cfg.Clusters[name]
		if c == nil {
			continue
		}
		at := fmt.Sprintf("clusters[%q]", name)
		if c.CertificateAuthority != "" {
			r.Files = append(r.Files, fmt.Sprintf("%s.certificate-authority (%q)", at, c.CertificateAuthority))
		}
		if c.InsecureSkipTLSVerify {
			r.Insecure = append(r.Insecure, at+".insecure-skip-tls-verify")
		}
	}
	return r
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ParseServed parses a kubeconfig a cloud's API served (the Linode API's
// GET /kubeconfig, SKE's kubeconfig endpoint) and returns the client
// configuration of its current context. Those APIs put the credentials and
// the CA inline; a kubeconfig naming a plugin or a file anywhere was not
// made by them, and is refused before anything runs or is read.
func ParseServed(raw []byte) (*rest.Config, error) {
	cfg, err := load(raw)
	if err != nil {
		return nil, err
	}
	r := Inspect(cfg)
	if names := append(slices.Clone(r.Plugins), r.Files...); len(names) > 0 {
		return nil, fmt.Errorf("%w: it names %s, which a kubeconfig served by the API never carries; nothing was run or read",
			ErrRefused, strings.Join(names, ", "))
	}
	return restConfig(cfg)
}

// ParseValue parses a kubeconfig given as a value (base_kubeconfig). Its
// credentials must be inline: a file it names is refused (the value may
// come from another machine's state, and a token file would be sent to the
// server it names). An exec plugin runs only when allowExec is set, and
// then without the cloud credentials of the environment (ScrubPluginEnv);
// otherwise it is refused before anything runs.
func ParseValue(raw []byte, allowExec bool) (*rest.Config, error) {
	cfg, err := load(raw)
	if err != nil {
		return nil, err
	}
	if err := CheckValue(cfg, allowExec); err != nil {
		return nil, err
	}
	rc, err := restConfig(cfg)
	if err != nil {
		return nil, err
	}
	ScrubPluginEnv(rc)
	return rc, nil
}

// CheckValue is ParseValue's check, for validation without a client
// configuration.
func CheckValue(cfg *clientcmdapi.Config, allowExec bool) error {
	r := Inspect(cfg)
	var refused []string
	if len(r.Files) > 0 {
		refused = append(refused, fmt.Sprintf("%s (a kubeconfig given as a value must carry its credentials inline: "+
			"token, client-certificate-data, client-key-data, certificate-authority-data)", strings.Join(r.Files, ", ")))
	}
	if len(r.Plugins) > 0 && !allowExec {
		refused = append(refused, fmt.Sprintf("%s (a credential plugin runs only when allow_exec_plugins = true)", strings.Join(r.Plugins, ", ")))
	}
	if len(refused) > 0 {
		return fmt.Errorf("%w: it names %s; nothing was run or read", ErrRefused, strings.Join(refused, "; and "))
	}
	return nil
}

// ValidateValue checks, for validation, what ParseValue checks, without
// running or reading anything: what the kubeconfig reaches first, since
// building a client configuration reads a tokenFile
// (clientcmd's client_config.go), then that its current context can be
// used. A structural error comes back as is; a refusal wraps ErrRefused.
func ValidateValue(raw []byte, allowExec bool) error {
	cfg, err := load(raw)
	if err != nil {
		return err
	}
	if err := CheckValue(cfg, allowExec); err != nil {
		return err
	}
	_, err = restConfig(cfg)
	return err
}

func load(raw []byte) (*clientcmdapi.Config, error) {
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("parse kubeconfig: %w", sanitize(err))
	}
	if cfg.CurrentContext == "" || cfg.Contexts[cfg.CurrentContext] == nil {
		return nil, errors.New("kubeconfig has no current context")
	}
	return cfg, nil
}

func restConfig(cfg *clientcmdapi.Config) (*rest.Config, error) {
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", sanitize(err))
	}
	return rc, nil
}

// scrubbedPrefixes are the variables a credential plugin never gets: the
// cloud credentials the provider itself reads.
var scrubbedPrefixes = []string{"LINODE_", "STACKIT_"}

// ScrubPluginEnv keeps the cloud credentials of this process's environment
// (LINODE_*, STACKIT_*) from cfg's exec plugin. client-go starts a plugin
// with the whole environment and then the plugin's own env entries, the
// later winning (plugin/pkg/client/auth/exec/exec.go, os/exec), so each is
// set to "" there. A variable the kubeconfig itself sets for the plugin is
// kept: that one was asked for. The plugin still runs as this user, and can
// read whatever this user can.
func ScrubPluginEnv(cfg *rest.Config) {
	if cfg == nil || cfg.ExecProvider == nil {
		return
	}
	own := map[string]bool{}
	for _, e := range cfg.ExecProvider.Env {
		own[e.Name] = true
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if own[name] || !slices.ContainsFunc(scrubbedPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		cfg.ExecProvider.Env = append(cfg.ExecProvider.Env, clientcmdapi.ExecEnvVar{Name: name, Value: ""})
		own[name] = true
	}
}

// InsecureNote says, for a warning, that cfg does not verify the API
// server's certificate ("" when it does).
func InsecureNote(cfg *rest.Config) string {
	if cfg == nil || !cfg.Insecure {
		return ""
	}
	return "TLS verification is off (insecure-skip-tls-verify): the API server's certificate is not checked, so anyone on the " +
		"network path can read the credentials kubecreds sends"
}
