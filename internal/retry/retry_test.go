package retry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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
		{"kube unknown authority", &url.Error{Op: "Get", URL: "https://x", Err: x509.UnknownAuthorityError{}}, false},
		{"kube no such host", &url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}}}, false},
		{"kube DNS server timeout", &url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "i/o timeout", Name: "x", IsTimeout: true}}}, true},
		{"marked", Retryable(apierrors.NewUnauthorized("not yet")), true},
		{"request timeout while waiting out Retry-After", errors.New("client rate limiter Wait returned an error: rate: Wait(n=1) would exceed context deadline"), true},
		{"request timeout", fmt.Errorf("get: %w", context.DeadlineExceeded), true},
		{"plain", errors.New("invalid kubeconfig"), false},
	}
	for _, c := range cases {
		if got := Generic.Transient(c.err); got != c.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func TestRetryDoRetriesTransientErrorsOnly(t *testing.T) {
	p := Policy{Max: 3, Initial: time.Millisecond}
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
	p := Policy{Max: 1, Initial: time.Millisecond}
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
	if got := PermanentCause(&url.Error{Op: "Get", URL: "https://x", Err: x509.UnknownAuthorityError{}}); got != ErrUntrustedCertificate { //nolint:errorlint // PermanentCause returns the sentinel itself, as documented; the test checks exactly that
		t.Errorf("unknown authority: %v", got)
	}
	if got := PermanentCause(fmt.Errorf("get: %w", &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true})); got != ErrUnknownHost { //nolint:errorlint // PermanentCause returns the sentinel itself, as documented; the test checks exactly that
		t.Errorf("no such host: %v", got)
	}
	if got := PermanentCause(apierrors.NewServiceUnavailable("later")); got != nil {
		t.Errorf("an answer taken for a configuration failure: %v", got)
	}
}

func TestDelayDoublesToTheCapAndHonoursRetryAfter(t *testing.T) {
	var p Policy
	var got []time.Duration
	for attempt := range 6 {
		got = append(got, p.Delay(attempt, nil))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	if d := p.Delay(0, apierrors.NewTooManyRequests("slow down", 7)); d != 7*time.Second {
		t.Errorf("delay after a 429 asking for 7 s: %v", d)
	}
}

// fakeAPI acts on the n-th request it is sent, and loses the answers of
// the first lose ones (sent: whether or not it acted).
type fakeAPI struct {
	sent, actOn, lose int
	acted             bool
	refuse            error
	readErr           error
}

func (f *fakeAPI) act() Act {
	return Act{
		Send: func(context.Context) error {
			f.sent++
			if f.refuse != nil {
				return f.refuse
			}
			if f.sent >= f.actOn {
				f.acted = true
			}
			if f.sent <= f.lose {
				return &url.Error{Op: "Post", URL: "https://x", Err: os.ErrDeadlineExceeded}
			}
			return nil
		},
		TookEffect: func(context.Context) (bool, error) {
			if f.readErr != nil {
				return false, f.readErr
			}
			return f.acted, nil
		},
		Watch:  func(error) time.Duration { return 20 * time.Millisecond },
		Poll:   time.Millisecond,
		Policy: Policy{Max: 3, Initial: time.Millisecond},
	}
}

func TestActOnceNeverSendsAgainWhatTheAPIDid(t *testing.T) {
	// The first answer is lost after the API acted: not sent again.
	f := &fakeAPI{actOn: 1, lose: 1}
	res, err := ActOnce(t.Context(), f.act())
	if err != nil || res.Outcome != AnswerLost || f.sent != 1 {
		t.Fatalf("lost answer of a request that acted: %+v, %v, sent %d; want AnswerLost after one request", res, err, f.sent)
	}
	// The first request was lost before the API acted: sent again, once.
	f = &fakeAPI{actOn: 2, lose: 1}
	res, err = ActOnce(t.Context(), f.act())
	if err != nil || res.Outcome != Accepted || f.sent != 2 {
		t.Fatalf("lost request: %+v, %v, sent %d; want Accepted after two requests", res, err, f.sent)
	}
}

func TestActOnceStopsWhenItCannotTellWhetherTheAPIActed(t *testing.T) {
	f := &fakeAPI{actOn: 2, lose: 1, readErr: errors.New("cannot read")}
	_, err := ActOnce(t.Context(), f.act())
	if err == nil || f.sent != 1 || !strings.Contains(err.Error(), "cannot be told") {
		t.Fatalf("unreadable effect: %v, sent %d; want an error after one request", err, f.sent)
	}
	// Where the API refuses duplicates, it may be sent again.
	f = &fakeAPI{actOn: 2, lose: 1, readErr: errors.New("cannot read")}
	a := f.act()
	a.ResendWhenUnsure = true
	if _, err := ActOnce(t.Context(), a); err != nil || f.sent != 2 {
		t.Fatalf("unreadable effect, duplicates refused: %v, sent %d; want success after two requests", err, f.sent)
	}
}

func TestActOnceAdoptsWhatAnotherPartyDid(t *testing.T) {
	conflict := apierrors.NewConflict(schema.GroupResource{}, "x", errors.New("already in progress"))
	f := &fakeAPI{refuse: conflict, acted: true}
	a := f.act()
	a.Refused = func(err error) bool { return apierrors.IsConflict(err) }
	a.RefusedWatch = 10 * time.Millisecond
	if res, err := ActOnce(t.Context(), a); err != nil || res.Outcome != Adopted || f.sent != 1 {
		t.Fatalf("refused, but done by another: %+v, %v, sent %d; want Adopted", res, err, f.sent)
	}
	f = &fakeAPI{refuse: conflict}
	a = f.act()
	a.Refused = func(err error) bool { return apierrors.IsConflict(err) }
	if _, err := ActOnce(t.Context(), a); !apierrors.IsConflict(err) || f.sent != 1 {
		t.Fatalf("refused and not done: %v, sent %d; want the 409 after one request", err, f.sent)
	}
}

func TestExcerptBoundsAnAPIsMessage(t *testing.T) {
	if got := Excerpt("short"); got != "short" {
		t.Errorf("Excerpt(short) = %q", got)
	}
	long := strings.Repeat("é", MaxExcerpt) // two bytes each
	got := Excerpt(long)
	if len(got) > MaxExcerpt+len("…") || !strings.HasSuffix(got, "…") || !utf8.ValidString(got) {
		t.Errorf("Excerpt of %d bytes = %d bytes, valid UTF-8 %v", len(long), len(got), utf8.ValidString(got))
	}
}
