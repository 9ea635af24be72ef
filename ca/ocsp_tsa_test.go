package ca_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ocsp"

	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/errs"
)

var oidNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}

// withNonce appends requestExtensions [2] { nonce } to a DER OCSP request
// made by x/crypto/ocsp (which cannot add extensions).
func withNonce(t testing.TB, req []byte, nonce []byte) []byte {
	t.Helper()
	var outer struct {
		TBS asn1.RawValue
	}
	if _, err := asn1.Unmarshal(req, &outer); err != nil {
		t.Fatal(err)
	}
	value, _ := asn1.Marshal(nonce)
	exts, _ := asn1.Marshal([]pkix.Extension{{Id: oidNonce, Value: value}})
	tagged, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: exts})
	tbs, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true,
		Bytes: append(append([]byte(nil), outer.TBS.Bytes...), tagged...)})
	out, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: tbs})
	return out
}

func TestOCSPResponses(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	leaf, err := e.a.Issue(ctx, holder(e.credentialKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	ask := func(t *testing.T, h crypto.Hash, nonce []byte) *ocsp.Response {
		t.Helper()
		req, err := ocsp.CreateRequest(leaf.Cert, e.a.Issuer(), &ocsp.RequestOptions{Hash: h})
		if err != nil {
			t.Fatal(err)
		}
		if nonce != nil {
			req = withNonce(t, req, nonce)
		}
		der, err := e.a.OCSP(ctx, req)
		if err != nil {
			t.Fatalf("OCSP: %v", err)
		}
		r, err := ocsp.ParseResponseForCert(der, leaf.Cert, e.a.Issuer())
		if err != nil {
			t.Fatalf("response does not parse/verify: %v", err)
		}
		if !r.Certificate.Equal(e.a.OCSPCertificate()) || r.Certificate.CheckSignatureFrom(e.a.Issuer()) != nil {
			t.Fatal("response not signed by the delegated responder")
		}
		if !r.NextUpdate.After(r.ThisUpdate) {
			t.Fatal("no nextUpdate")
		}
		return r
	}
	t.Run("nonce_is_echoed_in_responseExtensions", func(t *testing.T) {
		nonce := []byte("0123456789abcdef")
		r := ask(t, crypto.SHA1, nonce)
		want, _ := asn1.Marshal(nonce)
		var got []byte
		for _, x := range responseExtensions(t, r.Raw) {
			if x.Id.Equal(oidNonce) {
				got = x.Value
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("nonce %x, want %x", got, want)
		}
	})
	t.Run("no_nonce_no_extension", func(t *testing.T) {
		if r := ask(t, crypto.SHA1, nil); len(responseExtensions(t, r.Raw)) != 0 {
			t.Fatal("response extensions without a nonce in the request")
		}
	})
	t.Run("sha256_certid", func(t *testing.T) {
		if r := ask(t, crypto.SHA256, nil); r.Status != ocsp.Good || r.IssuerHash != crypto.SHA256 {
			t.Fatalf("status %d hash %v", r.Status, r.IssuerHash)
		}
	})
	t.Run("suspended_is_certificateHold", func(t *testing.T) {
		if err := e.a.Suspend(ctx, leaf.Serial, "admin"); err != nil {
			t.Fatal(err)
		}
		r := ask(t, crypto.SHA1, nil)
		if r.Status != ocsp.Revoked || r.RevocationReason != ocsp.CertificateHold || r.RevokedAt.IsZero() {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("oversized_nonce_is_refused", func(t *testing.T) {
		req, _ := ocsp.CreateRequest(leaf.Cert, e.a.Issuer(), nil)
		if _, err := e.a.OCSP(ctx, withNonce(t, req, make([]byte, 300))); errs.KindOf(err) != errs.Invalid {
			t.Fatalf("got %v", err)
		}
	})
}

func TestTimestamp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	digest := sha256.Sum256([]byte("a PDF byte range"))
	token, err := e.a.Timestamp(ctx, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("Timestamp: %v", err)
	}
	ts, err := timestamp.Parse(token) // verifies the CMS signature
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	if !bytes.Equal(ts.HashedMessage, digest[:]) || ts.HashAlgorithm != crypto.SHA256 || ts.Accuracy != time.Second ||
		!ts.Policy.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1, 1}) || ts.SerialNumber.BitLen() < 64 {
		t.Fatalf("token content %+v", ts)
	}
	if len(ts.Certificates) == 0 || !ts.Certificates[0].Equal(e.a.TSACertificate()) {
		t.Fatal("TSA certificate not embedded")
	}
	if _, err := ts.Certificates[0].Verify(x509.VerifyOptions{Roots: pool(e.a.Root()), Intermediates: pool(e.a.Issuer()),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}}); err != nil {
		t.Fatalf("TSA certificate chain: %v", err)
	}
	second, err := e.a.Timestamp(ctx, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	ts2, _ := timestamp.Parse(second)
	if ts2.SerialNumber.Cmp(ts.SerialNumber) == 0 {
		t.Fatal("two tokens share a serial number")
	}
	t.Run("wrong_digest_length", func(t *testing.T) {
		if _, err := e.a.Timestamp(ctx, digest[:20], crypto.SHA256); errs.KindOf(err) != errs.Invalid {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("sha1_refused", func(t *testing.T) {
		if _, err := e.a.Timestamp(ctx, digest[:20], crypto.SHA1); errs.KindOf(err) != errs.Invalid {
			t.Fatalf("got %v", err)
		}
	})
}

func TestTimestampResponseRejections(t *testing.T) {
	e := newEnv(t)
	digest := sha256.Sum256([]byte("x"))
	cases := map[string]struct {
		req  timestamp.Request
		fail timestamp.FailureInfo
	}{
		"sha1":            {timestamp.Request{HashAlgorithm: crypto.SHA1, HashedMessage: digest[:20]}, timestamp.BadAlgorithm},
		"short_digest":    {timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: digest[:10]}, timestamp.BadDataFormat},
		"foreign_policy":  {timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: digest[:], TSAPolicyOID: asn1.ObjectIdentifier{1, 2, 3}}, timestamp.UnacceptedPolicy},
		"granted_w_nonce": {timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: digest[:], Nonce: big.NewInt(424242), Certificates: true}, -1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			der, err := tc.req.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			resp, err := e.a.TimestampResponse(context.Background(), der)
			if err != nil {
				t.Fatal(err)
			}
			ts, err := timestamp.ParseResponse(resp)
			if tc.fail == -1 {
				if err != nil || ts.Nonce.Cmp(big.NewInt(424242)) != 0 {
					t.Fatalf("granted: %v nonce %v", err, ts)
				}
				return
			}
			var re *timestamp.ParseError
			_ = re
			if err == nil {
				t.Fatal("request was granted")
			}
			if got := rejectionInfo(t, resp); got != tc.fail {
				t.Fatalf("failure info %v, want %v", got, tc.fail)
			}
		})
	}
}

// rejectionInfo decodes PKIStatusInfo.failInfo of a rejected TimeStampResp.
func rejectionInfo(t *testing.T, resp []byte) timestamp.FailureInfo {
	t.Helper()
	var r struct {
		Status struct {
			Status       int
			StatusString []string       `asn1:"optional,utf8"`
			FailInfo     asn1.BitString `asn1:"optional"`
		}
	}
	if _, err := asn1.Unmarshal(resp, &r); err != nil {
		t.Fatal(err)
	}
	if r.Status.Status != 2 {
		t.Fatalf("status %d, want rejection", r.Status.Status)
	}
	for i := 0; i < r.Status.FailInfo.BitLength; i++ {
		if r.Status.FailInfo.At(i) == 1 {
			return timestamp.FailureInfo(i)
		}
	}
	return timestamp.UnknownFailureInfo
}

func TestRevocation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	leaf, err := e.a.Issue(ctx, holder(e.credentialKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.a.Revoke(ctx, leaf.Serial, "keyCompromise", "admin"); err != nil {
		t.Fatal(err)
	}
	ocspDER, crlDER, err := e.a.Revocation(ctx, leaf.Cert, e.a.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	r, err := ocsp.ParseResponseForCert(ocspDER, leaf.Cert, e.a.Issuer())
	if err != nil || r.Status != ocsp.Revoked {
		t.Fatalf("OCSP: %v %+v", err, r)
	}
	crl, err := x509.ParseRevocationList(crlDER)
	if err != nil || crl.CheckSignatureFrom(e.a.Issuer()) != nil || len(crl.RevokedCertificateEntries) != 1 {
		t.Fatalf("CRL: %v", err)
	}
	// The issuing CA itself: no OCSP, the root's CRL.
	o, c, err := e.a.Revocation(ctx, e.a.Issuer(), e.a.Root())
	if err != nil || o != nil || c == nil {
		t.Fatalf("issuing CA revocation data: %v", err)
	}
	rootCRL, _ := x509.ParseRevocationList(c)
	if rootCRL == nil || rootCRL.CheckSignatureFrom(e.a.Root()) != nil {
		t.Fatal("root CRL does not verify")
	}
	if _, _, err := e.a.Revocation(ctx, leaf.Cert, leaf.Cert); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("foreign issuer: %v", err)
	}
	_ = ca.RoleRoot
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// responseExtensions decodes ResponseData.responseExtensions, which
// x/crypto/ocsp does not expose. raw is the whole OCSPResponse.
func responseExtensions(t *testing.T, raw []byte) []pkix.Extension {
	t.Helper()
	var resp struct {
		Status asn1.Enumerated
		Bytes  struct {
			Type     asn1.ObjectIdentifier
			Response []byte
		} `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(raw, &resp); err != nil {
		t.Fatal(err)
	}
	var basic struct {
		TBS asn1.RawValue
	}
	if _, err := asn1.Unmarshal(resp.Bytes.Response, &basic); err != nil {
		t.Fatal(err)
	}
	var data struct {
		Version     int `asn1:"optional,explicit,tag:0,default:0"`
		ResponderID asn1.RawValue
		ProducedAt  time.Time `asn1:"generalized"`
		Responses   []asn1.RawValue
		Extensions  []pkix.Extension `asn1:"optional,explicit,tag:1"`
	}
	if _, err := asn1.Unmarshal(basic.TBS.FullBytes, &data); err != nil {
		t.Fatalf("ResponseData: %v", err)
	}
	return data.Extensions
}

func TestMetricsCountResponses(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	opts := []ca.Option{ca.WithAudit(e.audit), ca.WithLogger(quiet()), ca.WithRegisterer(reg)}
	a, err := ca.Open(context.Background(), e.cfg, e.keys, e.st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ca.Open(context.Background(), e.cfg, e.keys, e.st, opts...) // same registry: shares counters
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := a.Issue(context.Background(), holder(e.credentialKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := ocsp.CreateRequest(leaf.Cert, a.Issuer(), nil)
	for _, x := range []*ca.Authority{a, again} {
		if _, err := x.OCSP(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "/" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	if got["sigillo_ca_ocsp_responses_total/good"] != 2 || got["sigillo_ca_certificates_issued_total/qualified"] != 1 {
		t.Fatalf("counters %v", got)
	}
}
