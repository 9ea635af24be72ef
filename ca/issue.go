package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// IssueRequest asks for an end-entity certificate for a key the caller
// holds in the HSM. The subject comes from the holder's identity.
type IssueRequest struct {
	// PublicKey is the credential's public key (ECDSA or RSA).
	PublicKey crypto.PublicKey
	// CommonName, GivenName, Surname, SerialNumber (e.g. a fiscal code as
	// "TINIT-..."), Country (ISO 3166) and the optional Organization form
	// the subject.
	CommonName, GivenName, Surname, SerialNumber, Country, Organization string
	// Qualified adds the ETSI QC statements (QcCompliance, QcSSCD, QcType
	// esign) and the QCP-n-qscd policy.
	Qualified bool
	// Owner is stored with the certificate for lookup (e.g. a credential id).
	Owner string
	// Actor is who asked, for the audit log ("admin", "user:<id>"); default "system".
	Actor string
}

// Status is a certificate's lifecycle state.
type Status string

// Certificate states. Expired is derived from the validity, not stored.
const (
	StatusValid     Status = "valid"
	StatusSuspended Status = "suspended"
	StatusRevoked   Status = "revoked"
	StatusExpired   Status = "expired"
)

// Certificate is an issued certificate and its current state.
type Certificate struct {
	// Serial is the lower-case hex serial number.
	Serial string
	DER    []byte
	Cert   *x509.Certificate
	Status Status
	// RevokedAt is when it was suspended or revoked (zero when valid).
	RevokedAt time.Time
	// Reason is the CRL reason name: certificateHold when suspended.
	Reason string
	// Owner is what IssueRequest.Owner said.
	Owner string
	// SupersededBy is the serial of the renewal that replaced it.
	SupersededBy string
	// Qualified reports whether the certificate carries QC statements.
	Qualified bool
}

// OIDs of the end-entity profile.
var (
	oidGivenName   = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSurname     = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidQCStatement = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 3}
	// ETSI EN 319 412-5 statements.
	oidQcCompliance = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 1}
	oidQcSSCD       = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 4}
	oidQcType       = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6}
	oidQcTypeESign  = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6, 1}
	oidQcTypeESeal  = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6, 2}
	// ETSI EN 319 411-2 QCP-n-qscd and EN 319 411-1 NCP policies.
	oidPolicyQCPnQSCD = asn1.ObjectIdentifier{0, 4, 0, 194112, 1, 2}
	oidPolicyNCP      = asn1.ObjectIdentifier{0, 4, 0, 2042, 1, 1}
)

type qcStatement struct {
	ID   asn1.ObjectIdentifier
	Info asn1.RawValue `asn1:"optional"`
}

// qcStatements is the DER of the QCStatements extension value for a
// qualified electronic-signature certificate on a QSCD.
func qcStatements() []byte {
	esign, _ := asn1.Marshal([]asn1.ObjectIdentifier{oidQcTypeESign})
	der, _ := asn1.Marshal([]qcStatement{
		{ID: oidQcCompliance},
		{ID: oidQcSSCD},
		{ID: oidQcType, Info: asn1.RawValue{FullBytes: esign}},
	})
	return der
}

// IsQualified reports whether c carries the QcCompliance statement.
func IsQualified(c *x509.Certificate) bool { return qcOf(c).compliance }

// Signature qualifiers (CSC v2 signatureQualifier): the kind of signature
// a certificate makes, from its ETSI EN 319 412-5 statements.
const (
	// Signatures of natural persons.
	QualifierQES   = "eu_eidas_qes"   // qualified certificate, key on a QSCD
	QualifierAESQC = "eu_eidas_aesqc" // advanced, with a qualified certificate
	QualifierAES   = "eu_eidas_aes"   // advanced
	// Seals of legal persons (QcType eseal), likewise.
	QualifierQESeal   = "eu_eidas_qeseal"
	QualifierAESealQC = "eu_eidas_aesealqc"
	QualifierAESeal   = "eu_eidas_aeseal"
)

// Qualifiers lists every signature qualifier SignatureQualifier returns.
var Qualifiers = []string{QualifierQES, QualifierAESQC, QualifierAES, QualifierQESeal, QualifierAESealQC, QualifierAESeal}

// SignatureQualifier names the kind of signature c makes: QcCompliance
// with QcSSCD is qualified, QcCompliance alone advanced with a qualified
// certificate, no QcCompliance advanced; QcType eseal makes it a seal
// (no QcType means esign, EN 319 412-5 4.2.3).
func SignatureQualifier(c *x509.Certificate) string {
	qc := qcOf(c)
	switch {
	case qc.compliance && qc.sscd && qc.seal:
		return QualifierQESeal
	case qc.compliance && qc.sscd:
		return QualifierQES
	case qc.compliance && qc.seal:
		return QualifierAESealQC
	case qc.compliance:
		return QualifierAESQC
	case qc.seal:
		return QualifierAESeal
	}
	return QualifierAES
}

// qcFacts are the statements of a certificate that matter here.
type qcFacts struct{ compliance, sscd, seal bool }

// qcOf reads c's QCStatements; a malformed extension counts as none.
func qcOf(c *x509.Certificate) qcFacts {
	var f qcFacts
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidQCStatement) {
			continue
		}
		var sts []qcStatement
		if _, err := asn1.Unmarshal(e.Value, &sts); err != nil {
			return qcFacts{}
		}
		for _, s := range sts {
			switch {
			case s.ID.Equal(oidQcCompliance):
				f.compliance = true
			case s.ID.Equal(oidQcSSCD):
				f.sscd = true
			case s.ID.Equal(oidQcType):
				var types []asn1.ObjectIdentifier
				if _, err := asn1.Unmarshal(s.Info.FullBytes, &types); err == nil {
					for _, t := range types {
						f.seal = f.seal || t.Equal(oidQcTypeESeal)
					}
				}
			}
		}
	}
	return f
}

func (r IssueRequest) validate() error {
	var probs []string
	switch k := r.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			probs = append(probs, "missing public key")
		}
	case *rsa.PublicKey:
		if k == nil || k.N.BitLen() < 2048 {
			probs = append(probs, "RSA keys must have at least 2048 bits")
		}
	case nil:
		probs = append(probs, "missing public key")
	default:
		probs = append(probs, fmt.Sprintf("unsupported public key type %T", r.PublicKey))
	}
	if strings.TrimSpace(r.CommonName) == "" {
		probs = append(probs, "missing commonName")
	}
	if len(r.Country) != 2 || strings.ToUpper(r.Country) != r.Country {
		probs = append(probs, fmt.Sprintf("country %q must be an ISO 3166 two-letter upper-case code", r.Country))
	}
	for name, v := range map[string]string{"commonName": r.CommonName, "givenName": r.GivenName, "surname": r.Surname,
		"serialNumber": r.SerialNumber, "organization": r.Organization} {
		if len(v) > 64 {
			probs = append(probs, name+" longer than 64 characters")
		}
	}
	if r.Qualified && (r.GivenName == "" || r.Surname == "" || r.SerialNumber == "") {
		probs = append(probs, "a qualified certificate needs givenName, surname and serialNumber")
	}
	if len(probs) > 0 {
		return errs.Invalidf("Invalid certificate request: %s", strings.Join(probs, "; "))
	}
	return nil
}

// subject is the holder's distinguished name.
func (r IssueRequest) subject() pkix.Name {
	n := pkix.Name{CommonName: r.CommonName, SerialNumber: r.SerialNumber, Country: []string{r.Country}}
	if r.Organization != "" {
		n.Organization = []string{r.Organization}
	}
	if r.GivenName != "" {
		n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: oidGivenName, Value: r.GivenName})
	}
	if r.Surname != "" {
		n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: oidSurname, Value: r.Surname})
	}
	return n
}

// Issue certifies a credential key. The certificate is stored valid
// before it is returned, and the issuance audited.
func (a *Authority) Issue(ctx context.Context, req IssueRequest) (*Certificate, error) {
	return a.issue(ctx, req, "")
}

func (a *Authority) issue(ctx context.Context, req IssueRequest, supersedes string) (*Certificate, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	tmpl, err := a.leafTemplate(req)
	if err != nil {
		return nil, err
	}
	cert, err := a.signCert(tmpl, req.PublicKey, a.issuing, func(c *x509.Certificate) error { return checkLeaf(c, req) })
	if err != nil {
		if errs.KindOf(err) != errs.Internal {
			return nil, err
		}
		return nil, errs.Wrap(errs.Internal, "Certificate issuance failed", err)
	}
	now := a.now()
	rec := a.certRecord(cert, RoleIssuing, req.Owner, now)
	if err := a.st.InsertCert(ctx, rec, supersedes); err != nil {
		if errors.Is(err, store.ErrConflict) && supersedes != "" {
			return nil, errs.New(errs.Conflict, "", fmt.Sprintf("Certificate %s changed state during renewal; it was not renewed", supersedes))
		}
		return nil, fmt.Errorf("issue: %w", err)
	}
	profile := "standard"
	if req.Qualified {
		profile = "qualified"
	}
	a.met.issued.WithLabelValues(profile).Inc()
	detail := map[string]string{"profile": profile, "owner": req.Owner, "subject": cert.Subject.String()}
	action := "cert.issued"
	if supersedes != "" {
		action, detail["supersedes"] = "cert.renewed", supersedes
	}
	if err := a.record(ctx, req.Actor, action, "cert:"+rec.Serial, "success", detail); err != nil {
		if supersedes == "" {
			// Fail closed: an issuance nobody can audit must not leave a
			// usable certificate behind.
			at := a.now()
			if _, rerr := a.st.ChangeCert(ctx, rec.Serial, store.CertChange{From: []string{string(StatusValid)},
				Status: string(StatusRevoked), Reason: "cessationOfOperation", RevokedAt: at.Truncate(time.Second), At: at}); rerr != nil {
				a.log.Error("ca: could not withdraw an unaudited certificate", "serial", rec.Serial, "error", rerr)
			}
		}
		return nil, errs.Wrap(errs.Unavailable, "Audit log unavailable", err)
	}
	if supersedes != "" {
		a.refreshCRL(ctx, RoleIssuing)
	}
	return &Certificate{Serial: rec.Serial, DER: cert.Raw, Cert: cert, Status: StatusValid, Owner: req.Owner, Qualified: req.Qualified}, nil
}

// leafTemplate is the end-entity profile (ETSI EN 319 412-2 natural person).
func (a *Authority) leafTemplate(req IssueRequest) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(req.PublicKey)
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, "Unusable public key", err)
	}
	now := a.now().UTC().Truncate(time.Second)
	notAfter := now.Add(a.cfg.Validity)
	if notAfter.After(a.issuing.cert.NotAfter) {
		notAfter = a.issuing.cert.NotAfter
	}
	policies := []asn1.ObjectIdentifier{oidPolicyNCP}
	if req.Qualified {
		policies = []asn1.ObjectIdentifier{oidPolicyQCPnQSCD}
	}
	policies = append(policies, a.policies...)
	policyOIDs := make([]x509.OID, 0, len(policies))
	for _, p := range policies {
		oid, err := x509.OIDFromInts(toUint64s(p))
		if err != nil {
			return nil, fmt.Errorf("policy %v: %w", p, err)
		}
		policyOIDs = append(policyOIDs, oid)
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               req.subject(),
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageContentCommitment | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          ski,
		Policies:              policyOIDs,
		OCSPServer:            []string{a.cfg.PublicURL + "/ca/ocsp"},
		IssuingCertificateURL: []string{a.cfg.PublicURL + "/ca/issuer.crt"},
		CRLDistributionPoints: []string{a.cfg.PublicURL + "/ca/crl"},
	}
	if req.Qualified {
		t.ExtraExtensions = append(t.ExtraExtensions, pkix.Extension{Id: oidQCStatement, Value: qcStatements()})
	}
	return t, nil
}

// checkLeaf is the profile check run on the pre-signed certificate.
func checkLeaf(c *x509.Certificate, req IssueRequest) error {
	switch {
	case c.IsCA || !c.BasicConstraintsValid:
		return errors.New("end-entity certificate must have basicConstraints cA=false")
	case c.KeyUsage&x509.KeyUsageContentCommitment == 0:
		return errors.New("missing keyUsage nonRepudiation")
	case c.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0:
		return errors.New("end-entity certificate must not sign certificates or CRLs")
	case len(c.SerialNumber.Bytes()) != 16:
		return errors.New("serial number must be 16 bytes")
	case c.Subject.CommonName != req.CommonName || len(c.Subject.Country) != 1 || c.Subject.SerialNumber != req.SerialNumber:
		return errors.New("subject differs from the request")
	case len(c.OCSPServer) != 1 || len(c.IssuingCertificateURL) != 1 || len(c.CRLDistributionPoints) != 1:
		return errors.New("missing AIA or CRL distribution point")
	case len(c.PolicyIdentifiers) == 0:
		return errors.New("missing certificate policies")
	case IsQualified(c) != req.Qualified:
		return errors.New("QC statements do not match the profile")
	}
	return nil
}

// IssueCSR certifies the key of a PKCS#10 request (admin API). The CSR's
// signature must verify; the subject fields are taken from it.
func (a *Authority) IssueCSR(ctx context.Context, csrDER []byte, qualified bool, owner, actor string) (*Certificate, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, "Malformed PKCS#10 certificate request", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, errs.Wrap(errs.Invalid, "The certificate request's signature does not verify", err)
	}
	req := IssueRequest{PublicKey: csr.PublicKey, CommonName: csr.Subject.CommonName, SerialNumber: csr.Subject.SerialNumber,
		Qualified: qualified, Owner: owner, Actor: actor}
	if len(csr.Subject.Country) > 0 {
		req.Country = csr.Subject.Country[0]
	}
	if len(csr.Subject.Organization) > 0 {
		req.Organization = csr.Subject.Organization[0]
	}
	for _, n := range csr.Subject.Names {
		s, _ := n.Value.(string)
		switch {
		case n.Type.Equal(oidGivenName):
			req.GivenName = s
		case n.Type.Equal(oidSurname):
			req.Surname = s
		}
	}
	return a.Issue(ctx, req)
}

// Renew issues a new certificate with the same subject and profile for
// newKey (nil: the same key) and revokes the old one with reason
// superseded, in one store transaction. Only a valid, unexpired
// certificate can be renewed.
func (a *Authority) Renew(ctx context.Context, serial string, newKey crypto.PublicKey) (*Certificate, error) {
	old, err := a.Get(ctx, serial)
	if err != nil {
		return nil, err
	}
	if old.Status != StatusValid {
		return nil, errs.New(errs.Conflict, "", fmt.Sprintf("Certificate %s is %s; only a valid certificate can be renewed", old.Serial, old.Status))
	}
	c := old.Cert
	req := IssueRequest{PublicKey: newKey, CommonName: c.Subject.CommonName, SerialNumber: c.Subject.SerialNumber,
		Qualified: old.Qualified, Owner: old.Owner}
	if req.PublicKey == nil {
		req.PublicKey = c.PublicKey
	}
	if len(c.Subject.Country) > 0 {
		req.Country = c.Subject.Country[0]
	}
	if len(c.Subject.Organization) > 0 {
		req.Organization = c.Subject.Organization[0]
	}
	for _, n := range c.Subject.Names {
		s, _ := n.Value.(string)
		switch {
		case n.Type.Equal(oidGivenName):
			req.GivenName = s
		case n.Type.Equal(oidSurname):
			req.Surname = s
		}
	}
	return a.issue(ctx, req, old.Serial)
}

// errsHSM classifies a signing failure: the HSM (or its network) is the
// only thing that fails there, so the client sees "unavailable".
func errsHSM(err error) error {
	return errs.Wrap(errs.Unavailable, "The signing key is unavailable", err)
}

func toUint64s(oid asn1.ObjectIdentifier) []uint64 {
	out := make([]uint64, len(oid))
	for i, v := range oid {
		out[i] = uint64(v)
	}
	return out
}

// NaturalPersonSerial is the subject serialNumber of a natural person
// identified by a tax number (ETSI EN 319 412-1 §5.1.3): "TIN" + country +
// "-" + the number, e.g. "TINIT-RSSMRA80A01H501U". A value that already
// has a semantics prefix is returned unchanged; an empty one stays empty.
func NaturalPersonSerial(country, taxNumber string) string {
	t := strings.ToUpper(strings.TrimSpace(taxNumber))
	if t == "" {
		return ""
	}
	if len(t) > 6 && t[5] == '-' && (strings.HasPrefix(t, "TIN") || strings.HasPrefix(t, "PAS") || strings.HasPrefix(t, "IDC") || strings.HasPrefix(t, "PNO")) {
		return t
	}
	return "TIN" + strings.ToUpper(country) + "-" + t
}
