package pades_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigillo/sigillo/cms"
	"github.com/sigillo/sigillo/cms/cmstest"
	"github.com/sigillo/sigillo/pades"
)

var fixedClock = func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }

// countingSigner records how often the key is used.
type countingSigner struct {
	crypto.Signer
	n int
}

func (c *countingSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	c.n++
	return c.Signer.Sign(r, d, o)
}

func sign(t testing.TB, in []byte, signer crypto.Signer, chain []*x509.Certificate, opts pades.Options) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := pades.Sign(context.Background(), bytes.NewReader(in), int64(len(in)), &out, signer, chain, opts); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return out.Bytes()
}

func TestSign_BB_passesIndependentValidators(t *testing.T) {
	root := cmstest.NewRoot(t, "pades test root")
	v := newValidators(t, root)
	classic := makePDF(pdfSpec{pages: 2})
	form := makePDF(pdfSpec{pages: 1, textField: true})
	xrefStream := qpdfConvert(t, classic, "--object-streams=generate")
	formStream := qpdfConvert(t, form, "--object-streams=generate")

	tests := []struct {
		name string
		in   []byte
		key  string
		hash crypto.Hash
		pss  bool
		info pades.Info
	}{
		{"classic_rsa2048", classic, "rsa-2048", crypto.SHA256, false, pades.Info{Reason: "approval", Location: "Roma", Name: "Mario Rossi"}},
		{"xrefstream_p256", xrefStream, "p-256", crypto.SHA256, false, pades.Info{}},
		{"form_rsa3072_pss_sha384", form, "rsa-3072", crypto.SHA384, true, pades.Info{Reason: "Firma è valida"}},
		{"formstream_p384_sha512", formStream, "p-384", crypto.SHA512, false, pades.Info{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, chain := root.Leaf(t, "signer "+tc.name, tc.key, cmstest.Signer)
			cs := &countingSigner{Signer: key}
			out := sign(t, tc.in, cs, chain, pades.Options{Hash: tc.hash, PSS: tc.pss, Info: tc.info, Clock: fixedClock})
			if cs.n != 1 {
				t.Errorf("signer called %d times, want 1", cs.n)
			}
			if !bytes.Equal(out[:len(tc.in)], tc.in) {
				t.Fatal("the original bytes were modified: not an incremental update")
			}
			v.check(t, tc.name, out, 1, 0)
			infos, err := pades.Verify(bytes.NewReader(out), int64(len(out)))
			if err != nil || len(infos) != 1 || infos[0].Err != nil {
				t.Fatalf("Verify: %v %+v", err, infos)
			}
			if !infos[0].SigningTime.Equal(fixedClock()) {
				t.Errorf("/M = %v, want %v", infos[0].SigningTime, fixedClock())
			}
			if bytes.Contains(out[len(tc.in):], []byte("/Cert ")) {
				t.Error("signature dictionary has /Cert")
			}
		})
	}
}

func TestPrepareEmbed_twoPhaseWithRemoteSigner(t *testing.T) {
	root := cmstest.NewRoot(t, "pades test root")
	v := newValidators(t, root)
	tsa := cmstest.NewTSA(t, root)
	in := makePDF(pdfSpec{pages: 1, textField: true})
	key, chain := root.Leaf(t, "remote signer", "p-256", cmstest.Signer)
	other, _ := root.Leaf(t, "someone else", "p-256", cmstest.Signer)

	tests := []struct {
		name      string
		signWith  crypto.Signer
		timestamp bool
		wantErr   error
	}{
		{"BB_remote_hash_signed", key, false, nil},
		{"BT_remote_hash_signed_then_timestamped", key, true, nil},
		{"wrong_key_refused_placeholder_kept", other, false, cms.ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "prepared.pdf")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			opts := pades.Options{Clock: fixedClock}
			if tc.timestamp {
				opts.Level = pades.BT
			}
			p, err := pades.Prepare(context.Background(), bytes.NewReader(in), int64(len(in)), f, chain, opts)
			if err != nil {
				t.Fatal(err)
			}
			// What a CSC client does: signed attributes over the document
			// digest, signHash on their digest, assemble.
			sa, err := cms.NewSignedAttributes(p.Digest, p.Hash, chain[0])
			if err != nil {
				t.Fatal(err)
			}
			sig, err := tc.signWith.Sign(nil, sa.Digest(), p.Hash)
			if err != nil {
				t.Fatal(err)
			}
			var unsigned []cms.Attribute
			if tc.timestamp {
				a, err := cms.SignatureTimestamp(context.Background(), tsa, sig, p.Hash)
				if err != nil {
					t.Fatal(err)
				}
				unsigned = append(unsigned, a)
			}
			der, err := sa.Assemble(sig, cms.ECDSA, chain, unsigned)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Assemble: got %v, want %v", err, tc.wantErr)
				}
				// A CMS for another document must not be embedded either.
				otherDigest := append([]byte(nil), p.Digest...)
				otherDigest[0] ^= 1
				sa2, _ := cms.NewSignedAttributes(otherDigest, p.Hash, chain[0])
				sig2, _ := key.Sign(nil, sa2.Digest(), p.Hash)
				der2, err := sa2.Assemble(sig2, cms.ECDSA, chain, nil)
				if err != nil {
					t.Fatal(err)
				}
				before, _ := os.ReadFile(path)
				if err := pades.Embed(f, p, der2); !errors.Is(err, pades.ErrSelfCheck) {
					t.Fatalf("Embed of a CMS over another digest: got %v, want ErrSelfCheck", err)
				}
				after, _ := os.ReadFile(path)
				if !bytes.Equal(before, after) {
					t.Fatal("a failed Embed left the file changed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := pades.Embed(f, p, der); err != nil {
				t.Fatal(err)
			}
			out, _ := os.ReadFile(path)
			if int64(len(out)) != p.Size {
				t.Fatalf("size %d, Prepared says %d", len(out), p.Size)
			}
			v.check(t, tc.name, out, 1, 0)
			if err := pades.Embed(f, p, der); !errors.Is(err, pades.ErrNotAllowed) {
				t.Errorf("second Embed: got %v, want ErrNotAllowed", err)
			}
		})
	}
}

func TestSign_secondSignatureKeepsFirstValid(t *testing.T) {
	root := cmstest.NewRoot(t, "pades test root")
	v := newValidators(t, root)
	k1, c1 := root.Leaf(t, "first signer", "rsa-2048", cmstest.Signer)
	k2, c2 := root.Leaf(t, "second signer", "p-256", cmstest.Signer)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"classic_with_form", makePDF(pdfSpec{textField: true})},
		{"xref_stream_with_form", qpdfConvert(t, makePDF(pdfSpec{textField: true}), "--object-streams=generate")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			once := sign(t, tc.in, k1, c1, pades.Options{Clock: fixedClock})
			twice := sign(t, once, k2, c2, pades.Options{Clock: fixedClock})
			text := v.check(t, tc.name, twice, 2, 0)
			if strings.Count(text, "Total document signed") != 1 {
				t.Errorf("want exactly one signature covering the whole document:\n%s", text)
			}
			infos, err := pades.Verify(bytes.NewReader(twice), int64(len(twice)))
			if err != nil || len(infos) != 2 {
				t.Fatalf("Verify: %v, %d signatures", err, len(infos))
			}
			for _, si := range infos {
				if si.Err != nil {
					t.Errorf("%s: %v", si.Field, si.Err)
				}
			}
			if infos[0].Field == infos[1].Field {
				t.Errorf("both signatures in field %q", infos[0].Field)
			}
			// The text field is still reachable from the AcroForm.
			requireFieldReachable(t, twice, "customer")
		})
	}
}

// requireFieldReachable asks qpdf which form fields the AcroForm reaches.
func requireFieldReachable(t *testing.T, pdf []byte, name string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.pdf")
	os.WriteFile(path, pdf, 0o600)
	out, err := exec.Command("qpdf", "--json", "--json-key=acroform", path).CombinedOutput()
	if err != nil {
		t.Fatalf("qpdf --json: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"fullname": "`+name+`"`) {
		t.Errorf("field %q not reachable from /AcroForm:\n%s", name, out)
	}
	if strings.Contains(string(out), "not reachable") {
		t.Errorf("qpdf reports unreachable widgets:\n%s", out)
	}
}

func TestSign_certificationRules(t *testing.T) {
	root := cmstest.NewRoot(t, "pades test root")
	v := newValidators(t, root)
	key, chain := root.Leaf(t, "signer", "p-256", cmstest.Signer)
	// pdfsig 22.12 reports "Unknown issue with Certificate" for the second
	// of two signatures by the same certificate (reproduced with pdfsign
	// output too), so later signatures use another signer.
	key2, chain2 := root.Leaf(t, "second signer", "p-256", cmstest.Signer)
	in := makePDF(pdfSpec{})
	certified := sign(t, in, key, chain, pades.Options{Clock: fixedClock, DocMDP: 2})
	v.check(t, "certified", certified, 1, 0)
	lockedDown := sign(t, in, key, chain, pades.Options{Clock: fixedClock, DocMDP: 1})
	approved := sign(t, in, key, chain, pades.Options{Clock: fixedClock})

	tests := []struct {
		name    string
		in      []byte
		opts    pades.Options
		wantErr error
	}{
		{"approval_after_certification_P2", certified, pades.Options{}, nil},
		{"certify_signed_document_refused", approved, pades.Options{DocMDP: 2}, pades.ErrNotAllowed},
		{"certify_certified_document_refused", certified, pades.Options{DocMDP: 3}, pades.ErrNotAllowed},
		{"sign_after_P1_refused", lockedDown, pades.Options{}, pades.ErrNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			tc.opts.Clock = fixedClock
			err := pades.Sign(context.Background(), bytes.NewReader(tc.in), int64(len(tc.in)), &out, key2, chain2, tc.opts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || out.Len() != 0 {
					t.Fatalf("got %v (%d bytes written), want %v and nothing written", err, out.Len(), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v.check(t, tc.name, out.Bytes(), 2, 0)
		})
	}
}

func TestSign_refusesBadInputsWritingNothing(t *testing.T) {
	requireTool(t, "qpdf")
	root := cmstest.NewRoot(t, "pades test root")
	key, chain := root.Leaf(t, "signer", "p-256", cmstest.Signer)
	good := makePDF(pdfSpec{})
	badXref := bytes.Replace(good, []byte("startxref\n"), []byte("startxref\n9"), 1)
	form := makePDF(pdfSpec{textField: true})
	// Same length, so every offset stays right: only the reference dangles.
	danglingFields := bytes.Replace(form, []byte("/Fields [7 0 R]"), []byte("/Fields 77 0 R "), 1)
	danglingAnnots := bytes.Replace(form, []byte("/Annots [7 0 R]"), []byte("/Annots 77 0 R "), 1)
	if bytes.Equal(danglingFields, form) || bytes.Equal(danglingAnnots, form) {
		t.Fatal("fixture edit did not apply")
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"not_a_pdf", []byte("this is a plain text file, certainly not a PDF document at all")},
		{"empty", nil},
		{"truncated", good[:len(good)*2/3]},
		{"encrypted", qpdfConvert(t, good, "--encrypt", "user", "owner", "256", "--")},
		{"encrypted_empty_user_password", qpdfConvert(t, good, "--encrypt", "", "owner", "256", "--")},
		{"broken_startxref", badXref},
		{"html", []byte("<html><body>%PDF-1.7 hello</body></html>")},
		{"acroform_fields_unreadable", danglingFields},
		{"page_annots_unreadable", danglingAnnots},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := pades.Sign(context.Background(), bytes.NewReader(tc.in), int64(len(tc.in)), &out, key, chain, pades.Options{})
			if !errors.Is(err, pades.ErrInvalidPDF) {
				t.Fatalf("got %v, want ErrInvalidPDF", err)
			}
			t.Logf("refused: %v", err)
			if out.Len() != 0 {
				t.Fatalf("%d bytes written for a refused input", out.Len())
			}
			var prep bytes.Buffer
			if _, err := pades.Prepare(context.Background(), bytes.NewReader(tc.in), int64(len(tc.in)), &prep, chain, pades.Options{}); !errors.Is(err, pades.ErrInvalidPDF) || prep.Len() != 0 {
				t.Fatalf("Prepare: got %v and %d bytes, want ErrInvalidPDF and nothing", err, prep.Len())
			}
		})
	}
}

func TestVerify_detectsTampering(t *testing.T) {
	root := cmstest.NewRoot(t, "pades test root")
	v := newValidators(t, root)
	key, chain := root.Leaf(t, "signer", "rsa-2048", cmstest.Signer)
	in := makePDF(pdfSpec{padBytes: 4000})
	signed := sign(t, in, key, chain, pades.Options{Clock: fixedClock})
	flipped := append([]byte(nil), signed...)
	flipped[len(in)/2] ^= 0x01 // inside the padding stream: still a well-formed PDF
	appended := append(append([]byte(nil), signed...), []byte("% appended after signing\n")...)

	tests := []struct {
		name       string
		pdf        []byte
		pdfsigWant string
		check      func(pades.SignatureInfo) bool
	}{
		{"byte_flipped_in_signed_range", flipped, "Digest Mismatch", func(si pades.SignatureInfo) bool { return errors.Is(si.Err, cms.ErrDigestMismatch) }},
		{"bytes_appended_after_signing", appended, "Not total document signed", func(si pades.SignatureInfo) bool { return si.Err == nil && !si.CoversWholeFile }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			infos, err := pades.Verify(bytes.NewReader(tc.pdf), int64(len(tc.pdf)))
			if err != nil || len(infos) != 1 {
				t.Fatalf("Verify: %v, %d signatures", err, len(infos))
			}
			if !tc.check(infos[0]) {
				t.Errorf("Verify result %+v", infos[0])
			}
			path := filepath.Join(t.TempDir(), "t.pdf")
			os.WriteFile(path, tc.pdf, 0o600)
			out, _ := exec.Command("pdfsig", "-nssdir", "sql:"+v.nss, path).CombinedOutput()
			if !strings.Contains(string(out), tc.pdfsigWant) {
				t.Errorf("pdfsig does not report %q:\n%s", tc.pdfsigWant, out)
			}
		})
	}
}

func TestSign_secondBLTMergesDSS(t *testing.T) {
	root := cmstest.NewRoot(t, "pades test root")
	tsa := cmstest.NewTSA(t, root)
	v := newValidators(t, root)
	revs := &cmstest.Revocations{T: t, CAs: []*cmstest.CA{root}}
	k1, c1 := root.Leaf(t, "first", "p-256", cmstest.Signer)
	k2, c2 := root.Leaf(t, "second", "rsa-2048", cmstest.Signer)
	opts := pades.Options{Level: pades.BLT, Clock: fixedClock, Timestamper: tsa, Validation: revs}
	once := sign(t, makePDF(pdfSpec{textField: true}), k1, c1, opts)
	twice := sign(t, once, k2, c2, opts)
	v.allowTrailingUpdate = true
	v.check(t, "two_blt", twice, 2, 0)
	requireFieldReachable(t, twice, "customer")
	certs, ocsps, _ := readDSS(t, twice)
	for _, c := range []*x509.Certificate{c1[0], c2[0], tsa.Cert, root.Cert} {
		found := false
		for _, d := range certs {
			found = found || d.Equal(c)
		}
		if !found {
			t.Errorf("merged DSS lacks %q", c.Subject.CommonName)
		}
	}
	if len(ocsps) < 3 {
		t.Errorf("merged DSS has %d OCSP responses, want at least 3", len(ocsps))
	}
}
