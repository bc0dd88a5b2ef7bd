package fakecloud

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
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

// DiscardResponse swallows the answer of a handler whose answer is lost
// (Fault.Acted).
func DiscardResponse() http.ResponseWriter { return &discardResponse{header: http.Header{}} }

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

// FaultTable holds queues of faults by key (an endpoint, or an endpoint of
// one cluster), each played in order.
type FaultTable struct {
	mu     sync.Mutex
	queues map[string][]Fault
}

// Push queues faults for endpoint (a key: an endpoint, or an endpoint of
// one cluster).
func (t *FaultTable) Push(endpoint string, faults []Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.queues == nil {
		t.queues = map[string][]Fault{}
	}
	t.queues[endpoint] = append(t.queues[endpoint], faults...)
}

// Pop takes the next fault queued for endpoint: one with For stays in force
// until it has lasted that long.
func (t *FaultTable) Pop(endpoint string) (Fault, bool) {
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

// Clear drops every queued fault.
func (t *FaultTable) Clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queues = nil
}

// Pending counts the faults still queued for key.
func (t *FaultTable) Pending(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queues[key])
}

// Drop drops the faults queued for key.
func (t *FaultTable) Drop(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.queues, key)
}

// ClearSuffix drops the faults queued for every key ending in suffix.
func (t *FaultTable) ClearSuffix(suffix string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.queues {
		if strings.HasSuffix(k, suffix) {
			delete(t.queues, k)
		}
	}
}

// ApplyFault acts out f, answering errors with writeErr, and a maintenance
// event with writeMaintenance (nil for an API that has no such answer: a
// Maintenance fault then answers 503 with writeErr). It reports whether
// the request was answered (so the real handler must not run).
func ApplyFault(w http.ResponseWriter, r *http.Request, f Fault, closing <-chan struct{}, writeErr func(http.ResponseWriter, int, string), writeMaintenance func(http.ResponseWriter, time.Duration)) bool {
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
	case f.Maintenance && writeMaintenance != nil:
		writeMaintenance(w, f.RetryAfter)
		return true
	case f.Maintenance:
		writeErr(w, http.StatusServiceUnavailable, defaultReason(http.StatusServiceUnavailable))
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

// StatusRecorder keeps the status a handler answered, for the request log.
type StatusRecorder struct {
	http.ResponseWriter
	Status int
}

func (s *StatusRecorder) WriteHeader(code int) {
	s.Status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *StatusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
