package cms_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/cms"
	"github.com/sigillo/sigillo/cms/cmstest"
)

// requireTool fails under CI and skips loudly elsewhere when an external
// validator is missing.
func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed: %v", name, err)
		}
		t.Skipf("SKIPPING: %s not installed (%v); install it to run this validation", name, err)
	}
}

// countingSigner records how often the key is used.
type countingSigner struct {
	crypto.Signer
	n int
}

func (c *countingSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	c.n++
	return c.Signer.Sign(r, d, o)
}

func TestSignDetached_verifiesWithOpenSSLAndOurParser(t *testing.T) {
	requireTool(t, "openssl")
	root := cmstest.NewRoot(t, "cms test root")
	tsa := cmstest.NewTSA(t, root)
	dir := t.TempDir()
	rootPEM := cmstest.WritePEM(t, dir, "root.pem", root.Cert)
	content := make([]byte, 4096)
	rand.Read(content)
	contentPath := filepath.Join(dir, "content.bin")
	os.WriteFile(contentPath, content, 0o600)

	tests := []struct {
		name string
		key  string
		hash crypto.Hash
		pss  bool
		tsa  bool
	}{
		{"rsa2048_sha256_pkcs1", "rsa-2048", crypto.SHA256, false, false},
		{"rsa2048_sha512_pss", "rsa-2048", crypto.SHA512, true, false},
		{"rsa2048_sha384_pkcs1_timestamped", "rsa-2048", crypto.SHA384, false, true},
		{"p256_sha256_ecdsa_timestamped", "p-256", crypto.SHA256, false, true},
		{"p384_sha384_ecdsa", "p-384", crypto.SHA384, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, chain := root.Leaf(t, "signer "+tc.name, tc.key, cmstest.Signer)
			h := tc.hash.New()
			h.Write(content)
			digest := h.Sum(nil)
			cs := &countingSigner{Signer: key}
			opts := cms.SignOptions{PSS: tc.pss}
			if tc.tsa {
				opts.Timestamper = tsa
			}
			der, err := cms.SignDetached(context.Background(), cs, digest, tc.hash, chain, opts)
			if err != nil {
				t.Fatal(err)
			}
			if cs.n != 1 {
				t.Errorf("signer called %d times, want exactly 1", cs.n)
			}
			p, err := cms.Parse(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Verify(digest); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if err := p.CheckPAdESBaseline(); err != nil {
				t.Errorf("CheckPAdESBaseline: %v", err)
			}
			if _, ok := p.SignedAttr(cms.OIDAttrSigningTime); ok {
				t.Error("signing-time present")
			}
			sigPath := filepath.Join(dir, tc.name+".p7s")
			os.WriteFile(sigPath, der, 0o600)
			out, err := exec.Command("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", sigPath,
				"-content", contentPath, "-CAfile", rootPEM, "-purpose", "any", "-out", "/dev/null").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Verification successful") {
				t.Errorf("openssl cms -verify: %v\n%s", err, out)
			}
			printed, _ := exec.Command("openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", sigPath).CombinedOutput()
			signedPart := string(printed)
			if i := strings.Index(signedPart, "signedAttrs:"); i >= 0 {
				signedPart = signedPart[i:]
			}
			if i := strings.Index(signedPart, "signatureAlgorithm:"); i >= 0 {
				signedPart = signedPart[:i]
			}
			if !strings.Contains(signedPart, "messageDigest") {
				t.Errorf("openssl -print: signedAttrs section not found:\n%s", signedPart)
			}
			if strings.Contains(signedPart, "signingTime") || strings.Contains(signedPart, "1.2.840.113549.1.9.5") {
				t.Errorf("openssl shows a signing-time attribute")
			}
			ti, err := p.SignatureTimestamp()
			if !tc.tsa {
				if !errors.Is(err, cms.ErrTimestamp) {
					t.Errorf("SignatureTimestamp without TSA: got %v, want ErrTimestamp", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SignatureTimestamp: %v", err)
			}
			tokPath := filepath.Join(dir, tc.name+".tst")
			tok, _ := p.UnsignedAttr(cms.OIDAttrSignatureTST)
			os.WriteFile(tokPath, tok, 0o600)
			tsaPEM := cmstest.WritePEM(t, dir, "tsa.pem", tsa.Cert)
			out, err = exec.Command("openssl", "ts", "-verify", "-token_in", "-in", tokPath, "-digest", hex.EncodeToString(ti.HashedMessage),
				"-CAfile", rootPEM, "-untrusted", tsaPEM).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Verification: OK") {
				t.Errorf("openssl ts -verify: %v\n%s", err, out)
			}
		})
	}
}

func TestAssemble_twoStepRemoteSignature(t *testing.T) {
	root := cmstest.NewRoot(t, "cms test root")
	key, chain := root.Leaf(t, "remote signer", "p-256", cmstest.Signer)
	other, _ := root.Leaf(t, "other", "p-256", cmstest.Signer)
	digest := make([]byte, 32)
	rand.Read(digest)
	sa, err := cms.NewSignedAttributes(digest, crypto.SHA256, chain[0])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		sign    func() []byte
		wantErr error
	}{
		{"der_ecdsa_accepted", func() []byte { s, _ := key.Sign(rand.Reader, sa.Digest(), crypto.SHA256); return s }, nil},
		{"raw_r_s_converted", func() []byte { return rawRS(t, key, sa.Digest()) }, nil},
		{"wrong_key_refused", func() []byte { s, _ := other.Sign(rand.Reader, sa.Digest(), crypto.SHA256); return s }, cms.ErrBadSignature},
		{"garbage_refused", func() []byte { return []byte{1, 2, 3} }, cms.ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, err := sa.Assemble(tc.sign(), cms.ECDSA, chain, nil)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := cms.Parse(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Verify(digest); err != nil {
				t.Fatal(err)
			}
			if len(p.Certificates) != len(chain) {
				t.Errorf("got %d certificates, want %d", len(p.Certificates), len(chain))
			}
		})
	}
}

func TestVerify_detectsTampering(t *testing.T) {
	root := cmstest.NewRoot(t, "cms test root")
	key, chain := root.Leaf(t, "signer", "rsa-2048", cmstest.Signer)
	digest := make([]byte, 32)
	rand.Read(digest)
	der, err := cms.SignDetached(context.Background(), key, digest, crypto.SHA256, chain, cms.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := cms.Parse(der)
	sigAt := bytes.Index(der, p.Signature)
	other := append([]byte(nil), digest...)
	other[0] ^= 1
	tests := []struct {
		name    string
		der     []byte
		digest  []byte
		wantErr error
	}{
		{"other_content", der, other, cms.ErrDigestMismatch},
		{"flipped_signature", flip(der, sigAt+10), digest, cms.ErrBadSignature},
		{"zero_padding_accepted", append(append([]byte(nil), der...), 0, 0, 0), digest, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := cms.Parse(tc.der)
			if err == nil {
				err = p.Verify(tc.digest)
			}
			if !errors.Is(err, tc.wantErr) && !(tc.wantErr == nil && err == nil) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x40
	return c
}
