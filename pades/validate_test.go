package pades_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/cms/cmstest"
)

// validators holds what the independent checkers need: an NSS database
// trusting the test root (pdfsig) and the root as PEM (openssl).
type validators struct {
	dir     string
	rootPEM string
	nss     string
	// allowTrailingUpdate: the file ends with an update that is not signed
	// (a B-LT DSS), so the last ByteRange stops before the end.
	allowTrailingUpdate bool
}

func newValidators(t testing.TB, root *cmstest.CA) *validators {
	t.Helper()
	for _, tool := range []string{"qpdf", "pdfsig", "openssl", "certutil"} {
		requireTool(t, tool)
	}
	dir := t.TempDir()
	v := &validators{dir: dir, rootPEM: cmstest.WritePEM(t, dir, "root.pem", root.Cert), nss: filepath.Join(dir, "nss")}
	os.Mkdir(v.nss, 0o700)
	if out, err := exec.Command("certutil", "-N", "-d", "sql:"+v.nss, "--empty-password").CombinedOutput(); err != nil {
		t.Fatalf("certutil -N: %v\n%s", err, out)
	}
	if out, err := exec.Command("certutil", "-A", "-d", "sql:"+v.nss, "-n", "sigillo-test-root", "-t", "C,C,C", "-i", v.rootPEM).CombinedOutput(); err != nil {
		t.Fatalf("certutil -A: %v\n%s", err, out)
	}
	return v
}

var byteRangeRE = regexp.MustCompile(`/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]`)

// check runs qpdf --check, pdfsig and openssl cms -verify on a signed PDF
// and returns pdfsig's text. wantSigs is the number of CAdES signatures,
// wantDTS the number of document time-stamps.
func (v *validators) check(t testing.TB, name string, pdf []byte, wantSigs, wantDTS int) string {
	t.Helper()
	dir, err := os.MkdirTemp(v.dir, "check")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".pdf")
	os.WriteFile(path, pdf, 0o600)
	out, err := exec.Command("qpdf", "--check", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No syntax or stream encoding errors found") {
		t.Errorf("qpdf --check %s: %v\n%s", name, err, out)
	}
	if strings.Contains(string(out), "WARNING") {
		t.Errorf("qpdf --check %s warns:\n%s", name, out)
	}
	sig, _ := exec.Command("pdfsig", "-nssdir", "sql:"+v.nss, path).CombinedOutput()
	text := string(sig)
	if got := strings.Count(text, "Signature Type: ETSI.CAdES.detached"); got != wantSigs {
		t.Errorf("pdfsig %s: %d ETSI.CAdES.detached signatures, want %d\n%s", name, got, wantSigs, text)
	}
	if got := strings.Count(text, "Signature is Valid."); got < wantSigs {
		t.Errorf("pdfsig %s: %d valid signatures, want %d\n%s", name, got, wantSigs, text)
	}
	if got := strings.Count(text, "Certificate is Trusted."); got < wantSigs {
		t.Errorf("pdfsig %s: %d trusted certificates, want %d\n%s", name, got, wantSigs, text)
	}
	for _, bad := range []string{"Digest Mismatch", "Signature is Invalid", "corrupted"} {
		if strings.Contains(text, bad) {
			t.Errorf("pdfsig %s: %q\n%s", name, bad, text)
		}
	}
	// openssl cms -verify of every CAdES signature over its ByteRange, with
	// the DER dumped by pdfsig (not by our code).
	dump := exec.Command("pdfsig", "-dump", path)
	dump.Dir = dir
	if out, err := dump.CombinedOutput(); err != nil {
		t.Fatalf("pdfsig -dump: %v\n%s", err, out)
	}
	ranges := byteRangeRE.FindAllSubmatch(pdf, -1)
	if len(ranges) != wantSigs+wantDTS {
		t.Fatalf("%s: %d ByteRanges, want %d", name, len(ranges), wantSigs+wantDTS)
	}
	for i, m := range ranges {
		var br [4]int64
		for j := range br {
			br[j], _ = strconv.ParseInt(string(m[j+1]), 10, 64)
		}
		if br[0] != 0 || pdf[br[1]] != '<' || pdf[br[2]-1] != '>' {
			t.Errorf("%s: ByteRange %v does not frame /Contents", name, br)
		}
		if i == len(ranges)-1 && br[2]+br[3] != int64(len(pdf)) && !v.allowTrailingUpdate {
			t.Errorf("%s: last ByteRange %v does not reach the end (%d)", name, br, len(pdf))
		}
		signed := append(append([]byte(nil), pdf[:br[1]]...), pdf[br[2]:br[2]+br[3]]...)
		content := filepath.Join(dir, "signed"+strconv.Itoa(i)+".bin")
		os.WriteFile(content, signed, 0o600)
		der := filepath.Join(dir, name+".pdf.sig"+strconv.Itoa(i))
		if !bytes.Contains(pdf[br[1]-200:br[1]], []byte("/DocTimeStamp")) {
			out, err := exec.Command("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", der,
				"-content", content, "-CAfile", v.rootPEM, "-purpose", "any", "-out", "/dev/null").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Verification successful") {
				t.Errorf("%s sig%d: openssl cms -verify: %v\n%s", name, i, err, out)
			}
			printed, _ := exec.Command("openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", der).CombinedOutput()
			sa := string(printed)
			if k := strings.Index(sa, "signedAttrs:"); k >= 0 {
				sa = sa[k:]
			}
			if k := strings.Index(sa, "signatureAlgorithm:"); k >= 0 {
				sa = sa[:k]
			}
			for _, want := range []string{"contentType", "messageDigest", "1.2.840.113549.1.9.16.2.47"} {
				if !strings.Contains(sa, want) {
					t.Errorf("%s sig%d: signed attribute %s missing:\n%s", name, i, want, sa)
				}
			}
			if strings.Contains(sa, "signingTime") || strings.Contains(sa, "1.2.840.113549.1.9.5") {
				t.Errorf("%s sig%d: signing-time present", name, i)
			}
		} else {
			out, err := exec.Command("openssl", "ts", "-verify", "-token_in", "-in", der, "-data", content,
				"-CAfile", v.rootPEM).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Verification: OK") {
				t.Errorf("%s dts%d: openssl ts -verify: %v\n%s", name, i, err, out)
			}
		}
	}
	return text
}
