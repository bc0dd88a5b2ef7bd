package lke

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Endpoints of the emulated Linode API, as keys for fault injection and the
// request log (method and path pattern without the /v4 or /v4beta prefix).
const (
	EndpointListClusters     = "GET /lke/clusters"
	EndpointGetCluster       = "GET /lke/clusters/{id}"
	EndpointGetKubeconfig    = "GET /lke/clusters/{id}/kubeconfig"
	EndpointDeleteKubeconfig = "DELETE /lke/clusters/{id}/kubeconfig"
	EndpointRegenerate       = "POST /lke/clusters/{id}/regenerate"
	EndpointDeleteServiceTok = "DELETE /lke/clusters/{id}/servicetoken"
	EndpointListPools        = "GET /lke/clusters/{id}/pools"
	EndpointGetPool          = "GET /lke/clusters/{id}/pools/{pool}"
	EndpointRecycleCluster   = "POST /lke/clusters/{id}/recycle"
	EndpointRecyclePool      = "POST /lke/clusters/{id}/pools/{pool}/recycle"
	EndpointListAPIEndpoints = "GET /lke/clusters/{id}/api-endpoints"
)

// Fault is one programmed answer of an endpoint, used instead of (or before)
// the real one.
type Fault struct {
	// Status answers with this HTTP status and Linode's error envelope. Zero
	// passes the request on to the real handler (after Delay).
	Status int
	// Reason is the error text; empty takes a text fitting Status.
	Reason string
	// RetryAfter sets the Retry-After header, in whole seconds.
	RetryAfter time.Duration
	// Delay waits this long before answering.
	Delay time.Duration
	// Hang holds the request without answering until the client gives up or
	// the emulator closes.
	Hang bool
	// Drop closes the connection without an answer.
	Drop bool
	// HTML answers Status as the gateway in front of the API does when the
	// API behind it fails: an HTML error page (Content-Type text/html, as
	// nginx sends it), not Linode's JSON envelope. linodego returns these
	// as linodego.Error values, not pointers.
	HTML bool
	// Maintenance answers as the API does during a maintenance event: 503
	// with the X-Maintenance-Mode header (linodego does not retry these)
	// and Retry-After 20 unless RetryAfter says otherwise.
	Maintenance bool
	// Acted lets the real handler act first (the cluster is regenerated,
	// the nodes recycled), then plays Drop or Hang instead of its answer:
	// the API did the work and the client never hears of it.
	Acted bool
	// Body answers Status with this JSON body as it is, Content-Type
	// application/json: "{}" or {"message": …} from something in front of
	// the API, which has no "errors" array, so that linodego's
	// coupleAPIErrors returns no error for it (errors.go).
	Body string
	// For keeps the fault in force for this long from the first request it
	// answers (every request meanwhile takes it), then the queue moves on:
	// an outage of the edge in time, not in requests.
	For time.Duration

	until time.Time // when a For fault ends, set when it is first played
}

// discardResponse swallows the answer of a handler whose answer is lost.
type discardResponse struct{ header http.Header }

func (d *discardResponse) Header() http.Header         { return d.header }
func (d *discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardResponse) WriteHeader(int)             {}

// RequestRecord is one request the emulator received.
type RequestRecord struct {
	At        time.Time
	Method    string
	Path      string // as sent, without the query
	Endpoint  string // one of the Endpoint constants; empty when no route matched
	ClusterID int    // the {id} of the path, 0 when it names none
	Status    int    // 0 when the connection was dropped or the request hung
	Fault     bool   // answered by an injected fault
	UserAgent string
}

type faultTable struct {
	mu     sync.Mutex
	queues map[string][]Fault
}

func (t *faultTable) push(endpoint string, faults []Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.queues == nil {
		t.queues = map[string][]Fault{}
	}
	t.queues[endpoint] = append(t.queues[endpoint], faults...)
}

func (t *faultTable) pop(endpoint string) (Fault, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		q := t.queues[endpoint]
		if len(q) == 0 {
			return Fault{}, false
		}
		if q[0].For <= 0 {
			t.queues[endpoint] = q[1:]
			return q[0], true
		}
		now := time.Now()
		if q[0].until.IsZero() {
			q[0].until = now.Add(q[0].For)
		}
		if now.Before(q[0].until) {
			return q[0], true
		}
		t.queues[endpoint] = q[1:]
	}
}

func (t *faultTable) clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queues = nil
}

// InjectFaults queues faults for an endpoint: each following request to it
// takes the next one, in order; when the queue is empty requests are served
// normally again.
func (e *Emulator) InjectFaults(endpoint string, faults ...Fault) {
	e.faults.push(endpoint, faults)
}

// InjectClusterFaults queues faults for an endpoint of one cluster only, so
// that tests on other clusters can run meanwhile. They are taken before any
// queued with InjectFaults.
func (e *Emulator) InjectClusterFaults(clusterID int, endpoint string, faults ...Fault) {
	e.faults.push(clusterFaultKey(clusterID, endpoint), faults)
}

func clusterFaultKey(clusterID int, endpoint string) string {
	return endpoint + "#" + strconv.Itoa(clusterID)
}

// ClearFaults drops every queued fault.
func (e *Emulator) ClearFaults() { e.faults.clear() }

// Requests returns the requests received so far, oldest first.
func (e *Emulator) Requests() []RequestRecord {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return append([]RequestRecord(nil), e.log...)
}

// CountRequests counts the requests received for an endpoint ("" counts all).
func (e *Emulator) CountRequests(endpoint string) int {
	return e.CountClusterRequests(0, endpoint)
}

// CountClusterRequests counts the requests for an endpoint ("" for all) about
// one cluster (0 for any).
func (e *Emulator) CountClusterRequests(clusterID int, endpoint string) int {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	n := 0
	for _, r := range e.log {
		if (endpoint == "" || r.Endpoint == endpoint) && (clusterID == 0 || r.ClusterID == clusterID) {
			n++
		}
	}
	return n
}

// ResetRequests empties the request log.
func (e *Emulator) ResetRequests() {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	e.log = nil
}

// applyFault acts out f, answering errors with writeErr. It reports whether
// the request was answered (so the real handler must not run).
func applyFault(w http.ResponseWriter, r *http.Request, f Fault, closing <-chan struct{}, writeErr func(http.ResponseWriter, int, string)) bool {
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return true
		case <-closing:
			return true
		}
	}
	switch {
	case f.Hang:
		// Read the body first: only then does net/http notice the client
		// hanging up (and end r.Context()), so the request is logged.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-closing:
		}
		return true
	case f.Drop:
		// Aborts the exchange: the connection closes with no response.
		panic(http.ErrAbortHandler)
	case f.Maintenance:
		writeMaintenance(w, f.RetryAfter)
		return true
	case f.Status != 0 && f.HTML:
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Round(time.Second)/time.Second)))
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f.Status)
		title := strconv.Itoa(f.Status) + " " + http.StatusText(f.Status)
		_, _ = w.Write([]byte("<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
			"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"))
		return true
	case f.Status != 0 && f.Body != "":
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Round(time.Second)/time.Second)))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(f.Body))
		return true
	case f.Status != 0:
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Round(time.Second)/time.Second)))
		}
		reason := f.Reason
		if reason == "" {
			reason = defaultReason(f.Status)
		}
		writeErr(w, f.Status, reason)
		return true
	}
	return false
}

// maintenanceReason is what the API says during a maintenance event, in the
// X-Maintenance-Mode header and the error body (the header's value as
// linodego's tests of its maintenance handling record it).
const maintenanceReason = "Currently in maintenance mode."

func writeMaintenance(w http.ResponseWriter, retryAfter time.Duration) {
	if retryAfter <= 0 {
		retryAfter = 20 * time.Second
	}
	w.Header().Set("X-Maintenance-Mode", maintenanceReason)
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter.Round(time.Second)/time.Second)))
	writeLinodeError(w, http.StatusServiceUnavailable, maintenanceReason)
}

// PendingFaults counts the faults still queued for an endpoint of a cluster
// (0 for those queued for every cluster).
func (e *Emulator) PendingFaults(clusterID int, endpoint string) int {
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	if clusterID == 0 {
		return len(e.faults.queues[endpoint])
	}
	return len(e.faults.queues[clusterFaultKey(clusterID, endpoint)])
}

// ClearClusterFaults drops the faults queued for one cluster.
func (e *Emulator) ClearClusterFaults(clusterID int) {
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	suffix := "#" + strconv.Itoa(clusterID)
	for k := range e.faults.queues {
		if strings.HasSuffix(k, suffix) {
			delete(e.faults.queues, k)
		}
	}
}

func (e *Emulator) record(entry RequestRecord) {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	e.log = append(e.log, entry)
}

func defaultReason(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "Too many requests"
	case http.StatusServiceUnavailable:
		return "Service Unavailable"
	case http.StatusUnauthorized:
		return "Invalid Token"
	case http.StatusNotFound:
		return "Not found"
	default:
		return http.StatusText(status)
	}
}

// KubeRequests returns the requests made to the clusters' API endpoints (the
// proxies the served kubeconfigs name), oldest first.
func (e *Emulator) KubeRequests() []RequestRecord {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return append([]RequestRecord(nil), e.kubeLog...)
}
