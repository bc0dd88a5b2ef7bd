package rotation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/linode/linodego"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestIsTransientTellsPassingFailuresFromAnswers(t *testing.T) {
	gr := schema.GroupResource{Resource: "secrets"}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"429", apierrors.NewTooManyRequests("slow down", 1), true},
		{"500", apierrors.NewInternalError(errors.New("boom")), true},
		{"502", apierrors.NewGenericServerResponse(http.StatusBadGateway, "get", gr, "x", "", 0, true), true},
		{"503", apierrors.NewServiceUnavailable("later"), true},
		{"504", apierrors.NewTimeoutError("slow", 1), true},
		{"401", apierrors.NewUnauthorized("no"), false},
		{"403", apierrors.NewForbidden(gr, "x", errors.New("no")), false},
		{"404", apierrors.NewNotFound(gr, "x"), false},
		{"409", apierrors.NewConflict(gr, "x", errors.New("changed")), false},
		{"timeout", &url.Error{Op: "Get", URL: "https://x", Err: os.ErrDeadlineExceeded}, true},
		{"dropped", &url.Error{Op: "Get", URL: "https://x", Err: errors.New("EOF")}, true},
		{"linode 500", &linodego.Error{Code: 500}, true},
		{"linode 400", &linodego.Error{Code: 400}, false},
		{"linode 404", &linodego.Error{Code: 404}, false},
		{"linode no answer", &linodego.Error{Code: linodego.ErrorFromError, Message: "EOF"}, true},
		// What linodego's coupleAPIErrors returns, as values, for a gateway's HTML pages.
		{"linode HTML 502 (value)", linodego.Error{Code: 502, Message: "Bad Gateway"}, true},
		{"linode HTML 502 wrapped (value)", fmt.Errorf("wait for the new kubeconfig: %w", linodego.Error{Code: 502, Message: "Bad Gateway"}), true},
		{"linode HTML 504 (value)", linodego.Error{Code: 504, Message: "Unexpected Content-Type: Expected: application/json, Received: text/html\nResponse body: <html>"}, true},
		{"linode HTML 404 (value)", linodego.Error{Code: 404, Message: "Unexpected Content-Type"}, false},
		{"linode connection refused", &linodego.Error{Code: linodego.ErrorFromError, Message: `Get "https://api.linode.com/v4/lke/clusters/1": dial tcp 127.0.0.1:1: connect: connection refused`}, true},
		{"linode connection reset", &linodego.Error{Code: linodego.ErrorFromError, Message: "read tcp: connection reset by peer"}, true},
		{"linode unknown authority", &linodego.Error{Code: linodego.ErrorFromError, Message: `Get "https://x/v4/lke/clusters/1": tls: failed to verify certificate: x509: certificate signed by unknown authority`}, false},
		{"linode no such host", &linodego.Error{Code: linodego.ErrorFromError, Message: `Get "https://api.linode.invalid/v4/lke/clusters/1": dial tcp: lookup api.linode.invalid: no such host`}, false},
		{"kube unknown authority", &url.Error{Op: "Get", URL: "https://x", Err: x509.UnknownAuthorityError{}}, false},
		{"kube no such host", &url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}}}, false},
		{"kube DNS server timeout", &url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "i/o timeout", Name: "x", IsTimeout: true}}}, true},
		{"marked", Retryable(apierrors.NewUnauthorized("not yet")), true},
		{"request timeout while waiting out Retry-After", errors.New("client rate limiter Wait returned an error: rate: Wait(n=1) would exceed context deadline"), true},
		{"request timeout", fmt.Errorf("get: %w", context.DeadlineExceeded), true},
		{"plain", errors.New("invalid kubeconfig"), false},
	}
	for _, c := range cases {
		if got := IsTransient(c.err); got != c.want {
			t.Errorf("%s: IsTransient(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func TestRetryDoRetriesTransientErrorsOnly(t *testing.T) {
	p := Retry{Max: 3, Initial: time.Millisecond}
	calls := 0
	err := p.Do(t.Context(), func() error {
		if calls++; calls <= 2 {
			return apierrors.NewServiceUnavailable("later")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls; want success on the third", err, calls)
	}
	calls = 0
	err = p.Do(t.Context(), func() error { calls++; return apierrors.NewInternalError(errors.New("boom")) })
	if !apierrors.IsInternalError(err) || calls != 4 {
		t.Fatalf("persistent 500: err %v after %d calls; want it after 1 + 3 retries", err, calls)
	}
	calls = 0
	err = p.Do(t.Context(), func() error { calls++; return apierrors.NewForbidden(schema.GroupResource{}, "x", errors.New("no")) })
	if !apierrors.IsForbidden(err) || calls != 1 {
		t.Fatalf("403: err %v after %d calls; want no retry", err, calls)
	}
	calls = 0
	err = NoRetry.Do(t.Context(), func() error { calls++; return apierrors.NewServiceUnavailable("later") })
	if err == nil || calls != 1 {
		t.Fatalf("NoRetry made %d calls", calls)
	}
}

func TestRetryDoWaitsOutRetryAfter(t *testing.T) {
	p := Retry{Max: 1, Initial: time.Millisecond}
	start, calls := time.Now(), 0
	err := p.Do(t.Context(), func() error {
		if calls++; calls == 1 {
			return apierrors.NewTooManyRequests("slow down", 1)
		}
		return nil
	})
	if err != nil || time.Since(start) < time.Second {
		t.Fatalf("err %v after %s; want success after waiting the 1 s Retry-After", err, time.Since(start))
	}
}

func TestPermanentCauseNamesWhatToFix(t *testing.T) {
	if got := PermanentCause(&linodego.Error{Code: linodego.ErrorFromError, Message: "x509: certificate signed by unknown authority"}); got != ErrUntrustedCertificate {
		t.Errorf("unknown authority: %v", got)
	}
	if got := PermanentCause(&linodego.Error{Code: linodego.ErrorFromError, Message: "lookup x: no such host"}); got != ErrUnknownHost {
		t.Errorf("no such host: %v", got)
	}
	// A message from the API that mentions x509 is an answer, not a TLS failure.
	if got := PermanentCause(&linodego.Error{Code: 400, Message: "x509: bad field"}); got != nil {
		t.Errorf("API answer taken for a TLS failure: %v", got)
	}
}

func TestRetryAfterIsReadFromValueErrorsToo(t *testing.T) {
	resp := &http.Response{Header: http.Header{"Retry-After": []string{"7"}}}
	if got := RetryAfter(linodego.Error{Code: 429, Response: resp}); got != 7*time.Second {
		t.Errorf("RetryAfter = %v, want 7s", got)
	}
}
