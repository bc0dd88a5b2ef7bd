package kubeconfig

import (
	"errors"
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// WithToken is raw with its current context's user replaced by one that
// authenticates with token alone: the same cluster (server, CA), none of
// the user's other credentials (certificates, exec plugins, other tokens).
func WithToken(raw []byte, token string) ([]byte, error) {
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("parse kubeconfig: %w", sanitize(err))
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil {
		return nil, errors.New("kubeconfig has no current context")
	}
	const user = "kubecreds-token"
	cfg.AuthInfos = map[string]*clientcmdapi.AuthInfo{user: {Token: token}}
	ctx.AuthInfo = user
	cfg.Contexts = map[string]*clientcmdapi.Context{cfg.CurrentContext: ctx}
	return clientcmd.Write(*cfg)
}
