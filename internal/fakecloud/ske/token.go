package ske

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"
)

// skeIdentity is the local stand-in for STACKIT's token endpoint
// (service-account.api.stackit.cloud/token, accounts.stackit.cloud/oauth/
// v2/token): service accounts whose keys tests give the provider, so that
// stackit-sdk-go/core's real flows run against it.
//
//   - Key flow: the client signs an assertion (RS512, kid in the header)
//     with the account's key and posts grant_type
//     urn:ietf:params:oauth:grant-type:jwt-bearer.
//   - Workload identity federation: the client posts grant_type
//     client_credentials, client_assertion_type
//     urn:schwarz:params:oauth:client-assertion-type:workload-jwt, the
//     federated token of a trusted identity provider as client_assertion,
//     and the account's email as client_id.
//
// Both get a JWT access token with exp (core parses it to know when to ask
// again), which the SKE API accepts.
type skeIdentity struct {
	once   sync.Once
	err    error
	signer *rsa.PrivateKey // signs the access tokens
	idp    *rsa.PrivateKey // the trusted OIDC provider's key (a CI system's)

	mu       sync.Mutex
	accounts []*ServiceAccount
	def      *ServiceAccount

	// faults are per account (by key id or email), so that tests of
	// other accounts run undisturbed.
	faults fakecloud.FaultTable
}

// ServiceAccount is one service account of the local STACKIT.
type ServiceAccount struct {
	// Email is its client id for workload identity federation.
	Email string
	// Subject is the federated identity it trusts (issuer: the local
	// OIDC provider), e.g. "repo:org/infra:ref:refs/heads/main".
	Subject string

	api   *API
	key   *rsa.PrivateKey
	keyID string
	sub   string // its STACKIT user id (a UUID)
}

// FederatedTokenAudience is what the federated tokens' aud must hold, as
// STACKIT's workload identity federation expects from GitHub Actions
// (core/oidcadapters: audience sts.accounts.stackit.cloud).
const FederatedTokenAudience = "sts.accounts.stackit.cloud"

func (id *skeIdentity) init() error {
	id.once.Do(func() {
		if id.signer, id.err = rsa.GenerateKey(rand.Reader, 2048); id.err != nil {
			return
		}
		if id.idp, id.err = rsa.GenerateKey(rand.Reader, 2048); id.err != nil {
			return
		}
	})
	return id.err
}

// NewServiceAccount adds a service account, with a key of its own and
// trust for the federated identity subject.
func (a *API) NewServiceAccount(subject string) (*ServiceAccount, error) {
	id := &a.identity
	if err := id.init(); err != nil {
		return nil, err
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	sa := &ServiceAccount{api: a, key: k, keyID: uuid.NewString(), sub: uuid.NewString(), Subject: subject}
	sa.Email = "kubecreds-" + sa.sub[:8] + "@sa.stackit.cloud"
	id.mu.Lock()
	id.accounts = append(id.accounts, sa)
	id.mu.Unlock()
	return sa, nil
}

// defaultAccount is the account ServiceAccountKey hands out.
func (a *API) defaultAccount() (*ServiceAccount, error) {
	id := &a.identity
	id.mu.Lock()
	def := id.def
	id.mu.Unlock()
	if def != nil {
		return def, nil
	}
	sa, err := a.NewServiceAccount("kubecreds-local")
	if err != nil {
		return nil, err
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.def == nil {
		id.def = sa
	}
	return id.def, nil
}

// ServiceAccountKey is the key of the local SKE's default service account,
// as STACKIT's portal gives it (JSON, private key included), for
// STACKIT_SERVICE_ACCOUNT_KEY. Its token endpoint is the local one.
func (a *API) ServiceAccountKey() ([]byte, error) {
	sa, err := a.defaultAccount()
	if err != nil {
		return nil, err
	}
	return sa.Key()
}

// Key is the account's key as the portal gives it (JSON, private key
// included; credentials.tokenEndpoint the local one).
func (sa *ServiceAccount) Key() ([]byte, error) {
	priv := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(sa.key)}))
	pubDER, err := x509.MarshalPKIXPublicKey(&sa.key.PublicKey)
	if err != nil {
		return nil, err
	}
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	return json.Marshal(map[string]any{
		"id": uuid.NewString(), "publicKey": pub, "createdAt": time.Now().UTC().Format(time.RFC3339),
		"keyType": "USER_MANAGED", "keyOrigin": "GENERATED", "keyAlgorithm": "RSA_2048", "active": true,
		"credentials": map[string]any{
			"kid": sa.keyID, "iss": sa.Email, "sub": sa.sub, "aud": sa.api.URL + "/token",
			"privateKey": priv, "tokenEndpoint": sa.api.URL + "/token",
		},
	})
}

// FederatedToken is an OIDC ID token of the local identity provider for
// the account's trusted subject, valid for ttl: what a CI system writes to
// STACKIT_FEDERATED_TOKEN_FILE.
func (sa *ServiceAccount) FederatedToken(ttl time.Duration) (string, error) {
	now := time.Now()
	return jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer: sa.api.URL + "/oidc", Subject: sa.Subject, Audience: jwt.ClaimStrings{FederatedTokenAudience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), ID: uuid.NewString(),
	}).SignedString(sa.api.identity.idp)
}

// InjectTokenFaults queues faults for this account's token requests (key
// flow and federation): each following one takes the next.
func (sa *ServiceAccount) InjectTokenFaults(faults ...Fault) {
	sa.api.identity.faults.Push(sa.keyID, faults)
}

// ClearTokenFaults drops this account's queued token faults.
func (sa *ServiceAccount) ClearTokenFaults() {
	sa.api.identity.faults.Drop(sa.keyID)
}

// TokensIssued counts the access tokens issued to this account.
func (sa *ServiceAccount) TokensIssued() int {
	sa.api.logMu.Lock()
	defer sa.api.logMu.Unlock()
	return sa.api.issuedTo[sa.keyID]
}

// account finds the service account that is (nil if none).
func (id *skeIdentity) account(is func(*ServiceAccount) bool) *ServiceAccount {
	id.mu.Lock()
	defer id.mu.Unlock()
	for _, sa := range id.accounts {
		if is(sa) {
			return sa
		}
	}
	return nil
}

func (id *skeIdentity) byKeyID(kid string) *ServiceAccount {
	return id.account(func(sa *ServiceAccount) bool { return sa.keyID == kid })
}

func (id *skeIdentity) byEmail(email string) *ServiceAccount {
	return id.account(func(sa *ServiceAccount) bool { return sa.Email == email })
}

// token answers a token request of the key flow or of workload identity
// federation; anything else is an OAuth error, as a real token endpoint
// answers it (400 {"error": …}).
func (a *API) token(w http.ResponseWriter, r *http.Request) {
	id := &a.identity
	if err := id.init(); err != nil {
		writeSKEError(w, http.StatusInternalServerError, "no identity provider")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeTokenError(w, "invalid_request")
		return
	}
	sa, code := a.authenticate(r)
	if sa != nil {
		// Faults of the account's own requests: a gateway's 404 page, an
		// OAuth error, an outage.
		if f, ok := id.faults.Pop(sa.keyID); ok && fakecloud.ApplyFault(w, r, f, a.closing, writeOAuthFault, nil) {
			return
		}
	}
	if code != "" {
		writeTokenError(w, code)
		return
	}
	access, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Subject: sa.sub, Issuer: a.URL + "/token", IssuedAt: jwt.NewNumericDate(time.Now()),
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}).SignedString(id.signer)
	if err != nil {
		writeSKEError(w, http.StatusInternalServerError, "cannot sign")
		return
	}
	a.logMu.Lock()
	a.tokensIssued++
	if a.issuedTo == nil {
		a.issuedTo = map[string]int{}
	}
	a.issuedTo[sa.keyID]++
	a.logMu.Unlock()
	writeSKEJSON(w, http.StatusOK, map[string]any{"access_token": access, "expires_in": 3600, "token_type": "Bearer", "scope": ""})
}

// authenticate checks a token request: the account it is for (nil if it
// names none), and the OAuth error code when it is refused.
func (a *API) authenticate(r *http.Request) (*ServiceAccount, string) {
	id := &a.identity
	switch r.PostForm.Get("grant_type") {
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		var sa *ServiceAccount
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			if sa = id.byKeyID(kid); sa == nil {
				return nil, errors.New("unknown key")
			}
			return &sa.key.PublicKey, nil
		}, jwt.WithValidMethods([]string{"RS512"}), jwt.WithExpirationRequired(), jwt.WithAudience(a.URL+"/token"))
		if sa == nil {
			return nil, "invalid_grant"
		}
		if err != nil || claims["sub"] != sa.sub || claims["iss"] != sa.Email {
			return sa, "invalid_grant"
		}
		return sa, ""
	case "client_credentials":
		if r.PostForm.Get("client_assertion_type") != "urn:schwarz:params:oauth:client-assertion-type:workload-jwt" {
			return nil, "invalid_client"
		}
		sa := id.byEmail(r.PostForm.Get("client_id"))
		if sa == nil {
			return nil, "invalid_client"
		}
		claims := jwt.RegisteredClaims{}
		_, err := jwt.ParseWithClaims(strings.TrimSpace(r.PostForm.Get("client_assertion")), &claims,
			func(*jwt.Token) (any, error) { return &id.idp.PublicKey, nil },
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired(),
			jwt.WithIssuer(a.URL+"/oidc"), jwt.WithAudience(FederatedTokenAudience))
		if err != nil || subtle.ConstantTimeCompare([]byte(claims.Subject), []byte(sa.Subject)) != 1 {
			return sa, "invalid_grant"
		}
		return sa, ""
	}
	return nil, "unsupported_grant_type"
}

func writeTokenError(w http.ResponseWriter, code string) {
	writeSKEJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": "the token request was refused"})
}

// writeOAuthFault answers an injected token fault: OAuth's error body.
func writeOAuthFault(w http.ResponseWriter, status int, msg string) {
	writeSKEJSON(w, status, map[string]string{"error": msg})
}

// oidcRequest answers a CI system's ID-token request, as GitHub Actions'
// ACTIONS_ID_TOKEN_REQUEST_URL does: GET with the request token as bearer
// and ?audience=…, answered {"value": <ID token>}. The request token is
// the account's email, which is enough for a local stand-in.
func (a *API) oidcRequest(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sa := a.identity.byEmail(token)
	if sa == nil || r.URL.Query().Get("audience") != FederatedTokenAudience {
		writeSKEError(w, http.StatusUnauthorized, "no such request token, or not the STACKIT audience")
		return
	}
	jwtToken, err := sa.FederatedToken(10 * time.Minute)
	if err != nil {
		writeSKEError(w, http.StatusInternalServerError, "cannot sign")
		return
	}
	writeSKEJSON(w, http.StatusOK, map[string]string{"value": jwtToken})
}

// OIDCRequestURL is the local stand-in for GitHub Actions'
// ACTIONS_ID_TOKEN_REQUEST_URL; the request token of an account is its
// email.
func (a *API) OIDCRequestURL() string { return a.URL + "/oidc/token-request" }

// accessTokenValid tells whether a bearer token is an access token the
// local token endpoint issued and that has not expired.
func (a *API) accessTokenValid(token string) bool {
	id := &a.identity
	if !strings.HasPrefix(token, "ey") || id.init() != nil {
		return false
	}
	_, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return &id.signer.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired())
	return err == nil
}

// AccessTokensIssued counts the access tokens the token endpoint issued.
func (a *API) AccessTokensIssued() int {
	a.logMu.Lock()
	defer a.logMu.Unlock()
	return a.tokensIssued
}
