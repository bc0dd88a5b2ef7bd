package ske

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
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
	if _, err := NewHTTPClient(Credentials{}, nil, time.Second); !errors.Is(err, ErrNoCredentials) {
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

// TestATokenEndpointsFailureIsNotTheSKEAPIs: stackit-sdk-go/core's key
// flow reports a failing token endpoint as a GenericOpenAPIError with that
// endpoint's status. A 404 from it (a gateway, a wrong custom token URL)
// must not read as the SKE API's "no such cluster", nor carry its page.
func TestATokenEndpointsFailureIsNotTheSKEAPIs(t *testing.T) {
	answers := map[string]func(http.ResponseWriter){
		"html 404": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("<html><body>404 Not Found <script>secret-page</script></body></html>"))
		},
		"invalid_grant": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"assertion rejected for key 5d1c…"}`))
		},
		"503": func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) },
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			apiCalls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/token" {
					answer(w)
					return
				}
				apiCalls++
				w.WriteHeader(http.StatusNotFound)
				_, _ = w.Write([]byte(`{"code":5,"message":"cluster not found"}`))
			}))
			defer srv.Close()
			hc, err := NewHTTPClient(Credentials{ServiceAccountKey: string(testServiceAccountKey(t, srv.URL+"/token")), TokenURL: srv.URL + "/token"}, nil, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c := &Client{BaseURL: srv.URL, HTTP: hc}
			_, err = c.GetCluster(t.Context(), ClusterRef{ProjectID: "p-1", Region: "eu01", Name: "c1"})
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v (%T); want a TokenError", err, err)
			}
			if StatusCode(err) != 0 || ClusterNotFound(err) || apiCalls != 0 {
				t.Errorf("a token endpoint's answer read as the SKE API's: status %d, not found %t, %d API calls", StatusCode(err), ClusterNotFound(err), apiCalls)
			}
			gone, gerr := c.ClusterGone(t.Context(), ClusterRef{ProjectID: "p-1", Region: "eu01", Name: "c1"}, err)
			if gone || gerr == nil {
				t.Errorf("ClusterGone = %t, %v; want not gone, and the error", gone, gerr)
			}
			if strings.Contains(err.Error(), "secret-page") || strings.Contains(err.Error(), "5d1c") {
				t.Errorf("the token endpoint's body reached the message: %v", err)
			}
			if name == "invalid_grant" && te.Code != "invalid_grant" {
				t.Errorf("code %q; want invalid_grant", te.Code)
			}
			if te.Transient() != (name == "503") {
				t.Errorf("Transient() = %t for %s", te.Transient(), name)
			}
		})
	}
}

func TestClusterGoneOnlyOnTheAPIsOwn404AndTheList(t *testing.T) {
	listed := []string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/projects/p-1/regions/eu01/clusters":
			items := []map[string]string{}
			for _, n := range listed {
				items = append(items, map[string]string{"name": n})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"items": items})
		case "/v2/projects/p-1/regions/eu01/clusters/gateway":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("<html>not found</html>"))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":5,"message":"cluster not found"}`))
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, HTTP: srv.Client()}
	check := func(name string, want bool) {
		t.Helper()
		r := ClusterRef{ProjectID: "p-1", Region: "eu01", Name: name}
		_, err := c.GetCluster(t.Context(), r)
		if gone, _ := c.ClusterGone(t.Context(), r, err); gone != want {
			t.Errorf("%s: gone = %t; want %t", name, gone, want)
		}
	}
	check("c1", true)
	check("gateway", false)
	listed = []string{"c1"}
	check("c1", false)
}

func testServiceAccountKey(t *testing.T, tokenURL string) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	priv := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
	key, _ := json.Marshal(map[string]any{
		"id": "00000000-0000-0000-0000-000000000001", "publicKey": "", "keyType": "USER_MANAGED", "keyOrigin": "GENERATED", "keyAlgorithm": "RSA_2048", "active": true,
		"createdAt":   "2026-01-01T00:00:00Z",
		"credentials": map[string]any{"kid": "kid-1", "iss": "sa@sa.stackit.cloud", "sub": "00000000-0000-0000-0000-000000000002", "aud": tokenURL, "privateKey": priv},
	})
	return key
}
