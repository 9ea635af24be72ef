package pades_test

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/sigillo/sigillo/cms/cmstest"
	"github.com/sigillo/sigillo/pades"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

// TestSign_withSoftHSMKeys signs with non-extractable keys generated in a
// real PKCS#11 token (SoftHSM2 through package hsm), one row per key type,
// and runs every produced PDF through the independent validators.
func TestSign_withSoftHSMKeys(t *testing.T) {
	tok := softhsmtest.New(t)
	root := cmstest.NewRoot(t, "softhsm test root")
	tsa := cmstest.NewTSA(t, root)
	v := newValidators(t, root)
	revs := &cmstest.Revocations{T: t, CAs: []*cmstest.CA{root}}
	classic := makePDF(pdfSpec{textField: true})
	stream := qpdfConvert(t, classic, "--object-streams=generate")

	tests := []struct {
		name  string
		algo  string
		in    []byte
		pss   bool
		level pades.Level
	}{
		{"rsa2048_BB", "rsa-2048", classic, false, pades.BB},
		{"rsa2048_pss_BT", "rsa-2048", stream, true, pades.BT},
		{"rsa3072_BB", "rsa-3072", stream, false, pades.BB},
		{"rsa4096_BLTA", "rsa-4096", classic, false, pades.BLTA},
		{"p256_BLT", "ecdsa-p256", stream, false, pades.BLT},
		{"p384_BB", "ecdsa-p384", classic, false, pades.BB},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			start := time.Now()
			pub, err := tok.Manager.GenerateKey(ctx, "pades-"+tc.name, tc.algo)
			if err != nil {
				t.Fatalf("GenerateKey %s: %v", tc.algo, err)
			}
			t.Logf("%s key generated in %v", tc.algo, time.Since(start).Round(time.Millisecond))
			signer, err := tok.Manager.Signer(ctx, "pades-"+tc.name)
			if err != nil {
				t.Fatal(err)
			}
			cert := root.Issue(t, "hsm signer "+tc.name, pub, cmstest.Signer)
			chain := []*x509.Certificate{cert, root.Cert}
			cs := &countingSigner{Signer: signer}
			out := sign(t, tc.in, cs, chain, pades.Options{Level: tc.level, PSS: tc.pss, Clock: fixedClock, Timestamper: tsa, Validation: revs})
			if cs.n != 1 {
				t.Errorf("HSM key used %d times, want exactly 1", cs.n)
			}
			dts := 0
			if tc.level == pades.BLTA {
				dts = 1
			}
			v.allowTrailingUpdate = tc.level == pades.BLT
			v.check(t, tc.name, out, 1, dts)
		})
	}
}
