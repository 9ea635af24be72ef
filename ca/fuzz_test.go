package ca_test

import (
	"testing"

	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/errs"
)

// FuzzParseOCSPRequest: the OCSP request decoder (x/crypto/ocsp plus our
// nonce extraction) never panics, and everything it refuses is Invalid.
// Seeds in testdata/fuzz/FuzzParseOCSPRequest were made by openssl ocsp
// -reqout (with and without nonce, SHA-1 and SHA-256 CertIDs).
func FuzzParseOCSPRequest(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		req, err := ca.ParseOCSPRequest(der)
		if err != nil {
			if errs.KindOf(err) != errs.Invalid {
				t.Fatalf("refusal is not Invalid: %v", err)
			}
			return
		}
		if req.SerialNumber == nil || req.SerialNumber.Sign() <= 0 {
			t.Fatal("accepted a request without a positive serial")
		}
		if len(req.Requests) == 0 || len(req.Requests) > 16 || req.Requests[0].SerialNumber.Cmp(req.SerialNumber) != 0 {
			t.Fatalf("accepted %d CertIDs", len(req.Requests))
		}
		for _, r := range req.Requests {
			if r.SerialNumber.Sign() <= 0 || !r.HashAlgorithm.Available() {
				t.Fatal("accepted a CertID without positive serial or known hash")
			}
		}
		if len(req.Nonce) > 128 {
			t.Fatalf("accepted a %d-byte nonce", len(req.Nonce))
		}
	})
}

// FuzzParseTimestampRequest: the RFC 3161 request decoder never panics and
// refuses with Invalid. Seeds were made by openssl ts -query.
func FuzzParseTimestampRequest(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		req, err := ca.ParseTimestampRequest(der)
		if err != nil {
			if errs.KindOf(err) != errs.Invalid {
				t.Fatalf("refusal is not Invalid: %v", err)
			}
			return
		}
		if len(req.HashedMessage) == 0 || !req.HashAlgorithm.Available() {
			t.Fatalf("accepted a request without a usable message imprint: %+v", req)
		}
	})
}
