package lke

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// RateLimits are the Linode API's request limits, per token and minute
// (https://techdocs.akamai.com/linode-api/reference/rate-limits): paginated
// collection GETs have their own limit, every other request counts against
// the general one.
type RateLimits struct {
	// PerMinute limits requests other than collection GETs (default 1600).
	PerMinute int
	// CollectionPerMinute limits GETs of paginated collections (default 200).
	CollectionPerMinute int
	// PerOperation, when set, also limits each endpoint (operation) on its
	// own, per token: the API reference gives "all commands" a limit of
	// 400 requests a minute besides the general one (linode-api-docs
	// openapi.yaml v4.176.0, "Rate Limiting"), and the recordings show
	// X-RateLimit-Limit 400 on some LKE operations. 0 leaves it off.
	PerOperation int
	// Window is how long a window lasts (default a minute, as on the real
	// API; tests shorten it so that a Retry-After is seconds, not a minute).
	// The limits above are per window.
	Window time.Duration
}

// Real API's limits.
const (
	DefaultRatePerMinute           = 1600
	DefaultCollectionRatePerMinute = 200
)

func (l RateLimits) withDefaults() RateLimits {
	if l.PerMinute == 0 {
		l.PerMinute = DefaultRatePerMinute
	}
	if l.CollectionPerMinute == 0 {
		l.CollectionPerMinute = DefaultCollectionRatePerMinute
	}
	if l.Window <= 0 {
		l.Window = time.Minute
	}
	return l
}

// collectionEndpoints answer paginated collections.
var collectionEndpoints = map[string]bool{
	EndpointListClusters: true, EndpointListPools: true, EndpointListAPIEndpoints: true,
}

type rateWindow struct {
	start time.Time
	count int
}

// rateLimiter counts requests in fixed one-minute windows per token and
// limit, as the X-RateLimit-Reset header describes them.
type rateLimiter struct {
	mu       sync.Mutex
	limits   RateLimits
	perToken map[string]RateLimits // tokens with limits of their own
	windows  map[string]*rateWindow
}

// take counts one request and sets the rate-limit headers the real API
// sends; over the limit it answers 429 with Retry-After and returns false.
func (l *rateLimiter) take(w http.ResponseWriter, token, endpoint string, now time.Time) bool {
	l.mu.Lock()
	limits, ok := l.perToken[token]
	if !ok {
		limits = l.limits
	}
	limit, key := limits.PerMinute, "general|"+token
	if collectionEndpoints[endpoint] {
		limit, key = limits.CollectionPerMinute, "collection|"+token
	}
	if limit < 0 {
		l.mu.Unlock()
		return true
	}
	if l.windows == nil {
		l.windows = map[string]*rateWindow{}
	}
	win := l.windows[key]
	if win == nil || now.Sub(win.start) >= limits.Window {
		win = &rateWindow{start: now}
		l.windows[key] = win
	}
	win.count++
	count, reset := win.count, win.start.Add(limits.Window)
	if limits.PerOperation > 0 && endpoint != "" {
		// The operation's own window: the tighter of the two is reported.
		opKey := "operation|" + endpoint + "|" + token
		op := l.windows[opKey]
		if op == nil || now.Sub(op.start) >= limits.Window {
			op = &rateWindow{start: now}
			l.windows[opKey] = op
		}
		op.count++
		if limits.PerOperation-op.count < limit-count {
			limit, count, reset = limits.PerOperation, op.count, op.start.Add(limits.Window)
		}
	}
	l.mu.Unlock()

	h := w.Header()
	h.Set("X-Ratelimit-Limit", strconv.Itoa(limit))
	h.Set("X-Ratelimit-Remaining", strconv.Itoa(max(limit-count, 0)))
	h.Set("X-Ratelimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	if count <= limit {
		return true
	}
	h.Set("Retry-After", strconv.Itoa(int(math.Ceil(reset.Sub(now).Seconds()))))
	writeError(w, http.StatusTooManyRequests, apiError{Reason: "Too Many Requests"})
	return false
}

func (l *rateLimiter) set(limits RateLimits) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limits = limits.withDefaults()
	l.windows = nil
}

// SetRateLimits changes the emulator's rate limits (zero fields take the
// real API's, negative turns a limit off) and starts new windows.
func (e *Emulator) SetRateLimits(limits RateLimits) { e.limiter.set(limits) }

// SetTokenRateLimits gives one token limits of its own (as if other tools
// shared its budget), so that a test can run into them without slowing
// the tests that use other tokens.
func (e *Emulator) SetTokenRateLimits(token string, limits RateLimits) {
	l := &e.limiter
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perToken == nil {
		l.perToken = map[string]RateLimits{}
	}
	l.perToken[token] = limits.withDefaults()
}
