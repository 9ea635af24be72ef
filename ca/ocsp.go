package ca

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
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// oidOCSPNonce is id-pkix-ocsp-nonce (RFC 6960 §4.4.1).
var oidOCSPNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}

// maxNonce bounds the echoed nonce extension value (RFC 8954 asks for at
// most 32 octets; be lenient with clients, strict with amplification).
const maxNonce = 128

// maxCertIDs bounds the certificates one OCSP request may ask about.
const maxCertIDs = 16

// OCSPRequest is a decoded OCSP request: x/crypto/ocsp's fields for the
// first certificate, every certificate asked about, and the nonce
// extension, which x/crypto/ocsp ignores.
type OCSPRequest struct {
	*ocsp.Request
	// Requests are all the CertIDs of the request, in order (Requests[0]
	// is the embedded Request).
	Requests []*ocsp.Request
	// Nonce is the raw extnValue of the nonce extension (nil if absent);
	// the response echoes it byte for byte.
	Nonce []byte
}

// ParseOCSPRequest decodes a DER OCSPRequest. Errors are errs.Invalid.
func ParseOCSPRequest(der []byte) (*OCSPRequest, error) {
	first, err := ocsp.ParseRequest(der) // structure, signature absent, first CertID
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, "Malformed OCSP request", err)
	}
	reqs, nonce, err := parseRequestBody(der)
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, "Malformed OCSP request", err)
	}
	if first.SerialNumber == nil || first.SerialNumber.Cmp(reqs[0].SerialNumber) != 0 {
		return nil, errs.Invalidf("Malformed OCSP request: inconsistent CertID")
	}
	return &OCSPRequest{Request: first, Requests: reqs, Nonce: nonce}, nil
}

// parseRequestBody reads TBSRequest's requestList and the nonce in its
// requestExtensions ([2]).
func parseRequestBody(der []byte) ([]*ocsp.Request, []byte, error) {
	in := cryptobyte.String(der)
	var outer, tbs, list cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return nil, nil, errors.New("not an OCSPRequest")
	}
	// version [0] and requestorName [1] are optional; skip them.
	if !tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) ||
		!tbs.ReadASN1(&list, cbasn1.SEQUENCE) {
		return nil, nil, errors.New("bad TBSRequest")
	}
	var reqs []*ocsp.Request
	for !list.Empty() {
		if len(reqs) == maxCertIDs {
			return nil, nil, fmt.Errorf("more than %d certificates in one request", maxCertIDs)
		}
		var one, certID, alg cryptobyte.String
		var algOID asn1.ObjectIdentifier
		r := &ocsp.Request{SerialNumber: new(big.Int)}
		if !list.ReadASN1(&one, cbasn1.SEQUENCE) || !one.ReadASN1(&certID, cbasn1.SEQUENCE) ||
			!certID.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&algOID) ||
			!certID.ReadASN1Bytes(&r.IssuerNameHash, cbasn1.OCTET_STRING) ||
			!certID.ReadASN1Bytes(&r.IssuerKeyHash, cbasn1.OCTET_STRING) ||
			!certID.ReadASN1Integer(r.SerialNumber) || !certID.Empty() {
			return nil, nil, errors.New("bad CertID")
		}
		for h, oid := range hashOIDs {
			if oid.Equal(algOID) {
				r.HashAlgorithm = h
			}
		}
		if r.HashAlgorithm == 0 {
			return nil, nil, fmt.Errorf("unsupported CertID hash algorithm %v", algOID)
		}
		if r.SerialNumber.Sign() <= 0 {
			return nil, nil, errors.New("serial number not positive")
		}
		reqs = append(reqs, r)
	}
	if len(reqs) == 0 {
		return nil, nil, errors.New("no certificate asked about")
	}
	var extsWrap cryptobyte.String
	var present bool
	if !tbs.ReadOptionalASN1(&extsWrap, &present, cbasn1.Tag(2).Constructed().ContextSpecific()) {
		return nil, nil, errors.New("bad requestExtensions")
	}
	if !present {
		return reqs, nil, nil
	}
	var exts cryptobyte.String
	if !extsWrap.ReadASN1(&exts, cbasn1.SEQUENCE) || !extsWrap.Empty() {
		return nil, nil, errors.New("bad requestExtensions")
	}
	var nonce []byte
	for !exts.Empty() {
		var ext cryptobyte.String
		var id asn1.ObjectIdentifier
		var critical bool
		var value []byte
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&id) ||
			!ext.ReadOptionalASN1Boolean(&critical, cbasn1.BOOLEAN, false) ||
			!ext.ReadASN1Bytes(&value, cbasn1.OCTET_STRING) || !ext.Empty() {
			return nil, nil, errors.New("bad extension")
		}
		if id.Equal(oidOCSPNonce) {
			if nonce != nil {
				return nil, nil, errors.New("two nonce extensions")
			}
			if len(value) == 0 || len(value) > maxNonce {
				return nil, nil, fmt.Errorf("nonce of %d bytes", len(value))
			}
			nonce = value
		}
	}
	return reqs, nonce, nil
}

// The response structures of RFC 6960 §4.2.1, declared here because
// x/crypto/ocsp cannot add responseExtensions (where the nonce goes).
type ocspCertID struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	NameHash      []byte
	IssuerKeyHash []byte
	SerialNumber  *big.Int
}

type ocspRevokedInfo struct {
	RevocationTime time.Time       `asn1:"generalized"`
	Reason         asn1.Enumerated `asn1:"explicit,tag:0,optional"`
}

type ocspSingleResponse struct {
	CertID     ocspCertID
	Good       asn1.Flag       `asn1:"tag:0,optional"`
	Revoked    ocspRevokedInfo `asn1:"tag:1,optional"`
	Unknown    asn1.Flag       `asn1:"tag:2,optional"`
	ThisUpdate time.Time       `asn1:"generalized"`
	NextUpdate time.Time       `asn1:"generalized,explicit,tag:0,optional"`
}

type ocspResponseData struct {
	ResponderID asn1.RawValue
	ProducedAt  time.Time `asn1:"generalized"`
	Responses   []ocspSingleResponse
	Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type ocspBasicResponse struct {
	TBSResponseData    asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
	Certificates       []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type ocspResponseBytes struct {
	ResponseType asn1.ObjectIdentifier
	Response     []byte
}

type ocspResponseASN1 struct {
	Status   asn1.Enumerated
	Response ocspResponseBytes `asn1:"explicit,tag:0"`
}

var (
	oidOCSPBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	hashOIDs     = map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA1:   {1, 3, 14, 3, 2, 26},
		crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
		crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2},
		crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
	}
)

// signatureParams returns the hash and AlgorithmIdentifier a key of pub's
// type signs with (the same choice crypto/x509 makes).
func signatureParams(pub crypto.PublicKey) (crypto.Hash, pkix.AlgorithmIdentifier, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return crypto.SHA256, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}}, nil
		case elliptic.P384():
			return crypto.SHA384, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}}, nil
		case elliptic.P521():
			return crypto.SHA512, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}}, nil
		}
	case *rsa.PublicKey:
		return crypto.SHA256, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11},
			Parameters: asn1.NullRawValue}, nil
	}
	return 0, pkix.AlgorithmIdentifier{}, fmt.Errorf("unsupported signing key %T", pub)
}

// issuerHashes returns the CertID name and key hashes of cert under h.
func issuerHashes(cert *x509.Certificate, h crypto.Hash) (name, key []byte, err error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, nil, err
	}
	if !h.Available() {
		return nil, nil, fmt.Errorf("hash %v unavailable", h)
	}
	hn := h.New()
	hn.Write(cert.RawSubject)
	hk := h.New()
	hk.Write(spki.PublicKey.RightAlign())
	return hn.Sum(nil), hk.Sum(nil), nil
}

// OCSP answers a DER OCSP request with a DER OCSP response signed by the
// delegated responder key in the HSM. A request about another CA gets the
// "unauthorized" response; an unknown serial "unknown". A malformed
// request is an errs.Invalid error (the HTTP edge answers 400).
func (a *Authority) OCSP(ctx context.Context, reqDER []byte) ([]byte, error) {
	req, err := ParseOCSPRequest(reqDER)
	if err != nil {
		return nil, err
	}
	for _, r := range req.Requests {
		name, key, err := issuerHashes(a.issuing.cert, r.HashAlgorithm)
		if err != nil {
			return nil, errs.Wrap(errs.Invalid, "Unsupported OCSP CertID hash algorithm", err)
		}
		if !bytesEqual(name, r.IssuerNameHash) || !bytesEqual(key, r.IssuerKeyHash) {
			a.met.ocsp.WithLabelValues("unauthorized").Inc()
			return ocsp.UnauthorizedErrorResponse, nil
		}
	}
	return a.ocspResponse(ctx, req.Requests, req.Nonce)
}

// ocspResponse builds and signs the response about the certificates of
// reqs, all issued by the issuing CA.
func (a *Authority) ocspResponse(ctx context.Context, reqs []*ocsp.Request, nonce []byte) ([]byte, error) {
	now := a.now().UTC().Truncate(time.Second)
	singles := make([]ocspSingleResponse, 0, len(reqs))
	labels := make([]string, 0, len(reqs))
	for _, r := range reqs {
		name, key, err := issuerHashes(a.issuing.cert, r.HashAlgorithm)
		if err != nil {
			return nil, err
		}
		single := ocspSingleResponse{
			CertID: ocspCertID{
				HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: hashOIDs[r.HashAlgorithm], Parameters: asn1.NullRawValue},
				NameHash:      name, IssuerKeyHash: key, SerialNumber: r.SerialNumber,
			},
			ThisUpdate: now,
			NextUpdate: now.Add(a.cfg.OCSPValidity),
		}
		label := "good"
		rec, err := a.st.Cert(ctx, serialHex(r.SerialNumber))
		switch {
		case errors.Is(err, store.ErrNotFound):
			single.Unknown, label = true, "unknown"
		case err != nil:
			return nil, fmt.Errorf("ocsp %s: %w", serialHex(r.SerialNumber), err)
		case rec.Issuer != RoleIssuing:
			single.Unknown, label = true, "unknown"
		case rec.Status == string(StatusValid):
			single.Good = true
		default: // suspended (certificateHold) or revoked
			single.Revoked = ocspRevokedInfo{RevocationTime: rec.RevokedAt.UTC(), Reason: asn1.Enumerated(reasonCodes[rec.Reason])}
			label = rec.Status
		}
		singles = append(singles, single)
		labels = append(labels, label)
	}
	data := ocspResponseData{
		ResponderID: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: a.ocsp.cert.RawSubject},
		ProducedAt:  now,
		Responses:   singles,
	}
	if nonce != nil {
		data.Extensions = []pkix.Extension{{Id: oidOCSPNonce, Value: nonce}}
	}
	tbs, err := asn1.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("ocsp: marshal: %w", err)
	}
	hash, algo, err := signatureParams(a.ocsp.signer.Public())
	if err != nil {
		return nil, err
	}
	d := hash.New()
	d.Write(tbs)
	sig, err := a.ocsp.signer.Sign(rand.Reader, d.Sum(nil), hash)
	if err != nil {
		return nil, errsHSM(err)
	}
	basic, err := asn1.Marshal(ocspBasicResponse{
		TBSResponseData:    asn1.RawValue{FullBytes: tbs},
		SignatureAlgorithm: algo,
		Signature:          asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
		Certificates:       []asn1.RawValue{{FullBytes: a.ocsp.cert.Raw}},
	})
	if err != nil {
		return nil, fmt.Errorf("ocsp: marshal: %w", err)
	}
	out, err := asn1.Marshal(ocspResponseASN1{Status: asn1.Enumerated(ocsp.Success),
		Response: ocspResponseBytes{ResponseType: oidOCSPBasic, Response: basic}})
	if err != nil {
		return nil, fmt.Errorf("ocsp: marshal: %w", err)
	}
	for _, l := range labels {
		a.met.ocsp.WithLabelValues(l).Inc()
	}
	return out, nil
}
