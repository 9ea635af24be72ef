package csc

import (
	"crypto"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/big"
	"strings"

	"github.com/sigillo/sigillo/errs"
)

// dialect is what differs between API versions in requests: field names
// and which fields are mandatory. Everything else is checked the same way.
type dialect struct {
	version  int
	hashes   string // "hashes" (v2) or "hash" (v1)
	hashAlgo string // "hashAlgorithmOID" (v2) or "hashAlgo" (v1 signHash)
}

var (
	dialectV1 = &dialect{version: 1, hashes: "hash", hashAlgo: "hashAlgo"}
	dialectV2 = &dialect{version: 2, hashes: "hashes", hashAlgo: "hashAlgorithmOID"}
)

// DefaultMaxHashes bounds the hashes of one request when Options.MaxHashes is 0.
const DefaultMaxHashes = 1000

// maxDescription is the CSC bound on credentials/authorize description.
const maxDescription = 500

// maxNumSignatures bounds numSignatures before sam compares it with the
// credential's multisign, so that no arithmetic overflows downstream.
const maxNumSignatures = math.MaxInt32

// Certificate options of credentials/list and credentials/info.
const (
	certsNone   = "none"
	certsSingle = "single"
	certsChain  = "chain"
)

// loginReq is auth/login's body (credentials come in the Basic header).
type loginReq struct {
	RememberMe   bool
	RefreshToken string
}

// revokeReq is auth/revoke's body.
type revokeReq struct {
	Token, Hint string
}

// listReq is credentials/list's body, both versions.
type listReq struct {
	CredentialInfo bool
	Certificates   string
	CertInfo       bool
	AuthInfo       bool
	OnlyValid      bool
	// MaxResults (0 = all) and PageToken are v1 pagination.
	MaxResults int
	PageToken  string
}

// infoReq is credentials/info's body.
type infoReq struct {
	CredentialID string
	Certificates string
	CertInfo     bool
	AuthInfo     bool
}

// authorizeReq is credentials/authorize's body, normalised.
type authorizeReq struct {
	CredentialID  string
	NumSignatures int
	Hashes        [][]byte
	Hash          crypto.Hash
	PIN, OTP      string
	Description   string
}

// extendReq is credentials/extendTransaction's body, normalised.
type extendReq struct {
	CredentialID, SAD string
	Hashes            [][]byte
	Hash              crypto.Hash
}

// signHashReq is signatures/signHash's body, normalised.
type signHashReq struct {
	CredentialID, SAD string
	Hashes            [][]byte
	Scheme            *scheme
}

// timestampReq is signatures/timestamp's body.
type timestampReq struct {
	Hash  []byte
	Algo  crypto.Hash
	Nonce *big.Int
}

// parseRequest parses a CSC request body and checks the optional members
// every method accepts: every decoder starts here.
func parseRequest(body []byte) (fields, error) {
	f, err := parseFields(body)
	if err != nil {
		return fields{}, err
	}
	return f, commonChecks(f)
}

// commonChecks validates the optional members every method accepts, so
// that a client sending them with a wrong type learns it.
func commonChecks(f fields) error {
	if _, err := f.str("clientData", false, "client_data"); err != nil {
		return err
	}
	if _, err := f.str("lang", false); err != nil {
		return err
	}
	return nil
}

// noUserID enforces CSC §11.4: with user-specific authentication (basic)
// the user is the token's, and userID SHALL NOT be sent.
func noUserID(f fields) error {
	if f.has("userID") {
		return errs.Invalidf("userID parameter MUST be null")
	}
	return nil
}

func decodeLogin(body []byte) (*loginReq, error) {
	f, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	r := &loginReq{}
	if r.RememberMe, err = f.boolean("rememberMe", false); err != nil {
		return nil, err
	}
	if r.RefreshToken, err = f.str("refresh_token", false); err != nil {
		return nil, err
	}
	return r, nil
}

func decodeRevoke(body []byte) (*revokeReq, error) {
	f, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	r := &revokeReq{}
	if r.Token, err = f.str("token", true); err != nil {
		return nil, err
	}
	if r.Hint, err = f.str("token_type_hint", false); err != nil {
		return nil, err
	}
	switch r.Hint {
	case "", "access_token", "refresh_token":
	default:
		return nil, errs.New(errs.Invalid, "unsupported_token_type", "Invalid parameter token_type_hint")
	}
	return r, nil
}

func decodeCertOption(f fields) (string, error) {
	c, err := f.str("certificates", false)
	if err != nil {
		return "", err
	}
	switch c {
	case "":
		return certsSingle, nil
	case certsNone, certsSingle, certsChain:
		return c, nil
	}
	return "", errs.Invalidf("Invalid parameter certificates")
}

func decodeList(d *dialect, body []byte) (*listReq, error) {
	f, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	if err := noUserID(f); err != nil {
		return nil, err
	}
	r := &listReq{}
	if d.version == 1 {
		n, set, err := f.integer("maxResults", false)
		if err != nil {
			return nil, err
		}
		if set && (n < 1 || n > math.MaxInt32) {
			return nil, errs.Invalidf("Invalid parameter maxResults")
		}
		r.MaxResults = int(n)
		if r.PageToken, err = f.str("pageToken", false); err != nil {
			return nil, err
		}
		if r.PageToken != "" {
			if _, err := decodePageToken(r.PageToken); err != nil {
				return nil, err
			}
		}
		return r, nil
	}
	if r.CredentialInfo, err = f.boolean("credentialInfo", false); err != nil {
		return nil, err
	}
	if r.Certificates, err = decodeCertOption(f); err != nil {
		return nil, err
	}
	if r.CertInfo, err = f.boolean("certInfo", false); err != nil {
		return nil, err
	}
	if r.AuthInfo, err = f.boolean("authInfo", false); err != nil {
		return nil, err
	}
	if r.OnlyValid, err = f.boolean("onlyValid", false); err != nil {
		return nil, err
	}
	return r, nil
}

func decodeInfo(body []byte) (*infoReq, error) {
	f, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	r := &infoReq{}
	if r.CredentialID, err = f.str("credentialID", true); err != nil {
		return nil, err
	}
	if r.Certificates, err = decodeCertOption(f); err != nil {
		return nil, err
	}
	if r.CertInfo, err = f.boolean("certInfo", false); err != nil {
		return nil, err
	}
	if r.AuthInfo, err = f.boolean("authInfo", false); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeHashes reads the version's hash array. Each entry may be standard
// Base64 or base64url, padded or not.
func decodeHashes(f fields, d *dialect, required bool, max int) ([][]byte, error) {
	v, ok := f.get(d.hashes)
	if !ok {
		if required {
			return nil, errs.Invalidf("Missing (or invalid type) array parameter %s", d.hashes)
		}
		return nil, nil
	}
	// The common case, an array of strings, decodes in one pass.
	var strs []string
	if err := json.Unmarshal(v, &strs); err != nil {
		var list []json.RawMessage
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, errs.Invalidf("Missing (or invalid type) array parameter %s", d.hashes)
		}
		// An element that is not a string stays "", which
		// decodeHashStrings refuses after the checks on the list itself.
		strs = make([]string, len(list))
		for i, raw := range list {
			_ = json.Unmarshal(raw, &strs[i])
		}
	}
	return decodeHashStrings(strs, required, max)
}

// decodeHashStrings is decodeHashes for a list already read as strings.
func decodeHashStrings(list []string, required bool, max int) ([][]byte, error) {
	if len(list) == 0 {
		if required {
			return nil, errs.Invalidf("Empty hash array")
		}
		return nil, nil
	}
	if max <= 0 {
		max = DefaultMaxHashes
	}
	if len(list) > max {
		return nil, errs.Invalidf("Too many hashes: at most %d per request", max)
	}
	out := make([][]byte, len(list))
	for i, s := range list {
		if s == "" {
			return nil, errs.Invalidf("Invalid Base64 hash string parameter")
		}
		b, err := decodeB64(s)
		if err != nil {
			return nil, errs.Invalidf("Invalid Base64 hash string parameter")
		}
		out[i] = b
	}
	return out, nil
}

// checkDigests verifies every digest has h's length.
func checkDigests(hashes [][]byte, h crypto.Hash) error {
	for _, d := range hashes {
		if len(d) != h.Size() {
			return errs.Invalidf("Invalid digest value length")
		}
	}
	return nil
}

// hashOfList returns the hash algorithm of hashes: named by the OID member
// when present (required when reqOID), otherwise inferred from the digest
// length, which must then be the same for all.
func hashOfList(f fields, oidName string, reqOID bool, hashes [][]byte) (crypto.Hash, error) {
	if len(hashes) == 0 {
		return 0, nil
	}
	oid, err := f.str(oidName, false)
	if err != nil {
		return 0, err
	}
	if oid != "" {
		h, ok := hashByOID[oid]
		if !ok {
			return 0, errs.Invalidf("Invalid parameter %s", oidName)
		}
		return h, checkDigests(hashes, h)
	}
	if reqOID {
		return 0, errs.Invalidf("Missing (or invalid type) string parameter %s", oidName)
	}
	h, ok := hashForLength(len(hashes[0]))
	if !ok {
		return 0, errs.Invalidf("Invalid digest value length")
	}
	return h, checkDigests(hashes, h)
}

func decodeAuthorize(d *dialect, body []byte, max int) (*authorizeReq, error) {
	f, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	r := &authorizeReq{}
	if r.CredentialID, err = f.str("credentialID", true); err != nil {
		return nil, err
	}
	n, _, err := f.integer("numSignatures", true)
	if err != nil {
		return nil, err
	}
	if n < 1 || n > maxNumSignatures {
		return nil, errs.Invalidf("Invalid value for parameter numSignatures")
	}
	r.NumSignatures = int(n)
	if r.Hashes, err = decodeHashes(f, d, false, max); err != nil {
		return nil, err
	}
	// v1 authorize has no algorithm member: infer it, but honour one if a
	// client sends it anyway.
	oidName := d.hashAlgo
	if d.version == 1 && !f.has(oidName) && f.has("hashAlgorithmOID") {
		oidName = "hashAlgorithmOID"
	}
	if r.Hash, err = hashOfList(f, oidName, d.version == 2, r.Hashes); err != nil {
		return nil, err
	}
	if d.version == 2 && f.has("authData") {
		if r.PIN, r.OTP, err = decodeAuthData(f); err != nil {
			return nil, err
		}
	} else {
		// v1, and v2 clients written against v1 (a test RSSP accepts both).
		if r.PIN, err = f.str("PIN", false); err != nil {
			return nil, err
		}
		if r.OTP, err = f.str("OTP", false); err != nil {
			return nil, err
		}
	}
	if r.Description, err = f.str("description", false); err != nil {
		return nil, err
	}
	if len([]rune(r.Description)) > maxDescription {
		return nil, errs.Invalidf("Invalid parameter description")
	}
	return r, nil
}

// decodeAuthData reads v2 authData [{id, value}] into PIN and OTP.
func decodeAuthData(f fields) (pin, otp string, err error) {
	v, _ := f.get("authData")
	var objs []map[string]any
	if err := json.Unmarshal(v, &objs); err != nil {
		return "", "", errs.Invalidf("Missing (or invalid type) array parameter authData")
	}
	seen := map[string]bool{}
	for _, o := range objs {
		id, ok := o["id"].(string)
		if !ok {
			return "", "", errs.Invalidf("Invalid parameter authData")
		}
		val, ok := o["value"].(string)
		if o["value"] != nil && !ok {
			return "", "", errs.Invalidf("Invalid parameter authData")
		}
		key := strings.ToUpper(id)
		if seen[key] {
			return "", "", errs.Invalidf("Invalid parameter authData")
		}
		seen[key] = true
		switch key {
		case "PIN":
			pin = val
		case "OTP":
			otp = val
		default:
			return "", "", errs.Invalidf("Invalid parameter authData")
		}
	}
	return pin, otp, nil
}

// decodeChallenge reads v2 credentials/getChallenge and v1
// credentials/sendOTP: both send the OTP of a credential.
func decodeChallenge(d *dialect, body []byte) (string, error) {
	f, err := parseRequest(body)
	if err != nil {
		return "", err
	}
	id, err := f.str("credentialID", true)
	if err != nil {
		return "", err
	}
	if d.version == 2 {
		obj, err := f.str("authObjectID", true)
		if err != nil {
			return "", err
		}
		if !strings.EqualFold(obj, "OTP") {
			return "", errs.Invalidf("Invalid parameter authObjectID")
		}
	}
	return id, nil
}

func decodeExtend(d *dialect, body []byte, max int) (*extendReq, error) {
	f, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	r := &extendReq{}
	if r.CredentialID, err = f.str("credentialID", true); err != nil {
		return nil, err
	}
	if r.SAD, err = f.str("SAD", true); err != nil {
		return nil, err
	}
	if r.Hashes, err = decodeHashes(f, d, false, max); err != nil {
		return nil, err
	}
	oidName := d.hashAlgo
	if d.version == 1 && !f.has(oidName) && f.has("hashAlgorithmOID") {
		oidName = "hashAlgorithmOID"
	}
	if r.Hash, err = hashOfList(f, oidName, d.version == 2, r.Hashes); err != nil {
		return nil, err
	}
	return r, nil
}

func decodeSignHash(d *dialect, body []byte, max int) (*signHashReq, error) {
	f, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	r := &signHashReq{}
	if r.CredentialID, err = f.str("credentialID", true); err != nil {
		return nil, err
	}
	// v2 allows omitting the SAD when the bearer is a credential-scope
	// token (not issued yet: the handler decides, see API.resolveSAD).
	if r.SAD, err = f.str("SAD", d.version == 1); err != nil {
		return nil, err
	}
	if r.Hashes, err = decodeHashes(f, d, true, max); err != nil {
		return nil, err
	}
	signAlgo, err := f.str("signAlgo", true)
	if err != nil {
		return nil, err
	}
	hashOID, err := f.str(d.hashAlgo, false)
	if err != nil {
		return nil, err
	}
	// The Swift EUDI client sends sign_algo_params.
	params, err := f.str("signAlgoParams", false, "sign_algo_params")
	if err != nil {
		return nil, err
	}
	if d.version == 2 {
		mode, err := f.str("operationMode", false)
		if err != nil {
			return nil, err
		}
		// asynchronousOperationMode is false in info: only "S".
		if mode != "" && mode != "S" {
			return nil, errs.Invalidf("Invalid parameter operationMode")
		}
	}
	if r.Scheme, err = resolveScheme(signAlgo, hashOID, params, d.hashAlgo); err != nil {
		return nil, err
	}
	if err := checkDigests(r.Hashes, r.Scheme.Hash); err != nil {
		return nil, err
	}
	return r, nil
}

// maxNonceHex bounds the timestamp nonce (RFC 3161 nonces are a few bytes).
const maxNonceHex = 64

func decodeTimestamp(body []byte) (*timestampReq, error) {
	f, err := parseRequest(body)
	if err != nil {
		return nil, err
	}
	r := &timestampReq{}
	v, ok := f.get("hash")
	if !ok {
		return nil, errs.Invalidf("Missing (or invalid type) string parameter hash")
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, errs.Invalidf("Missing (or invalid type) string parameter hash")
	}
	if s == "" {
		return nil, errs.Invalidf("Empty hash parameter")
	}
	if r.Hash, err = decodeB64(s); err != nil {
		return nil, errs.Invalidf("Invalid Base64 hash string parameter")
	}
	oid, err := f.str("hashAlgo", true)
	if err != nil {
		return nil, err
	}
	if r.Algo, ok = hashByOID[oid]; !ok {
		return nil, errs.Invalidf("Invalid parameter hashAlgo")
	}
	if err := checkDigests([][]byte{r.Hash}, r.Algo); err != nil {
		return nil, err
	}
	nonce, err := f.str("nonce", false)
	if err != nil {
		return nil, err
	}
	if nonce != "" {
		b, err := hex.DecodeString(nonce)
		if err != nil || len(nonce) > maxNonceHex {
			return nil, errs.Invalidf("Invalid parameter nonce")
		}
		r.Nonce = new(big.Int).SetBytes(b)
	}
	return r, nil
}

// pageTokenPrefix versions the v1 pageToken format. The token is opaque to
// clients: base64url of the prefix and the last credential ID returned.
const pageTokenPrefix = "p1:"

func encodePageToken(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + lastID))
}

func decodePageToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), pageTokenPrefix) || len(b) == len(pageTokenPrefix) {
		return "", errs.Invalidf("Invalid parameter pageToken")
	}
	return string(b[len(pageTokenPrefix):]), nil
}
