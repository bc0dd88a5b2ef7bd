package lke

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/linode/linodego"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// LinodeError returns the Linode API error err holds, whichever way linodego
// returned it: most calls give a *linodego.Error, but a gateway's HTML
// 502 and every "Unexpected Content-Type" answer come as a linodego.Error
// value.
func LinodeError(err error) (*linodego.Error, bool) {
	var p *linodego.Error
	if errors.As(err, &p) && p != nil {
		return p, true
	}
	var v linodego.Error
	if errors.As(err, &v) {
		return &v, true
	}
	return nil, false
}

// PermanentCause says why a request failed for good, when it did because of
// the configuration: retry.ErrUntrustedCertificate or retry.ErrUnknownHost,
// or nil. linodego keeps only the text of such failures, so its errors are
// read by their message.
func PermanentCause(err error) error {
	if cause := retry.PermanentCause(err); cause != nil {
		return cause
	}
	if lerr, ok := LinodeError(err); ok && lerr.Code < 100 {
		msg := lerr.Message
		switch {
		case strings.Contains(msg, "x509:"), strings.Contains(msg, "tls: failed to verify certificate"):
			return retry.ErrUntrustedCertificate
		case strings.Contains(msg, "no such host"):
			return retry.ErrUnknownHost
		}
	}
	return nil
}

// IsMaintenance reports a Linode API answer given during a maintenance
// event: 503 with the X-Maintenance-Mode header. It is not transient in the
// usual sense (linodego does not retry it either): the event may last long.
func IsMaintenance(err error) bool {
	lerr, ok := LinodeError(err)
	return ok && lerr.Code == http.StatusServiceUnavailable && lerr.Response != nil &&
		lerr.Response.Header.Get("X-Maintenance-Mode") != ""
}

// Errors are the Linode API's failures told apart for the retry policy, on
// top of retry.Generic (Kubernetes, the network): a maintenance answer or a
// configuration failure is never transient; a linodego error is transient
// when it got no answer (codes below 100) or a 429, 500, 502, 503 or 504
// (a gateway's HTML pages keep their status); a 429's or 503's Retry-After
// is read from the answer linodego keeps.
var Errors retry.Errors = linodeErrors{}

// Policy is p, telling the Linode API's errors apart.
func Policy(p retry.Policy) retry.Policy {
	p.Errors = Errors
	return p
}

type linodeErrors struct{}

func (linodeErrors) Transient(err error) bool {
	if err == nil {
		return false
	}
	if marked, transient := retry.Marked(err); marked {
		return transient
	}
	if PermanentCause(err) != nil || IsMaintenance(err) {
		return false
	}
	if lerr, ok := LinodeError(err); ok {
		var status apierrors.APIStatus
		if !errors.As(err, &status) {
			return lerr.Code < 100 || retry.TransientStatus(lerr.Code)
		}
	}
	return retry.Generic.Transient(err)
}

func (linodeErrors) RetryAfter(err error) time.Duration {
	if d := retry.Generic.RetryAfter(err); d > 0 {
		return d
	}
	if lerr, ok := LinodeError(err); ok && lerr.Response != nil {
		return retry.RetryAfterHeader(lerr.Response.Header)
	}
	return 0
}

// IsTransient tells, by Errors, whether err may go away if the request is
// made again.
func IsTransient(err error) bool { return Errors.Transient(err) }

// RetryAfter is, by Errors, the wait err's answer asked for (0 if none).
func RetryAfter(err error) time.Duration { return Errors.RetryAfter(err) }
