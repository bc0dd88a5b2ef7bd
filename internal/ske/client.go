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
	"strconv"
	"strings"
	"time"

	"github.com/stackitcloud/stackit-sdk-go/core/oapierror"
)

// DefaultBaseURL is the SKE API's.
const DefaultBaseURL = "https://ske.api.stackit.cloud"

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

func (c *Client) clusterURL(ref ClusterRef, suffix string) string {
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	return strings.TrimRight(base, "/") + "/v2/projects/" + url.PathEscape(ref.ProjectID) + "/regions/" + url.PathEscape(ref.Region) +
		"/clusters/" + url.PathEscape(ref.Name) + suffix
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
		return err
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
		msg = envelope.Message
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

// StatusCode is the HTTP status of an SKE API error (0 when err holds none).
func StatusCode(err error) int {
	var e *oapierror.GenericOpenAPIError
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}
