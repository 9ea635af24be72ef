package csc

import (
	"crypto"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/sigillo/sigillo/errs"
)

// Object identifiers of the hash and signature algorithms we speak (CSC.md §1).
const (
	oidSHA256 = "2.16.840.1.101.3.4.2.1"
	oidSHA384 = "2.16.840.1.101.3.4.2.2"
	oidSHA512 = "2.16.840.1.101.3.4.2.3"
	oidSHA1   = "1.3.14.3.2.26"

	oidRSAEncryption = "1.2.840.113549.1.1.1"
	oidMGF1          = "1.2.840.113549.1.1.8"
	oidRSAPSS        = "1.2.840.113549.1.1.10"
	oidSHA256WithRSA = "1.2.840.113549.1.1.11"
	oidSHA384WithRSA = "1.2.840.113549.1.1.12"
	oidSHA512WithRSA = "1.2.840.113549.1.1.13"

	oidECPublicKey     = "1.2.840.10045.2.1"
	oidECDSAWithSHA256 = "1.2.840.10045.4.3.2"
	oidECDSAWithSHA384 = "1.2.840.10045.4.3.3"
	oidECDSAWithSHA512 = "1.2.840.10045.4.3.4"
)

// hashByOID holds the digest algorithms we accept. CSC requires SHA-256 or
// stronger, and they are what the HSM signs.
var hashByOID = map[string]crypto.Hash{
	oidSHA256: crypto.SHA256,
	oidSHA384: crypto.SHA384,
	oidSHA512: crypto.SHA512,
}

// hashForLength infers the SHA-2 function from a digest length. v1
// authorize and extendTransaction carry no algorithm; the three lengths are
// distinct, so the inference is exact.
func hashForLength(n int) (crypto.Hash, bool) {
	switch n {
	case 32:
		return crypto.SHA256, true
	case 48:
		return crypto.SHA384, true
	case 64:
		return crypto.SHA512, true
	}
	return 0, false
}

// keyType is the family of a credential's key; a signature algorithm
// belongs to exactly one.
type keyType int

const (
	keyRSA keyType = iota + 1
	keyEC
)

// keyTypeOf maps sam's key algorithm names ("rsa-2048", "ecdsa-p256") to
// the family.
func keyTypeOf(algo string) keyType {
	a := strings.ToLower(algo)
	switch {
	case strings.HasPrefix(a, "rsa"):
		return keyRSA
	case strings.HasPrefix(a, "ec"):
		return keyEC
	}
	return 0
}

// signAlgoDef describes one signAlgo OID a client may send.
type signAlgoDef struct {
	key  keyType
	hash crypto.Hash // implied by the OID; 0 when it comes from hashAlgorithmOID
	pss  bool
}

var signAlgoDefs = map[string]signAlgoDef{
	oidRSAEncryption:   {key: keyRSA},
	oidSHA256WithRSA:   {key: keyRSA, hash: crypto.SHA256},
	oidSHA384WithRSA:   {key: keyRSA, hash: crypto.SHA384},
	oidSHA512WithRSA:   {key: keyRSA, hash: crypto.SHA512},
	oidRSAPSS:          {key: keyRSA, pss: true},
	oidECDSAWithSHA256: {key: keyEC, hash: crypto.SHA256},
	oidECDSAWithSHA384: {key: keyEC, hash: crypto.SHA384},
	oidECDSAWithSHA512: {key: keyEC, hash: crypto.SHA512},
	// Some clients name the key algorithm and send hashAlgorithmOID, as
	// for rsaEncryption; accepted, not advertised.
	oidECPublicKey: {key: keyEC},
}

// advertisedAlgos is info's signAlgorithms.algos, and key.algo of RSA and
// EC credentials in credentials/info.
var (
	rsaAlgos        = []string{oidRSAEncryption, oidSHA256WithRSA, oidSHA384WithRSA, oidSHA512WithRSA, oidRSAPSS}
	ecAlgos         = []string{oidECDSAWithSHA256, oidECDSAWithSHA384, oidECDSAWithSHA512}
	advertisedAlgos = append(append([]string(nil), rsaAlgos...), ecAlgos...)
)

// scheme is a fully resolved signature scheme: what to ask the signer for.
type scheme struct {
	SignAlgo string
	Key      keyType
	Hash     crypto.Hash
	// Opts is crypto.Hash for PKCS#1 v1.5 and ECDSA, *rsa.PSSOptions for PSS.
	Opts crypto.SignerOpts
	// Label names the scheme in metrics ("rsa-pkcs1-sha256", "rsa-pss-sha256", "ecdsa-sha256").
	Label string
}

// hashName is the short metric name of a hash.
func hashName(h crypto.Hash) string {
	switch h {
	case crypto.SHA256:
		return "sha256"
	case crypto.SHA384:
		return "sha384"
	case crypto.SHA512:
		return "sha512"
	}
	return "unknown"
}

// resolveScheme turns signAlgo, the optional hash algorithm OID and the
// optional Base64 signAlgoParams into a scheme. hashAlgoName is the
// version's name of the hash OID field, for messages.
func resolveScheme(signAlgo, hashOID, params, hashAlgoName string) (*scheme, error) {
	def, ok := signAlgoDefs[signAlgo]
	if !ok {
		return nil, errs.Invalidf("Invalid parameter signAlgo")
	}
	var named crypto.Hash
	if hashOID != "" {
		if named, ok = hashByOID[hashOID]; !ok {
			return nil, errs.Invalidf("Invalid parameter %s", hashAlgoName)
		}
	}
	s := &scheme{SignAlgo: signAlgo, Key: def.key}
	switch {
	case def.pss:
		if params == "" {
			return nil, errs.Invalidf("Missing (or invalid type) string parameter signAlgoParams")
		}
		der, err := decodeB64(params)
		if err != nil {
			return nil, errs.Invalidf("Invalid parameter signAlgoParams")
		}
		opts, err := parsePSSParams(der)
		if err != nil {
			return nil, errs.Wrap(errs.Invalid, "Invalid parameter signAlgoParams", err)
		}
		// A contradicting hash OID means the client is confused about
		// what it hashed: refuse rather than guess.
		if named != 0 && named != opts.Hash {
			return nil, errs.Invalidf("Invalid parameter %s", hashAlgoName)
		}
		s.Hash, s.Opts = opts.Hash, opts
		s.Label = "rsa-pss-" + hashName(opts.Hash)
		return s, nil
	case def.hash != 0:
		if named != 0 && named != def.hash {
			return nil, errs.Invalidf("Invalid parameter %s", hashAlgoName)
		}
		s.Hash = def.hash
	default:
		if named == 0 {
			return nil, errs.Invalidf("Missing (or invalid type) string parameter %s", hashAlgoName)
		}
		s.Hash = named
	}
	s.Opts = s.Hash
	if def.key == keyRSA {
		s.Label = "rsa-pkcs1-" + hashName(s.Hash)
	} else {
		s.Label = "ecdsa-" + hashName(s.Hash)
	}
	return s, nil
}

// checkKey verifies that the scheme fits a credential's key: its family,
// and for PSS that the salt fits the modulus.
func (s *scheme) checkKey(keyAlgo string, keyLen int) error {
	if keyTypeOf(keyAlgo) != s.Key {
		return errs.Invalidf("Invalid parameter signAlgo")
	}
	if pss, ok := s.Opts.(*rsa.PSSOptions); ok && keyLen > 0 {
		emLen := (keyLen - 1 + 7) / 8
		if pss.SaltLength > emLen-s.Hash.Size()-2 {
			return errs.Invalidf("Invalid parameter signAlgoParams")
		}
	}
	return nil
}

// maxPSSSalt bounds the salt length we parse; no RSA key we hold (≤ 4096
// bits) allows more.
const maxPSSSalt = 512

// parsePSSParams parses DER RSASSA-PSS-params (RFC 4055 §3.1):
//
//	SEQUENCE {
//	  hashAlgorithm    [0] EXPLICIT AlgorithmIdentifier DEFAULT sha1,
//	  maskGenAlgorithm [1] EXPLICIT AlgorithmIdentifier DEFAULT mgf1SHA1,
//	  saltLength       [2] EXPLICIT INTEGER DEFAULT 20,
//	  trailerField     [3] EXPLICIT INTEGER DEFAULT 1 }
//
// SHA-1 (the default) is refused, the MGF1 hash must equal the message
// hash, and a salt of 0 is refused because crypto/rsa reads 0 as "auto".
func parsePSSParams(der []byte) (*rsa.PSSOptions, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, fmt.Errorf("not one DER SEQUENCE")
	}
	hashOID, mgfHashOID := oidSHA1, oidSHA1
	salt, trailer := int64(20), int64(1)

	var field cryptobyte.String
	var present bool
	if !seq.ReadOptionalASN1(&field, &present, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, fmt.Errorf("bad hashAlgorithm")
	}
	if present {
		oid, err := readAlgID(&field)
		if err != nil || !field.Empty() {
			return nil, fmt.Errorf("bad hashAlgorithm: %v", err)
		}
		hashOID = oid
	}
	if !seq.ReadOptionalASN1(&field, &present, cbasn1.Tag(1).ContextSpecific().Constructed()) {
		return nil, fmt.Errorf("bad maskGenAlgorithm")
	}
	if present {
		var mgf cryptobyte.String
		var mgfOID asn1.ObjectIdentifier
		if !field.ReadASN1(&mgf, cbasn1.SEQUENCE) || !field.Empty() || !mgf.ReadASN1ObjectIdentifier(&mgfOID) {
			return nil, fmt.Errorf("bad maskGenAlgorithm")
		}
		if mgfOID.String() != oidMGF1 {
			return nil, fmt.Errorf("mask generation %s is not MGF1", mgfOID)
		}
		oid, err := readAlgID(&mgf)
		if err != nil || !mgf.Empty() {
			return nil, fmt.Errorf("bad MGF1 hash: %v", err)
		}
		mgfHashOID = oid
	}
	if !seq.ReadOptionalASN1(&field, &present, cbasn1.Tag(2).ContextSpecific().Constructed()) {
		return nil, fmt.Errorf("bad saltLength")
	}
	if present {
		if !field.ReadASN1Int64WithTag(&salt, cbasn1.INTEGER) || !field.Empty() {
			return nil, fmt.Errorf("bad saltLength")
		}
	}
	if !seq.ReadOptionalASN1(&field, &present, cbasn1.Tag(3).ContextSpecific().Constructed()) {
		return nil, fmt.Errorf("bad trailerField")
	}
	if present {
		if !field.ReadASN1Int64WithTag(&trailer, cbasn1.INTEGER) || !field.Empty() {
			return nil, fmt.Errorf("bad trailerField")
		}
	}
	if !seq.Empty() {
		return nil, fmt.Errorf("trailing data in RSASSA-PSS-params")
	}
	h, ok := hashByOID[hashOID]
	if !ok {
		return nil, fmt.Errorf("hash %s not accepted", hashOID)
	}
	if mgfHashOID != hashOID {
		return nil, fmt.Errorf("MGF1 hash %s differs from hash %s", mgfHashOID, hashOID)
	}
	if salt <= 0 || salt > maxPSSSalt {
		return nil, fmt.Errorf("salt length %d not accepted", salt)
	}
	if trailer != 1 {
		return nil, fmt.Errorf("trailer field %d not accepted", trailer)
	}
	return &rsa.PSSOptions{SaltLength: int(salt), Hash: h}, nil
}

// readAlgID reads an AlgorithmIdentifier whose parameters are absent or NULL.
func readAlgID(s *cryptobyte.String) (string, error) {
	var alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return "", fmt.Errorf("bad AlgorithmIdentifier")
	}
	if !alg.Empty() {
		var null cryptobyte.String
		if !alg.ReadASN1(&null, cbasn1.NULL) || !null.Empty() || !alg.Empty() {
			return "", fmt.Errorf("unexpected AlgorithmIdentifier parameters")
		}
	}
	return oid.String(), nil
}

// decodeB64 decodes standard Base64 or base64url, padded or not (CSC.md §8:
// clients differ), so that equal digests compare equal whatever the
// client's alphabet.
func decodeB64(s string) ([]byte, error) {
	pad := len(s) - len(strings.TrimRight(s, "="))
	if pad > 2 || (pad > 0 && len(s)%4 != 0) {
		return nil, fmt.Errorf("bad Base64 padding")
	}
	body := s[:len(s)-pad]
	// encoding/base64 skips \r and \n; we accept only the alphabets.
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_') {
			return nil, fmt.Errorf("bad Base64 character %q", c)
		}
	}
	std := strings.ContainsAny(body, "+/")
	url := strings.ContainsAny(body, "-_")
	if std && url {
		return nil, fmt.Errorf("mixed Base64 alphabets")
	}
	enc := base64.RawStdEncoding
	if url {
		enc = base64.RawURLEncoding
	}
	return enc.DecodeString(body)
}

// hashOIDOf is the OID of h (SHA-1 included, for tests of refusals).
func hashOIDOf(h crypto.Hash) string {
	switch h {
	case crypto.SHA256:
		return oidSHA256
	case crypto.SHA384:
		return oidSHA384
	case crypto.SHA512:
		return oidSHA512
	case crypto.SHA1:
		return oidSHA1
	}
	return ""
}
