package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/sigillo/sigillo/store"
)

// signerCert is one of the CA's certificates with the HSM signer for its key.
type signerCert struct {
	role   string
	keyID  string
	cert   *x509.Certificate
	signer crypto.Signer
}

// Lifetimes of the CA's own certificates.
const (
	rootValidity    = 20 * 365 * 24 * time.Hour
	issuingValidity = 10 * 365 * 24 * time.Hour
	ocspValidity    = 365 * 24 * time.Hour
	tsaValidity     = 5 * 365 * 24 * time.Hour
	// A responder or TSA certificate is re-issued (same key) when less than
	// this is left, so a restart never leaves the CA with an expired one.
	renewMargin = 30 * 24 * time.Hour
)

var (
	oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}
	oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidTimeStamp   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
)

// loadOrCreate returns the CA certificate of role, creating key and
// certificate (signed by parent, or self-signed for the root) when the
// store has none, and checking them when it has one.
func (a *Authority) loadOrCreate(ctx context.Context, role string, parent *signerCert) (*signerCert, error) {
	for attempt := 0; attempt < 2; attempt++ {
		e, err := a.st.CA(ctx, role)
		if err == nil {
			sc, err := a.load(ctx, e, parent)
			if err != nil {
				return nil, err
			}
			if (role == RoleOCSP || role == RoleTSA) && a.now().Add(renewMargin).After(sc.cert.NotAfter) {
				return a.reissueService(ctx, sc, parent)
			}
			return sc, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("ca: load %s: %w", role, err)
		}
		if role == RoleIssuing && parent == nil {
			return nil, errors.New("ca: no root CA")
		}
		sc, err := a.create(ctx, role, parent)
		if errors.Is(err, store.ErrConflict) {
			continue // another replica created it first: load theirs
		}
		return sc, err
	}
	return nil, fmt.Errorf("ca: %s CA keeps changing under us", role)
}

// load checks a stored CA entry against its HSM key and its issuer.
func (a *Authority) load(ctx context.Context, e store.CAEntry, parent *signerCert) (*signerCert, error) {
	cert, err := x509.ParseCertificate(e.CertDER)
	if err != nil {
		return nil, fmt.Errorf("ca: stored %s certificate: %w", e.Role, err)
	}
	signer, err := a.keys.Signer(ctx, e.KeyID)
	if err != nil {
		return nil, fmt.Errorf("ca: %s key %s: %w", e.Role, e.KeyID, err)
	}
	if err := checkKeyMatches(signer.Public(), cert); err != nil {
		return nil, fmt.Errorf("ca: refusing to start: %s key %s: %w", e.Role, e.KeyID, err)
	}
	if err := checkRole(e.Role, cert); err != nil {
		return nil, fmt.Errorf("ca: refusing to start: %w", err)
	}
	issuer := cert
	if parent != nil {
		issuer = parent.cert
	}
	if err := cert.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("ca: refusing to start: %s certificate is not signed by its issuer: %w", e.Role, err)
	}
	return &signerCert{role: e.Role, keyID: e.KeyID, cert: cert, signer: signer}, nil
}

// checkKeyMatches fails when pub is not the certificate's public key.
func checkKeyMatches(pub crypto.PublicKey, cert *x509.Certificate) error {
	k, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !k.Equal(cert.PublicKey) {
		return fmt.Errorf("HSM public key differs from the certificate %q", cert.Subject.CommonName)
	}
	return nil
}

// checkRole fails when cert cannot serve role.
func checkRole(role string, cert *x509.Certificate) error {
	switch role {
	case RoleRoot, RoleIssuing:
		if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 || cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
			return fmt.Errorf("%s certificate %q is not a CA with keyCertSign and cRLSign", role, cert.Subject.CommonName)
		}
		if role == RoleRoot && !bytesEqual(cert.RawIssuer, cert.RawSubject) {
			return fmt.Errorf("root certificate %q is not self-issued", cert.Subject.CommonName)
		}
	case RoleOCSP:
		if !hasEKU(cert, x509.ExtKeyUsageOCSPSigning) {
			return fmt.Errorf("OCSP certificate %q lacks extendedKeyUsage OCSPSigning", cert.Subject.CommonName)
		}
	case RoleTSA:
		if !hasEKU(cert, x509.ExtKeyUsageTimeStamping) || len(cert.ExtKeyUsage) != 1 {
			return fmt.Errorf("TSA certificate %q must have extendedKeyUsage timeStamping only", cert.Subject.CommonName)
		}
		critical := false
		for _, e := range cert.Extensions {
			if e.Id.Equal(oidExtKeyUsage) {
				critical = e.Critical
			}
		}
		if !critical {
			return fmt.Errorf("TSA certificate %q: extendedKeyUsage must be critical", cert.Subject.CommonName)
		}
	default:
		return fmt.Errorf("unknown CA role %q", role)
	}
	return nil
}

func hasEKU(c *x509.Certificate, want x509.ExtKeyUsage) bool {
	for _, u := range c.ExtKeyUsage {
		if u == want {
			return true
		}
	}
	return false
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// create generates the HSM key for role, has parent certify it and stores
// the result (ErrConflict when another replica was faster). The new key is
// destroyed again when it cannot be certified or another replica stored
// its CA first, so a lost race leaves no unused key in the token.
func (a *Authority) create(ctx context.Context, role string, parent *signerCert) (*signerCert, error) {
	keyID := newKeyID(role)
	algo := a.cfg.KeyAlgo
	if role == RoleOCSP || role == RoleTSA {
		algo = a.cfg.ServiceKeyAlgo
	}
	if _, err := a.keys.GenerateKey(ctx, keyID, algo); err != nil {
		return nil, fmt.Errorf("ca: generate %s key: %w", role, err)
	}
	sc, err := a.certifyNew(ctx, role, keyID, parent)
	if err != nil {
		a.discardKey(ctx, role, keyID)
		return nil, err
	}
	now := a.now()
	if err := a.st.PutCA(ctx, store.CAEntry{Role: role, KeyID: keyID, CertDER: sc.cert.Raw, CreatedAt: now}, false); err != nil {
		// Only a conflict says for sure that the entry is not ours; after
		// any other error the row may have been committed, and a CA entry
		// whose key is gone would stop every start-up.
		if errors.Is(err, store.ErrConflict) {
			a.discardKey(ctx, role, keyID)
		}
		return nil, fmt.Errorf("ca: store %s: %w", role, err)
	}
	if role != RoleRoot {
		if err := a.st.InsertCert(ctx, a.certRecord(sc.cert, parent.role, "ca:"+role, now), ""); err != nil {
			return nil, fmt.Errorf("ca: store %s certificate: %w", role, err)
		}
	}
	a.log.Info("ca: created", "role", role, "key_id", keyID, "subject", sc.cert.Subject.String(), "serial", serialHex(sc.cert.SerialNumber))
	_ = a.record(ctx, "system", "ca.created", "cert:"+serialHex(sc.cert.SerialNumber), "success",
		map[string]string{"role": role, "key_id": keyID, "subject": sc.cert.Subject.String()})
	return sc, nil
}

// certifyNew has parent (the key itself for the root) certify the new
// HSM key keyID for role.
func (a *Authority) certifyNew(ctx context.Context, role, keyID string, parent *signerCert) (*signerCert, error) {
	signer, err := a.keys.Signer(ctx, keyID)
	if err != nil {
		return nil, fmt.Errorf("ca: %s key %s: %w", role, keyID, err)
	}
	sc := &signerCert{role: role, keyID: keyID, signer: signer}
	issuer := parent
	if role == RoleRoot {
		issuer = sc
	}
	tmpl, err := a.caTemplate(role, signer.Public(), issuer)
	if err != nil {
		return nil, err
	}
	if sc.cert, err = a.signCert(tmpl, signer.Public(), issuer, func(c *x509.Certificate) error { return checkRole(role, c) }); err != nil {
		return nil, fmt.Errorf("ca: certify %s: %w", role, err)
	}
	return sc, nil
}

// discardKey destroys a CA key that was generated but will not be used.
// Failing to is not fatal: the key stays unused in the token.
func (a *Authority) discardKey(ctx context.Context, role, keyID string) {
	if err := a.keys.DestroyKey(context.WithoutCancel(ctx), keyID); err != nil {
		a.log.Warn("ca: unused key left in the HSM", "role", role, "key_id", keyID, "error", err)
	}
}

// reissueService certifies the existing OCSP or TSA key again before its
// certificate expires.
func (a *Authority) reissueService(ctx context.Context, old *signerCert, parent *signerCert) (*signerCert, error) {
	tmpl, err := a.caTemplate(old.role, old.signer.Public(), parent)
	if err != nil {
		return nil, err
	}
	cert, err := a.signCert(tmpl, old.signer.Public(), parent, func(c *x509.Certificate) error { return checkRole(old.role, c) })
	if err != nil {
		return nil, fmt.Errorf("ca: re-certify %s: %w", old.role, err)
	}
	now := a.now()
	if err := a.st.InsertCert(ctx, a.certRecord(cert, parent.role, "ca:"+old.role, now), serialHex(old.cert.SerialNumber)); err != nil && !errors.Is(err, store.ErrConflict) {
		return nil, fmt.Errorf("ca: store %s certificate: %w", old.role, err)
	}
	if err := a.st.PutCA(ctx, store.CAEntry{Role: old.role, KeyID: old.keyID, CertDER: cert.Raw, CreatedAt: now}, true); err != nil {
		return nil, fmt.Errorf("ca: store %s: %w", old.role, err)
	}
	_ = a.record(ctx, "system", "ca.renewed", "cert:"+serialHex(cert.SerialNumber), "success",
		map[string]string{"role": old.role, "supersedes": serialHex(old.cert.SerialNumber)})
	return &signerCert{role: old.role, keyID: old.keyID, cert: cert, signer: old.signer}, nil
}

// caTemplate is the profile of the CA's own certificates.
func (a *Authority) caTemplate(role string, pub crypto.PublicKey, issuer *signerCert) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	now := a.now().UTC().Truncate(time.Second)
	names := map[string]string{
		RoleRoot:    " Root CA",
		RoleIssuing: " Issuing CA",
		RoleOCSP:    " OCSP Responder",
		RoleTSA:     " Time-Stamping Unit",
	}
	t := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   a.cfg.Organization + names[role],
			Organization: []string{a.cfg.Organization},
			Country:      []string{a.cfg.Country},
		},
		NotBefore:             now.Add(-time.Minute),
		SubjectKeyId:          ski,
		BasicConstraintsValid: true,
	}
	var life time.Duration
	switch role {
	case RoleRoot:
		life = rootValidity
		t.IsCA = true
		t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	case RoleIssuing:
		life = issuingValidity
		t.IsCA, t.MaxPathLenZero = true, true
		t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		t.CRLDistributionPoints = []string{a.cfg.PublicURL + "/ca/root.crl"}
		t.IssuingCertificateURL = []string{a.cfg.PublicURL + "/ca/root.crt"}
	case RoleOCSP:
		life = ocspValidity
		t.KeyUsage = x509.KeyUsageDigitalSignature
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
		t.ExtraExtensions = []pkix.Extension{{Id: oidOCSPNoCheck, Value: []byte{0x05, 0x00}}}
		t.IssuingCertificateURL = []string{a.cfg.PublicURL + "/ca/issuer.crt"}
	case RoleTSA:
		life = tsaValidity
		t.KeyUsage = x509.KeyUsageDigitalSignature
		eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{oidTimeStamp})
		t.ExtraExtensions = []pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: eku}}
		t.CRLDistributionPoints = []string{a.cfg.PublicURL + "/ca/crl"}
		t.OCSPServer = []string{a.cfg.PublicURL + "/ca/ocsp"}
		t.IssuingCertificateURL = []string{a.cfg.PublicURL + "/ca/issuer.crt"}
	}
	t.NotAfter = now.Add(life)
	if role != RoleRoot && t.NotAfter.After(issuer.cert.NotAfter) {
		t.NotAfter = issuer.cert.NotAfter
	}
	return t, nil
}

// newSerial returns a random positive 16-byte serial (126 random bits; the
// top bits are fixed so the DER encoding is always exactly 16 bytes).
func newSerial() (*big.Int, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	b[0] = b[0]&0x3f | 0x40
	return new(big.Int).SetBytes(b[:]), nil
}

// serialHex is the canonical text form of a serial: lower-case hex.
func serialHex(n *big.Int) string { return n.Text(16) }

// subjectKeyID is the RFC 5280 method-1 key identifier (SHA-1 of the key bits).
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("subject key id: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("subject key id: %w", err)
	}
	h := sha1.Sum(spki.PublicKey.Bytes)
	return h[:], nil
}

// lintKey returns a throwaway in-memory key of the same type as pub, so a
// TBS signed with it carries the same signature algorithm as the HSM's.
func (a *Authority) lintKey(pub crypto.PublicKey) (crypto.Signer, error) {
	var kind string
	var gen func() (crypto.Signer, error)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		kind = "ec-" + k.Curve.Params().Name
		gen = func() (crypto.Signer, error) { return ecdsa.GenerateKey(k.Curve, rand.Reader) }
	case *rsa.PublicKey:
		kind = "rsa" // Go signs every RSA size with SHA256WithRSA
		gen = func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }
	default:
		return nil, fmt.Errorf("unsupported CA key type %T", pub)
	}
	a.lintMu.Lock()
	defer a.lintMu.Unlock()
	if s, ok := a.lintKeys[kind]; ok {
		return s, nil
	}
	s, err := gen()
	if err != nil {
		return nil, err
	}
	a.lintKeys[kind] = s
	return s, nil
}

// signCert has issuer sign tmpl for pub. The TBS is first signed with a
// throwaway key, parsed back and checked by check; only then does the HSM
// sign, and its certificate must carry the same TBS and verify.
func (a *Authority) signCert(tmpl *x509.Certificate, pub crypto.PublicKey, issuer *signerCert, check func(*x509.Certificate) error) (*x509.Certificate, error) {
	selfSigned := issuer.cert == nil
	parent := issuer.cert
	if selfSigned {
		parent = tmpl
	}
	lk, err := a.lintKey(issuer.signer.Public())
	if err != nil {
		return nil, err
	}
	lintParent := *parent
	lintParent.PublicKey = lk.Public()
	lintDER, err := x509.CreateCertificate(rand.Reader, tmpl, &lintParent, pub, lk)
	if err != nil {
		return nil, fmt.Errorf("pre-sign: %w", err)
	}
	lint, err := x509.ParseCertificate(lintDER)
	if err != nil {
		return nil, fmt.Errorf("pre-signed certificate does not parse: %w", err)
	}
	if err := checkKeyMatches(pub, lint); err != nil {
		return nil, fmt.Errorf("pre-signed certificate: %w", err)
	}
	if lint.NotAfter.Before(lint.NotBefore) || lint.SerialNumber.Sign() <= 0 || len(lint.SerialNumber.Bytes()) > 20 {
		return nil, errors.New("pre-signed certificate: bad validity or serial")
	}
	if !selfSigned && lint.NotAfter.After(issuer.cert.NotAfter) {
		return nil, errors.New("pre-signed certificate outlives its issuer")
	}
	if err := check(lint); err != nil {
		return nil, fmt.Errorf("pre-signed certificate rejected: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, issuer.signer)
	if err != nil {
		return nil, errsHSM(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("signed certificate does not parse: %w", err)
	}
	if !bytesEqual(cert.RawTBSCertificate, lint.RawTBSCertificate) {
		return nil, errors.New("signed TBS differs from the checked one")
	}
	verifier := parent
	if selfSigned {
		verifier = cert
	}
	if err := cert.CheckSignatureFrom(verifier); err != nil {
		return nil, fmt.Errorf("signed certificate does not verify: %w", err)
	}
	return cert, nil
}

// certRecord is the store row of a freshly issued certificate.
func (a *Authority) certRecord(c *x509.Certificate, issuerRole, owner string, now time.Time) store.CertRecord {
	return store.CertRecord{
		Serial: serialHex(c.SerialNumber), Issuer: issuerRole, Owner: owner, Subject: c.Subject.String(),
		DER: c.Raw, Status: string(StatusValid), NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		CreatedAt: now, UpdatedAt: now,
	}
}
