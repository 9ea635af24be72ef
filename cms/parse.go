package cms

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Parsed is a decoded SignedData with exactly one SignerInfo.
type Parsed struct {
	// ContentType is the eContentType (id-data for our signatures,
	// id-ct-TSTInfo for time-stamp tokens).
	ContentType asn1.ObjectIdentifier
	// Content is the encapsulated content, nil when detached.
	Content []byte
	// Hash is the SignerInfo digest algorithm.
	Hash crypto.Hash
	// Certificates are SignedData.certificates in the order found.
	Certificates []*x509.Certificate
	// Signer is the certificate named by the SignerInfo sid, nil if the
	// SignedData does not carry it.
	Signer *x509.Certificate
	// SignedAttrs and UnsignedAttrs are the attributes in encoded order.
	SignedAttrs   []Attribute
	UnsignedAttrs []Attribute
	// Scheme is the signature scheme; Signature the SignerInfo signature.
	Scheme    Scheme
	Signature []byte

	signedAttrsDER []byte // re-tagged as universal SET, as signed
	pssSalt        int
	sidIssuer      []byte
	sidSerial      *big.Int
	sidSKI         []byte
}

// Parse decodes a DER ContentInfo(SignedData). Trailing zero bytes (the
// padding of a PDF /Contents placeholder) are accepted; anything else after
// the structure is not.
func Parse(der []byte) (p *Parsed, err error) {
	in := cryptobyte.String(der)
	var ci, sd cryptobyte.String
	var ctype asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1ObjectIdentifier(&ctype) {
		return nil, fmt.Errorf("%w: ContentInfo", ErrMalformed)
	}
	for _, c := range in {
		if c != 0 {
			return nil, fmt.Errorf("%w: trailing data", ErrMalformed)
		}
	}
	if !ctype.Equal(OIDSignedData) {
		return nil, fmt.Errorf("%w: content type %v is not signedData", ErrMalformed, ctype)
	}
	var wrapped cryptobyte.String
	if !ci.ReadASN1(&wrapped, cbasn1.Tag(0).ContextSpecific().Constructed()) || !wrapped.ReadASN1(&sd, cbasn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: SignedData", ErrMalformed)
	}
	p = &Parsed{}
	var version int64
	var digestAlgs, encap, signerInfos cryptobyte.String
	if !sd.ReadASN1Integer(&version) || !sd.ReadASN1(&digestAlgs, cbasn1.SET) || !sd.ReadASN1(&encap, cbasn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: SignedData header", ErrMalformed)
	}
	if !encap.ReadASN1ObjectIdentifier(&p.ContentType) {
		return nil, fmt.Errorf("%w: eContentType", ErrMalformed)
	}
	var eContent cryptobyte.String
	var hasContent bool
	if !encap.ReadOptionalASN1(&eContent, &hasContent, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, fmt.Errorf("%w: eContent", ErrMalformed)
	}
	if hasContent {
		var oct []byte
		if !eContent.ReadASN1Bytes(&oct, cbasn1.OCTET_STRING) {
			return nil, fmt.Errorf("%w: eContent is not a DER OCTET STRING", ErrMalformed)
		}
		p.Content = oct
	}
	var certs cryptobyte.String
	if !sd.ReadOptionalASN1(&certs, nil, cbasn1.Tag(0).ContextSpecific().Constructed()) ||
		!sd.SkipOptionalASN1(cbasn1.Tag(1).ContextSpecific().Constructed()) {
		return nil, fmt.Errorf("%w: certificates", ErrMalformed)
	}
	for !certs.Empty() {
		var elem cryptobyte.String
		var tag cbasn1.Tag
		if !certs.ReadAnyASN1Element(&elem, &tag) {
			return nil, fmt.Errorf("%w: certificate", ErrMalformed)
		}
		if tag != cbasn1.SEQUENCE {
			continue // other CertificateChoices are not used by us
		}
		c, err := x509.ParseCertificate(elem)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %v", ErrMalformed, err)
		}
		p.Certificates = append(p.Certificates, c)
	}
	if !sd.ReadASN1(&signerInfos, cbasn1.SET) || !sd.Empty() {
		return nil, fmt.Errorf("%w: signerInfos", ErrMalformed)
	}
	var si cryptobyte.String
	if !signerInfos.ReadASN1(&si, cbasn1.SEQUENCE) || !signerInfos.Empty() {
		return nil, fmt.Errorf("%w: want exactly one SignerInfo", ErrUnsupported)
	}
	if err := p.parseSignerInfo(si); err != nil {
		return nil, err
	}
	for _, c := range p.Certificates {
		if p.sidSerial != nil && bytes.Equal(c.RawIssuer, p.sidIssuer) && c.SerialNumber.Cmp(p.sidSerial) == 0 ||
			p.sidSKI != nil && bytes.Equal(c.SubjectKeyId, p.sidSKI) {
			p.Signer = c
			break
		}
	}
	return p, nil
}

func (p *Parsed) parseSignerInfo(si cryptobyte.String) error {
	var version int64
	var sid, digAlg, sigAlg cryptobyte.String
	var sidTag cbasn1.Tag
	if !si.ReadASN1Integer(&version) || !si.ReadAnyASN1(&sid, &sidTag) || !si.ReadASN1(&digAlg, cbasn1.SEQUENCE) {
		return fmt.Errorf("%w: SignerInfo", ErrMalformed)
	}
	switch sidTag {
	case cbasn1.SEQUENCE:
		var issuer cryptobyte.String
		p.sidSerial = new(big.Int)
		if !sid.ReadASN1Element(&issuer, cbasn1.SEQUENCE) || !sid.ReadASN1Integer(p.sidSerial) {
			return fmt.Errorf("%w: IssuerAndSerialNumber", ErrMalformed)
		}
		p.sidIssuer = issuer
	case cbasn1.Tag(0).ContextSpecific():
		p.sidSKI = sid
	default:
		return fmt.Errorf("%w: SignerIdentifier", ErrMalformed)
	}
	var digOID asn1.ObjectIdentifier
	if !digAlg.ReadASN1ObjectIdentifier(&digOID) {
		return fmt.Errorf("%w: digestAlgorithm", ErrMalformed)
	}
	h, err := HashFromOID(digOID)
	if err != nil {
		return err
	}
	p.Hash = h
	var signed cryptobyte.String
	var hasSigned bool
	if hasSigned = si.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific().Constructed()); hasSigned && !si.ReadASN1Element(&signed, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return fmt.Errorf("%w: signedAttrs", ErrMalformed)
	}
	if !hasSigned {
		return fmt.Errorf("%w: SignerInfo without signed attributes", ErrUnsupported)
	}
	p.signedAttrsDER = append([]byte(nil), signed...)
	p.signedAttrsDER[0] = byte(cbasn1.SET)
	if p.SignedAttrs, err = parseAttributes(p.signedAttrsDER, cbasn1.SET); err != nil {
		return err
	}
	if !si.ReadASN1(&sigAlg, cbasn1.SEQUENCE) || !si.ReadASN1Bytes(&p.Signature, cbasn1.OCTET_STRING) {
		return fmt.Errorf("%w: signature", ErrMalformed)
	}
	if err := p.parseSigAlg(sigAlg); err != nil {
		return err
	}
	var unsigned cryptobyte.String
	var hasUnsigned bool
	if hasUnsigned = si.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific().Constructed()); hasUnsigned && !si.ReadASN1Element(&unsigned, cbasn1.Tag(1).ContextSpecific().Constructed()) || !si.Empty() {
		return fmt.Errorf("%w: unsignedAttrs", ErrMalformed)
	}
	if hasUnsigned {
		if p.UnsignedAttrs, err = parseAttributes(unsigned, cbasn1.Tag(1).ContextSpecific().Constructed()); err != nil {
			return err
		}
	}
	return nil
}

func (p *Parsed) parseSigAlg(alg cryptobyte.String) error {
	var oid asn1.ObjectIdentifier
	if !alg.ReadASN1ObjectIdentifier(&oid) {
		return fmt.Errorf("%w: signatureAlgorithm", ErrMalformed)
	}
	implied := crypto.Hash(0)
	switch {
	case oid.Equal(oidRSAEncryption):
		p.Scheme = PKCS1v15
	case oid.Equal(oidSHA256WithRSA), oid.Equal(oidSHA384WithRSA), oid.Equal(oidSHA512WithRSA):
		p.Scheme = PKCS1v15
		implied = map[string]crypto.Hash{oidSHA256WithRSA.String(): crypto.SHA256, oidSHA384WithRSA.String(): crypto.SHA384, oidSHA512WithRSA.String(): crypto.SHA512}[oid.String()]
	case oid.Equal(oidECDSAWithSHA256), oid.Equal(oidECDSAWithSHA384), oid.Equal(oidECDSAWithSHA512):
		p.Scheme = ECDSA
		implied = map[string]crypto.Hash{oidECDSAWithSHA256.String(): crypto.SHA256, oidECDSAWithSHA384.String(): crypto.SHA384, oidECDSAWithSHA512.String(): crypto.SHA512}[oid.String()]
	case oid.Equal(oidECPublicKey):
		p.Scheme = ECDSA
	case oid.Equal(oidRSAPSS):
		p.Scheme = PSS
		var params, hashAlg, inner cryptobyte.String
		var hasHash bool
		if !alg.ReadASN1(&params, cbasn1.SEQUENCE) ||
			!params.ReadOptionalASN1(&hashAlg, &hasHash, cbasn1.Tag(0).ContextSpecific().Constructed()) {
			return fmt.Errorf("%w: RSASSA-PSS params", ErrMalformed)
		}
		if !hasHash {
			return fmt.Errorf("%w: RSASSA-PSS with SHA-1", ErrUnsupported)
		}
		var hoid asn1.ObjectIdentifier
		if !hashAlg.ReadASN1(&inner, cbasn1.SEQUENCE) || !inner.ReadASN1ObjectIdentifier(&hoid) {
			return fmt.Errorf("%w: RSASSA-PSS hash", ErrMalformed)
		}
		hh, err := HashFromOID(hoid)
		if err != nil {
			return err
		}
		implied = hh
		if !params.SkipOptionalASN1(cbasn1.Tag(1).ContextSpecific().Constructed()) {
			return fmt.Errorf("%w: RSASSA-PSS mgf", ErrMalformed)
		}
		var salt cryptobyte.String
		var hasSalt bool
		p.pssSalt = 20
		if !params.ReadOptionalASN1(&salt, &hasSalt, cbasn1.Tag(2).ContextSpecific().Constructed()) {
			return fmt.Errorf("%w: RSASSA-PSS salt", ErrMalformed)
		}
		if hasSalt {
			var n int64
			if !salt.ReadASN1Integer(&n) || n < 0 || n > 1024 {
				return fmt.Errorf("%w: RSASSA-PSS salt length", ErrMalformed)
			}
			p.pssSalt = int(n)
		}
	default:
		return fmt.Errorf("%w: signature algorithm %v", ErrUnsupported, oid)
	}
	if implied != 0 && implied != p.Hash {
		return fmt.Errorf("%w: signature hash %v differs from digest algorithm %v", ErrUnsupported, implied, p.Hash)
	}
	return nil
}

func parseAttributes(der []byte, tag cbasn1.Tag) ([]Attribute, error) {
	in := cryptobyte.String(der)
	var set cryptobyte.String
	if !in.ReadASN1(&set, tag) || !in.Empty() {
		return nil, fmt.Errorf("%w: attributes", ErrMalformed)
	}
	var out []Attribute
	for !set.Empty() {
		var attr, vals cryptobyte.String
		var a Attribute
		if !set.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&a.Type) ||
			!attr.ReadASN1(&vals, cbasn1.SET) || !attr.Empty() {
			return nil, fmt.Errorf("%w: attribute", ErrMalformed)
		}
		for !vals.Empty() {
			var v cryptobyte.String
			var t cbasn1.Tag
			if !vals.ReadAnyASN1Element(&v, &t) {
				return nil, fmt.Errorf("%w: attribute %v value", ErrMalformed, a.Type)
			}
			a.Values = append(a.Values, []byte(v))
		}
		if len(a.Values) == 0 {
			return nil, fmt.Errorf("%w: attribute %v without values", ErrMalformed, a.Type)
		}
		out = append(out, a)
	}
	return out, nil
}

// SignedAttr returns the first value of the signed attribute typ.
func (p *Parsed) SignedAttr(typ asn1.ObjectIdentifier) ([]byte, bool) {
	return attr(p.SignedAttrs, typ)
}

// UnsignedAttr returns the first value of the unsigned attribute typ.
func (p *Parsed) UnsignedAttr(typ asn1.ObjectIdentifier) ([]byte, bool) {
	return attr(p.UnsignedAttrs, typ)
}

func attr(attrs []Attribute, typ asn1.ObjectIdentifier) ([]byte, bool) {
	for _, a := range attrs {
		if a.Type.Equal(typ) {
			return a.Values[0], true
		}
	}
	return nil, false
}

// SignedAttrTypes lists the signed attribute types in encoded order.
func (p *Parsed) SignedAttrTypes() []asn1.ObjectIdentifier {
	out := make([]asn1.ObjectIdentifier, len(p.SignedAttrs))
	for i, a := range p.SignedAttrs {
		out[i] = a.Type
	}
	return out
}

// Verify checks the signature: the signer certificate is present, the
// content-type attribute equals eContentType, message-digest equals
// contentDigest (if contentDigest is nil, the digest of the attached
// content), the signature over the signed attributes verifies with the
// signer's public key, and a signing-certificate-v2 attribute, if present,
// names that certificate. It does not build or check a certificate chain.
func (p *Parsed) Verify(contentDigest []byte) error {
	if p.Signer == nil {
		return fmt.Errorf("%w: signer certificate not in SignedData", ErrBadSignature)
	}
	if contentDigest == nil {
		if p.Content == nil {
			return fmt.Errorf("%w: detached content without a digest", ErrDigestMismatch)
		}
		hh := p.Hash.New()
		hh.Write(p.Content)
		contentDigest = hh.Sum(nil)
	}
	ct, ok := p.SignedAttr(OIDAttrContentType)
	var ctOID asn1.ObjectIdentifier
	ctStr := cryptobyte.String(ct)
	if !ok || !ctStr.ReadASN1ObjectIdentifier(&ctOID) || !ctOID.Equal(p.ContentType) {
		return fmt.Errorf("%w: content-type attribute missing or differs", ErrBadSignature)
	}
	md, ok := p.SignedAttr(OIDAttrMessageDigest)
	var mdVal []byte
	mdStr := cryptobyte.String(md)
	if !ok || !mdStr.ReadASN1Bytes(&mdVal, cbasn1.OCTET_STRING) {
		return fmt.Errorf("%w: message-digest attribute missing", ErrDigestMismatch)
	}
	if !bytes.Equal(mdVal, contentDigest) {
		return ErrDigestMismatch
	}
	hh := p.Hash.New()
	hh.Write(p.signedAttrsDER)
	digest := hh.Sum(nil)
	switch k := p.Signer.PublicKey.(type) {
	case *rsa.PublicKey:
		var err error
		switch p.Scheme {
		case PKCS1v15:
			err = rsa.VerifyPKCS1v15(k, p.Hash, digest, p.Signature)
		case PSS:
			err = rsa.VerifyPSS(k, p.Hash, digest, p.Signature, &rsa.PSSOptions{SaltLength: p.pssSalt, Hash: p.Hash})
		default:
			err = fmt.Errorf("scheme %v with RSA key", p.Scheme)
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
	case *ecdsa.PublicKey:
		if p.Scheme != ECDSA || !ecdsa.VerifyASN1(k, digest, p.Signature) {
			return fmt.Errorf("%w: ECDSA", ErrBadSignature)
		}
	default:
		return fmt.Errorf("%w: public key %T", ErrUnsupported, k)
	}
	if v2, ok := p.SignedAttr(OIDAttrSigningCertV2); ok {
		if err := checkSigningCertV2(v2, p.Signer); err != nil {
			return err
		}
	}
	return nil
}

// checkSigningCertV2 checks that the first ESSCertIDv2 names cert.
func checkSigningCertV2(der []byte, cert *x509.Certificate) error {
	in := cryptobyte.String(der)
	var scv2, certIDs, id cryptobyte.String
	if !in.ReadASN1(&scv2, cbasn1.SEQUENCE) || !scv2.ReadASN1(&certIDs, cbasn1.SEQUENCE) || !certIDs.ReadASN1(&id, cbasn1.SEQUENCE) {
		return fmt.Errorf("%w: signing-certificate-v2", ErrMalformed)
	}
	h := crypto.SHA256
	if id.PeekASN1Tag(cbasn1.SEQUENCE) {
		var alg cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !id.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
			return fmt.Errorf("%w: signing-certificate-v2 hash", ErrMalformed)
		}
		var err error
		if h, err = HashFromOID(oid); err != nil {
			return err
		}
	}
	var got []byte
	if !id.ReadASN1Bytes(&got, cbasn1.OCTET_STRING) {
		return fmt.Errorf("%w: signing-certificate-v2 certHash", ErrMalformed)
	}
	hh := h.New()
	hh.Write(cert.Raw)
	if !bytes.Equal(got, hh.Sum(nil)) {
		return fmt.Errorf("%w: signing-certificate-v2 does not name the signer certificate", ErrBadSignature)
	}
	return nil
}

// CheckPAdESBaseline checks that the signed attributes are exactly
// content-type, message-digest and signing-certificate-v2 (EN 319 142-1
// B-B; in particular no signing-time), each present once.
func (p *Parsed) CheckPAdESBaseline() error {
	if len(p.SignedAttrs) != len(PAdESSignedAttributes) {
		return fmt.Errorf("%w: signed attributes %v are not exactly the PAdES baseline set", ErrUnsupported, p.SignedAttrTypes())
	}
	for _, want := range PAdESSignedAttributes {
		n := 0
		for _, a := range p.SignedAttrs {
			if a.Type.Equal(want) {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%w: signed attributes %v are not exactly the PAdES baseline set", ErrUnsupported, p.SignedAttrTypes())
		}
	}
	return nil
}

// TimestampInfo is what sigillo needs from an RFC 3161 TimeStampToken.
type TimestampInfo struct {
	Hash          crypto.Hash
	HashedMessage []byte
	Time          time.Time
	Nonce         *big.Int
	SerialNumber  *big.Int
	// Token is the parsed SignedData; Token.Signer is the TSA certificate
	// when the token carries it.
	Token *Parsed
}

type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint struct {
		Algorithm struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue `asn1:"optional"`
		}
		HashedMessage []byte
	}
	SerialNumber *big.Int
	GenTime      time.Time     `asn1:"generalized"`
	Accuracy     asn1.RawValue `asn1:"optional"`
	Ordering     bool          `asn1:"optional,default:false"`
	Nonce        *big.Int      `asn1:"optional"`
	TSA          asn1.RawValue `asn1:"optional,explicit,tag:0"`
	Extensions   asn1.RawValue `asn1:"optional,tag:1"`
}

// ParseTimestampToken decodes a TimeStampToken and, when it carries the
// TSA certificate, verifies its signature (not the TSA's chain).
func ParseTimestampToken(token []byte) (*TimestampInfo, error) {
	p, err := Parse(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTimestamp, err)
	}
	if !p.ContentType.Equal(OIDTSTInfo) || p.Content == nil {
		return nil, fmt.Errorf("%w: not a TSTInfo token", ErrTimestamp)
	}
	var info tstInfo
	rest, err := asn1.Unmarshal(p.Content, &info)
	if err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("%w: TSTInfo: %v", ErrTimestamp, err)
	}
	h, err := HashFromOID(info.MessageImprint.Algorithm.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTimestamp, err)
	}
	if p.Signer != nil {
		if err := p.Verify(nil); err != nil {
			return nil, fmt.Errorf("%w: token signature: %w", ErrTimestamp, err)
		}
	}
	return &TimestampInfo{Hash: h, HashedMessage: info.MessageImprint.HashedMessage, Time: info.GenTime,
		Nonce: info.Nonce, SerialNumber: info.SerialNumber, Token: p}, nil
}

// SignatureTimestamp returns the signature-time-stamp token of p, after
// checking that its imprint is the hash of p.Signature (B-T). It returns
// an ErrTimestamp error if there is none.
func (p *Parsed) SignatureTimestamp() (*TimestampInfo, error) {
	tok, ok := p.UnsignedAttr(OIDAttrSignatureTST)
	if !ok {
		return nil, fmt.Errorf("%w: no signature-time-stamp attribute", ErrTimestamp)
	}
	info, err := ParseTimestampToken(tok)
	if err != nil {
		return nil, err
	}
	hh := info.Hash.New()
	hh.Write(p.Signature)
	if !bytes.Equal(hh.Sum(nil), info.HashedMessage) {
		return nil, fmt.Errorf("%w: imprint is not the hash of the signature value", ErrTimestamp)
	}
	return info, nil
}

// CertHash is the SHA-256 of a certificate, as used in signing-certificate-v2.
func CertHash(c *x509.Certificate) []byte {
	s := sha256.Sum256(c.Raw)
	return s[:]
}
