package ske

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stackitcloud/stackit-sdk-go/core/auth"
	"github.com/stackitcloud/stackit-sdk-go/core/config"
)

// Credentials are STACKIT's ways to authenticate a service account, as
// terraform-provider-stackit names them: a service-account key (JSON, as a
// path or as content) with its private key (path or content, or inside the
// key), for the key flow; or a service-account token, for the token flow.
type Credentials struct {
	ServiceAccountKeyPath string
	ServiceAccountKey     string
	PrivateKeyPath        string
	PrivateKey            string
	Token                 string
	// TokenURL is a custom token endpoint for the key flow (default
	// STACKIT's; STACKIT_TOKEN_BASEURL).
	TokenURL string
}

// ErrNoCredentials means none of the credentials is set.
var ErrNoCredentials = errors.New("no STACKIT credentials")

// Empty reports whether no credential is set.
func (c Credentials) Empty() bool {
	return c.ServiceAccountKeyPath == "" && c.ServiceAccountKey == "" && c.Token == ""
}

// NewHTTPClient returns a client whose requests carry an access token from
// stackit-sdk-go/core's key flow (when a service-account key is set) or
// token flow, over base (nil: http.DefaultTransport). Each request gives
// up after timeout.
func NewHTTPClient(creds Credentials, base http.RoundTripper, timeout time.Duration) (*http.Client, error) {
	if creds.Empty() {
		return nil, ErrNoCredentials
	}
	if base == nil {
		base = http.DefaultTransport
	}
	cfg := &config.Configuration{
		ServiceAccountKeyPath: creds.ServiceAccountKeyPath,
		ServiceAccountKey:     creds.ServiceAccountKey,
		PrivateKeyPath:        creds.PrivateKeyPath,
		PrivateKey:            creds.PrivateKey,
		Token:                 creds.Token,
		TokenCustomUrl:        creds.TokenURL,
		HTTPClient:            &http.Client{Transport: base, Timeout: timeout},
	}
	rt, err := auth.SetupAuth(cfg)
	if err != nil {
		return nil, fmt.Errorf("STACKIT authentication: %w", err)
	}
	return &http.Client{Transport: rt, Timeout: timeout}, nil
}
