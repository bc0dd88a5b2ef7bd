package provider

import (
	"net/http"
	"testing"
	"time"
)

// Each Linode API operation is paced on its own, whatever cluster it names:
// the ids and the API version are not part of it.
func TestOperationPatternLeavesOutIdsAndVersion(t *testing.T) {
	for path, want := range map[string]string{
		"/v4/lke/clusters/123/kubeconfig":     "lke/clusters/{}/kubeconfig",
		"/v4beta/lke/clusters/9/kubeconfig":   "lke/clusters/{}/kubeconfig",
		"/v4/lke/clusters/1/pools/77/recycle": "lke/clusters/{}/pools/{}/recycle",
		"/v4/lke/clusters":                    "lke/clusters",
	} {
		if got := operationPattern(path); got != want {
			t.Errorf("operationPattern(%q) = %q; want %q", path, got, want)
		}
	}
}

// Past its burst, one command waits for its own rate; another command does
// not wait for it, and reads are left to the general limiter.
func TestOperationLimitersPaceEachOperationApart(t *testing.T) {
	o := &operationLimiters{perMinute: 60, burst: 1} // one a second
	post := func(path string) *http.Request {
		r, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "https://api.linode.com"+path, nil)
		return r
	}
	if err := o.wait(post("/v4/lke/clusters/1/regenerate")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := o.wait(post("/v4/lke/clusters/1/recycle")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("another operation waited %s for the first one's limit", d)
	}
	start = time.Now()
	if err := o.wait(post("/v4/lke/clusters/2/regenerate")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("the same operation on another cluster waited only %s; it shares the operation's limit", d)
	}
	for range 3 {
		r, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://api.linode.com/v4/lke/clusters/1/kubeconfig", nil)
		start = time.Now()
		if err := o.wait(r); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("a read waited %s for an operation limit", d)
		}
	}
}
