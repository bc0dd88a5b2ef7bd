// Package retry is the one retry policy every cloud's client and procedure
// uses: which failures are worth asking again, how long to wait (a backoff
// that honours Retry-After), and how a request that must not take effect
// twice is sent once and then watched (ActOnce). It knows no cloud: each
// cloud's package tells its own errors apart through Errors.
package retry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
)

// Policy says how a request that fails with a transient error is retried:
// up to Max more times, waiting Initial, then twice as long each time, at
// most MaxDelay (or the Retry-After the answer asked for, when longer).
type Policy struct {
	Max     int           // default 5; negative: no retries
	Initial time.Duration // default 1s
	// Errors tells which failures are transient and what wait they ask
	// for; nil: the rules for Kubernetes and the network (Generic). A
	// cloud's package gives one that knows its API's errors too.
	Errors Errors
}

// Errors tells one API's failures apart.
type Errors interface {
	Transient(err error) bool
	RetryAfter(err error) time.Duration
}

// MaxDelay caps every backoff wait.
const MaxDelay = 10 * time.Second

// NoRetry makes one attempt only.
var NoRetry = Policy{Max: -1}

// Generic are the rules for failures of Kubernetes API servers, the network,
// and errors that say themselves whether they are transient.
var Generic Errors = generic{}

// withDefaults fills in the defaults; it is applied once per use (a
// second application would take "no retries", Max 0, for the default 5).
func (p Policy) withDefaults() Policy {
	if p.Max < 0 {
		p.Max = 0
	} else if p.Max == 0 {
		p.Max = 5
	}
	if p.Initial <= 0 {
		p.Initial = time.Second
	}
	if p.Errors == nil {
		p.Errors = Generic
	}
	return p
}

// Retries is how many more attempts the policy allows after the first.
func (p Policy) Retries() int { return p.withDefaults().Max }

// Backoff is the policy's schedule of waits, for client-go's wait package.
func (p Policy) Backoff() wait.Backoff {
	p = p.withDefaults()
	return wait.Backoff{Duration: p.Initial, Factor: 2, Jitter: 0.1, Steps: p.Max + 1, Cap: MaxDelay}
}

// Delay is the wait before attempt+1 (attempt counts failures from 0),
// without jitter, at least the Retry-After err asked for.
func (p Policy) Delay(attempt int, err error) time.Duration {
	p = p.withDefaults()
	d := min(p.Initial<<min(attempt, 4), MaxDelay)
	if err != nil {
		d = max(d, p.Errors.RetryAfter(err))
	}
	return d
}

// Transient tells whether err may go away if the request is made again.
func (p Policy) Transient(err error) bool { return p.withDefaults().Errors.Transient(err) }

// RetryAfter is the wait err's answer asked for (0 if none).
func (p Policy) RetryAfter(err error) time.Duration { return p.withDefaults().Errors.RetryAfter(err) }

// Do runs fn, again after transient errors, as p says, while ctx lasts.
// A Retry-After the answer carries is waited out when longer than the backoff.
func (p Policy) Do(ctx context.Context, fn func() error) error {
	b := p.Backoff()
	for {
		err := fn()
		if err == nil || ctx.Err() != nil || !p.Transient(err) || b.Steps <= 1 {
			return err
		}
		d := max(b.Step(), p.RetryAfter(err))
		if Sleep(ctx, clock.RealClock{}, d) != nil {
			return err
		}
	}
}

// Sleep waits d on clk, or until ctx ends (then it returns ctx's error).
func Sleep(ctx context.Context, clk clock.Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type generic struct{}

// Transient reports whether an error may go away if the request is made
// again: 429, 500, 502, 503 and 504 answers of a Kubernetes API server,
// errors that say so themselves (Transient() bool), and requests that got no
// answer (timed out, connection dropped or refused). A failure that comes
// from the configuration (PermanentCause) is never transient.
func (generic) Transient(err error) bool {
	if err == nil {
		return false
	}
	if marked, transient := Marked(err); marked {
		return transient
	}
	if PermanentCause(err) != nil {
		return false
	}
	if status, ok := err.(apierrors.APIStatus); ok || errors.As(err, &status) {
		return TransientStatus(int(status.Status().Code))
	}
	return NoAnswer(err)
}

// RetryAfter is the wait a 429 or 503 answer asked for (0 if none): a
// Kubernetes API server's, or one an error reports itself.
func (generic) RetryAfter(err error) time.Duration {
	if seconds, ok := apierrors.SuggestsClientDelay(err); ok {
		return time.Duration(seconds) * time.Second
	}
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}

// Marked tells whether err says itself whether it is transient (Retryable,
// or an error with a Transient() bool method, as the SKE client's), and what.
func Marked(err error) (marked, transient bool) {
	var r retryable
	if errors.As(err, &r) {
		return true, true
	}
	var t interface{ Transient() bool }
	if errors.As(err, &t) {
		return true, t.Transient()
	}
	return false, false
}

// NoAnswer tells a request that got no answer: its own timeout ran out
// (possibly while client-go waited out a Retry-After: "rate: Wait(n=1)
// would exceed context deadline"), or the connection failed, dropped or was
// refused. Whether the caller's context has ended is for the caller to check.
func NoAnswer(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "would exceed context deadline") {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) || utilnet.IsConnectionRefused(err)
}

// TransientStatus tells the HTTP statuses worth asking again: 429, 500,
// 502, 503 and 504.
func TransientStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Reasons a request can never succeed as configured, however often it is
// retried.
var (
	// ErrUntrustedCertificate: the server's TLS certificate is not trusted
	// (unknown authority, wrong host name, expired).
	ErrUntrustedCertificate = errors.New("the server's TLS certificate is not trusted")
	// ErrUnknownHost: the host name does not resolve.
	ErrUnknownHost = errors.New("the host name does not resolve")
)

// PermanentCause says why a request failed for good, when it did because of
// the configuration (an untrusted certificate, an unknown host): one of the
// errors above, or nil.
func PermanentCause(err error) error {
	if err == nil {
		return nil
	}
	var (
		unknownAuthority x509.UnknownAuthorityError
		invalid          x509.CertificateInvalidError
		hostname         x509.HostnameError
		verification     *tls.CertificateVerificationError
		dns              *net.DNSError
	)
	switch {
	case errors.As(err, &unknownAuthority), errors.As(err, &invalid), errors.As(err, &hostname), errors.As(err, &verification):
		return ErrUntrustedCertificate
	case errors.As(err, &dns) && dns.IsNotFound:
		return ErrUnknownHost
	}
	return nil
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

// MaxExcerpt bounds how much of an API's own error message reaches a
// diagnostic or a log.
const MaxExcerpt = 300

// Excerpt is msg cut to MaxExcerpt bytes (at a character boundary) with an
// ellipsis: an API's message is quoted, never a body without bound.
func Excerpt(msg string) string {
	if len(msg) <= MaxExcerpt {
		return msg
	}
	cut := MaxExcerpt
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "…"
}
