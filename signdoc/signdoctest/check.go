package signdoctest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/internal/testenv"
)

// MakePDF returns a small valid PDF (classic xref table) of pages pages,
// with a content stream padded to at least pad bytes; text makes
// documents differ.
func MakePDF(pages, pad int, text string) []byte {
	if pages < 1 {
		pages = 1
	}
	var b bytes.Buffer
	var offs []int
	obj := func(body string) {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offs), body)
	}
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	kids := make([]string, pages)
	for i := range kids {
		kids[i] = fmt.Sprintf("%d 0 R", 5+i)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), pages))
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	content := "BT /F1 18 Tf 72 720 Td (" + strings.NewReplacer("(", "", ")", "", "\\", "").Replace(text) + ") Tj ET\n"
	for len(content) < pad {
		content += "% filler line that makes the document as large as the test wants it\n"
	}
	obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
	for i := 0; i < pages; i++ {
		obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>")
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f\r\n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n\r\n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>] >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref)
	return b.Bytes()
}

// EncryptedPDF is MakePDF with an /Encrypt entry in the trailer.
func EncryptedPDF() []byte {
	p := MakePDF(1, 0, "encrypted")
	return bytes.Replace(p, []byte("/Root 1 0 R"), []byte("/Root 1 0 R /Encrypt << /Filter /Standard /V 2 /R 3 /Length 128 /P -4 /O <00> /U <00> >>"), 1)
}

// Validators runs the independent checkers against a trust root.
type Validators struct {
	dir     string
	rootPEM string
	// chainPEM holds intermediates (the TSA's issuer) for openssl ts.
	chainPEM string
	nss      string
}

// NewValidators needs qpdf, pdfsig, certutil and openssl (fail in CI,
// skip loudly otherwise) and makes an NSS database trusting root.
// intermediates are offered to openssl when a token omits them.
func NewValidators(t testing.TB, root *x509.Certificate, intermediates ...*x509.Certificate) *Validators {
	t.Helper()
	for _, tool := range []string{"qpdf", "pdfsig", "openssl", "certutil"} {
		testenv.Tool(t, tool)
	}
	dir := t.TempDir()
	v := &Validators{dir: dir, rootPEM: filepath.Join(dir, "root.pem"), nss: filepath.Join(dir, "nss")}
	if err := os.WriteFile(v.rootPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, c := range append(intermediates, root) {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	v.chainPEM = filepath.Join(dir, "chain.pem")
	if err := os.WriteFile(v.chainPEM, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(v.nss, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("certutil", "-N", "-d", "sql:"+v.nss, "--empty-password").CombinedOutput(); err != nil {
		t.Fatalf("certutil -N: %v\n%s", err, out)
	}
	if out, err := exec.Command("certutil", "-A", "-d", "sql:"+v.nss, "-n", "sigillo-test-root", "-t", "C,C,C", "-i", v.rootPEM).CombinedOutput(); err != nil {
		t.Fatalf("certutil -A: %v\n%s", err, out)
	}
	return v
}

// NSSDir is the pdfsig -nssdir argument.
func (v *Validators) NSSDir() string { return "sql:" + v.nss }

var byteRangeRE = regexp.MustCompile(`/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]`)

// PDFWant says what a checked PDF must contain.
type PDFWant struct {
	// Sigs is the number of CAdES signatures, DTS of document time-stamps.
	Sigs, DTS int
	// TrailingUpdate: the file ends with an unsigned update (a B-LT DSS).
	TrailingUpdate bool
	// SignatureTimestamps is the number of signatures that must carry a
	// signature-time-stamp (B-T and above).
	SignatureTimestamps int
	// DSS: the catalog must reference a /DSS.
	DSS bool
}

// CheckPDF runs qpdf --check, pdfsig (valid, trusted) and openssl cms
// -verify (or ts -verify for document time-stamps) on every signature of
// a PDF, and returns pdfsig's text.
func (v *Validators) CheckPDF(t testing.TB, name string, pdf []byte, want PDFWant) string {
	t.Helper()
	dir, err := os.MkdirTemp(v.dir, "check")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("qpdf", "--check", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No syntax or stream encoding errors found") || strings.Contains(string(out), "WARNING") {
		t.Errorf("qpdf --check %s: %v\n%s", name, err, out)
	}
	sig, _ := exec.Command("pdfsig", "-nssdir", v.NSSDir(), path).CombinedOutput()
	text := string(sig)
	if got := strings.Count(text, "Signature Type: ETSI.CAdES.detached"); got != want.Sigs {
		t.Errorf("pdfsig %s: %d ETSI.CAdES.detached signatures, want %d\n%s", name, got, want.Sigs, text)
	}
	// pdfsig 22.12 lists document time-stamps ("Signature Type: unknown",
	// "Unable to validate this type of signature"): openssl ts checks them
	// below.
	if got := strings.Count(text, "Signature Field Name: DocTimeStamp"); got != want.DTS {
		t.Errorf("pdfsig %s: %d document time-stamps, want %d\n%s", name, got, want.DTS, text)
	}
	if got := strings.Count(text, "Signature is Valid."); got < want.Sigs {
		t.Errorf("pdfsig %s: %d valid signatures, want %d\n%s", name, got, want.Sigs, text)
	}
	if got := strings.Count(text, "Certificate is Trusted."); got < want.Sigs {
		t.Errorf("pdfsig %s: %d trusted certificates, want %d\n%s", name, got, want.Sigs, text)
	}
	for _, bad := range []string{"Digest Mismatch", "Signature is Invalid", "corrupted", "isn't Trusted"} {
		if strings.Contains(text, bad) {
			t.Errorf("pdfsig %s: %q\n%s", name, bad, text)
		}
	}
	if want.DSS != bytes.Contains(pdf, []byte("/DSS ")) {
		t.Errorf("%s: /DSS present = %v, want %v", name, !want.DSS, want.DSS)
	}
	dump := exec.Command("pdfsig", "-dump", path)
	dump.Dir = dir
	if out, err := dump.CombinedOutput(); err != nil {
		t.Fatalf("pdfsig -dump: %v\n%s", err, out)
	}
	ranges := byteRangeRE.FindAllSubmatch(pdf, -1)
	if len(ranges) != want.Sigs+want.DTS {
		t.Fatalf("%s: %d ByteRanges, want %d", name, len(ranges), want.Sigs+want.DTS)
	}
	tsts := 0
	for i, m := range ranges {
		var br [4]int64
		for j := range br {
			br[j], _ = strconv.ParseInt(string(m[j+1]), 10, 64)
		}
		if br[0] != 0 || pdf[br[1]] != '<' || pdf[br[2]-1] != '>' {
			t.Errorf("%s: ByteRange %v does not frame /Contents", name, br)
		}
		if i == len(ranges)-1 && br[2]+br[3] != int64(len(pdf)) && !want.TrailingUpdate {
			t.Errorf("%s: last ByteRange %v does not reach the end (%d)", name, br, len(pdf))
		}
		signed := append(append([]byte(nil), pdf[:br[1]]...), pdf[br[2]:br[2]+br[3]]...)
		content := filepath.Join(dir, "signed"+strconv.Itoa(i)+".bin")
		if err := os.WriteFile(content, signed, 0o600); err != nil {
			t.Fatal(err)
		}
		der := filepath.Join(dir, name+".pdf.sig"+strconv.Itoa(i))
		lo := br[1] - 300
		if lo < 0 {
			lo = 0
		}
		if bytes.Contains(pdf[lo:br[1]], []byte("/DocTimeStamp")) {
			out, err := exec.Command("openssl", "ts", "-verify", "-token_in", "-in", der, "-data", content, "-CAfile", v.rootPEM, "-untrusted", v.chainPEM).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Verification: OK") {
				t.Errorf("%s dts%d: openssl ts -verify: %v\n%s", name, i, err, out)
			}
			continue
		}
		if v.verifyCMS(t, fmt.Sprintf("%s sig%d", name, i), der, content) {
			tsts++
		}
	}
	if tsts != want.SignatureTimestamps {
		t.Errorf("%s: %d signatures with a signature-time-stamp, want %d", name, tsts, want.SignatureTimestamps)
	}
	return text
}

// CheckCAdES verifies a detached CMS over content with openssl cms -verify
// (signer chain to the root) and checks its signed attributes; it reports
// whether the CMS carries a signature-time-stamp.
func (v *Validators) CheckCAdES(t testing.TB, name string, der, content []byte) bool {
	t.Helper()
	dir, err := os.MkdirTemp(v.dir, "cades")
	if err != nil {
		t.Fatal(err)
	}
	derPath, contentPath := filepath.Join(dir, "sig.der"), filepath.Join(dir, "content.bin")
	os.WriteFile(derPath, der, 0o600)
	os.WriteFile(contentPath, content, 0o600)
	return v.verifyCMS(t, name, derPath, contentPath)
}

func (v *Validators) verifyCMS(t testing.TB, name, derPath, contentPath string) (hasTST bool) {
	t.Helper()
	out, err := exec.Command("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", derPath,
		"-content", contentPath, "-CAfile", v.rootPEM, "-purpose", "any", "-out", "/dev/null").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification successful") {
		t.Errorf("%s: openssl cms -verify: %v\n%s", name, err, out)
	}
	printed, _ := exec.Command("openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", derPath).CombinedOutput()
	all := string(printed)
	sa := all
	if k := strings.Index(sa, "signedAttrs:"); k >= 0 {
		sa = sa[k:]
	}
	if k := strings.Index(sa, "signatureAlgorithm:"); k >= 0 {
		sa = sa[:k]
	}
	for _, want := range []string{"contentType", "messageDigest", "1.2.840.113549.1.9.16.2.47"} {
		if !strings.Contains(sa, want) {
			t.Errorf("%s: signed attribute %s missing:\n%s", name, want, sa)
		}
	}
	if strings.Contains(sa, "signingTime") {
		t.Errorf("%s: signing-time present", name)
	}
	if k := strings.Index(all, "unsignedAttrs:"); k >= 0 {
		return strings.Contains(all[k:], "id-smime-aa-timeStampToken") || strings.Contains(all[k:], "1.2.840.113549.1.9.16.2.14")
	}
	return false
}
