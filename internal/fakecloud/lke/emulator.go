package lke

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"
)

// Emulator is the Linode API's LKE subset, served over HTTPS on loopback and
// answering as the recordings (testdata/linode-api) and the API reference
// show, with the bad days the README's table lists, and with each
// cluster backed by a real control plane.
type Emulator struct {
	// URL is the API root without version, for LINODE_URL.
	URL string
	// Token is the bearer token the emulator accepts, for LINODE_TOKEN.
	Token string
	// ConfigToken is a second token it accepts, for tests that write a
	// token into a configuration (terraform keeps configurations in saved
	// plans, and a token given to terraform_data in its state): Token stays
	// out of every file, and the suite's leak scan holds it to that.
	ConfigToken string
	// CAPath is the CA certificate that signed the emulator's TLS certificate, for LINODE_CA.
	CAPath string

	env      *Environment
	caPool   *x509.CertPool
	server   *http.Server
	listener net.Listener
	closing  chan struct{}
	faults   fakecloud.FaultTable
	sticky   stickyTable // SetStickyTokens

	logMu   sync.Mutex
	log     []RequestRecord
	kubeLog []RequestRecord // requests through the clusters' API endpoints

	limiter rateLimiter

	maintenanceMu    sync.Mutex
	maintenanceUntil time.Time

	scopeMu sync.Mutex
	scoped  map[string][]string // token -> OAuth scopes, for tokens made by ScopedToken
}

// OAuth scopes of the Linode API that the LKE endpoints check.
const (
	ScopeLKEReadOnly  = "lke:read_only"
	ScopeLKEReadWrite = "lke:read_write"
)

// notAuthorizedForEndpoint is the Linode API's answer to a token that lacks
// the endpoint's OAuth scope.
const notAuthorizedForEndpoint = "Your OAuth token is not authorized to use this endpoint."

// readOnlyEndpoints are the LKE operations lke:read_only allows, as the API
// reference lists each operation's scope (linode-api-docs openapi.yaml,
// x-linode-cli / security per operation): listing and reading clusters,
// pools and API endpoints. Every other one, GET /kubeconfig included, needs
// lke:read_write.
var readOnlyEndpoints = map[string]bool{
	EndpointListClusters: true, EndpointGetCluster: true, EndpointListPools: true, EndpointGetPool: true,
	EndpointListAPIEndpoints: true,
}

// acceptedScope is the scope an endpoint needs, as the API reports it in
// X-Accepted-OAuth-Scopes.
func acceptedScope(endpoint string) string {
	if readOnlyEndpoints[endpoint] {
		return ScopeLKEReadOnly
	}
	return ScopeLKEReadWrite
}

// ScopedToken makes another token the emulator accepts, limited to scopes
// (as a personal access token made in Cloud Manager is): the read-only
// endpoints need lke:read_only or lke:read_write, the others (GET
// /kubeconfig among them) lke:read_write.
func (e *Emulator) ScopedToken(scopes ...string) string {
	token := fakecloud.RandomHex(32)
	e.scopeMu.Lock()
	defer e.scopeMu.Unlock()
	if e.scoped == nil {
		e.scoped = map[string][]string{}
	}
	e.scoped[token] = scopes
	return token
}

// scopeAllows tells whether the request's token may use the endpoint; known
// is false for a token ScopedToken did not make. It sets the headers the
// API sends with every answer: X-OAuth-Scopes (the token's, "*" for one
// with every scope) and X-Accepted-OAuth-Scopes (the endpoint's).
func (e *Emulator) scopeAllows(w http.ResponseWriter, r *http.Request, endpoint string) (allowed, known bool) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	e.scopeMu.Lock()
	scopes, known := e.scoped[token]
	e.scopeMu.Unlock()
	if endpoint != "" {
		w.Header().Set("X-Accepted-OAuth-Scopes", acceptedScope(endpoint))
	}
	if !known {
		if e.authorized(r) {
			w.Header().Set("X-OAuth-Scopes", "*")
		}
		return false, false
	}
	w.Header().Set("X-OAuth-Scopes", strings.Join(scopes, " "))
	if slices.Contains(scopes, ScopeLKEReadWrite) {
		return true, true
	}
	return readOnlyEndpoints[endpoint] && slices.Contains(scopes, ScopeLKEReadOnly), true
}

// StartMaintenance makes every request answer as during a maintenance
// event for d: 503 with X-Maintenance-Mode.
func (e *Emulator) StartMaintenance(d time.Duration) {
	e.maintenanceMu.Lock()
	defer e.maintenanceMu.Unlock()
	e.maintenanceUntil = time.Now().Add(d)
}

// inMaintenance is when the maintenance event under way ends, or zero.
func (e *Emulator) inMaintenance() time.Time {
	e.maintenanceMu.Lock()
	defer e.maintenanceMu.Unlock()
	if time.Now().Before(e.maintenanceUntil) {
		return e.maintenanceUntil
	}
	return time.Time{}
}

// Linode's error envelope.
type apiError struct {
	Reason string `json:"reason"`
	Field  string `json:"field,omitempty"`
}

const kubeconfigNotReady = "Cluster kubeconfig is not yet available. Please try again later."

func newEmulator(env *Environment, token, certPath, keyPath, caPath string) (*Emulator, error) {
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &Emulator{
		caPool:      pool,
		URL:         "https://" + l.Addr().String(),
		Token:       token,
		ConfigToken: fakecloud.RandomHex(32),
		CAPath:      caPath,
		env:         env,
		listener:    l,
		closing:     make(chan struct{}),
	}
	e.limiter.limits = env.opts.RateLimits.withDefaults()
	mux := http.NewServeMux()
	routes := map[string]http.HandlerFunc{
		EndpointListClusters:     e.listClusters,
		EndpointGetCluster:       e.withCluster(e.getCluster),
		EndpointGetKubeconfig:    e.withCluster(e.getKubeconfig),
		EndpointDeleteKubeconfig: e.withCluster(e.deleteKubeconfig),
		EndpointRegenerate:       e.withCluster(e.regenerate),
		EndpointDeleteServiceTok: e.withCluster(e.deleteServiceToken),
		EndpointListPools:        e.withCluster(e.listPools),
		EndpointGetPool:          e.withCluster(e.getPool),
		EndpointRecycleCluster:   e.withCluster(e.recycleCluster),
		EndpointRecyclePool:      e.withCluster(e.recyclePool),
		EndpointListAPIEndpoints: e.withCluster(e.listAPIEndpoints),
	}
	for endpoint, h := range routes {
		method, path, _ := strings.Cut(endpoint, " ")
		mux.Handle(method+" /{version}"+path, e.middleware(endpoint, h))
	}
	mux.Handle("/", e.middleware("", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, apiError{Reason: "Not found"})
	}))
	e.server = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// HTTP/1.1 only, as a dropped connection must look the same to every client.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	go func() { _ = e.server.ServeTLS(l, certPath, keyPath) }()
	return e, nil
}

// HTTPClient returns a client that trusts the emulator's certificate, as one
// configured with LINODE_CA does. Without keep-alive each request gets a new
// connection: net/http silently retries a GET once when a reused connection
// drops, which would hide an injected drop.
func (e *Emulator) HTTPClient(keepAlive bool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: e.caPool}, DisableKeepAlives: !keepAlive,
	}}
}

// close stops serving; hanging requests are released.
func (e *Emulator) close() {
	close(e.closing)
	_ = e.server.Close()
}

// middleware records the request, checks the version and the bearer token,
// and plays any queued fault before the real handler.
func (e *Emulator) middleware(endpoint string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &fakecloud.StatusRecorder{ResponseWriter: w}
		entry := RequestRecord{At: time.Now(), Method: r.Method, Path: r.URL.Path, Endpoint: endpoint, UserAgent: r.UserAgent()}
		defer func() {
			entry.Status = rec.Status
			e.record(entry)
		}()
		if v := r.PathValue("version"); endpoint != "" && v != "v4" && v != "v4beta" {
			entry.Endpoint = ""
			writeError(rec, http.StatusNotFound, apiError{Reason: "Not found"})
			return
		}
		if allowed, scoped := e.scopeAllows(rec, r, endpoint); scoped && !allowed {
			writeError(rec, http.StatusUnauthorized, apiError{Reason: notAuthorizedForEndpoint})
			return
		} else if !scoped && !e.authorized(r) {
			writeError(rec, http.StatusUnauthorized, apiError{Reason: "Invalid Token"})
			return
		}
		entry.ClusterID, _ = strconv.Atoi(r.PathValue("id"))
		if until := e.inMaintenance(); !until.IsZero() {
			entry.Fault = true
			writeMaintenance(rec, time.Until(until))
			return
		}
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !e.limiter.take(rec, token, endpoint, time.Now()) {
			return
		}
		if endpoint != "" {
			f, ok := e.faults.Pop(clusterFaultKey(entry.ClusterID, endpoint))
			if !ok {
				f, ok = e.faults.Pop(endpoint)
			}
			if ok {
				entry.Fault = true
				if f.Acted {
					h(fakecloud.DiscardResponse(), r)
				}
				if fakecloud.ApplyFault(rec, r, f, e.closing, writeLinodeError, writeMaintenance) {
					return
				}
			}
		}
		h(rec, r)
	})
}

func (e *Emulator) authorized(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && (subtle.ConstantTimeCompare([]byte(token), []byte(e.Token)) == 1 ||
		subtle.ConstantTimeCompare([]byte(token), []byte(e.ConfigToken)) == 1)
}

func (e *Emulator) withCluster(h func(http.ResponseWriter, *http.Request, *Cluster)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		c := e.env.Cluster(id)
		if err != nil || c == nil {
			writeError(w, http.StatusNotFound, apiError{Reason: "Not found"})
			return
		}
		h(w, r, c)
	}
}

type controlPlaneJSON struct {
	HighAvailability bool `json:"high_availability"`
}

// clusterJSON is the cluster object as GET /lke/clusters/{id} answers it.
type clusterJSON struct {
	ID           int              `json:"id"`
	Status       string           `json:"status"`
	Created      string           `json:"created"`
	Updated      string           `json:"updated"`
	Label        string           `json:"label"`
	Region       string           `json:"region"`
	K8sVersion   string           `json:"k8s_version"`
	Tier         string           `json:"tier"`
	ControlPlane controlPlaneJSON `json:"control_plane"`
	APLEnabled   bool             `json:"apl_enabled"`
	Tags         []string         `json:"tags"`
	Locks        []string         `json:"locks"`
}

const linodeTime = "2006-01-02T15:04:05"

func (c *Cluster) toJSON() clusterJSON {
	c.mu.Lock()
	defer c.mu.Unlock()
	return clusterJSON{
		ID: c.ID, Status: "ready", Created: c.Created.Format(linodeTime), Updated: c.updated.Format(linodeTime),
		Label: c.Label, Region: c.Region, K8sVersion: c.K8sVersion, Tier: c.Tier,
		Tags: []string{}, Locks: []string{},
		ControlPlane: controlPlaneJSON{HighAvailability: c.highAvailability},
	}
}

type poolJSON struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Label      string         `json:"label"`
	Count      int            `json:"count"`
	Nodes      []poolNodeJSON `json:"nodes"`
	Disks      []any          `json:"disks"`
	Autoscaler struct {
		Enabled bool `json:"enabled"`
		Min     int  `json:"min"`
		Max     int  `json:"max"`
	} `json:"autoscaler"`
	Labels         map[string]string `json:"labels"`
	Taints         []any             `json:"taints"`
	Tags           []string          `json:"tags"`
	DiskEncryption string            `json:"disk_encryption"`
	Locks          []string          `json:"locks"`
}

type poolNodeJSON struct {
	ID         string `json:"id"`
	InstanceID int    `json:"instance_id"`
	Status     string `json:"status"`
}

func (c *Cluster) poolsJSON() []poolJSON {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]poolJSON, 0, len(c.pools))
	for _, p := range c.pools {
		pj := poolJSON{ID: p.ID, Type: p.Type, Count: len(p.Nodes), Nodes: []poolNodeJSON{}, Disks: []any{},
			Labels: map[string]string{}, Taints: []any{}, Tags: append([]string{}, p.Tags...),
			DiskEncryption: "enabled", Locks: []string{}}
		pj.Autoscaler.Min, pj.Autoscaler.Max = len(p.Nodes), len(p.Nodes)
		for _, n := range p.Nodes {
			pj.Nodes = append(pj.Nodes, poolNodeJSON{ID: n.ID, InstanceID: n.InstanceID, Status: n.Status})
		}
		out = append(out, pj)
	}
	return out
}

func (e *Emulator) listClusters(w http.ResponseWriter, r *http.Request) {
	var items []any
	for _, c := range e.env.Clusters() {
		items = append(items, c.toJSON())
	}
	writePage(w, r, items)
}

func (e *Emulator) getCluster(w http.ResponseWriter, _ *http.Request, c *Cluster) {
	writeJSON(w, http.StatusOK, c.toJSON())
}

func (e *Emulator) getKubeconfig(w http.ResponseWriter, _ *http.Request, c *Cluster) {
	kc, ready := c.servedKubeconfig()
	if !ready {
		writeError(w, http.StatusServiceUnavailable, apiError{Reason: kubeconfigNotReady})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"kubeconfig": base64.StdEncoding.EncodeToString(kc)})
}

func (e *Emulator) deleteKubeconfig(w http.ResponseWriter, _ *http.Request, c *Cluster) {
	c.regenerate(true, false)
	writeJSON(w, http.StatusOK, struct{}{})
}

func (e *Emulator) deleteServiceToken(w http.ResponseWriter, _ *http.Request, c *Cluster) {
	c.regenerate(false, true)
	writeJSON(w, http.StatusOK, struct{}{})
}

func (e *Emulator) regenerate(w http.ResponseWriter, r *http.Request, c *Cluster) {
	var body struct {
		Kubeconfig   *bool `json:"kubeconfig"`
		ServiceToken *bool `json:"servicetoken"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, apiError{Reason: "Invalid JSON"})
		return
	}
	kubeconfig := body.Kubeconfig != nil && *body.Kubeconfig
	serviceToken := body.ServiceToken != nil && *body.ServiceToken
	if !kubeconfig && !serviceToken {
		writeError(w, http.StatusBadRequest,
			apiError{Reason: "At least one of kubeconfig or servicetoken must be true.", Field: "kubeconfig"},
			apiError{Reason: "At least one of kubeconfig or servicetoken must be true.", Field: "servicetoken"})
		return
	}
	c.regenerate(kubeconfig, serviceToken)
	// The API reference documents an empty object (as for recycle), not
	// the cluster.
	writeJSON(w, http.StatusOK, struct{}{})
}

func (e *Emulator) listPools(w http.ResponseWriter, r *http.Request, c *Cluster) {
	var items []any
	for _, p := range c.poolsJSON() {
		items = append(items, p)
	}
	writePage(w, r, items)
}

func (e *Emulator) getPool(w http.ResponseWriter, r *http.Request, c *Cluster) {
	id, _ := strconv.Atoi(r.PathValue("pool"))
	for _, p := range c.poolsJSON() {
		if p.ID == id {
			writeJSON(w, http.StatusOK, p)
			return
		}
	}
	writeError(w, http.StatusNotFound, apiError{Reason: "Not found"})
}

func (e *Emulator) recycleCluster(w http.ResponseWriter, _ *http.Request, c *Cluster) {
	c.recycle()
	writeJSON(w, http.StatusOK, struct{}{})
}

func (e *Emulator) recyclePool(w http.ResponseWriter, r *http.Request, c *Cluster) {
	id, err := strconv.Atoi(r.PathValue("pool"))
	if err != nil || !c.recycle(id) {
		writeError(w, http.StatusNotFound, apiError{Reason: "Not found"})
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (e *Emulator) listAPIEndpoints(w http.ResponseWriter, r *http.Request, c *Cluster) {
	writePage(w, r, []any{map[string]string{"endpoint": c.Host()}})
}

// writePage answers a list in Linode's paged envelope, honouring ?page= and ?page_size=.
func writePage(w http.ResponseWriter, r *http.Request, items []any) {
	size := 100
	if s, err := strconv.Atoi(r.URL.Query().Get("page_size")); err == nil {
		if s < 25 || s > 500 {
			writeError(w, http.StatusBadRequest, apiError{Reason: "Must be 25-500", Field: "page_size"})
			return
		}
		size = s
	}
	page := 1
	if p, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil {
		page = p
	}
	pages := max(1, (len(items)+size-1)/size)
	if page < 1 || page > pages {
		writeError(w, http.StatusBadRequest, apiError{Reason: "Must be 1-" + strconv.Itoa(pages), Field: "page"})
		return
	}
	start, end := (page-1)*size, min(page*size, len(items))
	data := items[start:end]
	if data == nil {
		data = []any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "page": page, "pages": pages, "results": len(items)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, errs ...apiError) {
	writeJSON(w, status, map[string][]apiError{"errors": errs})
}

func writeLinodeError(w http.ResponseWriter, status int, reason string) {
	writeError(w, status, apiError{Reason: reason})
}

// discardLogger silences net/http's server and proxy logs (aborted
// requests are the point of fault injection).
var discardLogger = log.New(io.Discard, "", 0)
