package fakecloud

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// Authority is a certificate authority held in memory and on disk. Each
// emulated cluster has its own, as each LKE cluster does, so a credential of
// one cluster is never accepted by another.
type Authority struct {
	Cert     *x509.Certificate
	key      crypto.Signer
	CertPath string
	KeyPath  string
}

// NewAuthority creates a self-signed CA and writes it as <dir>/<name>.crt|.key.
// The CA is a single certificate: kube-controller-manager's CSR signer
// refuses a bundle.
func NewAuthority(dir, name string) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: name}, key)
	if err != nil {
		return nil, fmt.Errorf("create CA %s: %w", name, err)
	}
	ca := &Authority{Cert: cert, key: key,
		CertPath: filepath.Join(dir, name+".crt"),
		KeyPath:  filepath.Join(dir, name+".key"),
	}
	if err := writeCertAndKey(ca.CertPath, ca.KeyPath, cert, key); err != nil {
		return nil, err
	}
	return ca, nil
}

// CertPEM is the CA certificate in PEM form, as kubeconfigs embed it.
func (a *Authority) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: a.Cert.Raw})
}

// Leaf describes a certificate the authority issues.
type Leaf struct {
	CommonName   string
	Organization []string
	Hosts        []string // DNS names and IPs; non-empty makes a serving certificate
}

// Issue signs a certificate for l and writes it with its key as
// <dir>/<name>.crt|.key, returning the two paths.
func (a *Authority) Issue(dir, name string, l Leaf) (certPath, keyPath string, err error) {
	return a.IssueUntil(dir, name, l, time.Now().Add(365*24*time.Hour))
}

// IssueUntil is Issue with a certificate valid until notAfter.
func (a *Authority) IssueUntil(dir, name string, l Leaf, notAfter time.Time) (certPath, keyPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: l.CommonName, Organization: l.Organization},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(l.Hosts) > 0 {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range l.Hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.key)
	if err != nil {
		return "", "", fmt.Errorf("issue certificate %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	return certPath, keyPath, writeCertAndKey(certPath, keyPath, cert, key)
}

// NewServiceAccountKey writes the RSA key pair that signs service-account
// tokens. RSA 2048 gives RS256 tokens of the length LKE's have.
func NewServiceAccountKey(dir string) (privPath, pubPath string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	privPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return "", "", err
	}
	pubPEM, err := encodePublicKeyPEM(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	privPath, pubPath = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(privPath, privPEM, 0o600); err != nil {
		return "", "", err
	}
	return privPath, pubPath, os.WriteFile(pubPath, pubPEM, 0o600)
}

func writeCertAndKey(certPath, keyPath string, cert *x509.Certificate, key crypto.Signer) error {
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: cert.Raw})
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyPath, keyPEM, 0o600)
}

func encodePublicKeyPEM(pub any) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// RandomHex is n random bytes in hex: tokens, names.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
