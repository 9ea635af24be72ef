package sam_test

import (
	"crypto"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
)

// BenchmarkRawHSMSign is the baseline: the HSM signer alone, one digest
// per operation, no store, no SAD.
func BenchmarkRawHSMSign(b *testing.B) {
	e := hsmEnv(b)
	u := e.User(b, "bench")
	cc := e.Credential(b, u, sam.NewCredential{})
	signer, err := e.Keys.Signer(ctx, cc.CredentialID)
	if err != nil {
		b.Fatal(err)
	}
	d := digest("raw")
	b.ResetTimer()
	for range b.N {
		if _, err := signer.Sign(rand.Reader, d, crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignHash is the whole sam path per signHash call (token
// already resolved): credential lookup, CA status, one SAD consumption for
// the batch, HSM signatures, audit, history. ns/op is per signature.
func BenchmarkSignHash(b *testing.B) {
	for _, batch := range []int{1, 10, 50} {
		for _, scal := range []int{1, 2} {
			b.Run(fmt.Sprintf("batch=%d/scal=%d", batch, scal), func(b *testing.B) {
				e := hsmEnv(b)
				u := e.User(b, "bench")
				cc := e.Credential(b, u, sam.NewCredential{Multisign: 1000, SCAL: scal})
				p := e.Login(b, u)
				var sad string
				left := 0
				var hashes [][]byte
				var pending [][]byte
				refill := func() {
					pending = digests(1000/batch*batch, fmt.Sprint("bench", b.N))
					r := sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: len(pending), PIN: samtest.PIN}
					if scal == 2 {
						r.Hashes, r.HashAlgo = pending, crypto.SHA256
					}
					s, err := e.Service.Authorize(ctx, p, r)
					if err != nil {
						b.Fatal(err)
					}
					sad, left = s.Value, len(pending)
				}
				b.ResetTimer()
				for done := 0; done < b.N; done += batch {
					if left < batch {
						b.StopTimer()
						refill()
						b.StartTimer()
					}
					hashes, pending = pending[:batch], pending[batch:]
					if _, err := e.Service.SignHash(ctx, p, sam.SignRequest{CredentialID: cc.CredentialID, SAD: sad, Hashes: hashes, Opts: crypto.SHA256}); err != nil {
						b.Fatal(err)
					}
					left -= batch
				}
			})
		}
	}
}
