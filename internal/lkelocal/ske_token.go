package lkelocal

import (
	"crypto/rand"
	"crypto/rsa"
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
)

// skeIdentity is the local stand-in for STACKIT's token endpoint: one
// service account whose key (with its private key, as STACKIT hands it out)
// tests give the provider, so that stackit-sdk-go/core's real key flow runs:
// the client signs an assertion with the key, the endpoint checks it and
// answers an access token, which the SKE API then accepts.
type skeIdentity struct {
	once    sync.Once
	err     error
	saKey   *rsa.PrivateKey // the service account's key
	signer  *rsa.PrivateKey // signs the access tokens
	keyID   string
	subject string
	iss     string
}

func (id *skeIdentity) init() error {
	id.once.Do(func() {
		if id.saKey, id.err = rsa.GenerateKey(rand.Reader, 2048); id.err != nil {
			return
		}
		if id.signer, id.err = rsa.GenerateKey(rand.Reader, 2048); id.err != nil {
			return
		}
		id.keyID, id.subject, id.iss = uuid.NewString(), uuid.NewString(), "kubecreds-local@sa.stackit.cloud"
	})
	return id.err
}

// ServiceAccountKey is the key of the local SKE's service account, as
// STACKIT's portal gives it (JSON, private key included), for
// STACKIT_SERVICE_ACCOUNT_KEY. Its token endpoint is the local one.
func (a *SKEAPI) ServiceAccountKey() ([]byte, error) {
	id := &a.identity
	if err := id.init(); err != nil {
		return nil, err
	}
	priv := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(id.saKey)}))
	pubDER, err := x509.MarshalPKIXPublicKey(&id.saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	return json.Marshal(map[string]any{
		"id": uuid.NewString(), "publicKey": pub, "createdAt": time.Now().UTC().Format(time.RFC3339),
		"keyType": "USER_MANAGED", "keyOrigin": "GENERATED", "keyAlgorithm": "RSA_2048", "active": true,
		"credentials": map[string]any{
			"kid": id.keyID, "iss": id.iss, "sub": id.subject, "aud": a.URL + "/token",
			"privateKey": priv, "tokenEndpoint": a.URL + "/token",
		},
	})
}

// token answers the key flow's token request: grant_type
// urn:ietf:params:oauth:grant-type:jwt-bearer with an assertion signed by
// the service account's key (RS512, kid in the header).
func (a *SKEAPI) token(w http.ResponseWriter, r *http.Request) {
	id := &a.identity
	if err := id.init(); err != nil {
		writeSKEError(w, http.StatusInternalServerError, "no service account")
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		writeTokenError(w, "unsupported_grant_type")
		return
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != id.keyID {
			return nil, errors.New("unknown key")
		}
		return &id.saKey.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS512"}), jwt.WithExpirationRequired())
	if err != nil || claims["sub"] != id.subject {
		writeTokenError(w, "invalid_grant")
		return
	}
	access, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Subject: id.subject, Issuer: a.URL + "/token", IssuedAt: jwt.NewNumericDate(time.Now()),
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}).SignedString(id.signer)
	if err != nil {
		writeSKEError(w, http.StatusInternalServerError, "cannot sign")
		return
	}
	a.logMu.Lock()
	a.tokensIssued++
	a.logMu.Unlock()
	writeSKEJSON(w, http.StatusOK, map[string]any{"access_token": access, "expires_in": 3600, "token_type": "Bearer", "scope": ""})
}

func writeTokenError(w http.ResponseWriter, code string) {
	writeSKEJSON(w, http.StatusBadRequest, map[string]string{"error": code})
}

// accessTokenValid tells whether a bearer token is an access token the
// local token endpoint issued and that has not expired.
func (a *SKEAPI) accessTokenValid(token string) bool {
	id := &a.identity
	if !strings.HasPrefix(token, "ey") || id.init() != nil {
		return false
	}
	_, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return &id.signer.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired())
	return err == nil
}

// AccessTokensIssued counts the access tokens the token endpoint issued.
func (a *SKEAPI) AccessTokensIssued() int {
	a.logMu.Lock()
	defer a.logMu.Unlock()
	return a.tokensIssued
}
