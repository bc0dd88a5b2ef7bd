// Package ske is the part of STACKIT's SKE API kubecreds needs (clusters'
// status, short-lived admin kubeconfigs, the two-phase credentials rotation)
// and the rotation procedure over it, as plain Go. Authentication is
// stackit-sdk-go/core's: the Client's HTTP transport carries it.
package ske

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/stackitcloud/stackit-sdk-go/core/oapierror"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// DefaultBaseURL is the SKE API's.
const DefaultBaseURL = "https://ske.api.stackit.cloud"

// ClusterNamePattern is the SKE API's rule for a cluster name (the v2
// API's clusterName parameter and Cluster.name).
const ClusterNamePattern = `^[a-z0-9]([a-z0-9-]{0,9}[a-z0-9])?$`

// Expiration bounds of a kubeconfig the API issues (600 s to 180 days).
const (
	MinKubeconfigExpiration = 600 * time.Second
	MaxKubeconfigExpiration = 15552000 * time.Second
)

// Aggregated cluster states (status.aggregated).
const (
	StateHealthy     = "STATE_HEALTHY"
	StateCreating    = "STATE_CREATING"
	StateDeleting    = "STATE_DELETING"
	StateUnhealthy   = "STATE_UNHEALTHY"
	StateReconciling = "STATE_RECONCILING"
	StateHibernated  = "STATE_HIBERNATED"
	StateHibernating = "STATE_HIBERNATING"
	StateWakingUp    = "STATE_WAKINGUP"
)

// Credentials rotation phases (status.credentialsRotation.phase).
const (
	PhaseNever      = "NEVER"
	PhasePreparing  = "PREPARING"
	PhasePrepared   = "PREPARED"
	PhaseCompleting = "COMPLETING"
	PhaseCompleted  = "COMPLETED"
)

// ClusterRef names a cluster.
type ClusterRef struct {
	ProjectID, Region, Name string
}

func (r ClusterRef) String() string { return r.ProjectID + "/" + r.Region + "/" + r.Name }

// Cluster is what kubecreds reads of GET …/clusters/{clusterName}.
type Cluster struct {
	Name   string        `json:"name"`
	Status ClusterStatus `json:"status"`
}

// ClusterStatus is the part of a cluster's status kubecreds reads.
type ClusterStatus struct {
	Aggregated          string              `json:"aggregated"`
	Hibernated          bool                `json:"hibernated"`
	CredentialsRotation CredentialsRotation `json:"credentialsRotation"`
	// Errors are the cluster's current problems (SKE_UNREADY_NODES,
	// SKE_NODE_MISCONFIGURED_PDB, …; the API calls the list extensible).
	Errors []ClusterError `json:"errors,omitempty"`
	// Error is the older single error, which the API marks deprecated in
	// favour of Errors; still read, as clusters may report only it.
	Error *ClusterError `json:"error,omitempty"`
}

// ClusterError is one of status.errors (code, message), or the deprecated
// status.error (which also has details, not read).
type ClusterError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Problems describes the cluster's state and errors in one line, for
// progress logs and error messages: "STATE_UNHEALTHY (SKE_UNREADY_NODES:
// Not all worker nodes are ready)". Messages are the API's, cut to a
// readable length.
func (s ClusterStatus) Problems() string {
	var errs []string
	seen := map[string]bool{}
	all := s.Errors
	if s.Error != nil {
		all = append(append([]ClusterError(nil), all...), *s.Error)
	}
	for _, e := range all {
		if e.Code == "" && e.Message == "" || seen[e.Code+e.Message] {
			continue
		}
		seen[e.Code+e.Message] = true
		msg := e.Message
		if len(msg) > 160 {
			msg = msg[:157] + "..."
		}
		switch {
		case e.Code == "":
			errs = append(errs, msg)
		case msg == "":
			errs = append(errs, e.Code)
		default:
			errs = append(errs, e.Code+": "+msg)
		}
	}
	state := s.Aggregated
	if state == "" {
		state = "state unknown"
	}
	if len(errs) == 0 {
		return state
	}
	return state + " (" + strings.Join(errs, "; ") + ")"
}

// KnownPhase reports whether p is one of the phases the API documents.
func KnownPhase(p string) bool {
	switch p {
	case PhaseNever, PhasePreparing, PhasePrepared, PhaseCompleting, PhaseCompleted:
		return true
	}
	return false
}

// CredentialsRotation is status.credentialsRotation.
type CredentialsRotation struct {
	Phase              string     `json:"phase"`
	LastInitiationTime *time.Time `json:"lastInitiationTime,omitempty"`
	LastCompletionTime *time.Time `json:"lastCompletionTime,omitempty"`
}

// Kubeconfig is a short-lived admin kubeconfig.
type Kubeconfig struct {
	Kubeconfig          string    `json:"kubeconfig"`
	ExpirationTimestamp time.Time `json:"expirationTimestamp"`
}

// Client calls the SKE API. HTTP's transport must authenticate the
// requests (see NewHTTPClient).
type Client struct {
	BaseURL   string // default DefaultBaseURL
	HTTP      *http.Client
	UserAgent string
}

// clustersURL is the collection of ref's project and region.
func (c *Client) clustersURL(ref ClusterRef) string {
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	return strings.TrimRight(base, "/") + "/v2/projects/" + url.PathEscape(ref.ProjectID) + "/regions/" + url.PathEscape(ref.Region) + "/clusters"
}

func (c *Client) clusterURL(ref ClusterRef, suffix string) string {
	return c.clustersURL(ref) + "/" + url.PathEscape(ref.Name) + suffix
}

// GetCluster reads a cluster.
func (c *Client) GetCluster(ctx context.Context, ref ClusterRef) (*Cluster, error) {
	var out Cluster
	if err := c.do(ctx, http.MethodGet, c.clusterURL(ref, ""), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateKubeconfig issues a new admin kubeconfig that expires after
// expiration (whole seconds, MinKubeconfigExpiration to MaxKubeconfigExpiration).
func (c *Client) CreateKubeconfig(ctx context.Context, ref ClusterRef, expiration time.Duration) (*Kubeconfig, error) {
	// The API takes the seconds as a string.
	body := map[string]string{"expirationSeconds": strconv.FormatInt(int64(expiration/time.Second), 10)}
	var out Kubeconfig
	if err := c.do(ctx, http.MethodPost, c.clusterURL(ref, "/kubeconfig"), body, &out); err != nil {
		return nil, err
	}
	if out.Kubeconfig == "" {
		return nil, fmt.Errorf("the SKE API answered no kubeconfig for %s", ref)
	}
	return &out, nil
}

// StartCredentialsRotation starts phase one: new CA, etcd encryption key
// and service-account signing key, and a roll of every node.
func (c *Client) StartCredentialsRotation(ctx context.Context, ref ClusterRef) error {
	return c.do(ctx, http.MethodPost, c.clusterURL(ref, "/start-credentials-rotation"), nil, nil)
}

// CompleteCredentialsRotation completes it: the old credentials stop working.
func (c *Client) CompleteCredentialsRotation(ctx context.Context, ref ClusterRef) error {
	return c.do(ctx, http.MethodPost, c.clusterURL(ref, "/complete-credentials-rotation"), nil, nil)
}

// do sends one request. An answer other than 2xx is returned as a
// *oapierror.GenericOpenAPIError (as the STACKIT SDK returns them), with
// the API's message; its body is kept only when it is an error envelope.
func (c *Client) do(ctx context.Context, method, u string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return transportError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp, raw)
	}
	if out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("the SKE API's answer to %s %s is not the expected JSON (%s)", method, req.URL.Path, resp.Header.Get("Content-Type"))
	}
	return nil
}

// apiError turns an error answer into the SDK's error type, with the
// message of the API's envelope ({"code":…,"message":…}) when there is one.
// A body that is not such an envelope (a gateway's HTML page) is dropped:
// it says nothing and may be long.
func apiError(resp *http.Response, raw []byte) error {
	var envelope struct {
		Message string `json:"message"`
	}
	msg := resp.Status
	var keep []byte
	if json.Unmarshal(raw, &envelope) == nil && envelope.Message != "" {
		msg = retry.Excerpt(envelope.Message)
		keep = raw
	}
	e := &APIError{Err: oapierror.NewErrorWithBody(resp.StatusCode, msg, keep, nil)}
	if after, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && after > 0 {
		e.After = time.Duration(after) * time.Second
	}
	return e
}

// APIError is an error answer of the SKE API: the SDK's error type, and
// the wait a Retry-After header asked for.
type APIError struct {
	Err   *oapierror.GenericOpenAPIError
	After time.Duration
}

func (e *APIError) Error() string { return e.Err.Error() }
func (e *APIError) Unwrap() error { return e.Err }

// Transient reports whether asking again may succeed: 429 and 5xx
// (a gateway's page included).
func (e *APIError) Transient() bool {
	return e.Err.StatusCode == http.StatusTooManyRequests || e.Err.StatusCode >= 500
}

// RetryAfter is the wait the answer asked for (0 if none).
func (e *APIError) RetryAfter() time.Duration { return e.After }

// StatusCode is the HTTP status of an answer of the SKE API itself (0 when
// err holds none). A failing token endpoint is not the SKE API: its status
// is a TokenError's, never this.
func StatusCode(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.Err.StatusCode
	}
	return 0
}

// ClusterNotFound reports whether err is the SKE API's own 404 for a
// cluster: an answer in the API's error envelope, not a gateway's page (a
// 404 that has no {"message": …} may come from anything between).
func ClusterNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Err.StatusCode == http.StatusNotFound && len(e.Err.Body) > 0
}

// ClusterGone tells whether the cluster is gone, as the SKE API says it: a
// 404 for the cluster in the API's own error envelope (ClusterNotFound),
// and the project's cluster list, read successfully, without it. Anything
// else (a token endpoint's 404, a wrong endpoint setting, a gateway) is not
// "gone" and is returned as the error it is.
func (c *Client) ClusterGone(ctx context.Context, ref ClusterRef, getErr error) (bool, error) {
	if !ClusterNotFound(getErr) {
		return false, getErr
	}
	names, err := c.ListClusters(ctx, ClusterRef{ProjectID: ref.ProjectID, Region: ref.Region})
	if err != nil {
		return false, fmt.Errorf("%w (and listing the project's clusters to confirm it failed: %v)", getErr, err) //nolint:errorlint // only getErr is to be classified; the list error is context for the reader, not to be matched by errors.Is/As
	}
	for _, n := range names {
		if n == ref.Name {
			return false, fmt.Errorf("%w (yet the project's cluster list names %s: the SKE API contradicts itself; apply again)", getErr, ref.Name)
		}
	}
	return true, nil
}

// ListClusters names the clusters of ref's project in ref's region.
func (c *Client) ListClusters(ctx context.Context, ref ClusterRef) ([]string, error) {
	var out struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, c.clustersURL(ref), nil, &out); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(out.Items))
	for _, it := range out.Items {
		names = append(names, it.Name)
	}
	return names, nil
}

// TokenError is a failure to get an access token from STACKIT's token
// endpoint (key flow, workload identity federation): the SKE API was not
// asked. Status is the endpoint's HTTP status; Code its OAuth error code
// (invalid_grant, …) when it sent one. The body is not kept: a gateway's
// page says nothing and may be long.
type TokenError struct {
	Status int
	Code   string
}

func (e *TokenError) Error() string {
	what := fmt.Sprintf("STACKIT's token endpoint answered %d", e.Status)
	if e.Code != "" {
		what += " (" + e.Code + ")"
	}
	return what + ", so no access token was issued and the SKE API was not called"
}

// Transient reports whether asking again may succeed: 429 and 5xx.
func (e *TokenError) Transient() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// transportError is what a request that got no SKE answer returns. The
// authenticating transport of stackit-sdk-go/core fails a request whose
// access token it could not get with the token endpoint's answer as a
// *oapierror.GenericOpenAPIError: that becomes a TokenError, so that it
// is never taken for the SKE API's own answer (a token endpoint's 404 is
// not "no such cluster").
func transportError(err error) error {
	var oe *oapierror.GenericOpenAPIError
	if !errors.As(err, &oe) {
		return err
	}
	var oauth struct {
		Error string `json:"error"`
	}
	te := &TokenError{Status: oe.StatusCode}
	if json.Unmarshal(oe.Body, &oauth) == nil && oauthCode.MatchString(oauth.Error) {
		te.Code = oauth.Error
	}
	return te
}

// oauthCode is the shape of an OAuth 2 error code (RFC 6749 §5.2): one
// word, so that nothing else of a body reaches a message.
var oauthCode = regexp.MustCompile(`^[a-z_]{1,40}$`)
