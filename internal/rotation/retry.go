package rotation

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Retry says how a request that fails with a transient error is retried:
// up to Max more times, waiting Initial, then twice as long each time, at
// most 10 s. (A 429's Retry-After is honoured by client-go and linodego
// before we see the error.)
type Retry struct {
	Max     int           // default 5
	Initial time.Duration // default 1s
}

func (p Retry) withDefaults() Retry {
	if p.Max < 0 {
		p.Max = 0
	} else if p.Max == 0 {
		p.Max = 5
	}
	if p.Initial <= 0 {
		p.Initial = time.Second
	}
	return p
}

func (p Retry) backoff() wait.Backoff {
	p = p.withDefaults()
	return wait.Backoff{Duration: p.Initial, Factor: 2, Jitter: 0.1, Steps: p.Max + 1, Cap: 10 * time.Second}
}

// KubeconfigPoll is how a kubeconfig is polled under this policy: with
// max_retries = 0 (NoRetry), the first failure other than "not yet
// available" ends a fetch; otherwise the defaults apply. (The rotation's
// wait for the new kubeconfig rides failures out whatever this says.)
func (p Retry) KubeconfigPoll() KubeconfigPoll {
	if p.Max < 0 {
		return KubeconfigPoll{FailFor: time.Nanosecond}
	}
	return KubeconfigPoll{}
}

// NoRetry makes one attempt only.
var NoRetry = Retry{Max: -1}

// IsTransient reports whether an error may go away if the request is made
// again: 429, 500, 502, 503 and 504 answers (from the Kubernetes API server or
// the Linode API), and requests that got no answer (timed out, connection
// dropped or refused).
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var r retryable
	if errors.As(err, &r) {
		return true
	}
	// Errors of other APIs (the SKE API's) that say it themselves.
	var t interface{ Transient() bool }
	if errors.As(err, &t) {
		return t.Transient()
	}
	if PermanentCause(err) != nil || IsMaintenance(err) {
		return false
	}
	if status, ok := err.(apierrors.APIStatus); ok || errors.As(err, &status) {
		return transientStatus(int(status.Status().Code))
	}
	if lerr, ok := LinodeError(err); ok {
		// linodego gives errors that got no answer codes below 100; a
		// gateway's HTML 502/503/504 keeps its status.
		return lerr.Code < 100 || transientStatus(lerr.Code)
	}
	// A request's own timeout (request_timeout) ran out, possibly while
	// client-go waited out a Retry-After ("rate: Wait(n=1) would exceed
	// context deadline"). Whether the caller's context has ended is for Do
	// to check.
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "would exceed context deadline") {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) || utilnet.IsConnectionRefused(err)
}

func transientStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Do runs fn, again after transient errors, as p says, while ctx lasts.
// A Retry-After the answer carries is waited out when longer than the backoff.
func (p Retry) Do(ctx context.Context, fn func() error) error {
	b := p.backoff()
	for {
		err := fn()
		if err == nil || ctx.Err() != nil || !IsTransient(err) || b.Steps <= 1 {
			return err
		}
		d := b.Step()
		if after := RetryAfter(err); after > d {
			d = after
		}
		if sleep(ctx, d) != nil {
			return err
		}
	}
}

// RetryAfter is the wait a 429 or 503 answer asked for (0 if none).
func RetryAfter(err error) time.Duration {
	if seconds, ok := apierrors.SuggestsClientDelay(err); ok {
		return time.Duration(seconds) * time.Second
	}
	if lerr, ok := LinodeError(err); ok && lerr.Response != nil {
		return RetryAfterHeader(lerr.Response.Header)
	}
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}

// Retryable marks an error as worth retrying where it would not otherwise be.
func Retryable(err error) error { return retryable{err} }

type retryable struct{ error }

func (r retryable) Unwrap() error { return r.error }

// RetryAfterHeader is the wait a Retry-After header asks for, in whole
// seconds (0 if none or unreadable).
func RetryAfterHeader(h http.Header) time.Duration {
	if seconds, err := strconv.Atoi(h.Get("Retry-After")); err == nil && seconds > 0 {
		return time.Duration(seconds) * time.Second
	}
	return 0
}
