package lke

import (
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// lkeKubeconfig renders a kubeconfig in the shape the Linode API serves:
// cluster lke<ID>, user lke<ID>-admin with a bearer token, context
// lke<ID>-ctx in namespace default.
func lkeKubeconfig(clusterID int, server string, caPEM []byte, token string) ([]byte, error) {
	name := "lke" + itoa(clusterID)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[name+"-admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts[name+"-ctx"] = &clientcmdapi.Context{Cluster: name, AuthInfo: name + "-admin", Namespace: "default"}
	cfg.CurrentContext = name + "-ctx"
	return clientcmd.Write(*cfg)
}
