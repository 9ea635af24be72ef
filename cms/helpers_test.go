package cms_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"testing"
)

// rawRS signs like a CSC client that returns r‖s instead of DER.
func rawRS(t *testing.T, key crypto.Signer, digest []byte) []byte {
	t.Helper()
	k := key.(*ecdsa.PrivateKey)
	r, s, err := ecdsa.Sign(rand.Reader, k, digest)
	if err != nil {
		t.Fatal(err)
	}
	n := (k.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*n)
	r.FillBytes(out[:n])
	s.FillBytes(out[n:])
	return out
}
