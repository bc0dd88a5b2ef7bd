package lke

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/kubernetes/scheme"
)

// StickyTokens makes a cluster's API endpoint answer as an API server that
// keeps accepting some tokens after they were revoked — an authentication
// webhook that caches for ever, a token authenticator that is not the
// service-account one. No healthy kube-apiserver does this; it exists so
// that each check of a rotation's verification has a test that fails
// without it (a revoked token is rejected anyway, so nothing else would
// notice a check that was dropped).
type StickyTokens struct {
	// AdminToken, when set, is still accepted on SelfSubjectReview (the
	// request a client makes to learn whether its credential works).
	AdminToken string
	// TokensOf lists accounts, "namespace/name" or "namespace/" for every
	// account of a namespace: a token issued for one of them through this
	// endpoint (TokenRequest) from now on is still accepted by TokenReview
	// once the API server rejects it.
	TokensOf []string
}

// stickyState is a cluster's StickyTokens and the tokens it caught.
type stickyState struct {
	StickyTokens
	caught map[string]string // token -> username
}

type stickyTable struct {
	mu      sync.Mutex
	byClust map[int]*stickyState
}

// SetStickyTokens sets (or, with the zero value, clears) what a cluster's
// API endpoint keeps accepting. Only requests through the endpoint the
// served kubeconfig names are affected.
func (e *Emulator) SetStickyTokens(clusterID int, s StickyTokens) {
	e.sticky.mu.Lock()
	defer e.sticky.mu.Unlock()
	if e.sticky.byClust == nil {
		e.sticky.byClust = map[int]*stickyState{}
	}
	if s.AdminToken == "" && len(s.TokensOf) == 0 {
		delete(e.sticky.byClust, clusterID)
		return
	}
	e.sticky.byClust[clusterID] = &stickyState{StickyTokens: s, caught: map[string]string{}}
}

func (e *Emulator) stickyFor(clusterID int) *stickyState {
	e.sticky.mu.Lock()
	defer e.sticky.mu.Unlock()
	return e.sticky.byClust[clusterID]
}

// serveSticky answers the requests StickyTokens changes, and reports
// whether it did. It also catches the tokens issued for TokensOf, by
// reading the API server's answer to their TokenRequest.
func (p *kubeProxy) serveSticky(w http.ResponseWriter, r *http.Request, endpoint string) bool {
	s := p.emulator.stickyFor(p.clusterID)
	if s == nil || r.Method != http.MethodPost {
		return false
	}
	switch {
	case endpoint == KubeSelfSubjectReview && s.AdminToken != "" && bearerOf(r) == s.AdminToken:
		writeJSON(w, http.StatusCreated, map[string]any{
			"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
			"status": map[string]any{"userInfo": map[string]any{"username": "system:serviceaccount:kube-system:lke-admin"}},
		})
		return true
	case endpoint == KubeCreateToken && s.catches(r.URL.Path):
		rec := &bufferedResponse{header: http.Header{}}
		p.bearer.ServeHTTP(rec, r)
		// client-go speaks protobuf to the API server, JSON elsewhere: the
		// universal deserializer reads both.
		if rec.status < 300 {
			if obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(rec.body.Bytes(), nil, nil); err == nil {
				if tr, ok := obj.(*authenticationv1.TokenRequest); ok && tr.Status.Token != "" {
					p.emulator.sticky.mu.Lock()
					s.caught[tr.Status.Token] = accountOfTokenPath(r.URL.Path)
					p.emulator.sticky.mu.Unlock()
				}
			}
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
		return true
	case strings.HasSuffix(r.URL.Path, "/tokenreviews"):
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return false
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
		review, ok := obj.(*authenticationv1.TokenReview)
		if err != nil || !ok {
			return false
		}
		p.emulator.sticky.mu.Lock()
		user, ok := s.caught[review.Spec.Token]
		p.emulator.sticky.mu.Unlock()
		if !ok {
			return false
		}
		writeJSON(w, http.StatusCreated, map[string]any{
			"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
			"status": map[string]any{"authenticated": true, "user": map[string]any{"username": user}},
		})
		return true
	}
	return false
}

// catches tells whether a TokenRequest path names an account in TokensOf.
func (s *stickyState) catches(path string) bool {
	account := strings.TrimPrefix(accountOfTokenPath(path), "system:serviceaccount:")
	ns, _, _ := strings.Cut(account, ":")
	for _, want := range s.TokensOf {
		if want == ns+"/" || want == strings.Replace(account, ":", "/", 1) {
			return true
		}
	}
	return false
}

// accountOfTokenPath is the username of the account a TokenRequest path
// (/api/v1/namespaces/<ns>/serviceaccounts/<name>/token) names.
func accountOfTokenPath(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) == 7 && parts[2] == "namespaces" && parts[4] == "serviceaccounts" {
		return "system:serviceaccount:" + parts[3] + ":" + parts[5]
	}
	return ""
}

func bearerOf(r *http.Request) string {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return tok
	}
	return ""
}

// bufferedResponse keeps an upstream answer so that it can be read before
// it is passed on.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
