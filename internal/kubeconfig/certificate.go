package kubeconfig

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// ClientCertificate asks for a client certificate for user in groups.
type ClientCertificate struct {
	User   string
	Groups []string
	TTL    time.Duration
	// SignTimeout bounds the wait for the signer (default 2m).
	SignTimeout time.Duration
}

// IssuedCertificate is a signed client certificate and its key, PEM-encoded.
type IssuedCertificate struct {
	CertificatePEM []byte
	KeyPEM         []byte
	NotAfter       time.Time
}

// ErrCSRDenied means the CertificateSigningRequest was denied or failed.
var ErrCSRDenied = errors.New("certificate signing request denied")

// ErrCSRNotSigned means the signer did not issue the certificate in time.
var ErrCSRNotSigned = errors.New("certificate signing request not signed")

// IssueClientCertificate generates a key in-process, asks the cluster's
// kubernetes.io/kube-apiserver-client signer for a certificate valid for
// TTL, approves the request, waits for the certificate and removes the
// request. The key never leaves this process except in the result.
// Certificates cannot be revoked before they expire.
func (i *Issuer) IssueClientCertificate(ctx context.Context, req ClientCertificate) (*IssuedCertificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csrPEM, err := certutil.MakeCSR(key, &pkix.Name{CommonName: req.User, Organization: req.Groups}, nil, nil)
	if err != nil {
		return nil, err
	}
	seconds := int32(req.TTL / time.Second)
	csrs := i.Client.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "kubecreds-short-lived-",
			Labels:       map[string]string{managedByLabel: "kubecreds"},
		},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:           csrPEM,
			SignerName:        certificatesv1.KubeAPIServerClientSignerName,
			ExpirationSeconds: &seconds,
			Usages:            []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, explain(err, "create a CertificateSigningRequest", "create certificatesigningrequests")
	}
	// The request is only a vehicle: remove it whatever happens.
	defer func() {
		_ = csrs.Delete(context.WithoutCancel(ctx), csr.Name, metav1.DeleteOptions{})
	}()
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type:    certificatesv1.CertificateApproved,
		Status:  corev1.ConditionTrue,
		Reason:  "KubecredsShortLivedKubeconfig",
		Message: "Approved by terraform-provider-kubecreds for a short-lived kubeconfig",
	})
	if _, err := csrs.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		return nil, explain(err, "approve CertificateSigningRequest "+csr.Name,
			"update certificatesigningrequests/approval and approve on signers kubernetes.io/kube-apiserver-client")
	}
	timeout := req.SignTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	var signed []byte
	// Not client-go's csr.WaitForCertificate: it lists and watches
	// CertificateSigningRequests, which needs list and watch on them where
	// this needs only get, and its informer retries a forbidden list
	// silently until the timeout, so missing RBAC would read as "not
	// signed" two minutes later instead of naming the permission at once.
	// The requests use ctx, not the wait's own deadline: a request cut by
	// that deadline would look like an unreachable server, not like a
	// signer that never answered.
	deadline := time.Now().Add(timeout)
	var notSigned bool
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		if time.Now().After(deadline) {
			notSigned = true
			return true, nil
		}
		got, err := csrs.Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			return false, explain(err, "read CertificateSigningRequest "+csr.Name, "get certificatesigningrequests")
		}
		for _, c := range got.Status.Conditions {
			if (c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed) && c.Status == corev1.ConditionTrue {
				return false, fmt.Errorf("%w: %s: %s", ErrCSRDenied, c.Reason, c.Message)
			}
		}
		signed = got.Status.Certificate
		return len(signed) > 0, nil
	})
	if err != nil {
		return nil, err
	}
	if notSigned {
		return nil, fmt.Errorf("%w within %s: is the kubernetes.io/kube-apiserver-client signer enabled on this cluster "+
			"(kube-controller-manager --cluster-signing-cert-file)?", ErrCSRNotSigned, timeout)
	}
	certs, err := certutil.ParseCertsPEM(signed)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("the signer returned no certificate: %v", err) //nolint:errorlint // err is nil when the PEM holds no certificate, and %w would print %!w(<nil>)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, err
	}
	return &IssuedCertificate{CertificatePEM: signed, KeyPEM: keyPEM, NotAfter: certs[0].NotAfter}, nil
}
