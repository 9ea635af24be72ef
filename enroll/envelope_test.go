package enroll

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/internal/testenv"
)

// openPDF decrypts an envelope with qpdf and extracts its text with
// pdftotext: the tools a holder's PDF reader stands for.
func openPDF(t *testing.T, pdf []byte, pass string) (string, error) {
	t.Helper()
	testenv.Tool(t, "qpdf")
	testenv.Tool(t, "pdftotext")
	dir := t.TempDir()
	in, plain := filepath.Join(dir, "env.pdf"), filepath.Join(dir, "plain.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("qpdf", "--password="+pass, "--decrypt", in, plain).CombinedOutput(); err != nil {
		return "", &exec.ExitError{Stderr: out}
	}
	txt, err := exec.Command("pdftotext", plain, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(txt), nil
}

func TestEnvelopePDF_opensOnlyWithThePassphraseAndHoldsTheCodes(t *testing.T) {
	e := Envelope{Number: "ENV-1234", IUT: "ABCDEFGH23", PUK: "12345678", ERC: "XYZXYZXYZ234", Holder: "Mario (Rossi)",
		UserID: "u-1", Serial: "abc", IssuedAt: "2026-03-01", PortalURL: "http://x"}
	pdf, err := EnvelopePDF(e, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(pdf), e.PUK) || strings.Contains(string(pdf), e.ERC) {
		t.Fatal("codes readable in the encrypted file")
	}
	txt, err := openPDF(t, pdf, "correct horse battery")
	if err != nil {
		t.Fatalf("decrypt with the passphrase: %v", err)
	}
	for _, want := range []string{e.Number, e.IUT, e.PUK, e.ERC, "Mario (Rossi)"} {
		if !strings.Contains(txt, want) {
			t.Errorf("envelope text lacks %q:\n%s", want, txt)
		}
	}
	if _, err := openPDF(t, pdf, "wrong passphrase"); err == nil {
		t.Fatal("a wrong passphrase opened the envelope")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "e.pdf")
	_ = os.WriteFile(p, pdf, 0o600)
	out, _ := exec.Command("qpdf", "--show-encryption", "--password=correct horse battery", p).CombinedOutput()
	if !strings.Contains(string(out), "AESv3") {
		t.Errorf("not AES-256 (AESv3):\n%s", out)
	}
}
