package rotation

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/linode/linodego"
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
// errors above, or nil. linodego keeps only the text of such failures, so
// its errors are read by their message.
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
	if lerr, ok := LinodeError(err); ok && lerr.Code < 100 {
		msg := lerr.Message
		switch {
		case strings.Contains(msg, "x509:"), strings.Contains(msg, "tls: failed to verify certificate"):
			return ErrUntrustedCertificate
		case strings.Contains(msg, "no such host"):
			return ErrUnknownHost
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
