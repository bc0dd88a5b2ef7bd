package lke

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"
)

// Endpoints of a cluster's Kubernetes API, as seen by the proxy in front of
// it, for fault injection and the request log (with InjectClusterFaults).
const (
	KubeListSecrets       = "kube GET secrets"
	KubeDeleteSecrets     = "kube DELETE secrets" // one secret or a collection
	KubeSelfSubjectReview = "kube POST selfsubjectreviews"
	KubeListNodes         = "kube GET nodes"
	KubeListWorkloads     = "kube GET workloads" // deployments, daemonsets, statefulsets
	KubePatchWorkload     = "kube PATCH workloads"
	KubeCreateToken       = "kube POST serviceaccounts/token" // TokenRequest
	// KubeDeleteServiceAccount and KubeCreateServiceAccount re-create a
	// service account (and a rotation's bridge account).
	KubeDeleteServiceAccount = "kube DELETE serviceaccounts"
	KubeCreateServiceAccount = "kube POST serviceaccounts"
)

// kubeProxy fronts one cluster's kube-apiserver. The kubeconfig the Linode API
// serves points at it (as LKE's points at a load balancer), so that faults
// can be injected on the way to the API server as on the Linode API's.
// Bearer tokens pass through; a client certificate is checked here against
// the cluster's CA and forwarded as the API server's front-proxy headers
// (X-Remote-User/-Group), as kube-aggregator does.
type kubeProxy struct {
	url       string
	clusterID int
	emulator  *Emulator
	server    *http.Server
	bearer    *httputil.ReverseProxy
	front     *httputil.ReverseProxy
}

func startKubeProxy(clusterID int, emulator *Emulator, upstream string, serving tls.Certificate, clusterCA *x509.CertPool, frontProxyClient tls.Certificate) (*kubeProxy, error) {
	target, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	newProxy := func(clientCerts []tls.Certificate) *httputil.ReverseProxy {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = &tls.Config{RootCAs: clusterCA, Certificates: clientCerts, MinVersion: tls.VersionTLS12}
		transport.ForceAttemptHTTP2 = true
		return &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target)
				r.Out.Host = target.Host
			},
			Transport:     transport,
			FlushInterval: -1, // watches stream
			ErrorLog:      discardLogger,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				if errors.Is(context.Cause(r.Context()), errControlPlaneRestart) {
					// The API server went away mid-request: the client
					// sees the connection drop, not an answer.
					panic(http.ErrAbortHandler)
				}
				w.WriteHeader(http.StatusBadGateway)
			},
		}
	}
	p := &kubeProxy{
		url:       "https://" + l.Addr().String(),
		clusterID: clusterID,
		emulator:  emulator,
		bearer:    newProxy(nil),
		front:     newProxy([]tls.Certificate{frontProxyClient}),
	}
	p.server = &http.Server{
		Handler: http.HandlerFunc(p.serve),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{serving},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    clusterCA,
			MinVersion:   tls.VersionTLS12,
		},
		ErrorLog:          discardLogger,
		ReadHeaderTimeout: 10 * time.Second,
		// HTTP/1.1 only, as on the emulator: a dropped connection must look
		// the same to every client.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	go func() { _ = p.server.ServeTLS(l, "", "") }()
	return p, nil
}

func (p *kubeProxy) close() { _ = p.server.Close() }

// kubeLog keeps the requests that went through the proxy, separately from
// the Linode API's (see Emulator.KubeRequests).
func (p *kubeProxy) kubeLog(entry RequestRecord) {
	p.emulator.logMu.Lock()
	defer p.emulator.logMu.Unlock()
	p.emulator.kubeLog = append(p.emulator.kubeLog, entry)
}

func (p *kubeProxy) serve(w http.ResponseWriter, r *http.Request) {
	for name := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-remote-") {
			r.Header.Del(name)
		}
	}
	endpoint := kubeEndpoint(r.Method, r.URL.Path)
	rec := &fakecloud.StatusRecorder{ResponseWriter: w}
	entry := RequestRecord{At: time.Now(), Method: r.Method, Path: r.URL.Path, Endpoint: endpoint, ClusterID: p.clusterID, UserAgent: r.UserAgent()}
	defer func() {
		entry.Status = rec.Status
		p.kubeLog(entry)
	}()
	w = rec
	if c := p.emulator.env.Cluster(p.clusterID); c != nil && c.inOutage() {
		writeKubeStatus(rec, http.StatusServiceUnavailable, "the control plane is restarting")
		return
	}
	if endpoint != "" {
		if f, ok := p.emulator.faults.Pop(clusterFaultKey(p.clusterID, endpoint)); ok {
			entry.Fault = true
			if fakecloud.ApplyFault(rec, r, f, p.emulator.closing, writeKubeStatus, writeMaintenance) {
				return
			}
		}
	}
	if c := p.emulator.env.Cluster(p.clusterID); c != nil {
		// A control-plane restart that starts while the request is in
		// flight cuts it.
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		restart := c.outageSignal()
		go func() {
			select {
			case <-restart:
				cancel(errControlPlaneRestart)
			case <-ctx.Done():
			}
		}()
		r = r.WithContext(ctx)
	}
	if p.serveSticky(w, r, endpoint) {
		return
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		cert := r.TLS.PeerCertificates[0]
		r.Header.Set("X-Remote-User", cert.Subject.CommonName)
		for _, g := range cert.Subject.Organization {
			r.Header.Add("X-Remote-Group", g)
		}
		p.front.ServeHTTP(w, r)
		return
	}
	p.bearer.ServeHTTP(w, r)
}

// errControlPlaneRestart cuts the requests in flight when LKE restarts the
// control plane (after a service-token regeneration on a standard cluster).
var errControlPlaneRestart = errors.New("the control plane restarted")

// kubeEndpoint classifies a Kubernetes API request ("" for the rest).
func kubeEndpoint(method, path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	resource := ""
	switch {
	case len(parts) >= 3 && parts[0] == "api" && parts[1] == "v1":
		rest := parts[2:]
		if rest[0] == "namespaces" && len(rest) >= 3 {
			rest = rest[2:]
		}
		resource = rest[0]
	case len(parts) >= 4 && parts[0] == "apis":
		rest := parts[3:]
		if rest[0] == "namespaces" && len(rest) >= 3 {
			rest = rest[2:]
		}
		resource = rest[0]
	}
	if resource == "serviceaccounts" && method == http.MethodPost && strings.HasSuffix(path, "/token") {
		return KubeCreateToken
	}
	switch resource {
	case "serviceaccounts":
		if method == http.MethodDelete || method == http.MethodPost {
			return "kube " + method + " serviceaccounts"
		}
	case "secrets":
		if method == http.MethodGet || method == http.MethodDelete {
			return "kube " + method + " secrets"
		}
	case "selfsubjectreviews":
		if method == http.MethodPost {
			return KubeSelfSubjectReview
		}
	case "nodes":
		if method == http.MethodGet {
			return KubeListNodes
		}
	case "deployments", "daemonsets", "statefulsets":
		switch method {
		case http.MethodGet:
			return KubeListWorkloads
		case http.MethodPatch:
			return KubePatchWorkload
		}
	}
	return ""
}

// writeKubeStatus answers as kube-apiserver does: a metav1.Status.
func writeKubeStatus(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": "Status", "apiVersion": "v1", "status": "Failure",
		"message": reason, "reason": kubeReason(status), "code": status,
	})
}

func kubeReason(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusInternalServerError:
		return "InternalError"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case http.StatusGatewayTimeout:
		return "Timeout"
	}
	return ""
}
