package lke

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/linode/linodego"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
)

// linodeAnswering is a linodego client, with CheckLinodeAnswer installed as
// the provider installs it, whose every request gets the given answer.
func linodeAnswering(t *testing.T, status int, contentType, body string, header http.Header) *linodego.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c := linodego.NewClient(srv.Client())
	c.SetBaseURL(srv.URL)
	c.SetRetryCount(0)
	c.OnAfterResponse(CheckLinodeAnswer)
	return &c
}

// linodego alone returns no error for a non-2xx JSON answer without an
// "errors" array (errors.go, coupleAPIErrors); with the hook every such
// answer is an error with its status, never a success.
func TestCheckLinodeAnswerMakesEveryNon2xxAnError(t *testing.T) {
	for _, c := range []struct {
		name        string
		status      int
		contentType string
		body        string
		apiAnswer   bool // the Linode API's own error
	}{
		{"500 {}", 500, "application/json", "{}", false},
		{"500 message", 500, "application/json", `{"message": "Internal Server Error"}`, false},
		{"502 HTML", 502, "text/html", "<html><body>502 Bad Gateway</body></html>", false},
		{"503 HTML", 503, "text/html", "<html><body>503 Service Temporarily Unavailable</body></html>", false},
		{"504 no type", 504, "", "", false},
		{"500 errors", 500, "application/json", `{"errors": [{"reason": "Internal error"}]}`, true},
		{"500 errors, charset", 500, "application/json; charset=utf-8", `{"errors": [{"reason": "Internal error"}]}`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			lc := linodeAnswering(t, c.status, c.contentType, c.body, nil)
			_, err := lc.RegenerateLKECluster(t.Context(), 1, linodego.LKEClusterRegenerateOptions{KubeConfig: true})
			if err == nil {
				t.Fatalf("a %d answer read as a regeneration that happened", c.status)
			}
			lerr, ok := LinodeError(err)
			if !ok || lerr.Code != c.status {
				t.Fatalf("err = %#v; want a linodego.Error with status %d", err, c.status)
			}
			if got := IsLinodeAnswer(err); got != c.apiAnswer {
				t.Errorf("IsLinodeAnswer = %t; want %t", got, c.apiAnswer)
			}
			if !IsTransient(err) {
				t.Errorf("a %d is passing; IsTransient said no", c.status)
			}
			if strings.Contains(err.Error(), "<html") {
				t.Errorf("the gateway's page reached the error: %v", err)
			}
			kc, err := lc.GetLKEClusterKubeconfig(t.Context(), 1)
			if err == nil {
				t.Fatalf("a %d answer to GET kubeconfig read as the kubeconfig %+v", c.status, kc)
			}
		})
	}
}

// A gateway's HTML page keeps its Retry-After, which linodego alone drops
// with the response.
func TestCheckLinodeAnswerKeepsRetryAfterOfAGatewayPage(t *testing.T) {
	lc := linodeAnswering(t, 503, "text/html", "<html>busy</html>", http.Header{"Retry-After": {"7"}})
	_, err := lc.GetLKECluster(t.Context(), 1)
	if got := RetryAfter(err); got != 7*time.Second {
		t.Fatalf("RetryAfter = %s; want 7s from the page's header (err %v)", got, err)
	}
}

// Only the Linode API's own 404 (JSON with its error list) says a cluster is
// gone; a CDN's 404 page says nothing about it.
func TestOnlyTheAPIsOwn404SaysTheClusterIsGone(t *testing.T) {
	api := linodeAnswering(t, 404, "application/json", `{"errors": [{"reason": "Not found"}]}`, nil)
	if _, err := api.GetLKECluster(t.Context(), 1); !IsClusterNotFound(err) {
		t.Errorf("the API's 404: IsClusterNotFound(%v) = false", err)
	}
	for _, c := range []struct{ ct, body string }{{"text/html", "<html>404 Not Found</html>"}, {"application/json", "{}"}} {
		gw := linodeAnswering(t, 404, c.ct, c.body, nil)
		if _, err := gw.GetLKECluster(t.Context(), 1); err == nil || IsClusterNotFound(err) {
			t.Errorf("a 404 of %s %q: err %v; want an error that does not say the cluster is gone", c.ct, c.body, err)
		}
	}
}

// A 200 whose kubeconfig is empty ({}) or not a kubeconfig is never taken
// for one: not as the new kubeconfig, not as a rotation made elsewhere.
func TestAnUnusableKubeconfigIsNeverTakenForOne(t *testing.T) {
	for _, body := range []string{`{}`, `{"kubeconfig": ""}`, `{"kubeconfig": "bm90IGEga3ViZWNvbmZpZw=="}`} {
		lc := linodeAnswering(t, 200, "application/json", body, nil)
		if sha, err := ServedKubeconfigSHA256(t.Context(), lc, 1); err == nil {
			t.Errorf("%s: served kubeconfig hashed to %s; want ErrUnusableKubeconfig", body, sha)
		}
		_, err := FetchKubeconfig(t.Context(), lc, 1, KubeconfigPoll{FailFor: 50 * time.Millisecond, FailWait: 10 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), ErrUnusableKubeconfig.Error()) {
			t.Errorf("%s: FetchKubeconfig err = %v; want it to give up on an unusable kubeconfig", body, err)
		}
	}
}

// The failure budget is counted in time: a gateway answering fast cannot
// use it up in a second, and the wait goes on past six failures.
func TestFetchKubeconfigRidesOutFailuresForItsBudgetInTime(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls++
		if calls <= 8 {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kubeconfig": "` + b64(testKubeconfig("new")) + `"}`))
	}))
	t.Cleanup(srv.Close)
	c := linodego.NewClient(srv.Client())
	c.SetBaseURL(srv.URL)
	c.SetRetryCount(0)
	c.OnAfterResponse(CheckLinodeAnswer)
	kc, err := FetchKubeconfig(t.Context(), &c, 1, KubeconfigPoll{FailFor: 10 * time.Second, FailWait: time.Millisecond, FailWaitMax: 5 * time.Millisecond})
	if err != nil || kube.TokenOf(kc) != "new" {
		t.Fatalf("after 8 gateway pages: %v; want the kubeconfig", err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
