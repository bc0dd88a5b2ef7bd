package lke

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/linode/linodego"
)

func maintenanceError() error {
	return &linodego.Error{Code: http.StatusServiceUnavailable, Message: "Currently in maintenance mode.",
		Response: &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{
			"X-Maintenance-Mode": {"Currently in maintenance mode."}, "Retry-After": {"1"},
		}}}
}

func TestMaintenanceIsToldApartFromOtherServiceUnavailableAnswers(t *testing.T) {
	plain := &linodego.Error{Code: http.StatusServiceUnavailable, Message: "Service Unavailable",
		Response: &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}}}
	if !IsMaintenance(maintenanceError()) || IsMaintenance(plain) {
		t.Fatal("IsMaintenance does not tell the maintenance answer from a plain 503")
	}
	if IsTransient(maintenanceError()) {
		t.Error("a maintenance answer is retried step by step; it may last long and should fail the step at once")
	}
	if !IsTransient(plain) {
		t.Error("a plain 503 is not transient")
	}
	// As a value, the way linodego returns non-JSON answers.
	if !IsMaintenance(*maintenanceError().(*linodego.Error)) { //nolint:errorlint // not inspecting an error: maintenanceError builds a *linodego.Error, dereferenced here for the value form
		t.Error("a maintenance answer as a linodego.Error value is not recognised")
	}
}

// maintenanceLinode answers GET kubeconfig with maintenance a number of
// times, then the kubeconfig; regenerate answers as the test says.
type maintenanceLinode struct {
	LinodeAPI
	maintenance int
	calls       int
	regenerate  func() error
}

func (f *maintenanceLinode) GetLKEClusterKubeconfig(context.Context, int) (*linodego.LKEClusterKubeconfig, error) {
	f.calls++
	if f.calls <= f.maintenance {
		return nil, maintenanceError()
	}
	return &linodego.LKEClusterKubeconfig{KubeConfig: base64.StdEncoding.EncodeToString(testKubeconfig("t"))}, nil
}

func (f *maintenanceLinode) RegenerateLKECluster(context.Context, int, linodego.LKEClusterRegenerateOptions) (*linodego.LKECluster, error) {
	return nil, f.regenerate()
}

func TestFetchKubeconfigWaitsOutAMaintenance(t *testing.T) {
	f := &maintenanceLinode{maintenance: 2}
	start := time.Now()
	// More maintenance answers than Retry allows failures: they do not count.
	kc, err := FetchKubeconfig(t.Context(), f, 1, KubeconfigPoll{Initial: time.Millisecond, FailFor: time.Nanosecond})
	if err != nil || string(kc) != string(testKubeconfig("t")) {
		t.Fatalf("got %q, %v; want the kubeconfig once the maintenance is over", kc, err)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Errorf("waited %s through two answers with Retry-After 1; Retry-After was not honoured", waited)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	_, err = FetchKubeconfig(ctx, &maintenanceLinode{maintenance: 100}, 1, KubeconfigPoll{Initial: time.Millisecond})
	if !errors.Is(err, ErrKubeconfigNotReady) || !IsMaintenance(err) {
		t.Fatalf("err = %v; want ErrKubeconfigNotReady that still says it was a maintenance", err)
	}
}

func TestCheckWriteScopeReadsTheScopesTheAPIReports(t *testing.T) {
	for _, c := range []struct {
		name    string
		header  []string // X-OAuth-Scopes as answered; nil: no answer carried it
		wantErr bool
	}{
		{"read-only token", []string{"lke:read_only linodes:read_only"}, true},
		{"read-write token", []string{"account:read_only lke:read_write"}, false},
		{"every scope", []string{"*"}, false},
		{"not reported", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			scopes := &LinodeScopes{}
			h := http.Header{}
			for _, v := range c.header {
				h.Add("X-OAuth-Scopes", v)
			}
			if err := scopes.Observe(&resty.Response{RawResponse: &http.Response{StatusCode: 200, Header: h}}); err != nil {
				t.Fatal(err)
			}
			f := &maintenanceLinode{regenerate: func() error { t.Fatal("a regenerate was sent to learn the scope"); return nil }}
			r := &run{Runner: &Runner{Poll: f, Scopes: scopes}, opts: Options{ClusterID: 1}}
			err := r.checkWriteScope()
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v; want error %t", err, c.wantErr)
			}
			if c.wantErr && (!errors.Is(err, ErrMissingScope) || !strings.Contains(err.Error(), "this run changed nothing") || !strings.Contains(err.Error(), "lke:read_write")) {
				t.Errorf("err = %v; it should name lke:read_write and say this run changed nothing", err)
			}
		})
	}
}
