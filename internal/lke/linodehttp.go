package lke

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/linode/linodego"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// CheckLinodeAnswer is a linodego OnAfterResponse hook that turns every
// non-2xx answer into an error, which linodego alone does not:
//
//   - coupleAPIErrors (linodego errors.go) returns no error at all for a
//     JSON answer whose body has no "errors" array: a 500 with {} or with
//     {"message": …} would read as success (a regenerate that never
//     happened, an empty kubeconfig);
//   - an answer of another Content-Type (a gateway's or CDN's HTML page)
//     becomes a linodego.Error value whose message holds the whole body and
//     which keeps no *http.Response, so its Retry-After is lost.
//
// The Linode API's own errors (JSON with a non-empty "errors" array) become
// the *linodego.Error linodego would make of them, with the response.
// Everything else becomes a *linodego.Error with the status, a short
// message that quotes no body, and the response (headers only: resty has
// read the body), marked as not the API's. linodego's NewError
// passes a *linodego.Error through unchanged, so callers see the status as
// for the API's own errors; resty's retry conditions see it too.
func CheckLinodeAnswer(resp *linodego.Response) error {
	if resp == nil || resp.RawResponse == nil {
		return nil
	}
	status := resp.StatusCode()
	if status >= 200 && status < 300 {
		return nil
	}
	mediaType, _, _ := mime.ParseMediaType(resp.Header().Get("Content-Type"))
	if mediaType == "application/json" {
		var body struct {
			Errors  []linodego.APIErrorReason `json:"errors"`
			Message string                    `json:"message"`
		}
		if json.Unmarshal(resp.Body(), &body) == nil && len(body.Errors) > 0 {
			// The API's own error, made as linodego makes it (NewError of
			// a resty.Response) but here for any JSON Content-Type:
			// linodego compares it to Accept as a string, and would make
			// "application/json; charset=utf-8" an error quoting the body.
			return &linodego.Error{Code: status, Response: resp.RawResponse, Message: retry.Excerpt(linodego.APIError{Errors: body.Errors}.Error())}
		}
		return &linodego.Error{Code: status, Response: notTheAPIs(resp.RawResponse), //nolint:bodyclose // a header-only copy of a response whose body resty has read and closed
			Message: fmt.Sprintf("%s, with a JSON body that holds no Linode error list%s", statusText(status), shortMessage(body.Message))}
	}
	if mediaType == "" {
		mediaType = "no Content-Type"
	}
	return &linodego.Error{Code: status, Response: notTheAPIs(resp.RawResponse), //nolint:bodyclose // a header-only copy of a response whose body resty has read and closed
		Message: fmt.Sprintf("%s, answered as %s (not the Linode API's JSON: a gateway or CDN in front of it)", statusText(status), mediaType)}
}

// notTheAPIsHeader marks, on our copy of a response, an answer that is not
// the Linode API's own error, so that IsLinodeAnswer can tell it apart
// without reading an error's wording.
const notTheAPIsHeader = "X-Kubecreds-Not-Linode-Error"

func notTheAPIs(r *http.Response) *http.Response {
	c := *r
	c.Header = r.Header.Clone()
	c.Header.Set(notTheAPIsHeader, "1")
	return &c
}

func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return fmt.Sprintf("HTTP status %d", status)
}

// shortMessage quotes a gateway's "message" field, cut short: it is a
// status line, never data, but it is not ours to print at length.
func shortMessage(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return ""
	}
	if len(msg) > 120 {
		msg = msg[:120] + "…"
	}
	return fmt.Sprintf(" (message %q)", msg)
}

// IsLinodeAnswer reports whether err is an answer of the Linode API itself:
// JSON with its error list, as linodego reports it (a *linodego.Error with
// the response). A gateway's page or an answer without the error list
// (CheckLinodeAnswer's errors) is not, whatever its status.
func IsLinodeAnswer(err error) bool {
	lerr, ok := LinodeError(err)
	if !ok || lerr.Response == nil || lerr.Code < 100 {
		return false
	}
	mediaType, _, _ := mime.ParseMediaType(lerr.Response.Header.Get("Content-Type"))
	return mediaType == "application/json" && lerr.Response.Header.Get(notTheAPIsHeader) == ""
}

// IsClusterNotFound reports the Linode API's own 404 for a cluster: the
// only answer that says it is gone. A 404 page of a gateway, or of a wrong
// base URL's server, says nothing about the cluster.
func IsClusterNotFound(err error) bool {
	lerr, ok := LinodeError(err)
	return ok && lerr.Code == http.StatusNotFound && IsLinodeAnswer(err)
}

// ScopeReadWriteLKE is the OAuth scope regenerating an LKE cluster's
// kubeconfig and reading it need.
const ScopeReadWriteLKE = "lke:read_write"

// LinodeScopes remembers the OAuth scopes the Linode API says the token has
// (its X-OAuth-Scopes header, sent with every answer), so that a rotation
// learns whether it may regenerate without sending a write to find out.
type LinodeScopes struct {
	mu     sync.Mutex
	seen   bool
	scopes []string
}

// Observe is a linodego OnAfterResponse hook that records the scopes.
func (s *LinodeScopes) Observe(resp *linodego.Response) error {
	if resp == nil || resp.RawResponse == nil {
		return nil
	}
	h := resp.RawResponse.Header.Values("X-OAuth-Scopes")
	if len(h) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = true
	s.scopes = strings.FieldsFunc(strings.Join(h, " "), func(r rune) bool { return r == ' ' || r == ',' })
	return nil
}

// MayRegenerate tells whether the token's scopes allow regenerating; known
// is false when no answer has carried them yet.
func (s *LinodeScopes) MayRegenerate() (may, known bool, scopes string) {
	if s == nil {
		return false, false, ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.seen {
		return false, false, ""
	}
	for _, sc := range s.scopes {
		// "*" is a token with every scope (read_write on all of them).
		if sc == "*" || sc == ScopeReadWriteLKE {
			return true, true, strings.Join(s.scopes, " ")
		}
	}
	return false, true, strings.Join(s.scopes, " ")
}

// ClusterGone confirms the Linode API's 404 for a cluster before anything
// is forgotten about it: the clusters the token lists (the API's own answer,
// all pages) must not include it. A 404 for one path can come from a base
// URL that names the wrong place; a list that answers and lacks the cluster
// cannot. An error means it is not known to be gone.
func ClusterGone(ctx context.Context, api interface {
	ListLKEClusters(ctx context.Context, opts *linodego.ListOptions) ([]linodego.LKECluster, error)
}, clusterID int) (bool, error) {
	clusters, err := api.ListLKEClusters(ctx, nil)
	if err != nil {
		return false, err
	}
	for _, c := range clusters {
		if c.ID == clusterID {
			return false, nil
		}
	}
	return true, nil
}
