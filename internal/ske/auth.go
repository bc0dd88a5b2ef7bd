package ske

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stackitcloud/stackit-sdk-go/core/auth"
	"github.com/stackitcloud/stackit-sdk-go/core/config"
	"github.com/stackitcloud/stackit-sdk-go/core/oidcadapters"
)

// Credentials are STACKIT's ways to authenticate a service account, as
// stackit-sdk-go/core has them and terraform-provider-stackit names them:
// workload identity federation (the account's email and a federated OIDC
// token), a service-account key (JSON, as a path or as content) with its
// private key (path or content, or inside the key), for the key flow; a
// service-account token, for the deprecated token flow; or none of these,
// and then core's own search (its variables, then the credentials file).
type Credentials struct {
	ServiceAccountKeyPath string
	ServiceAccountKey     string
	PrivateKeyPath        string
	PrivateKey            string
	Token                 string
	// TokenURL is a custom token endpoint for the key flow and workload
	// identity federation (default STACKIT's; STACKIT_TOKEN_BASEURL).
	TokenURL string
	// CredentialsPath is the credentials file (default
	// ~/.stackit/credentials.json; STACKIT_CREDENTIALS_PATH).
	CredentialsPath string

	// ServiceAccountEmail is the client id for workload identity
	// federation; the federated token is FederatedToken, else read from
	// FederatedTokenPath, else (UseOIDC) asked of the CI system with
	// OIDCRequest, else read from core's default file.
	ServiceAccountEmail string
	FederatedToken      string
	FederatedTokenPath  string
	UseOIDC             bool
	OIDCRequest         *OIDCRequest
}

// OIDCRequest is where a CI system hands out ID tokens: GitHub Actions'
// ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN, or Azure DevOps'
// SYSTEM_OIDCREQUESTURI and SYSTEM_ACCESSTOKEN.
type OIDCRequest struct {
	URL, Token  string
	AzureDevOps bool
}

// ErrNoCredentials means none of the credentials is set.
var ErrNoCredentials = errors.New("no STACKIT credentials")

// WorkloadIdentity tells whether workload identity federation is asked for.
func (c Credentials) WorkloadIdentity() bool {
	return c.FederatedToken != "" || c.FederatedTokenPath != "" || c.UseOIDC
}

// Flow names the flow core will use, in its order (auth.SetupAuth):
// "workload identity federation", "key", "token", or "default" (core's
// own search of its variables and the credentials file).
func (c Credentials) Flow() string {
	switch {
	case c.WorkloadIdentity():
		return "workload identity federation"
	case c.ServiceAccountKey != "" || c.ServiceAccountKeyPath != "":
		return "key"
	case c.Token != "":
		return "token"
	}
	return "default"
}

// NewHTTPClient returns a client whose requests carry STACKIT credentials,
// by stackit-sdk-go/core's flows, over base (nil: http.DefaultTransport).
// Each request gives up after timeout.
func NewHTTPClient(creds Credentials, base http.RoundTripper, timeout time.Duration) (*http.Client, error) {
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
		CredentialsFilePath:   creds.CredentialsPath,
		ServiceAccountEmail:   creds.ServiceAccountEmail,
		HTTPClient:            &http.Client{Transport: base, Timeout: timeout},
	}
	if creds.WorkloadIdentity() {
		cfg.WorkloadIdentityFederation = true
		switch o := creds.OIDCRequest; {
		case creds.FederatedToken != "":
			token := creds.FederatedToken
			cfg.ServiceAccountFederatedTokenFunc = func(context.Context) (string, error) { return token, nil }
		case creds.FederatedTokenPath != "":
			cfg.ServiceAccountFederatedTokenFunc = oidcadapters.ReadJWTFromFileSystem(creds.FederatedTokenPath)
		case o != nil && o.AzureDevOps:
			cfg.ServiceAccountFederatedTokenFunc = oidcadapters.RequestAzureDevOpsOIDCToken(o.URL, o.Token, "")
		case o != nil:
			cfg.ServiceAccountFederatedTokenFunc = oidcadapters.RequestGHOIDCToken(o.URL, o.Token)
		}
		// Else core reads STACKIT_FEDERATED_TOKEN_FILE or its default file.
	}
	rt, err := auth.SetupAuth(cfg)
	if err != nil {
		if creds.Flow() == "default" {
			return nil, fmt.Errorf("%w: STACKIT authentication found no credentials in its variables or credentials file: %v", ErrNoCredentials, err) //nolint:errorlint // the error is ErrNoCredentials; the SDK's error is context for the reader, not to be matched by errors.Is/As
		}
		return nil, fmt.Errorf("STACKIT authentication (%s flow): %w", creds.Flow(), err)
	}
	return &http.Client{Transport: rt, Timeout: timeout}, nil
}
