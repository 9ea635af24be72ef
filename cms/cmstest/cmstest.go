// Package cmstest mints throw-away PKIs for tests of code that signs or
// validates CMS/PAdES: a root CA that issues signer and TSA certificates,
// an in-process RFC 3161 time-stamp authority (also served over HTTP), and
// OCSP/CRL responses. Nothing here is for production: keys live in memory
// and the TSA trusts whatever clock it is given.
package cmstest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// NewKey returns an in-memory key of type "rsa-2048", "rsa-3072",
// "rsa-4096", "p-256" or "p-384".
func NewKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "rsa-2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa-3072":
		k, err = rsa.GenerateKey(rand.Reader, 3072)
	case "rsa-4096":
		k, err = rsa.GenerateKey(rand.Reader, 4096)
	case "p-256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p-384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		t.Fatalf("cmstest: unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatalf("cmstest: generate %s: %v", kind, err)
	}
	return k
}

// CA is a test certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain is the CA's chain up to and including the root (Cert first).
	Chain []*x509.Certificate
	// OCSPURL and CRLURL, when set before Issue, go into issued
	// certificates.
	OCSPURL, CRLURL string

	mu      sync.Mutex
	serial  int64
	revoked map[string]time.Time
}

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewRoot makes a self-signed root CA with a P-256 key.
func NewRoot(t testing.TB, cn string) *CA {
	t.Helper()
	key := NewKey(t, "p-256")
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"sigillo test"}},
		NotBefore:             start,
		NotAfter:              start.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("cmstest: root: %v", err)
	}
	c, _ := x509.ParseCertificate(der)
	return &CA{Cert: c, Key: key, Chain: []*x509.Certificate{c}, serial: 1, revoked: map[string]time.Time{}}
}

// Profile is the kind of certificate Issue makes.
type Profile int

// Certificate profiles.
const (
	// Signer: digitalSignature + nonRepudiation, EKU emailProtection.
	Signer Profile = iota
	// TSA: digitalSignature, critical EKU timeStamping.
	TSA
	// SubCA: an intermediate CA.
	SubCA
)

// Issue certifies pub with the given profile and returns the certificate.
func (ca *CA) Issue(t testing.TB, cn string, pub crypto.PublicKey, p Profile) *x509.Certificate {
	t.Helper()
	ca.mu.Lock()
	ca.serial++
	serial := ca.serial
	ca.mu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(serial<<16 | 0x5a),
		Subject:        pkix.Name{CommonName: cn, Organization: []string{"sigillo test"}},
		NotBefore:      start,
		NotAfter:       start.AddDate(3, 0, 0),
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		AuthorityKeyId: ca.Cert.SubjectKeyId,
	}
	if ca.OCSPURL != "" {
		tmpl.OCSPServer = []string{ca.OCSPURL}
	}
	if ca.CRLURL != "" {
		tmpl.CRLDistributionPoints = []string{ca.CRLURL}
	}
	switch p {
	case TSA:
		// RFC 3161 §2.3: the timeStamping EKU must be the only one and critical;
		// crypto/x509 would mark it non-critical, so it is added by hand.
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = nil
		eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
		tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}}
	case SubCA:
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		tmpl.ExtKeyUsage = nil
		tmpl.BasicConstraintsValid = true
		tmpl.IsCA = true
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatalf("cmstest: issue %s: %v", cn, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("cmstest: parse %s: %v", cn, err)
	}
	return c
}

// SubCA makes an intermediate CA under ca.
func (ca *CA) SubCA(t testing.TB, cn string) *CA {
	t.Helper()
	key := NewKey(t, "p-256")
	c := ca.Issue(t, cn, key.Public(), SubCA)
	return &CA{Cert: c, Key: key, Chain: append([]*x509.Certificate{c}, ca.Chain...), serial: 1, revoked: map[string]time.Time{},
		OCSPURL: ca.OCSPURL, CRLURL: ca.CRLURL}
}

// Leaf makes a key of the given kind and a certificate for it; the
// returned chain is leaf first, then the CA chain.
func (ca *CA) Leaf(t testing.TB, cn, kind string, p Profile) (crypto.Signer, []*x509.Certificate) {
	t.Helper()
	k := NewKey(t, kind)
	c := ca.Issue(t, cn, k.Public(), p)
	return k, append([]*x509.Certificate{c}, ca.Chain...)
}

// Revoke marks a certificate revoked for OCSP and CRL answers.
func (ca *CA) Revoke(c *x509.Certificate) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.revoked[c.SerialNumber.String()] = start.AddDate(0, 6, 0)
}

// OCSP returns a signed OCSP response for cert (issued by ca), produced at
// now.
func (ca *CA) OCSP(t testing.TB, cert *x509.Certificate, now time.Time) []byte {
	t.Helper()
	der, err := ca.ocspFor(cert.SerialNumber, now)
	if err != nil {
		t.Fatalf("cmstest: OCSP: %v", err)
	}
	return der
}

func (ca *CA) ocspFor(serial *big.Int, now time.Time) ([]byte, error) {
	ca.mu.Lock()
	at, revoked := ca.revoked[serial.String()]
	ca.mu.Unlock()
	tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: serial, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour)}
	if revoked {
		tmpl.Status, tmpl.RevokedAt = ocsp.Revoked, at
	}
	return ocsp.CreateResponse(ca.Cert, ca.Cert, tmpl, ca.Key)
}

// CRL returns a CRL of ca produced at now.
func (ca *CA) CRL(t testing.TB, now time.Time) []byte {
	t.Helper()
	ca.mu.Lock()
	var entries []x509.RevocationListEntry
	for s, at := range ca.revoked {
		n, _ := new(big.Int).SetString(s, 10)
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: at})
	}
	ca.mu.Unlock()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(now.Unix()), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatalf("cmstest: CRL: %v", err)
	}
	return der
}

// WritePEM writes certificates as PEM to dir/name and returns the path
// (for openssl -CAfile and certutil).
func WritePEM(t testing.TB, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Revocations answers revocation queries from test CAs in-process (it
// satisfies pades.ValidationSource). OCSP answers come from the CA whose
// certificate is the issuer; CRLs too when WithCRL is set.
type Revocations struct {
	T       testing.TB
	CAs     []*CA
	WithCRL bool
	Now     time.Time
	Calls   int
}

// Revocation returns an OCSP response (and a CRL if WithCRL) for cert.
func (r *Revocations) Revocation(_ context.Context, cert, issuer *x509.Certificate) ([]byte, []byte, error) {
	r.Calls++
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	for _, ca := range r.CAs {
		if ca.Cert.Equal(issuer) {
			var crl []byte
			if r.WithCRL {
				crl = ca.CRL(r.T, now)
			}
			return ca.OCSP(r.T, cert, now), crl, nil
		}
	}
	return nil, nil, fmt.Errorf("cmstest: no CA for issuer %q", issuer.Subject)
}

// RevocationHandler serves OCSP (POST, any path ending in /ocsp) and the
// CRL (GET, any other path) of ca over HTTP. Point ca.OCSPURL / ca.CRLURL
// at an httptest server running it before issuing certificates.
func (ca *CA) RevocationHandler(t testing.TB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/ocsp") {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
			req, err := ocsp.ParseRequest(body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			der, err := ca.ocspFor(req.SerialNumber, time.Now())
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/ocsp-response")
			w.Write(der)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(ca.CRL(t, time.Now()))
	})
}
