package kubeconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// kubeconfigWith is a one-context kubeconfig whose user and cluster edit
// changes, plus an unused second user when other is set.
func kubeconfigWith(t *testing.T, edit func(u *clientcmdapi.AuthInfo, c *clientcmdapi.Cluster), other *clientcmdapi.AuthInfo) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	c := &clientcmdapi.Cluster{Server: "https://203.0.113.10:6443", CertificateAuthorityData: []byte("not checked here")}
	u := &clientcmdapi.AuthInfo{Token: "inline-token"}
	if edit != nil {
		edit(u, c)
	}
	cfg.Clusters["c"], cfg.AuthInfos["u"] = c, u
	if other != nil {
		cfg.AuthInfos["unused"] = other
	}
	cfg.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "ctx"
	raw, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func pluginUser(u *clientcmdapi.AuthInfo, _ *clientcmdapi.Cluster) {
	u.Token = ""
	u.Exec = &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: "/usr/local/bin/get-token",
		Args: []string{"--secret=s3cr3t-arg"}, Env: []clientcmdapi.ExecEnvVar{{Name: "PLUGIN_SECRET", Value: "s3cr3t-env"}},
		InteractiveMode: clientcmdapi.NeverExecInteractiveMode}
}

func TestServedKubeconfigsNamingPluginsOrFilesAreRefused(t *testing.T) {
	cases := map[string]struct {
		raw  []byte
		want string
	}{
		"exec plugin": {kubeconfigWith(t, pluginUser, nil), `users["u"].exec (command "/usr/local/bin/get-token")`},
		"auth-provider": {kubeconfigWith(t, func(u *clientcmdapi.AuthInfo, _ *clientcmdapi.Cluster) {
			u.AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc"}
		}, nil), `users["u"].auth-provider ("oidc")`},
		"token file": {kubeconfigWith(t, func(u *clientcmdapi.AuthInfo, _ *clientcmdapi.Cluster) { u.Token, u.TokenFile = "", "/etc/hostname" }, nil), `users["u"].tokenFile ("/etc/hostname")`},
		"client certificate": {kubeconfigWith(t, func(u *clientcmdapi.AuthInfo, _ *clientcmdapi.Cluster) {
			u.ClientCertificate, u.ClientKey = "/tmp/c.pem", "/tmp/k.pem"
		}, nil), `users["u"].client-certificate ("/tmp/c.pem"), users["u"].client-key ("/tmp/k.pem")`},
		"CA file": {kubeconfigWith(t, func(_ *clientcmdapi.AuthInfo, c *clientcmdapi.Cluster) {
			c.CertificateAuthorityData, c.CertificateAuthority = nil, "/tmp/ca.pem"
		}, nil), `clusters["c"].certificate-authority ("/tmp/ca.pem")`},
		"plugin of another user": {kubeconfigWith(t, nil, &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "sh"}}), `users["unused"].exec (command "sh")`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseServed(tc.raw)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("ParseServed = %v; want ErrRefused", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was run or read") {
				t.Errorf("the error does not name %s and say nothing ran: %v", tc.want, err)
			}
			for _, secret := range []string{"s3cr3t-arg", "s3cr3t-env"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error repeats the plugin's %s: %v", secret, err)
				}
			}
		})
	}
	if _, err := ParseServed(kubeconfigWith(t, nil, nil)); err != nil {
		t.Errorf("a served kubeconfig with an inline token was refused: %v", err)
	}
}

func TestValueKubeconfigsRunPluginsOnlyWhenAllowedAndNeverReadFiles(t *testing.T) {
	plugin := kubeconfigWith(t, pluginUser, nil)
	_, err := ParseValue(plugin, false)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `users["u"].exec (command "/usr/local/bin/get-token")`) ||
		!strings.Contains(err.Error(), "allow_exec_plugins = true") {
		t.Errorf("an exec plugin without the opt-in: %v; want it refused, named, with the way to allow it", err)
	}
	cfg, err := ParseValue(plugin, true)
	if err != nil || cfg.ExecProvider == nil || cfg.ExecProvider.Command != "/usr/local/bin/get-token" {
		t.Fatalf("an allowed exec plugin: %+v, %v; want its configuration", cfg, err)
	}
	tokenFile := kubeconfigWith(t, func(u *clientcmdapi.AuthInfo, _ *clientcmdapi.Cluster) { u.Token, u.TokenFile = "", "/etc/hostname" }, nil)
	for _, allow := range []bool{false, true} {
		if _, err := ParseValue(tokenFile, allow); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `users["u"].tokenFile`) ||
			!strings.Contains(err.Error(), "inline") {
			t.Errorf("a token file (allow_exec_plugins = %v): %v; want it refused, asking for inline credentials", allow, err)
		}
	}
	if _, err := ParseValue(kubeconfigWith(t, nil, nil), false); err != nil {
		t.Errorf("an inline kubeconfig was refused: %v", err)
	}
}

func TestPluginsDoNotGetTheCloudCredentials(t *testing.T) {
	t.Setenv("LINODE_TOKEN", "linode-secret")
	t.Setenv("STACKIT_SERVICE_ACCOUNT_KEY", "stackit-secret")
	t.Setenv("STACKIT_REGION", "eu01")
	t.Setenv("HOME_LIKE", "kept")
	raw := kubeconfigWith(t, func(u *clientcmdapi.AuthInfo, c *clientcmdapi.Cluster) {
		pluginUser(u, c)
		u.Exec.Env = append(u.Exec.Env, clientcmdapi.ExecEnvVar{Name: "STACKIT_REGION", Value: "eu02"})
	}, nil)
	cfg, err := ParseValue(raw, true)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, e := range cfg.ExecProvider.Env {
		got[e.Name] = append(got[e.Name], e.Value)
	}
	for name, want := range map[string]string{"LINODE_TOKEN": "", "STACKIT_SERVICE_ACCOUNT_KEY": "", "STACKIT_REGION": "eu02", "PLUGIN_SECRET": "s3cr3t-env"} {
		if v := got[name]; len(v) != 1 || v[0] != want {
			t.Errorf("the plugin's %s entries are %q; want exactly %q", name, v, want)
		}
	}
	if _, ok := got["HOME_LIKE"]; ok {
		t.Errorf("an unrelated variable was touched: %v", got)
	}
}

func TestSettingsRunAFilesPluginOnlyWhenAllowed(t *testing.T) {
	t.Setenv("LINODE_TOKEN", "linode-secret")
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, kubeconfigWith(t, pluginUser, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Settings{ConfigPath: path}.RESTConfig()
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `users["u"].exec (command "/usr/local/bin/get-token")`) {
		t.Errorf("a kubeconfig file's plugin without the opt-in: %v; want it refused and named", err)
	}
	cfg, err := Settings{ConfigPath: path, AllowExecPlugins: true}.RESTConfig()
	if err != nil || cfg.ExecProvider == nil {
		t.Fatalf("allowed: %+v, %v", cfg, err)
	}
	if !hasEnv(cfg.ExecProvider.Env, "LINODE_TOKEN", "") {
		t.Errorf("the plugin would get LINODE_TOKEN: %v", cfg.ExecProvider.Env)
	}
	// An exec block of the provider's own names its plugin: it runs, and
	// without the cloud credentials either.
	explicit := Settings{ConfigPath: path, Exec: &Exec{APIVersion: "client.authentication.k8s.io/v1", Command: "get-token"}}
	cfg, err = explicit.RESTConfig()
	if err != nil || cfg.ExecProvider == nil || cfg.ExecProvider.Command != "get-token" || !hasEnv(cfg.ExecProvider.Env, "LINODE_TOKEN", "") {
		t.Errorf("the exec block: %+v, %v; want its plugin, without LINODE_TOKEN", cfg, err)
	}
}

func hasEnv(env []clientcmdapi.ExecEnvVar, name, value string) bool {
	for _, e := range env {
		if e.Name == name && e.Value == value {
			return true
		}
	}
	return false
}

func TestInsecureKubeconfigsAreNoted(t *testing.T) {
	raw := kubeconfigWith(t, func(_ *clientcmdapi.AuthInfo, c *clientcmdapi.Cluster) {
		c.CertificateAuthorityData, c.InsecureSkipTLSVerify = nil, true
	}, nil)
	cfg, err := ParseServed(raw)
	if err != nil {
		t.Fatal(err)
	}
	if InsecureNote(cfg) == "" {
		t.Error("insecure-skip-tls-verify: true gave no note")
	}
	cfg, err = ParseServed(kubeconfigWith(t, nil, nil))
	if err != nil || InsecureNote(cfg) != "" {
		t.Errorf("a verifying kubeconfig: note %q, %v", InsecureNote(cfg), err)
	}
}
