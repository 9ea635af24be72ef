package loadtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sigillo/sigillo/internal/testenv"
)

func TestMinimalPDFIsValidAndExactlySized(t *testing.T) {
	qpdf := testenv.Tool(t, "qpdf")
	for _, size := range []int{1024, 1025, 4096, 100 << 10, 1 << 20} {
		pdf, err := MinimalPDF(size)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if len(pdf) != size {
			t.Errorf("size %d: got %d bytes", size, len(pdf))
		}
		path := filepath.Join(t.TempDir(), "doc.pdf")
		if err := os.WriteFile(path, pdf, 0o600); err != nil {
			t.Fatal(err)
		}
		// qpdf exits 0 only for a PDF with no errors and no warnings
		// (a wrong xref offset or /Length is a warning).
		if out, err := exec.Command(qpdf, "--check", path).CombinedOutput(); err != nil {
			t.Errorf("size %d: qpdf --check: %v\n%s", size, err, out)
		}
	}
	if _, err := MinimalPDF(100); err == nil {
		t.Errorf("a 100-byte PDF should be refused")
	}
}

func TestVerifySignedPDF(t *testing.T) {
	orig, err := MinimalPDF(2048)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cred := newTestCred(t, key)
	other := newTestCred(t, key)
	good, err := fakePAdES(orig, cred, false)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte{}, good...)
	tampered[len(orig)+5] ^= 1 // inside the signed incremental update
	badCMS, _ := fakePAdES(orig, cred, true)
	tests := []struct {
		name    string
		orig    []byte
		signed  []byte
		cred    *fakeCred
		wantTS  bool
		wantErr bool
	}{
		{"good", orig, good, cred, false, false},
		{"B-T wanted but no time-stamp token", orig, good, cred, true, true},
		{"tampered byte", orig, tampered, cred, false, true},
		{"CMS over other bytes", orig, badCMS, cred, false, true},
		{"signer is another certificate", orig, good, other, false, true},
		{"not an incremental update", append([]byte("x"), orig...), good, cred, false, true},
		{"no signature", orig, orig, cred, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifySignedPDF(tt.orig, tt.signed, tt.cred.cert, tt.wantTS)
			if (err != nil) != tt.wantErr {
				t.Fatalf("VerifySignedPDF = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
