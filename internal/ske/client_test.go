package ske

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestClientSpeaksTheSKEAPI(t *testing.T) {
	var gotBody map[string]any
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.Method+" "+r.URL.Path)
		switch {
		case strings.HasSuffix(r.URL.Path, "/kubeconfig"):
			_ = json.NewDecoder(r.Body).Decode(&gotBody)
			_, _ = w.Write([]byte(`{"kubeconfig":"apiVersion: v1\n","expirationTimestamp":"2026-11-25T18:00:00Z"}`))
		case strings.HasSuffix(r.URL.Path, "-credentials-rotation"):
			_, _ = w.Write([]byte(`{}`))
		case r.URL.Path == "/v2/projects/p-1/regions/eu01/clusters/missing":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":404,"message":"cluster not found"}`))
		case r.URL.Path == "/v2/projects/p-1/regions/eu01/clusters/busy":
			w.Header().Set("Retry-After", "3")
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`<html>bad gateway</html>`))
		default:
			_, _ = w.Write([]byte(`{"name":"c1","status":{"aggregated":"STATE_HEALTHY","hibernated":false,
				"credentialsRotation":{"phase":"PREPARED","lastInitiationTime":"2026-11-25T10:00:00Z"}}}`))
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, HTTP: srv.Client()}
	ref := ClusterRef{ProjectID: "p-1", Region: "eu01", Name: "c1"}

	cl, err := c.GetCluster(t.Context(), ref)
	if err != nil || cl.Status.Aggregated != StateHealthy || cl.Status.CredentialsRotation.Phase != PhasePrepared ||
		cl.Status.CredentialsRotation.LastInitiationTime == nil || cl.Status.CredentialsRotation.LastCompletionTime != nil {
		t.Fatalf("GetCluster = %+v, %v", cl, err)
	}
	kc, err := c.CreateKubeconfig(t.Context(), ref, time.Hour)
	if err != nil || kc.Kubeconfig == "" || !kc.ExpirationTimestamp.Equal(time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)) {
		t.Fatalf("CreateKubeconfig = %+v, %v", kc, err)
	}
	if gotBody["expirationSeconds"] != "3600" {
		t.Errorf("kubeconfig request body %v; the API takes expirationSeconds as a string", gotBody)
	}
	if err := c.StartCredentialsRotation(t.Context(), ref); err != nil {
		t.Fatal(err)
	}
	if err := c.CompleteCredentialsRotation(t.Context(), ref); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GET /v2/projects/p-1/regions/eu01/clusters/c1",
		"POST /v2/projects/p-1/regions/eu01/clusters/c1/kubeconfig",
		"POST /v2/projects/p-1/regions/eu01/clusters/c1/start-credentials-rotation",
		"POST /v2/projects/p-1/regions/eu01/clusters/c1/complete-credentials-rotation",
	}
	if strings.Join(paths, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}

	_, err = c.GetCluster(t.Context(), ClusterRef{ProjectID: "p-1", Region: "eu01", Name: "missing"})
	if StatusCode(err) != http.StatusNotFound || !strings.Contains(err.Error(), "cluster not found") {
		t.Errorf("404: %v (status %d); want the API's message and 404", err, StatusCode(err))
	}
	_, err = c.GetCluster(t.Context(), ClusterRef{ProjectID: "p-1", Region: "eu01", Name: "busy"})
	var ra *APIError
	if StatusCode(err) != http.StatusBadGateway || !errors.As(err, &ra) || ra.RetryAfter() != 3*time.Second || !ra.Transient() || strings.Contains(err.Error(), "<html>") {
		t.Errorf("gateway page: %v; want 502 with Retry-After 3s and without the HTML", err)
	}
}

func TestNewHTTPClientNeedsCredentials(t *testing.T) {
	if _, err := NewHTTPClient(Credentials{}, nil, time.Second); err != ErrNoCredentials {
		t.Fatalf("err = %v; want ErrNoCredentials", err)
	}
	hc, err := NewHTTPClient(Credentials{Token: "secret-token"}, nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	if err := (&Client{BaseURL: srv.URL, HTTP: hc}).StartCredentialsRotation(t.Context(), ClusterRef{"p", "eu01", "c"}); err != nil {
		t.Fatal(err)
	}
	if auth != "Bearer secret-token" {
		t.Errorf("Authorization %q; want the token flow's bearer token", auth)
	}
}
