package lke

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"
)

// controlPlane is one cluster's kube-apiserver and kube-controller-manager.
type controlPlane struct {
	dir  string
	host string // https://127.0.0.1:port
	// Certificates of the proxy in front of the API server.
	auditLog                      string // see Cluster.Credentials
	proxyCert, proxyKey           string // serving, from the cluster CA
	frontProxyCert, frontProxyKey string // client, trusted for X-Remote-* headers
	ca                            *fakecloud.Authority
	admin                         *rest.Config // system:masters client certificate; survives rotations
	apiserver                     *fakecloud.Process
	controller                    *fakecloud.Process
}

// startControlPlane starts kube-apiserver and kube-controller-manager for one
// cluster, storing under prefix in the shared etcd, and waits until both serve.
func startControlPlane(ctx context.Context, bin, dir, etcdURL, prefix string, limits cpLimits) (_ *controlPlane, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cp := &controlPlane{dir: dir}
	defer func() {
		if err != nil {
			cp.stop()
		}
	}()
	if cp.ca, err = fakecloud.NewAuthority(dir, "ca"); err != nil {
		return nil, err
	}
	servingCert, servingKey, err := cp.ca.Issue(dir, "apiserver", fakecloud.Leaf{CommonName: "kube-apiserver", Hosts: []string{"127.0.0.1", "localhost", "::1", "kubernetes.default.svc"}})
	if err != nil {
		return nil, err
	}
	adminCert, adminKey, err := cp.ca.Issue(dir, "admin", fakecloud.Leaf{CommonName: "kubecreds-local-admin", Organization: []string{"system:masters"}})
	if err != nil {
		return nil, err
	}
	kcmCert, kcmKey, err := cp.ca.Issue(dir, "controller-manager", fakecloud.Leaf{CommonName: "system:kube-controller-manager", Organization: []string{"system:masters"}})
	if err != nil {
		return nil, err
	}
	// The proxy in front of the API server (see kubeProxy) authenticates
	// client certificates itself and forwards who they name with this one.
	frontProxyCA, err := fakecloud.NewAuthority(dir, "front-proxy-ca")
	if err != nil {
		return nil, err
	}
	cp.frontProxyCert, cp.frontProxyKey, err = frontProxyCA.Issue(dir, "front-proxy-client", fakecloud.Leaf{CommonName: "front-proxy-client"})
	if err != nil {
		return nil, err
	}
	cp.proxyCert, cp.proxyKey, err = cp.ca.Issue(dir, "proxy", fakecloud.Leaf{CommonName: "lke-api-endpoint", Hosts: []string{"127.0.0.1", "localhost", "::1"}})
	if err != nil {
		return nil, err
	}
	saKey, saPub, err := fakecloud.NewServiceAccountKey(dir)
	if err != nil {
		return nil, err
	}
	auditPolicyFile, auditLog, err := writeAuditPolicy(dir)
	if err != nil {
		return nil, err
	}
	cp.auditLog = auditLog
	// freePort's port is free when it answers, not when kube-apiserver
	// binds it: with many clusters starting at once another process may
	// take it first. kube-apiserver then exits with "address already in
	// use", and is started again on another port.
	for attempt := 1; ; attempt++ {
		port, err := fakecloud.FreePort()
		if err != nil {
			return nil, err
		}
		cp.host = "https://127.0.0.1:" + strconv.Itoa(port)
		cp.apiserver, err = fakecloud.StartProcess(dir, "kube-apiserver", bin, "kube-apiserver",
			"--etcd-servers="+etcdURL,
			"--etcd-prefix="+prefix,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port="+strconv.Itoa(port),
			"--tls-cert-file="+servingCert,
			"--tls-private-key-file="+servingKey,
			"--client-ca-file="+cp.ca.CertPath,
			"--requestheader-client-ca-file="+frontProxyCA.CertPath,
			"--requestheader-allowed-names=front-proxy-client",
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--authorization-mode=RBAC",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file="+saPub,
			"--service-account-signing-key-file="+saKey,
			"--service-cluster-ip-range=10.128.0.0/16",
			"--allow-privileged=true",
			// No kubelets or Service VIPs here: nothing needs the kubernetes
			// Service's endpoints, and reconciling them against loopback only logs noise.
			"--endpoint-reconciler-type=none",
			"--cert-dir="+dir,
			"--audit-policy-file="+auditPolicyFile,
			"--audit-log-path="+auditLog,
			"--audit-log-format=json",
			"--service-account-max-token-expiration="+limits.maxTokenExpiration.String(),
			"--v=1",
		)
		if err != nil {
			return nil, err
		}
		cp.admin = &rest.Config{
			Host:            cp.host,
			TLSClientConfig: rest.TLSClientConfig{CAFile: cp.ca.CertPath, CertFile: adminCert, KeyFile: adminKey},
			QPS:             200,
			Burst:           400,
		}
		adminClient, err := kubernetes.NewForConfig(cp.admin)
		if err != nil {
			return nil, err
		}
		err = fakecloud.WaitHealthy(ctx, cp.apiserver, 90*time.Second, func(ctx context.Context) (bool, error) {
			body, err := adminClient.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err == nil && strings.TrimSpace(string(body)) == "ok", nil
		})
		if err == nil {
			break
		}
		if tail := cp.apiserver.Tail(8192); attempt < 3 && strings.Contains(tail, "address already in use") {
			cp.apiserver.Stop()
			continue
		}
		return nil, fmt.Errorf("kube-apiserver did not become ready: %w\n--- kube-apiserver log tail ---\n%s", err, cp.apiserver.Tail(8192))
	}

	kcmKubeconfig := filepath.Join(dir, "controller-manager.kubeconfig")
	if err := fakecloud.WriteClientCertKubeconfig(kcmKubeconfig, "local", cp.host, cp.ca.CertPEM(), kcmCert, kcmKey); err != nil {
		return nil, err
	}
	cp.controller, err = fakecloud.StartProcess(dir, "kube-controller-manager", bin, "kube-controller-manager",
		"--kubeconfig="+kcmKubeconfig,
		"--authentication-skip-lookup=true",
		"--secure-port=0",
		"--leader-elect=false",
		"--controllers="+strings.Join(limits.controllers(), ","),
		"--service-account-private-key-file="+saKey,
		"--root-ca-file="+cp.ca.CertPath,
		"--cluster-signing-cert-file="+cp.ca.CertPath,
		"--cluster-signing-key-file="+cp.ca.KeyPath,
		"--use-service-account-credentials=false",
		"--concurrent-serviceaccount-token-syncs=10",
		// The default 20 requests a second makes the token controller take
		// a minute to fill a thousand secrets; a real control plane is not
		// that slow at this scale.
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
		"--v=1",
	)
	if err != nil {
		return nil, err
	}
	return cp, nil
}

// controllers are the kube-controller-manager controllers the local LKE runs:
// what token secrets, CSRs and workload rollouts need, the aggregation that
// fills the built-in view, edit and admin ClusterRoles (RoleBindings to them
// grant nothing without it), and nothing that would look for kubelets or a
// cloud.
var controllers = []string{
	"serviceaccount-token-controller",
	"serviceaccount-controller",
	"root-ca-certificate-publisher-controller",
	"certificatesigningrequest-signing-controller",
	"certificatesigningrequest-approving-controller",
	"certificatesigningrequest-cleaner-controller",
	"garbage-collector-controller",
	"clusterrole-aggregation-controller",
	"namespace-controller",
	"deployment-controller",
	"replicaset-controller",
	"daemonset-controller",
	"statefulset-controller",
}

// cpLimits are the control plane's limits on credentials.
type cpLimits struct {
	// maxTokenExpiration caps TokenRequest expirations
	// (--service-account-max-token-expiration).
	maxTokenExpiration time.Duration
	// noCSRSigning leaves out the controller that signs
	// CertificateSigningRequests: approved requests are never issued.
	noCSRSigning bool
}

func (l cpLimits) controllers() []string {
	if !l.noCSRSigning {
		return controllers
	}
	var out []string
	for _, c := range controllers {
		if c != "certificatesigningrequest-signing-controller" {
			out = append(out, c)
		}
	}
	return out
}

// stop ends the cluster's processes; the caller removes the directory.
func (cp *controlPlane) stop() {
	done := make(chan struct{})
	go func() { cp.controller.Stop(); close(done) }()
	cp.apiserver.Stop()
	<-done
}
