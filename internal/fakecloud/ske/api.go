package ske

import (
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"
)

// API emulates the part of STACKIT's SKE API kubecreds uses, over HTTPS
// on loopback, for the emulated SKE clusters: GET a cluster, POST a
// kubeconfig, start and complete the credentials rotation. Requests carry
// a bearer token, as stackit-sdk-go/core's token flow sends it. Errors are
// the API's envelope, {"code": …, "message": …}.
type API struct {
	// URL is the API's base URL (the SKE endpoint setting).
	URL string
	// Token is the service-account token it accepts (STACKIT_SERVICE_ACCOUNT_TOKEN).
	Token string
	// CAPath is the CA of its TLS certificate.
	CAPath string

	env    *Environment
	server *http.Server

	identity skeIdentity

	// faults are played before the real handler, as on the Linode
	// emulator: SKE sits behind a gateway too, rate-limits, and can act on
	// a start or complete whose answer never arrives.
	faults  fakecloud.FaultTable
	closing chan struct{}

	logMu        sync.Mutex
	log          []RequestRecord
	tokensIssued int
	issuedTo     map[string]int // access tokens by account key id
}

// SKE endpoints, for the request log.
const (
	EndpointGetCluster       = "GET cluster"
	EndpointCreateKubeconfig = "POST kubeconfig"
	EndpointStartRotation    = "POST start-credentials-rotation"
	EndpointCompleteRotation = "POST complete-credentials-rotation"
	EndpointListClusters     = "GET clusters"
	skeClusterPath           = "/v2/projects/{project}/regions/{region}/clusters/{cluster}"
	minKubeconfigSeconds     = 600
	maxKubeconfigSeconds     = 15552000
	skeUnauthorizedReason    = "unauthorized: the bearer token is missing or invalid"
)

// startAPI starts the SKE API emulator of env.
func startAPI(env *Environment) (*API, error) {
	// A CA of its own (not the Linode emulator's), so that trusting one
	// API never means trusting the other.
	ca, err := fakecloud.NewAuthority(env.Dir, "ske-api-ca")
	if err != nil {
		return nil, err
	}
	certPath, keyPath, err := ca.Issue(env.Dir, "ske-api", fakecloud.Leaf{CommonName: "ske-api-emulator", Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &API{URL: "https://" + l.Addr().String(), Token: fakecloud.RandomHex(32), CAPath: ca.CertPath, env: env, closing: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+skeClusterPath, a.handle(EndpointGetCluster, a.getCluster))
	mux.HandleFunc("POST "+skeClusterPath+"/kubeconfig", a.handle(EndpointCreateKubeconfig, a.createKubeconfig))
	mux.HandleFunc("POST "+skeClusterPath+"/start-credentials-rotation", a.handle(EndpointStartRotation, a.rotation((*Cluster).startRotation)))
	mux.HandleFunc("POST "+skeClusterPath+"/complete-credentials-rotation", a.handle(EndpointCompleteRotation, a.rotation((*Cluster).completeRotation)))
	mux.HandleFunc("GET /v2/projects/{project}/regions/{region}/clusters", a.logged(EndpointListClusters, a.listClusters))
	mux.HandleFunc("POST /token", a.token)
	mux.HandleFunc("GET /oidc/token-request", a.oidcRequest)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { writeSKEError(w, http.StatusNotFound, "not found") })
	a.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	go func() { _ = a.server.ServeTLS(l, certPath, keyPath) }()
	return a, nil
}

// logged records each request to an endpoint in the request log, and
// answers 401 to one without valid credentials; h answers the others and
// may mark the log entry (a fault played).
func (a *API) logged(endpoint string, h func(http.ResponseWriter, *http.Request, *RequestRecord)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec := &fakecloud.StatusRecorder{ResponseWriter: w}
		entry := RequestRecord{At: time.Now(), Method: r.Method, Path: r.URL.Path, Endpoint: endpoint, UserAgent: r.UserAgent()}
		defer func() {
			entry.Status = rec.Status
			a.logMu.Lock()
			a.log = append(a.log, entry)
			a.logMu.Unlock()
		}()
		if !a.authorized(r) {
			writeSKEError(rec, http.StatusUnauthorized, skeUnauthorizedReason)
			return
		}
		h(rec, r, &entry)
	}
}

// handle serves an endpoint of one cluster: 404 for a cluster that does
// not exist, then the cluster's queued faults, then h.
func (a *API) handle(endpoint string, h func(http.ResponseWriter, *http.Request, *Cluster)) http.HandlerFunc {
	return a.logged(endpoint, func(w http.ResponseWriter, r *http.Request, entry *RequestRecord) {
		c := a.env.cluster(r.PathValue("project"), r.PathValue("region"), r.PathValue("cluster"))
		if c == nil {
			writeSKEError(w, http.StatusNotFound, "cluster "+r.PathValue("cluster")+" not found")
			return
		}
		if f, ok := a.faults.Pop(skeFaultKey(c, endpoint)); ok {
			entry.Fault = true
			if f.Acted {
				h(fakecloud.DiscardResponse(), r, c)
			}
			if fakecloud.ApplyFault(w, r, f, a.closing, writeSKEError, nil) {
				return
			}
		}
		h(w, r, c)
	})
}

// authorized tells whether a request carries the service-account token
// (token flow) or an access token the token endpoint issued.
func (a *API) authorized(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && (subtle.ConstantTimeCompare([]byte(token), []byte(a.Token)) == 1 || a.accessTokenValid(token))
}

// InjectFaults queues faults for an SKE endpoint (EndpointGetCluster, …) of one
// cluster, so that tests on other clusters run undisturbed: each following
// request to it takes the next one; when the queue is empty requests are
// served normally again. (Maintenance is a Linode answer; use Status 503.)
func (a *API) InjectFaults(c *Cluster, endpoint string, faults ...Fault) {
	a.faults.Push(skeFaultKey(c, endpoint), faults)
}

// PendingFaults counts the faults still queued for an endpoint of a cluster.
func (a *API) PendingFaults(c *Cluster, endpoint string) int {
	return a.faults.Pending(skeFaultKey(c, endpoint))
}

func skeFaultKey(c *Cluster, endpoint string) string {
	return endpoint + "#" + c.ProjectID + "/" + c.Region + "/" + c.Name
}

// Requests returns the requests the SKE API received, oldest first.
func (a *API) Requests() []RequestRecord {
	a.logMu.Lock()
	defer a.logMu.Unlock()
	return append([]RequestRecord(nil), a.log...)
}

type skeRotationJSON struct {
	Phase              string     `json:"phase"`
	LastInitiationTime *time.Time `json:"lastInitiationTime,omitempty"`
	LastCompletionTime *time.Time `json:"lastCompletionTime,omitempty"`
}

func (a *API) getCluster(w http.ResponseWriter, _ *http.Request, c *Cluster) {
	writeSKEJSON(w, http.StatusOK, a.clusterJSON(c))
}

// clusterJSON is a cluster as GET cluster and the list show it.
func (a *API) clusterJSON(c *Cluster) map[string]any {
	c.mu.Lock()
	st := c.status()
	c.mu.Unlock()
	status := map[string]any{
		"aggregated": st.aggregated,
		"hibernated": st.aggregated == StateHibernated,
		"credentialsRotation": skeRotationJSON{
			Phase: st.phase, LastInitiationTime: st.lastInitiation, LastCompletionTime: st.lastCompletion,
		},
	}
	if len(st.errors) > 0 {
		errs := []map[string]string{}
		for _, e := range st.errors {
			errs = append(errs, map[string]string{"code": e.Code, "message": e.Message})
		}
		status["errors"] = errs
		// The deprecated single error is a RuntimeError, whose codes are
		// another list: shown only for an error that has one there.
		if runtimeErrorCodes[st.errors[0].Code] {
			status["error"] = map[string]string{"code": st.errors[0].Code, "message": st.errors[0].Message, "details": ""}
		}
	}
	return map[string]any{"name": c.Name, "kubernetes": map[string]string{"version": "1.37.2"}, "status": status}
}

// listClusters answers GET …/clusters: {"items": [Cluster, …]}, the
// clusters of one project in one region (an empty list for a project
// without any).
func (a *API) listClusters(w http.ResponseWriter, r *http.Request, _ *RequestRecord) {
	items := []map[string]any{}
	for _, c := range a.env.Clusters() {
		if c.ProjectID == r.PathValue("project") && c.Region == r.PathValue("region") {
			items = append(items, a.clusterJSON(c))
		}
	}
	writeSKEJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (a *API) createKubeconfig(w http.ResponseWriter, r *http.Request, c *Cluster) {
	var body struct {
		ExpirationSeconds *string `json:"expirationSeconds"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeSKEError(w, http.StatusBadRequest, "invalid request body: "+err.Error())
		return
	}
	seconds := 3600
	if body.ExpirationSeconds != nil {
		n, err := strconv.Atoi(*body.ExpirationSeconds)
		if err != nil || n < minKubeconfigSeconds || n > maxKubeconfigSeconds {
			writeSKEError(w, http.StatusBadRequest, "expirationSeconds must be a string holding a number from 600 to 15552000")
			return
		}
		seconds = n
	}
	if phase, agg := c.Phase(); agg == StateHibernated {
		writeSKEError(w, http.StatusBadRequest, "cluster is hibernated (credentials rotation phase "+phase+")")
		return
	}
	kc, expires, err := c.Kubeconfig(time.Duration(seconds) * time.Second)
	if err != nil {
		writeSKEError(w, http.StatusInternalServerError, "cannot issue a kubeconfig")
		return
	}
	writeSKEJSON(w, http.StatusOK, map[string]any{"kubeconfig": string(kc), "expirationTimestamp": expires.Format(time.RFC3339)})
}

func (a *API) rotation(act func(*Cluster) error) func(http.ResponseWriter, *http.Request, *Cluster) {
	return func(w http.ResponseWriter, _ *http.Request, c *Cluster) {
		if err := act(c); err != nil {
			writeSKEError(w, http.StatusBadRequest, err.Error())
			return
		}
		// 202: "Accepted, execution happens asynchronously" (SKE v2 API).
		writeSKEJSON(w, http.StatusAccepted, struct{}{})
	}
}

// runtimeErrorCodes are the codes of the SKE v2 API's RuntimeError (the
// deprecated status.error).
var runtimeErrorCodes = map[string]bool{
	"SKE_UNSPECIFIED": true, "SKE_TMP_AUTH_ERROR": true, "SKE_QUOTA_EXCEEDED": true, "SKE_OBSERVABILITY_INSTANCE_NOT_FOUND": true,
	"SKE_RATE_LIMITS": true, "SKE_INFRA_ERROR": true, "SKE_REMAINING_RESOURCES": true, "SKE_CONFIGURATION_PROBLEM": true,
	"SKE_UNREADY_NODES": true, "SKE_API_SERVER_ERROR": true, "SKE_DNS_ZONE_NOT_FOUND": true,
}

func writeSKEJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeSKEError(w http.ResponseWriter, status int, msg string) {
	writeSKEJSON(w, status, map[string]any{"code": status, "message": msg})
}
