package cms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sort"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Scheme is the signature scheme of the signer key.
type Scheme int

// Signature schemes. The hash is the one given to NewSignedAttributes.
const (
	// PKCS1v15 is RSASSA-PKCS1-v1_5 (sha256/384/512WithRSAEncryption).
	PKCS1v15 Scheme = iota + 1
	// PSS is RSASSA-PSS with MGF1 over the same hash and salt length equal to
	// the hash length (the parameters go in the AlgorithmIdentifier).
	PSS
	// ECDSA is ecdsa-with-SHA256/384/512, signature DER ECDSA-Sig-Value.
	ECDSA
)

// String names the scheme for logs and errors.
func (s Scheme) String() string {
	switch s {
	case PKCS1v15:
		return "RSA-PKCS1v15"
	case PSS:
		return "RSA-PSS"
	case ECDSA:
		return "ECDSA"
	}
	return fmt.Sprintf("Scheme(%d)", int(s))
}

// SchemeFor returns the default scheme for a public key: PKCS1v15 for RSA
// (or PSS when pss is true), ECDSA for EC keys.
func SchemeFor(pub crypto.PublicKey, pss bool) (Scheme, error) {
	switch pub.(type) {
	case *rsa.PublicKey:
		if pss {
			return PSS, nil
		}
		return PKCS1v15, nil
	case *ecdsa.PublicKey:
		if pss {
			return 0, fmt.Errorf("%w: PSS with an EC key", ErrUnsupported)
		}
		return ECDSA, nil
	case ed25519.PublicKey:
		return 0, fmt.Errorf("%w: Ed25519 keys", ErrUnsupported)
	}
	return 0, fmt.Errorf("%w: public key %T", ErrUnsupported, pub)
}

// SignerOpts returns the crypto.SignerOpts a crypto.Signer needs to produce
// a signature of scheme s over a digest made with h.
func SignerOpts(s Scheme, h crypto.Hash) crypto.SignerOpts {
	if s == PSS {
		return &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
	}
	return h
}

// Attribute is a CMS attribute: a type and the DER encoding of each value.
type Attribute struct {
	Type   asn1.ObjectIdentifier
	Values [][]byte
}

// SignatureTimestampAttribute wraps an RFC 3161 TimeStampToken (DER
// ContentInfo) as the signature-time-stamp unsigned attribute.
func SignatureTimestampAttribute(token []byte) Attribute {
	return Attribute{Type: OIDAttrSignatureTST, Values: [][]byte{token}}
}

// SignedAttrs is the first half of a detached signature: the DER signed
// attributes, the digest to be signed, and what Assemble needs afterwards.
// It is immutable and safe to keep between the two steps (for example while
// a remote signHash call runs).
type SignedAttrs struct {
	der    []byte // DER SET OF Attribute, universal SET tag
	hash   crypto.Hash
	signer *x509.Certificate
}

// NewSignedAttributes builds the PAdES/CAdES baseline signed attributes for
// a content whose digest (with h) is contentDigest: content-type id-data,
// message-digest, and ESS signing-certificate-v2 (SHA-256 hash of signer's
// certificate + IssuerSerial). No signing-time, by design.
func NewSignedAttributes(contentDigest []byte, h crypto.Hash, signer *x509.Certificate) (*SignedAttrs, error) {
	if _, err := HashOID(h); err != nil {
		return nil, err
	}
	if len(contentDigest) != h.Size() {
		return nil, fmt.Errorf("cms: content digest is %d bytes, %v needs %d", len(contentDigest), h, h.Size())
	}
	if signer == nil || len(signer.Raw) == 0 {
		return nil, errors.New("cms: no signer certificate")
	}
	ct := mustDER(func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(OIDData) })
	md := mustDER(func(b *cryptobyte.Builder) { b.AddASN1OctetString(contentDigest) })
	certHash := sha256.Sum256(signer.Raw)
	scv2 := mustDER(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SigningCertificateV2
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // certs
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ESSCertIDv2, sha256 is the DEFAULT: omitted
					b.AddASN1OctetString(certHash[:])
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // IssuerSerial
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // GeneralNames
							b.AddASN1(cbasn1.Tag(4).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
								b.AddBytes(signer.RawIssuer)
							})
						})
						b.AddASN1BigInt(signer.SerialNumber)
					})
				})
			})
		})
	})
	der, err := encodeAttributes([]Attribute{
		{Type: OIDAttrContentType, Values: [][]byte{ct}},
		{Type: OIDAttrMessageDigest, Values: [][]byte{md}},
		{Type: OIDAttrSigningCertV2, Values: [][]byte{scv2}},
	}, cbasn1.SET)
	if err != nil {
		return nil, err
	}
	return &SignedAttrs{der: der, hash: h, signer: signer}, nil
}

// Hash is the digest algorithm of the signature.
func (s *SignedAttrs) Hash() crypto.Hash { return s.hash }

// Bytes returns the DER SET OF Attribute whose digest is signed.
func (s *SignedAttrs) Bytes() []byte { return append([]byte(nil), s.der...) }

// Digest returns H(DER signed attributes): what the signer signs, i.e. the
// value to send to CSC signHash or to pass to crypto.Signer.Sign.
func (s *SignedAttrs) Digest() []byte {
	hh := s.hash.New()
	hh.Write(s.der)
	return hh.Sum(nil)
}

// Assemble builds the DER ContentInfo(SignedData) from a signature over
// Digest(). certs should start with the signer certificate followed by its
// chain (the signer is added first if missing). unsigned may carry the
// signature-time-stamp attribute. The signature is verified against the
// signer certificate first; an ECDSA signature given as raw r‖s (as some
// CSC clients send) is converted to DER.
func (s *SignedAttrs) Assemble(signature []byte, scheme Scheme, certs []*x509.Certificate, unsigned []Attribute) ([]byte, error) {
	sig, err := checkSignature(s.signer.PublicKey, scheme, s.hash, s.Digest(), signature)
	if err != nil {
		return nil, err
	}
	digestAlg, _ := HashOID(s.hash)
	sigAlg, err := signatureAlgorithm(scheme, s.hash)
	if err != nil {
		return nil, err
	}
	all := []*x509.Certificate{s.signer}
	for _, c := range certs {
		if c != nil && !c.Equal(s.signer) {
			all = append(all, c)
		}
	}
	var unsignedDER []byte
	if len(unsigned) > 0 {
		if unsignedDER, err = encodeAttributes(unsigned, cbasn1.Tag(1).ContextSpecific().Constructed()); err != nil {
			return nil, err
		}
	}
	signedImplicit := append([]byte(nil), s.der...)
	signedImplicit[0] = byte(cbasn1.Tag(0).ContextSpecific().Constructed()) // [0] IMPLICIT

	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
		b.AddASN1ObjectIdentifier(OIDSignedData)
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignedData
				b.AddASN1Int64(1)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(digestAlg) })
				})
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(OIDData) })
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					for _, c := range all {
						b.AddBytes(c.Raw)
					}
				})
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignerInfo
						b.AddASN1Int64(1)
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // IssuerAndSerialNumber
							b.AddBytes(s.signer.RawIssuer)
							b.AddASN1BigInt(s.signer.SerialNumber)
						})
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(digestAlg) })
						b.AddBytes(signedImplicit)
						b.AddBytes(sigAlg)
						b.AddASN1OctetString(sig)
						if unsignedDER != nil {
							b.AddBytes(unsignedDER)
						}
					})
				})
			})
		})
	})
	return b.Bytes()
}

// Timestamper obtains an RFC 3161 TimeStampToken (DER ContentInfo) for a
// digest made with h. It is declared here, where it is consumed; see
// package cms/tsaclient for the HTTP implementation.
type Timestamper interface {
	Timestamp(ctx context.Context, digest []byte, h crypto.Hash) (token []byte, err error)
}

// SignOptions tunes SignDetached. The zero value signs PKCS#1 v1.5 / ECDSA
// without a time-stamp.
type SignOptions struct {
	// PSS selects RSASSA-PSS for RSA keys.
	PSS bool
	// Timestamper, when set, adds a signature-time-stamp (CAdES/PAdES B-T).
	Timestamper Timestamper
	// TimestampHash is the imprint hash for the time-stamp request
	// (default: the signature hash).
	TimestampHash crypto.Hash
}

// SignDetached signs contentDigest (made with h) with signer and returns a
// DER CMS SignedData. certs[0] must be the signer certificate, followed by
// its chain. The signer is called exactly once.
func SignDetached(ctx context.Context, signer crypto.Signer, contentDigest []byte, h crypto.Hash, certs []*x509.Certificate, opts SignOptions) ([]byte, error) {
	if len(certs) == 0 {
		return nil, errors.New("cms: no signer certificate")
	}
	scheme, err := SchemeFor(certs[0].PublicKey, opts.PSS)
	if err != nil {
		return nil, err
	}
	sa, err := NewSignedAttributes(contentDigest, h, certs[0])
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sig, err := signer.Sign(rand.Reader, sa.Digest(), SignerOpts(scheme, h))
	if err != nil {
		return nil, fmt.Errorf("cms: sign: %w", err)
	}
	var unsigned []Attribute
	if opts.Timestamper != nil {
		attr, err := SignatureTimestamp(ctx, opts.Timestamper, sig, opts.tsHash(h))
		if err != nil {
			return nil, err
		}
		unsigned = append(unsigned, attr)
	}
	return sa.Assemble(sig, scheme, certs, unsigned)
}

func (o SignOptions) tsHash(h crypto.Hash) crypto.Hash {
	if o.TimestampHash != 0 {
		return o.TimestampHash
	}
	return h
}

// SignatureTimestamp asks ts for a token over H(signature) and returns it as
// the signature-time-stamp unsigned attribute, after checking that the
// token's imprint covers the signature. signature must be the final
// SignerInfo.signature value (DER for ECDSA).
func SignatureTimestamp(ctx context.Context, ts Timestamper, signature []byte, h crypto.Hash) (Attribute, error) {
	if _, err := HashOID(h); err != nil {
		return Attribute{}, err
	}
	hh := h.New()
	hh.Write(signature)
	digest := hh.Sum(nil)
	token, err := ts.Timestamp(ctx, digest, h)
	if err != nil {
		return Attribute{}, fmt.Errorf("%w: %w", ErrTimestamp, err)
	}
	info, err := ParseTimestampToken(token)
	if err != nil {
		return Attribute{}, err
	}
	if info.Hash != h || !bytes.Equal(info.HashedMessage, digest) {
		return Attribute{}, fmt.Errorf("%w: token imprint does not match the signature", ErrTimestamp)
	}
	return SignatureTimestampAttribute(token), nil
}

// encodeAttributes encodes a SET OF Attribute with the given outer tag,
// elements in DER (sorted) order.
func encodeAttributes(attrs []Attribute, tag cbasn1.Tag) ([]byte, error) {
	elems := make([][]byte, 0, len(attrs))
	for _, a := range attrs {
		if len(a.Values) == 0 {
			return nil, fmt.Errorf("cms: attribute %v has no value", a.Type)
		}
		vals := append([][]byte(nil), a.Values...)
		sortDER(vals)
		b := cryptobyte.NewBuilder(nil)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(a.Type)
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				for _, v := range vals {
					b.AddBytes(v)
				}
			})
		})
		e, err := b.Bytes()
		if err != nil {
			return nil, fmt.Errorf("cms: encode attribute %v: %w", a.Type, err)
		}
		elems = append(elems, e)
	}
	sortDER(elems)
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(tag, func(b *cryptobyte.Builder) {
		for _, e := range elems {
			b.AddBytes(e)
		}
	})
	return b.Bytes()
}

// sortDER orders SET OF elements as X.690 §11.6 requires.
func sortDER(v [][]byte) {
	sort.Slice(v, func(i, j int) bool { return bytes.Compare(v[i], v[j]) < 0 })
}

func mustDER(f func(*cryptobyte.Builder)) []byte {
	b := cryptobyte.NewBuilder(nil)
	f(b)
	return b.BytesOrPanic()
}

// signatureAlgorithm returns the DER AlgorithmIdentifier for scheme+hash.
func signatureAlgorithm(s Scheme, h crypto.Hash) ([]byte, error) {
	hashOID, err := HashOID(h)
	if err != nil {
		return nil, err
	}
	b := cryptobyte.NewBuilder(nil)
	switch s {
	case PKCS1v15:
		oid := map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: oidSHA256WithRSA, crypto.SHA384: oidSHA384WithRSA, crypto.SHA512: oidSHA512WithRSA}[h]
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1NULL()
		})
	case ECDSA:
		oid := map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: oidECDSAWithSHA256, crypto.SHA384: oidECDSAWithSHA384, crypto.SHA512: oidECDSAWithSHA512}[h]
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oid) })
	case PSS:
		hashAlg := func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(hashOID)
				b.AddASN1NULL()
			})
		}
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidRSAPSS)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // RSASSA-PSS-params
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), hashAlg)
				b.AddASN1(cbasn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidMGF1)
						hashAlg(b)
					})
				})
				b.AddASN1(cbasn1.Tag(2).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1Int64(int64(h.Size()))
				})
			})
		})
	default:
		return nil, fmt.Errorf("%w: scheme %v", ErrUnsupported, s)
	}
	return b.Bytes()
}

// checkSignature verifies sig over digest with pub and returns it in the
// encoding CMS needs (DER for ECDSA).
func checkSignature(pub crypto.PublicKey, s Scheme, h crypto.Hash, digest, sig []byte) ([]byte, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		var err error
		switch s {
		case PKCS1v15:
			err = rsa.VerifyPKCS1v15(k, h, digest, sig)
		case PSS:
			err = rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: h.Size(), Hash: h})
		default:
			return nil, fmt.Errorf("%w: scheme %v with an RSA key", ErrUnsupported, s)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadSignature, s, err)
		}
		return sig, nil
	case *ecdsa.PublicKey:
		if s != ECDSA {
			return nil, fmt.Errorf("%w: scheme %v with an EC key", ErrUnsupported, s)
		}
		if ecdsa.VerifyASN1(k, digest, sig) {
			return sig, nil
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) == 2*n { // raw r‖s
			r, ss := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
			if ecdsa.Verify(k, digest, r, ss) {
				b := cryptobyte.NewBuilder(nil)
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1BigInt(r)
					b.AddASN1BigInt(ss)
				})
				return b.Bytes()
			}
		}
		return nil, fmt.Errorf("%w: ECDSA", ErrBadSignature)
	}
	return nil, fmt.Errorf("%w: public key %T", ErrUnsupported, pub)
}

// MaxSignatureSize is an upper bound of the DER signature value size for a
// public key, used to reserve space before signing.
func MaxSignatureSize(pub crypto.PublicKey) (int, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return k.Size(), nil
	case *ecdsa.PublicKey:
		n := (k.Curve.Params().BitSize + 7) / 8
		return 2*n + 12, nil
	}
	return 0, fmt.Errorf("%w: public key %T", ErrUnsupported, pub)
}
