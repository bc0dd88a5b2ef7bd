package kubeconfig

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Credentials are what a rendered kubeconfig authenticates with: a token,
// or a client certificate and key (PEM).
type Credentials struct {
	User              string
	Token             string
	ClientCertificate []byte
	ClientKey         []byte
}

// Rendered is a kubeconfig with one cluster, user and context.
type Rendered struct {
	YAML        []byte
	ContextName string
	Host        string
	CAPEM       []byte
}

// Render writes a kubeconfig for the cluster cfg points at, named
// clusterName, authenticating with creds, with current-context set.
func Render(cfg *rest.Config, clusterName string, creds Credentials) (*Rendered, error) {
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read the cluster CA: %w", err)
		}
		ca = b
	}
	contextName := clusterName + "-" + creds.User
	out := clientcmdapi.NewConfig()
	out.Clusters[clusterName] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: ca,
		InsecureSkipTLSVerify:    cfg.Insecure,
		TLSServerName:            cfg.ServerName,
	}
	out.AuthInfos[creds.User] = &clientcmdapi.AuthInfo{
		Token:                 creds.Token,
		ClientCertificateData: creds.ClientCertificate,
		ClientKeyData:         creds.ClientKey,
	}
	out.Contexts[contextName] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: creds.User}
	out.CurrentContext = contextName
	yaml, err := clientcmd.Write(*out)
	if err != nil {
		return nil, err
	}
	return &Rendered{YAML: yaml, ContextName: contextName, Host: cfg.Host, CAPEM: ca}, nil
}

// ClusterName is the name of the cluster entry of a kubeconfig's current
// context, or "" when it has none.
func ClusterName(raw []byte) string {
	cfg, err := clientcmd.Load(raw)
	if err != nil || cfg.Contexts[cfg.CurrentContext] == nil {
		return ""
	}
	return cfg.Contexts[cfg.CurrentContext].Cluster
}
