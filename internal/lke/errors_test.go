package lke

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/linode/linodego"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// The Linode API's errors as the retry policy tells them apart (Errors):
// what linodego returns for each kind of answer, including the values a
// gateway's HTML pages become.
func TestErrorsTellPassingLinodeFailuresFromAnswers(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
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
	}
	for _, c := range cases {
		if got := IsTransient(c.err); got != c.want {
			t.Errorf("%s: IsTransient(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func TestPermanentCauseNamesWhatToFix(t *testing.T) {
	if got := PermanentCause(&linodego.Error{Code: linodego.ErrorFromError, Message: "x509: certificate signed by unknown authority"}); got != retry.ErrUntrustedCertificate { //nolint:errorlint // PermanentCause returns the sentinel itself, as documented; the test checks exactly that
		t.Errorf("unknown authority: %v", got)
	}
	if got := PermanentCause(&linodego.Error{Code: linodego.ErrorFromError, Message: "lookup x: no such host"}); got != retry.ErrUnknownHost { //nolint:errorlint // PermanentCause returns the sentinel itself, as documented; the test checks exactly that
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
