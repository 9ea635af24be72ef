package csc

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
)

var (
	d256 = sha256.Sum256([]byte("one"))
	d384 = sha512.Sum384([]byte("one"))
	d512 = sha512.Sum512([]byte("one"))

	b256    = base64.StdEncoding.EncodeToString(d256[:])
	b384    = base64.StdEncoding.EncodeToString(d384[:])
	pssGood = base64.StdEncoding.EncodeToString(pssParamsDER(crypto.SHA256, 32, crypto.SHA256))
)

// wantInvalid asserts err renders as 400 with the given code and message.
func wantInvalid(t *testing.T, err error, code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %q", msg)
	}
	status, body := httpx.Status(err, httpx.CSC)
	if status != 400 || body.Error != code || body.Description != msg {
		t.Fatalf("got %d %s %q, want 400 %s %q (err %v)", status, body.Error, body.Description, code, msg, err)
	}
}

func TestDecodeSignHash(t *testing.T) {
	type tc struct {
		name    string
		d       *dialect
		body    string
		wantMsg string // "" = must succeed
		check   func(t *testing.T, r *signHashReq)
	}
	sig := func(extra string) string {
		return `{"credentialID":"c1","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.11"` + extra + `}`
	}
	urlNoPad := base64.RawURLEncoding.EncodeToString(d256[:])
	cases := []tc{
		{name: "sha256WithRSA ok", d: dialectV2, body: sig(""), check: func(t *testing.T, r *signHashReq) {
			if r.Scheme.Opts != crypto.SHA256 || r.Scheme.Key != keyRSA || len(r.Hashes) != 1 || !bytes.Equal(r.Hashes[0], d256[:]) {
				t.Fatalf("bad decode %+v", r.Scheme)
			}
		}},
		{name: "base64url unpadded hash decodes to same bytes", d: dialectV2,
			body: `{"credentialID":"c1","SAD":"s","hashes":["` + urlNoPad + `"],"signAlgo":"1.2.840.10045.4.3.2"}`,
			check: func(t *testing.T, r *signHashReq) {
				if !bytes.Equal(r.Hashes[0], d256[:]) || r.Scheme.Key != keyEC {
					t.Fatal("url hash decoded wrong")
				}
			}},
		{name: "rsaEncryption with hashAlgorithmOID", d: dialectV2,
			body: `{"credentialID":"c1","SAD":"s","hashes":["` + b384 + `"],"signAlgo":"1.2.840.113549.1.1.1","hashAlgorithmOID":"2.16.840.1.101.3.4.2.2"}`,
			check: func(t *testing.T, r *signHashReq) {
				if r.Scheme.Opts != crypto.SHA384 {
					t.Fatal("want SHA-384")
				}
			}},
		{name: "PSS with params", d: dialectV2, body: sig(`,"signAlgo":"1.2.840.113549.1.1.10","signAlgoParams":"` + pssGood + `"`),
			check: func(t *testing.T, r *signHashReq) {
				p, ok := r.Scheme.Opts.(*rsa.PSSOptions)
				if !ok || p.Hash != crypto.SHA256 || p.SaltLength != 32 {
					t.Fatalf("bad PSS opts %#v", r.Scheme.Opts)
				}
			}},
		{name: "PSS with Swift alias sign_algo_params", d: dialectV2, body: sig(`,"signAlgo":"1.2.840.113549.1.1.10","sign_algo_params":"` + pssGood + `"`)},
		{name: "v1 names", d: dialectV1, body: `{"credentialID":"c1","SAD":"s","hash":["` + b256 + `"],"hashAlgo":"2.16.840.1.101.3.4.2.1","signAlgo":"1.2.840.113549.1.1.1"}`},
		{name: "unknown fields ignored", d: dialectV2, body: sig(`,"foo":{"bar":[1,2]},"clientData":"x","client_data":"y"`)},
		{name: "v2 without SAD decodes (credential-scope hook)", d: dialectV2, body: `{"credentialID":"c1","hashes":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.11"}`},

		{name: "missing credentialID", d: dialectV2, body: `{"SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Missing (or invalid type) string parameter credentialID"},
		{name: "credentialID not a string", d: dialectV2, body: `{"credentialID":5,"SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Missing (or invalid type) string parameter credentialID"},
		{name: "empty credentialID", d: dialectV2, body: `{"credentialID":"","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Missing (or invalid type) string parameter credentialID"},
		{name: "v1 missing SAD", d: dialectV1, body: `{"credentialID":"c1","hash":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Missing (or invalid type) string parameter SAD"},
		{name: "missing hashes", d: dialectV2, body: `{"credentialID":"c1","SAD":"s","signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Missing (or invalid type) array parameter hashes"},
		{name: "v1 missing hash", d: dialectV1, body: `{"credentialID":"c1","SAD":"s","signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Missing (or invalid type) array parameter hash"},
		{name: "hashes not an array", d: dialectV2, body: `{"credentialID":"c1","SAD":"s","hashes":"` + b256 + `","signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Missing (or invalid type) array parameter hashes"},
		{name: "empty hash array", d: dialectV2, body: `{"credentialID":"c1","SAD":"s","hashes":[],"signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Empty hash array"},
		{name: "garbage base64", d: dialectV2, body: `{"credentialID":"c1","SAD":"s","hashes":["!!!not base64!!!"],"signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Invalid Base64 hash string parameter"},
		{name: "mixed alphabets", d: dialectV2, body: `{"credentialID":"c1","SAD":"s","hashes":["ab+c-_=="],"signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Invalid Base64 hash string parameter"},
		{name: "too much padding", d: dialectV2, body: `{"credentialID":"c1","SAD":"s","hashes":["` + b256 + `=="],"signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Invalid Base64 hash string parameter"},
		{name: "hash entry not a string", d: dialectV2, body: `{"credentialID":"c1","SAD":"s","hashes":[42],"signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Invalid Base64 hash string parameter"},
		{name: "empty hash entry", d: dialectV2, body: `{"credentialID":"c1","SAD":"s","hashes":[""],"signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Invalid Base64 hash string parameter"},
		{name: "digest length wrong for the OID", d: dialectV2, body: `{"credentialID":"c1","SAD":"s","hashes":["` + b384 + `"],"signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Invalid digest value length"},
		{name: "digest length wrong for hashAlgorithmOID", d: dialectV2, body: `{"credentialID":"c1","SAD":"s","hashes":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.1","hashAlgorithmOID":"2.16.840.1.101.3.4.2.3"}`, wantMsg: "Invalid digest value length"},
		{name: "missing signAlgo", d: dialectV2, body: `{"credentialID":"c1","SAD":"s","hashes":["` + b256 + `"]}`, wantMsg: "Missing (or invalid type) string parameter signAlgo"},
		{name: "unknown signAlgo", d: dialectV2, body: sig(`,"signAlgo":"1.2.3.4"`), wantMsg: "Invalid parameter signAlgo"},
		{name: "SHA-1 RSA signAlgo refused", d: dialectV2, body: sig(`,"signAlgo":"1.2.840.113549.1.1.5"`), wantMsg: "Invalid parameter signAlgo"},
		{name: "rsaEncryption without hash OID", d: dialectV2, body: sig(`,"signAlgo":"1.2.840.113549.1.1.1"`), wantMsg: "Missing (or invalid type) string parameter hashAlgorithmOID"},
		{name: "v1 rsaEncryption without hashAlgo", d: dialectV1, body: `{"credentialID":"c1","SAD":"s","hash":["` + b256 + `"],"signAlgo":"1.2.840.113549.1.1.1"}`, wantMsg: "Missing (or invalid type) string parameter hashAlgo"},
		{name: "unknown hash OID", d: dialectV2, body: sig(`,"signAlgo":"1.2.840.113549.1.1.1","hashAlgorithmOID":"1.3.14.3.2.26"`), wantMsg: "Invalid parameter hashAlgorithmOID"},
		{name: "hash OID contradicts signAlgo", d: dialectV2, body: sig(`,"hashAlgorithmOID":"2.16.840.1.101.3.4.2.3"`), wantMsg: "Invalid parameter hashAlgorithmOID"},
		{name: "PSS without params", d: dialectV2, body: sig(`,"signAlgo":"1.2.840.113549.1.1.10"`), wantMsg: "Missing (or invalid type) string parameter signAlgoParams"},
		{name: "PSS params garbage base64", d: dialectV2, body: sig(`,"signAlgo":"1.2.840.113549.1.1.10","signAlgoParams":"%%%"`), wantMsg: "Invalid parameter signAlgoParams"},
		{name: "PSS params garbage DER", d: dialectV2, body: sig(`,"signAlgo":"1.2.840.113549.1.1.10","signAlgoParams":"MAMCAQE="`), wantMsg: "Invalid parameter signAlgoParams"},
		{name: "PSS params default SHA-1", d: dialectV2, body: sig(`,"signAlgo":"1.2.840.113549.1.1.10","signAlgoParams":"MAA="`), wantMsg: "Invalid parameter signAlgoParams"},
		{name: "PSS mismatched MGF hash", d: dialectV2, body: sig(`,"signAlgo":"1.2.840.113549.1.1.10","signAlgoParams":"` + base64.StdEncoding.EncodeToString(pssParamsDER(crypto.SHA256, 32, crypto.SHA512)) + `"`), wantMsg: "Invalid parameter signAlgoParams"},
		{name: "PSS salt zero", d: dialectV2, body: sig(`,"signAlgo":"1.2.840.113549.1.1.10","signAlgoParams":"` + base64.StdEncoding.EncodeToString(pssParamsDER(crypto.SHA256, 0, crypto.SHA256)) + `"`), wantMsg: "Invalid parameter signAlgoParams"},
		{name: "PSS params hash vs hashAlgorithmOID", d: dialectV2, body: sig(`,"signAlgo":"1.2.840.113549.1.1.10","hashAlgorithmOID":"2.16.840.1.101.3.4.2.2","signAlgoParams":"` + pssGood + `"`), wantMsg: "Invalid parameter hashAlgorithmOID"},
		{name: "async mode refused", d: dialectV2, body: sig(`,"operationMode":"A"`), wantMsg: "Invalid parameter operationMode"},
		{name: "clientData not a string", d: dialectV2, body: sig(`,"clientData":{}`), wantMsg: "Missing (or invalid type) string parameter clientData"},
		{name: "malformed JSON", d: dialectV2, body: `{"credentialID":"c1",`, wantMsg: "Malformed JSON request body"},
		{name: "JSON array body", d: dialectV2, body: `["c1"]`, wantMsg: "Request body must be a JSON object"},
		{name: "form body", d: dialectV2, body: `credentialID=c1&SAD=s`, wantMsg: "Request body must be a JSON object"},
		{name: "trailing data", d: dialectV2, body: sig("") + `{}`, wantMsg: "Trailing data after the JSON request body"},
		{name: "empty body", d: dialectV2, body: ``, wantMsg: "Missing (or invalid type) string parameter credentialID"},
		{name: "too many hashes", d: dialectV2, body: `{"credentialID":"c1","SAD":"s","hashes":["` + strings.Repeat(b256+`","`, 3) + b256 + `"],"signAlgo":"1.2.840.113549.1.1.11"}`, wantMsg: "Too many hashes: at most 3 per request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := decodeSignHash(c.d, []byte(c.body), 3)
			if c.wantMsg != "" {
				wantInvalid(t, err, "invalid_request", c.wantMsg)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

func TestSchemeCheckKey(t *testing.T) {
	cases := []struct {
		name, signAlgo, params, keyAlgo string
		keyLen                          int
		ok                              bool
	}{
		{"RSA algo on RSA key", oidSHA256WithRSA, "", "rsa-2048", 2048, true},
		{"ECDSA algo on RSA key", oidECDSAWithSHA256, "", "rsa-2048", 2048, false},
		{"RSA algo on EC key", oidSHA256WithRSA, "", "ecdsa-p256", 256, false},
		{"rsaEncryption on EC key", oidRSAEncryption, "", "ecdsa-p384", 384, false},
		{"PSS on EC key", oidRSAPSS, pssGood, "ecdsa-p256", 256, false},
		{"PSS on RSA key", oidRSAPSS, pssGood, "rsa-2048", 2048, true},
		{"PSS salt too large for the modulus", oidRSAPSS, base64.StdEncoding.EncodeToString(pssParamsDER(crypto.SHA512, 400, crypto.SHA512)), "rsa-2048", 2048, false},
		{"ECDSA P-384 algo on P-384 key", oidECDSAWithSHA384, "", "ecdsa-p384", 384, true},
		{"unknown key algo", oidSHA256WithRSA, "", "ed25519", 256, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := resolveScheme(c.signAlgo, oidSHA256, c.params, "hashAlgorithmOID")
			if err != nil {
				// PSS with SHA-512 params and the SHA-256 OID: resolve without the OID.
				s, err = resolveScheme(c.signAlgo, "", c.params, "hashAlgorithmOID")
				if err != nil {
					t.Fatalf("resolve: %v", err)
				}
			}
			err = s.checkKey(c.keyAlgo, c.keyLen)
			if c.ok && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !c.ok {
				msg := "Invalid parameter signAlgo"
				if c.params != "" && keyTypeOf(c.keyAlgo) == keyRSA {
					msg = "Invalid parameter signAlgoParams"
				}
				wantInvalid(t, err, "invalid_request", msg)
			}
		})
	}
}

func TestDecodeAuthorize(t *testing.T) {
	cases := []struct {
		name    string
		d       *dialect
		body    string
		wantMsg string
		check   func(t *testing.T, r *authorizeReq)
	}{
		{name: "v2 authData with hashes", d: dialectV2,
			body: `{"credentialID":"c1","numSignatures":1,"hashes":["` + b256 + `"],"hashAlgorithmOID":"2.16.840.1.101.3.4.2.1","authData":[{"id":"PIN","value":"1234"},{"id":"OTP","value":"987654"}],"description":"d"}`,
			check: func(t *testing.T, r *authorizeReq) {
				if r.PIN != "1234" || r.OTP != "987654" || r.NumSignatures != 1 || r.Hash != crypto.SHA256 || len(r.Hashes) != 1 || r.Description != "d" {
					t.Fatalf("bad decode %+v", r)
				}
			}},
		{name: "numSignatures as numeric string", d: dialectV2, body: `{"credentialID":"c1","numSignatures":"3","authData":[{"id":"PIN","value":"1"}]}`,
			check: func(t *testing.T, r *authorizeReq) {
				if r.NumSignatures != 3 || r.Hashes != nil {
					t.Fatalf("bad decode %+v", r)
				}
			}},
		{name: "v1 PIN OTP and inferred SHA-384", d: dialectV1, body: `{"credentialID":"c1","numSignatures":1,"hash":["` + b384 + `"],"PIN":"1","OTP":"2"}`,
			check: func(t *testing.T, r *authorizeReq) {
				if r.PIN != "1" || r.OTP != "2" || r.Hash != crypto.SHA384 {
					t.Fatalf("bad decode %+v", r)
				}
			}},
		{name: "v2 with v1-style PIN", d: dialectV2, body: `{"credentialID":"c1","numSignatures":1,"PIN":"1"}`,
			check: func(t *testing.T, r *authorizeReq) {
				if r.PIN != "1" {
					t.Fatal("PIN lost")
				}
			}},
		{name: "missing credentialID", d: dialectV2, body: `{"numSignatures":1}`, wantMsg: "Missing (or invalid type) string parameter credentialID"},
		{name: "missing numSignatures", d: dialectV2, body: `{"credentialID":"c1"}`, wantMsg: "Missing (or invalid type) integer parameter numSignatures"},
		{name: "numSignatures abc", d: dialectV2, body: `{"credentialID":"c1","numSignatures":"abc"}`, wantMsg: "Missing (or invalid type) integer parameter numSignatures"},
		{name: "numSignatures float", d: dialectV2, body: `{"credentialID":"c1","numSignatures":1.5}`, wantMsg: "Missing (or invalid type) integer parameter numSignatures"},
		{name: "numSignatures bool", d: dialectV1, body: `{"credentialID":"c1","numSignatures":true}`, wantMsg: "Missing (or invalid type) integer parameter numSignatures"},
		{name: "numSignatures 0", d: dialectV2, body: `{"credentialID":"c1","numSignatures":0}`, wantMsg: "Invalid value for parameter numSignatures"},
		{name: "numSignatures -1", d: dialectV2, body: `{"credentialID":"c1","numSignatures":-1}`, wantMsg: "Invalid value for parameter numSignatures"},
		{name: "numSignatures huge", d: dialectV2, body: `{"credentialID":"c1","numSignatures":"99999999999"}`, wantMsg: "Invalid value for parameter numSignatures"},
		{name: "v2 hashes without OID", d: dialectV2, body: `{"credentialID":"c1","numSignatures":1,"hashes":["` + b256 + `"]}`, wantMsg: "Missing (or invalid type) string parameter hashAlgorithmOID"},
		{name: "v2 hashes with wrong OID", d: dialectV2, body: `{"credentialID":"c1","numSignatures":1,"hashes":["` + b256 + `"],"hashAlgorithmOID":"2.16.840.1.101.3.4.2.2"}`, wantMsg: "Invalid digest value length"},
		{name: "v2 unknown OID", d: dialectV2, body: `{"credentialID":"c1","numSignatures":1,"hashes":["` + b256 + `"],"hashAlgorithmOID":"1.3.14.3.2.26"}`, wantMsg: "Invalid parameter hashAlgorithmOID"},
		{name: "v1 odd digest length", d: dialectV1, body: `{"credentialID":"c1","numSignatures":1,"hash":["AAAA"]}`, wantMsg: "Invalid digest value length"},
		{name: "v1 mixed digest lengths", d: dialectV1, body: `{"credentialID":"c1","numSignatures":2,"hash":["` + b256 + `","` + b384 + `"]}`, wantMsg: "Invalid digest value length"},
		{name: "garbage base64", d: dialectV2, body: `{"credentialID":"c1","numSignatures":1,"hashes":["???"],"hashAlgorithmOID":"2.16.840.1.101.3.4.2.1"}`, wantMsg: "Invalid Base64 hash string parameter"},
		{name: "authData not an array", d: dialectV2, body: `{"credentialID":"c1","numSignatures":1,"authData":"1234"}`, wantMsg: "Missing (or invalid type) array parameter authData"},
		{name: "authData unknown id", d: dialectV2, body: `{"credentialID":"c1","numSignatures":1,"authData":[{"id":"FACE","value":"x"}]}`, wantMsg: "Invalid parameter authData"},
		{name: "authData duplicate id", d: dialectV2, body: `{"credentialID":"c1","numSignatures":1,"authData":[{"id":"PIN","value":"1"},{"id":"PIN","value":"2"}]}`, wantMsg: "Invalid parameter authData"},
		{name: "authData value not string", d: dialectV2, body: `{"credentialID":"c1","numSignatures":1,"authData":[{"id":"PIN","value":1234}]}`, wantMsg: "Invalid parameter authData"},
		{name: "v1 PIN not a string", d: dialectV1, body: `{"credentialID":"c1","numSignatures":1,"PIN":1234}`, wantMsg: "Missing (or invalid type) string parameter PIN"},
		{name: "description too long", d: dialectV2, body: `{"credentialID":"c1","numSignatures":1,"description":"` + strings.Repeat("x", 501) + `"}`, wantMsg: "Invalid parameter description"},
		{name: "malformed JSON", d: dialectV2, body: `{"credentialID":}`, wantMsg: "Malformed JSON request body"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := decodeAuthorize(c.d, []byte(c.body), DefaultMaxHashes)
			if c.wantMsg != "" {
				wantInvalid(t, err, "invalid_request", c.wantMsg)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

func TestDecodeOthers(t *testing.T) {
	cases := []struct {
		name    string
		decode  func() error
		code    string
		wantMsg string
	}{
		{"list userID must be null v2", func() error { _, err := decodeList(dialectV2, []byte(`{"userID":"u1"}`)); return err }, "invalid_request", "userID parameter MUST be null"},
		{"list userID must be null v1", func() error { _, err := decodeList(dialectV1, []byte(`{"userID":"u1"}`)); return err }, "invalid_request", "userID parameter MUST be null"},
		{"list null userID ok", func() error { _, err := decodeList(dialectV2, []byte(`{"userID":null}`)); return err }, "", ""},
		{"list empty body ok", func() error { _, err := decodeList(dialectV2, nil); return err }, "", ""},
		{"list bad certificates", func() error { _, err := decodeList(dialectV2, []byte(`{"certificates":"all"}`)); return err }, "invalid_request", "Invalid parameter certificates"},
		{"list credentialInfo not bool", func() error { _, err := decodeList(dialectV2, []byte(`{"credentialInfo":"yes"}`)); return err }, "invalid_request", "Missing (or invalid type) boolean parameter credentialInfo"},
		{"list credentialInfo string true ok", func() error { _, err := decodeList(dialectV2, []byte(`{"credentialInfo":"true"}`)); return err }, "", ""},
		{"list maxResults 0", func() error { _, err := decodeList(dialectV1, []byte(`{"maxResults":0}`)); return err }, "invalid_request", "Invalid parameter maxResults"},
		{"list maxResults abc", func() error { _, err := decodeList(dialectV1, []byte(`{"maxResults":"abc"}`)); return err }, "invalid_request", "Missing (or invalid type) integer parameter maxResults"},
		{"list bad pageToken", func() error { _, err := decodeList(dialectV1, []byte(`{"pageToken":"zzz"}`)); return err }, "invalid_request", "Invalid parameter pageToken"},
		{"list good pageToken", func() error {
			_, err := decodeList(dialectV1, []byte(`{"pageToken":"`+encodePageToken("c9")+`"}`))
			return err
		}, "", ""},
		{"info missing credentialID", func() error { _, err := decodeInfo([]byte(`{"certificates":"chain"}`)); return err }, "invalid_request", "Missing (or invalid type) string parameter credentialID"},
		{"info bad certificates", func() error { _, err := decodeInfo([]byte(`{"credentialID":"c","certificates":1}`)); return err }, "invalid_request", "Missing (or invalid type) string parameter certificates"},
		{"info certInfo not bool", func() error { _, err := decodeInfo([]byte(`{"credentialID":"c","certInfo":3}`)); return err }, "invalid_request", "Missing (or invalid type) boolean parameter certInfo"},
		{"getChallenge missing authObjectID", func() error { _, err := decodeChallenge(dialectV2, []byte(`{"credentialID":"c"}`)); return err }, "invalid_request", "Missing (or invalid type) string parameter authObjectID"},
		{"getChallenge bad authObjectID", func() error {
			_, err := decodeChallenge(dialectV2, []byte(`{"credentialID":"c","authObjectID":"PIN"}`))
			return err
		}, "invalid_request", "Invalid parameter authObjectID"},
		{"sendOTP missing credentialID", func() error { _, err := decodeChallenge(dialectV1, []byte(`{}`)); return err }, "invalid_request", "Missing (or invalid type) string parameter credentialID"},
		{"extend missing SAD", func() error { _, err := decodeExtend(dialectV2, []byte(`{"credentialID":"c"}`), 10); return err }, "invalid_request", "Missing (or invalid type) string parameter SAD"},
		{"extend bad hash", func() error {
			_, err := decodeExtend(dialectV2, []byte(`{"credentialID":"c","SAD":"s","hashes":["@"],"hashAlgorithmOID":"2.16.840.1.101.3.4.2.1"}`), 10)
			return err
		}, "invalid_request", "Invalid Base64 hash string parameter"},
		{"revoke missing token", func() error { _, err := decodeRevoke([]byte(`{}`)); return err }, "invalid_request", "Missing (or invalid type) string parameter token"},
		{"revoke bad hint", func() error { _, err := decodeRevoke([]byte(`{"token":"t","token_type_hint":"id_token"}`)); return err }, "unsupported_token_type", "Invalid parameter token_type_hint"},
		{"login rememberMe not bool", func() error { _, err := decodeLogin([]byte(`{"rememberMe":1}`)); return err }, "invalid_request", "Missing (or invalid type) boolean parameter rememberMe"},
		{"login empty body ok", func() error { _, err := decodeLogin(nil); return err }, "", ""},
		{"timestamp missing hash", func() error { _, err := decodeTimestamp([]byte(`{"hashAlgo":"2.16.840.1.101.3.4.2.1"}`)); return err }, "invalid_request", "Missing (or invalid type) string parameter hash"},
		{"timestamp empty hash", func() error {
			_, err := decodeTimestamp([]byte(`{"hash":"","hashAlgo":"2.16.840.1.101.3.4.2.1"}`))
			return err
		}, "invalid_request", "Empty hash parameter"},
		{"timestamp bad hashAlgo", func() error {
			_, err := decodeTimestamp([]byte(`{"hash":"` + b256 + `","hashAlgo":"1.2.3"}`))
			return err
		}, "invalid_request", "Invalid parameter hashAlgo"},
		{"timestamp wrong length", func() error {
			_, err := decodeTimestamp([]byte(`{"hash":"` + b384 + `","hashAlgo":"2.16.840.1.101.3.4.2.1"}`))
			return err
		}, "invalid_request", "Invalid digest value length"},
		{"timestamp bad nonce", func() error {
			_, err := decodeTimestamp([]byte(`{"hash":"` + b256 + `","hashAlgo":"2.16.840.1.101.3.4.2.1","nonce":"xyz"}`))
			return err
		}, "invalid_request", "Invalid parameter nonce"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.decode()
			if c.wantMsg == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			wantInvalid(t, err, c.code, c.wantMsg)
		})
	}
}

func TestDecodeB64AcceptsEveryAlphabet(t *testing.T) {
	// Bytes chosen so that the std and url encodings differ (+/ vs -_).
	raw := []byte{0xfb, 0xff, 0xbf, 0xfe, 0x01}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		s := enc.EncodeToString(raw)
		got, err := decodeB64(s)
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("%q: got %x, %v", s, got, err)
		}
	}
	for _, bad := range []string{"a", "ab=", "abc===", "a b c d", "ab+_", "\n00", "AA\r\nAA", "AA==AA"} {
		if _, err := decodeB64(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPageTokenRoundTrip(t *testing.T) {
	for _, id := range []string{"c1", "a/b+c", strings.Repeat("z", 300)} {
		got, err := decodePageToken(encodePageToken(id))
		if err != nil || got != id {
			t.Fatalf("%q: got %q %v", id, got, err)
		}
	}
	if _, err := decodePageToken(encodePageToken("")); errs.KindOf(err) != errs.Invalid {
		t.Fatalf("empty last id accepted: %v", err)
	}
}
