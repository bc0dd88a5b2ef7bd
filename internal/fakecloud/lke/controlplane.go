package lke

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// BinaryEnv names the environment variable that points at the control-plane
// binary built from tools/controlplane.
const BinaryEnv = "KUBECREDS_CONTROLPLANE_BIN"

// FindBinary locates the control-plane binary: $KUBECREDS_CONTROLPLANE_BIN, or
// .cache/bin/controlplane at the root of this repository (where `make
// controlplane` puts it).
func FindBinary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinaryEnv, p, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "tools", "controlplane", "go.mod")); err == nil {
				p := filepath.Join(dir, ".cache", "bin", "controlplane")
				if _, err := os.Stat(p); err != nil {
					return "", fmt.Errorf("control-plane binary not built (%s missing): run `make controlplane` or set %s", p, BinaryEnv)
				}
				return p, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("control-plane binary not found: set %s or run from inside the repository after `make controlplane`", BinaryEnv)
		}
		dir = parent
	}
}

// etcd is the single etcd an environment's API servers share, each under its
// own key prefix.
type etcd struct {
	url  string
	proc *process
}

func startEtcd(ctx context.Context, bin, dir string) (*etcd, error) {
	clientPort, err := freePort()
	if err != nil {
		return nil, err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	proc, err := startProcess(dir, "etcd", bin, "etcd",
		"--name=default",
		"--data-dir="+filepath.Join(dir, "etcd-data"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		// Test data need not survive a power cut; fsync dominates start-up.
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	e := &etcd{url: clientURL, proc: proc}
	err = waitHealthy(ctx, proc, 30*time.Second, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		proc.stop()
		return nil, fmt.Errorf("etcd did not become healthy: %w\n--- etcd log tail ---\n%s", err, proc.tail(4096))
	}
	return e, nil
}

// waitHealthy polls check until it is true, failing early if proc exits.
func waitHealthy(ctx context.Context, proc *process, timeout time.Duration, check wait.ConditionWithContextFunc) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if ok, err := proc.exited(); ok {
			return false, fmt.Errorf("%s exited: %v", proc.name, err)
		}
		return check(ctx)
	})
}

// controlPlane is one cluster's kube-apiserver and kube-controller-manager.
type controlPlane struct {
	dir  string
	host string // https://127.0.0.1:port
	// Certificates of the proxy in front of the API server.
	auditLog                      string // see Cluster.Credentials
	proxyCert, proxyKey           string // serving, from the cluster CA
	frontProxyCert, frontProxyKey string // client, trusted for X-Remote-* headers
	ca                            *authority
	admin                         *rest.Config // system:masters client certificate; survives rotations
	apiserver                     *process
	controller                    *process
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
	if cp.ca, err = newAuthority(dir, "ca"); err != nil {
		return nil, err
	}
	servingCert, servingKey, err := cp.ca.issue(dir, "apiserver", leaf{commonName: "kube-apiserver", hosts: []string{"127.0.0.1", "localhost", "::1", "kubernetes.default.svc"}})
	if err != nil {
		return nil, err
	}
	adminCert, adminKey, err := cp.ca.issue(dir, "admin", leaf{commonName: "kubecreds-local-admin", organization: []string{"system:masters"}})
	if err != nil {
		return nil, err
	}
	kcmCert, kcmKey, err := cp.ca.issue(dir, "controller-manager", leaf{commonName: "system:kube-controller-manager", organization: []string{"system:masters"}})
	if err != nil {
		return nil, err
	}
	// The proxy in front of the API server (see kubeProxy) authenticates
	// client certificates itself and forwards who they name with this one.
	frontProxyCA, err := newAuthority(dir, "front-proxy-ca")
	if err != nil {
		return nil, err
	}
	cp.frontProxyCert, cp.frontProxyKey, err = frontProxyCA.issue(dir, "front-proxy-client", leaf{commonName: "front-proxy-client"})
	if err != nil {
		return nil, err
	}
	cp.proxyCert, cp.proxyKey, err = cp.ca.issue(dir, "proxy", leaf{commonName: "lke-api-endpoint", hosts: []string{"127.0.0.1", "localhost", "::1"}})
	if err != nil {
		return nil, err
	}
	saKey, saPub, err := newServiceAccountKey(dir)
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
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cp.host = "https://127.0.0.1:" + strconv.Itoa(port)
		cp.apiserver, err = startProcess(dir, "kube-apiserver", bin, "kube-apiserver",
			"--etcd-servers="+etcdURL,
			"--etcd-prefix="+prefix,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port="+strconv.Itoa(port),
			"--tls-cert-file="+servingCert,
			"--tls-private-key-file="+servingKey,
			"--client-ca-file="+cp.ca.certPath,
			"--requestheader-client-ca-file="+frontProxyCA.certPath,
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
			TLSClientConfig: rest.TLSClientConfig{CAFile: cp.ca.certPath, CertFile: adminCert, KeyFile: adminKey},
			QPS:             200,
			Burst:           400,
		}
		adminClient, err := kubernetes.NewForConfig(cp.admin)
		if err != nil {
			return nil, err
		}
		err = waitHealthy(ctx, cp.apiserver, 90*time.Second, func(ctx context.Context) (bool, error) {
			body, err := adminClient.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err == nil && strings.TrimSpace(string(body)) == "ok", nil
		})
		if err == nil {
			break
		}
		if tail := cp.apiserver.tail(8192); attempt < 3 && strings.Contains(tail, "address already in use") {
			cp.apiserver.stop()
			continue
		}
		return nil, fmt.Errorf("kube-apiserver did not become ready: %w\n--- kube-apiserver log tail ---\n%s", err, cp.apiserver.tail(8192))
	}

	kcmKubeconfig := filepath.Join(dir, "controller-manager.kubeconfig")
	if err := writeClientCertKubeconfig(kcmKubeconfig, "local", cp.host, cp.ca.certPEM(), kcmCert, kcmKey); err != nil {
		return nil, err
	}
	cp.controller, err = startProcess(dir, "kube-controller-manager", bin, "kube-controller-manager",
		"--kubeconfig="+kcmKubeconfig,
		"--authentication-skip-lookup=true",
		"--secure-port=0",
		"--leader-elect=false",
		"--controllers="+strings.Join(limits.controllers(), ","),
		"--service-account-private-key-file="+saKey,
		"--root-ca-file="+cp.ca.certPath,
		"--cluster-signing-cert-file="+cp.ca.certPath,
		"--cluster-signing-key-file="+cp.ca.keyPath,
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
// what token secrets, CSRs and workload rollouts need, and nothing that would
// look for kubelets or a cloud.
var controllers = []string{
	"serviceaccount-token-controller",
	"serviceaccount-controller",
	"root-ca-certificate-publisher-controller",
	"certificatesigningrequest-signing-controller",
	"certificatesigningrequest-approving-controller",
	"certificatesigningrequest-cleaner-controller",
	"garbage-collector-controller",
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
	go func() { cp.controller.stop(); close(done) }()
	cp.apiserver.stop()
	<-done
}

// failed reports a process of the control plane that has exited.
func (cp *controlPlane) failed() error {
	for _, p := range []*process{cp.apiserver, cp.controller} {
		if p == nil {
			continue
		}
		if ok, err := p.exited(); ok {
			return errors.Join(fmt.Errorf("%s exited", p.name), err)
		}
	}
	return nil
}
