package signdoc_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/cms/tsaclient"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/pades"
	"github.com/sigillo/sigillo/pades/revfetch"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/signdoc"
	"github.com/sigillo/sigillo/signdoc/signdoctest"
)

func sha(b []byte) []byte { d := sha256.Sum256(b); return d[:] }

// authorize gets a SAD for the credential: bound to hashes when given.
func authorize(t testing.TB, e *signdoctest.Env, p *sam.Principal, cred string, n int, h crypto.Hash, hashes ...[]byte) string {
	t.Helper()
	sad, err := e.Sam.Authorize(context.Background(), p, sam.AuthorizeRequest{CredentialID: cred, NumSignatures: n,
		Hashes: hashes, HashAlgo: h, PIN: signdoctest.PIN})
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	return sad.Value
}

// TestSignDoc_levels signs PDFs at every PAdES level and CAdES detached
// signatures through the real CA, sam and SoftHSM2, with SCAL 2 SADs bound
// to the document digests, and checks each result with qpdf, pdfsig and
// openssl.
func TestSignDoc_levels(t *testing.T) {
	e := signdoctest.New(t, nil)
	v := signdoctest.NewValidators(t, e.Authority.Root(), e.Authority.Issuer())
	ctx := context.Background()
	uid := e.User(t, "levels")
	p := e.Login(t, uid)
	ec := e.Credential(t, uid, sam.NewCredential{SCAL: 2, Multisign: 10})
	rsaCred := e.Credential(t, uid, sam.NewCredential{SCAL: 2, Multisign: 10, KeyAlgo: "rsa-2048"})

	for _, tc := range []struct {
		level pades.Level
		want  signdoctest.PDFWant
	}{
		{pades.BB, signdoctest.PDFWant{Sigs: 1}},
		{pades.BT, signdoctest.PDFWant{Sigs: 1, SignatureTimestamps: 1}},
		{pades.BLT, signdoctest.PDFWant{Sigs: 1, SignatureTimestamps: 1, DSS: true, TrailingUpdate: true}},
		{pades.BLTA, signdoctest.PDFWant{Sigs: 1, DTS: 1, SignatureTimestamps: 1, DSS: true}},
	} {
		t.Run("PAdES_"+tc.level.String(), func(t *testing.T) {
			docs := [][]byte{signdoctest.MakePDF(1, 0, "first "+tc.level.String()), signdoctest.MakePDF(2, 4000, "second "+tc.level.String())}
			sad := authorize(t, e, p, ec.CredentialID, 2, crypto.SHA256, sha(docs[0]), sha(docs[1]))
			req := signdoc.Request{CredentialID: ec.CredentialID, SAD: sad, ReturnValidationInfo: tc.level == pades.BT}
			for _, d := range docs {
				req.Documents = append(req.Documents, signdoc.Document{Content: d, Options: signdoc.Options{Format: "P", Level: tc.level}})
			}
			hsm := e.HSMSigns.Load()
			res, err := e.SignDoc.SignDoc(ctx, p, req)
			if err != nil {
				t.Fatal(err)
			}
			if n := e.HSMSigns.Load() - hsm; n != 2 {
				t.Errorf("%d HSM signatures for 2 documents", n)
			}
			if len(res.Documents) != 2 || len(res.Signatures) != 0 {
				t.Fatalf("got %d documents, %d signatures", len(res.Documents), len(res.Signatures))
			}
			for i, out := range res.Documents {
				if !strings.HasPrefix(string(out), string(docs[i])) {
					t.Fatalf("document %d: output does not start with its input (order or content changed)", i)
				}
				text := v.CheckPDF(t, tc.level.String(), out, tc.want)
				if !strings.Contains(text, "Rossi") {
					t.Errorf("pdfsig does not name the holder:\n%s", text)
				}
			}
			if tc.level == pades.BT {
				vi := res.ValidationInfo
				if vi == nil || len(vi.Certificates) < 4 || len(vi.OCSP) == 0 || len(vi.CRL) == 0 {
					t.Fatalf("validationInfo incomplete: %+v", vi)
				}
				for _, c := range vi.Certificates {
					if _, err := x509.ParseCertificate(c); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}

	t.Run("PAdES_RSA_certification", func(t *testing.T) {
		doc := signdoctest.MakePDF(1, 0, "certified")
		sad := authorize(t, e, p, rsaCred.CredentialID, 1, crypto.SHA256, sha(doc))
		res, err := e.SignDoc.SignDoc(ctx, p, signdoc.Request{CredentialID: rsaCred.CredentialID, SAD: sad,
			Documents: []signdoc.Document{{Content: doc, Options: signdoc.Options{Format: "P", Envelope: "Certification", Level: pades.BT}}}})
		if err != nil {
			t.Fatal(err)
		}
		v.CheckPDF(t, "certified", res.Documents[0], signdoctest.PDFWant{Sigs: 1, SignatureTimestamps: 1})
		if !strings.Contains(string(res.Documents[0]), "/DocMDP") {
			t.Fatal("certification signature without /DocMDP")
		}
		// Certifying it again is refused before the SAD is touched.
		sad2 := authorize(t, e, p, rsaCred.CredentialID, 1, crypto.SHA256, sha(res.Documents[0]))
		_, err = e.SignDoc.SignDoc(ctx, p, signdoc.Request{CredentialID: rsaCred.CredentialID, SAD: sad2,
			Documents: []signdoc.Document{{Content: res.Documents[0], Options: signdoc.Options{Format: "P", Envelope: "Certification"}}}})
		if errs.KindOf(err) != errs.Invalid || !strings.Contains(err.Error(), "signed_envelope_property") {
			t.Fatalf("certifying a signed document: %v", err)
		}
		// An approval signature on top is fine (the refused call left the
		// SAD whole). It comes from another credential: pdfsig 22.12 (NSS)
		// reports "Unknown issue with Certificate" for the second of two
		// signatures by the same certificate in one run (it reuses the
		// cached OCSP answer; seen with the CA's live OCSP responder, gone
		// with two certificates).
		second := e.Credential(t, uid, sam.NewCredential{SCAL: 1})
		sad3 := authorize(t, e, p, second.CredentialID, 1, crypto.SHA256)
		if _, err := e.SignDoc.SignDoc(ctx, p, signdoc.Request{CredentialID: rsaCred.CredentialID, SAD: sad2,
			Documents: []signdoc.Document{{Content: res.Documents[0], Options: signdoc.Options{Format: "P", Envelope: "Revision"}}}}); err != nil {
			t.Fatalf("SAD consumed by the refused certification: %v", err)
		}
		res2, err := e.SignDoc.SignDoc(ctx, p, signdoc.Request{CredentialID: second.CredentialID, SAD: sad3,
			Documents: []signdoc.Document{{Content: res.Documents[0], Options: signdoc.Options{Format: "P", Envelope: "Revision"}}}})
		if err != nil {
			t.Fatal(err)
		}
		v.CheckPDF(t, "countersigned", res2.Documents[0], signdoctest.PDFWant{Sigs: 2, SignatureTimestamps: 1})
	})

	t.Run("PAdES_B-LTA_external_TSA_over_HTTP", func(t *testing.T) {
		// The configuration an operator gets with an external TSA URL:
		// tsaclient for time-stamps, the CA then revfetch for revocation.
		ext, err := signdoc.New(e.Sam, signdoc.Config{
			Timestamper: &tsaclient.Client{URL: e.URL + "/tsa"},
			Validation:  signdoc.Fallback{notOurs{}, &revfetch.Fetcher{}},
		})
		if err != nil {
			t.Fatal(err)
		}
		doc := signdoctest.MakePDF(1, 0, "external TSA")
		sad := authorize(t, e, p, ec.CredentialID, 1, crypto.SHA256, sha(doc))
		res, err := ext.SignDoc(ctx, p, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{{Content: doc, Options: signdoc.Options{Format: "P", Level: pades.BLTA}}}})
		if err != nil {
			t.Fatal(err)
		}
		v.CheckPDF(t, "external-tsa", res.Documents[0], signdoctest.PDFWant{Sigs: 1, DTS: 1, SignatureTimestamps: 1, DSS: true})
	})

	t.Run("CAdES_detached", func(t *testing.T) {
		contents := [][]byte{[]byte("invoice 1\n"), []byte("invoice 2\n"), []byte("contract\n")}
		h384 := func(b []byte) []byte { d := sha512.Sum384(b); return d[:] }
		sad := authorize(t, e, p, ec.CredentialID, 3, crypto.SHA384, h384(contents[0]), h384(contents[1]), h384(contents[2]))
		res, err := e.SignDoc.SignDoc(ctx, p, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad, ReturnValidationInfo: true,
			Digests: []signdoc.DigestSet{
				{Hashes: [][]byte{h384(contents[0]), h384(contents[1])}, Options: signdoc.Options{Format: "C", Hash: crypto.SHA384}},
				{Hashes: [][]byte{h384(contents[2])}, Options: signdoc.Options{Format: "C", Hash: crypto.SHA384, Level: pades.BT, Envelope: "Detached"}},
			}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Signatures) != 3 || len(res.Documents) != 0 {
			t.Fatalf("got %d signatures", len(res.Signatures))
		}
		for i, der := range res.Signatures {
			tst := v.CheckCAdES(t, "cades", der, contents[i])
			if tst != (i == 2) {
				t.Errorf("signature %d: time-stamp %v", i, tst)
			}
		}
		if res.ValidationInfo == nil || len(res.ValidationInfo.OCSP) == 0 {
			t.Fatalf("validationInfo: %+v", res.ValidationInfo)
		}
	})

	t.Run("CAdES_of_documents", func(t *testing.T) {
		content := []byte("a text document, signed detached\n")
		sad := authorize(t, e, p, rsaCred.CredentialID, 1, crypto.SHA256, sha(content))
		res, err := e.SignDoc.SignDoc(ctx, p, signdoc.Request{CredentialID: rsaCred.CredentialID, SAD: sad,
			Documents: []signdoc.Document{{Content: content, Options: signdoc.Options{Format: "C", PSS: true}}}})
		if err != nil {
			t.Fatal(err)
		}
		v.CheckCAdES(t, "cades-doc", res.Signatures[0], content)
	})
}

// TestSignDoc_refusals: every refused request signs nothing and leaves the
// SAD usable.
func TestSignDoc_refusals(t *testing.T) {
	e := signdoctest.New(t, nil)
	ctx := context.Background()
	uid := e.User(t, "refusals")
	p := e.Login(t, uid)
	ec := e.Credential(t, uid, sam.NewCredential{SCAL: 2, Multisign: 10})
	scal1 := e.Credential(t, uid, sam.NewCredential{SCAL: 1, Multisign: 10})
	good := signdoctest.MakePDF(1, 0, "good")
	other := signdoctest.MakePDF(1, 0, "other")
	sad := authorize(t, e, p, ec.CredentialID, 1, crypto.SHA256, sha(good))
	sad1 := authorize(t, e, p, scal1.CredentialID, 1, crypto.SHA256)
	pdf := func(b []byte, o signdoc.Options) signdoc.Document {
		if o.Format == "" {
			o.Format = "P"
		}
		return signdoc.Document{Content: b, Options: o}
	}
	small, err := signdoc.New(e.Sam, signdoc.Config{MaxDocumentBytes: 1000, Timestamper: e.Authority, Validation: e.Authority})
	if err != nil {
		t.Fatal(err)
	}
	noTSA, _ := signdoc.New(e.Sam, signdoc.Config{})
	truncated := good[:len(good)/2]

	for _, tc := range []struct {
		name string
		svc  *signdoc.Service
		req  signdoc.Request
		want string // in the client message
	}{
		{"SCAL2 SAD for another document", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf(other, signdoc.Options{})}}, "Hash is not authorized by the SAD"},
		{"SCAL2 SAD authorized for SHA-256, request in SHA-512", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf(good, signdoc.Options{Hash: crypto.SHA512})}}, "Hash is not authorized by the SAD"},
		{"not a PDF", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf([]byte("hello, not a pdf"), signdoc.Options{})}}, "not a PDF"},
		{"truncated PDF", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf(truncated, signdoc.Options{})}}, "not a PDF"},
		{"encrypted PDF", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf(signdoctest.EncryptedPDF(), signdoc.Options{})}}, "encrypted"},
		{"too big", small, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf(signdoctest.MakePDF(1, 2000, "big"), signdoc.Options{})}}, "more than 1000 bytes"},
		{"empty document", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf(nil, signdoc.Options{})}}, "empty"},
		{"both documents and digests", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf(good, signdoc.Options{})},
			Digests:   []signdoc.DigestSet{{Hashes: [][]byte{sha(good)}, Options: signdoc.Options{Format: "C"}}}}, "Only one of"},
		{"neither", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad}, "documents or documentDigests"},
		{"PAdES of a digest", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Digests: []signdoc.DigestSet{{Hashes: [][]byte{sha(good)}, Options: signdoc.Options{Format: "P"}}}}, "signature_format"},
		{"unknown format", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf(good, signdoc.Options{Format: "X"})}}, "signature_format"},
		{"CAdES attached", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Digests: []signdoc.DigestSet{{Hashes: [][]byte{sha(good)}, Options: signdoc.Options{Format: "C", Envelope: "Attached"}}}}, "Invalid parameter signed_envelope_property"},
		{"PAdES detached", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf(good, signdoc.Options{Envelope: "Detached"})}}, "Invalid parameter signed_envelope_property"},
		{"CAdES B-LT", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Digests: []signdoc.DigestSet{{Hashes: [][]byte{sha(good)}, Options: signdoc.Options{Format: "C", Level: pades.BLT}}}}, "conformance_level"},
		{"digest of the wrong length", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Digests: []signdoc.DigestSet{{Hashes: [][]byte{sha(good)[:20]}, Options: signdoc.Options{Format: "C"}}}}, "Invalid digest value length"},
		{"mixed hash algorithms", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf(good, signdoc.Options{}), pdf(good, signdoc.Options{Hash: crypto.SHA384})}}, "same hash algorithm"},
		{"RSA algorithm for an EC key", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf(good, signdoc.Options{KeyType: "rsa"})}}, "signAlgo"},
		{"PSS with an EC key", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf(good, signdoc.Options{PSS: true})}}, "signAlgo"},
		{"B-T without a TSA", noTSA, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
			Documents: []signdoc.Document{pdf(good, signdoc.Options{Level: pades.BT})}}, "conformance_level"},
		{"SCAL1 SAD for fewer documents", nil, signdoc.Request{CredentialID: scal1.CredentialID, SAD: sad1,
			Documents: []signdoc.Document{pdf(good, signdoc.Options{}), pdf(other, signdoc.Options{})}}, "Numbers of signatures is too high"},
		{"wrong SAD", nil, signdoc.Request{CredentialID: ec.CredentialID, SAD: "not-a-sad",
			Documents: []signdoc.Document{pdf(good, signdoc.Options{})}}, "SAD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, hsm := e.Audit.Count("signature.sign", "success"), e.HSMSigns.Load()
			svc := tc.svc
			if svc == nil {
				svc = e.SignDoc
			}
			_, err := svc.SignDoc(ctx, p, tc.req)
			var ee *errs.Error
			if !errors.As(err, &ee) || ee.Kind != errs.Invalid || !strings.Contains(ee.Msg, tc.want) {
				t.Fatalf("err = %v, want 400 with %q", err, tc.want)
			}
			if e.Audit.Count("signature.sign", "success") != before || e.HSMSigns.Load() != hsm {
				t.Fatal("something was signed")
			}
		})
	}
	// Both SADs are still whole: the documents they were made for sign.
	if _, err := e.SignDoc.SignDoc(ctx, p, signdoc.Request{CredentialID: ec.CredentialID, SAD: sad,
		Documents: []signdoc.Document{pdf(good, signdoc.Options{})}}); err != nil {
		t.Fatalf("SCAL2 SAD consumed by refused requests: %v", err)
	}
	if _, err := e.SignDoc.SignDoc(ctx, p, signdoc.Request{CredentialID: scal1.CredentialID, SAD: sad1,
		Documents: []signdoc.Document{pdf(other, signdoc.Options{})}}); err != nil {
		t.Fatalf("SCAL1 SAD consumed by refused requests: %v", err)
	}
}

// TestSignDoc_oneBadDocumentFailsAlone: in a batch, a document that cannot
// be signed is reported in its slot and the others are signed; only the
// signed ones spend SAD budget, and a SCAL 2 SAD keeps the failed one's
// hash for a retry.
func TestSignDoc_oneBadDocumentFailsAlone(t *testing.T) {
	e := signdoctest.New(t, nil)
	v := signdoctest.NewValidators(t, e.Authority.Root(), e.Authority.Issuer())
	ctx := context.Background()
	uid := e.User(t, "partial")
	p := e.Login(t, uid)
	cred := e.Credential(t, uid, sam.NewCredential{SCAL: 2, Multisign: 10})
	first, third := signdoctest.MakePDF(1, 0, "first"), signdoctest.MakePDF(1, 0, "third")
	bad := []byte("%PDF-1.7 junk")
	sad := authorize(t, e, p, cred.CredentialID, 3, crypto.SHA256, sha(first), sha(bad), sha(third))
	doc := func(b []byte) signdoc.Document {
		return signdoc.Document{Content: b, Options: signdoc.Options{Format: "P"}}
	}
	hsm := e.HSMSigns.Load()
	res, err := e.SignDoc.SignDoc(ctx, p, signdoc.Request{CredentialID: cred.CredentialID, SAD: sad,
		Documents: []signdoc.Document{doc(first), doc(bad), doc(third)}, ReturnValidationInfo: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.HSMSigns.Load() - hsm; n != 2 {
		t.Fatalf("%d HSM signatures, want 2", n)
	}
	if len(res.Documents) != 3 || res.Documents[1] != nil || len(res.Failures) != 3 || res.Failures[0] != nil || res.Failures[2] != nil {
		t.Fatalf("documents %d (second nil: %v), failures %v", len(res.Documents), res.Documents[1] == nil, res.Failures)
	}
	if res.ValidationInfo == nil || len(res.ValidationInfo.Certificates) == 0 {
		t.Fatalf("validationInfo %+v", res.ValidationInfo)
	}
	if ee, ok := errs.As(res.Failures[1]); !ok || ee.Kind != errs.Invalid || !strings.Contains(ee.Msg, "not a PDF") {
		t.Fatalf("failure of the bad document: %v", res.Failures[1])
	}
	for i, in := range map[int][]byte{0: first, 2: third} {
		if !strings.HasPrefix(string(res.Documents[i]), string(in)) {
			t.Fatalf("document %d is not its input signed", i)
		}
		v.CheckPDF(t, fmt.Sprint("partial-", i), res.Documents[i], signdoctest.PDFWant{Sigs: 1})
	}
	hs, err := e.Store.History(ctx, cred.CredentialID, 1)
	if err != nil || len(hs) != 1 || hs[0].Count != 2 {
		t.Fatalf("last history row %+v, %v: want one call of 2 signatures", hs, err)
	}
	// The bad document's hash is still authorized: nothing of it was spent.
	if _, err := e.SignDoc.SignDoc(ctx, p, signdoc.Request{CredentialID: cred.CredentialID, SAD: sad,
		Documents: []signdoc.Document{doc(first)}}); err == nil {
		t.Fatal("the first document's hash was authorized once and signed twice")
	}
	if _, err := e.SignDoc.SignDoc(ctx, p, signdoc.Request{CredentialID: cred.CredentialID, SAD: sad,
		Digests: []signdoc.DigestSet{{Hashes: [][]byte{sha(bad)}, Options: signdoc.Options{Format: "C"}}}}); err != nil {
		t.Fatalf("the failed document's hash is no longer authorized: %v", err)
	}

	// Every document bad: the request fails as a whole, nothing signed.
	hsm = e.HSMSigns.Load()
	if _, err := e.SignDoc.SignDoc(ctx, p, signdoc.Request{CredentialID: cred.CredentialID, SAD: sad,
		Documents: []signdoc.Document{doc(bad)}}); errs.KindOf(err) != errs.Invalid || e.HSMSigns.Load() != hsm {
		t.Fatalf("all bad: %v, %d HSM signatures", err, e.HSMSigns.Load()-hsm)
	}
}

// downTSA is a time-stamp authority that does not answer.
type downTSA struct{}

func (downTSA) Timestamp(context.Context, []byte, crypto.Hash) ([]byte, error) {
	return nil, errors.New("connection refused")
}

// TestSignDoc_TSADown: a time-stamp failure after the HSM signed is 503
// and no document is returned.
func TestSignDoc_TSADown(t *testing.T) {
	e := signdoctest.New(t, nil)
	uid := e.User(t, "tsadown")
	p := e.Login(t, uid)
	cred := e.Credential(t, uid, sam.NewCredential{})
	svc, err := signdoc.New(e.Sam, signdoc.Config{Timestamper: downTSA{}})
	if err != nil {
		t.Fatal(err)
	}
	sad := authorize(t, e, p, cred.CredentialID, 1, crypto.SHA256)
	res, err := svc.SignDoc(context.Background(), p, signdoc.Request{CredentialID: cred.CredentialID, SAD: sad,
		Documents: []signdoc.Document{{Content: signdoctest.MakePDF(1, 0, "tsa down"), Options: signdoc.Options{Format: "P", Level: pades.BT}}}})
	if res != nil || errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("res %v, err %v; want 503 and nothing", res, err)
	}
}

// notOurs is a validation source that knows no certificate (a CA that did
// not issue them), so Fallback must go on to the next source.
type notOurs struct{}

func (notOurs) Revocation(context.Context, *x509.Certificate, *x509.Certificate) ([]byte, []byte, error) {
	return nil, nil, errs.New(errs.NotFound, "", "not issued here")
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]pades.Level{
		"": pades.BB, "Ades-B-B": pades.BB, "AdES-B-B": pades.BB, "ades-b": pades.BB, "B-B": pades.BB,
		"Ades-B-T": pades.BT, "AdES-T": pades.BT, "ADES-B-LT": pades.BLT, "Ades-LT": pades.BLT,
		"Ades-B-LTA": pades.BLTA, "ades-lta": pades.BLTA,
	} {
		got, err := signdoc.ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"Ades-B-X", "PAdES-B-B", "Ades-", "LTV", "Ades-B-LTAA"} {
		if _, err := signdoc.ParseLevel(in); errs.KindOf(err) != errs.Invalid {
			t.Errorf("ParseLevel(%q) accepted", in)
		}
	}
}

func FuzzParseParams(f *testing.F) {
	for _, s := range []string{"Ades-B-LTA", "P", "Certification", "ades-b-", "c", "Detached"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if l, err := signdoc.ParseLevel(s); err == nil && (l < pades.BB || l > pades.BLTA) {
			t.Fatalf("level %v", l)
		}
		if fm, err := signdoc.ParseFormat(s); err == nil {
			if _, err := signdoc.ParseEnvelope(fm, s); err == nil && fm != "P" && fm != "C" {
				t.Fatal(fm)
			}
		}
	})
}

// BenchmarkSignDoc measures server-side PAdES B-B signing of a batch of
// 20 small PDFs (about 10 KB each) per signDoc call, SoftHSM2 P-256 key,
// SCAL 1 SAD authorized per call (argon2 made cheap).
func BenchmarkSignDoc(b *testing.B) {
	e := signdoctest.New(b, nil)
	ctx := context.Background()
	uid := e.User(b, "bench")
	p := e.Login(b, uid)
	cred := e.Credential(b, uid, sam.NewCredential{SCAL: 1, Multisign: 100})
	const batch = 20
	var docs []signdoc.Document
	for i := 0; i < batch; i++ {
		docs = append(docs, signdoc.Document{Content: signdoctest.MakePDF(2, 10000, fmt.Sprint("bench ", i)), Options: signdoc.Options{Format: "P"}})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sad, err := e.Sam.Authorize(ctx, p, sam.AuthorizeRequest{CredentialID: cred.CredentialID, NumSignatures: batch, PIN: signdoctest.PIN})
		if err != nil {
			b.Fatal(err)
		}
		req := signdoc.Request{CredentialID: cred.CredentialID, SAD: sad.Value, Documents: append([]signdoc.Document(nil), docs...)}
		if _, err := e.SignDoc.SignDoc(ctx, p, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "docs/s")
}
