package audit

import (
	"bytes"
	"testing"
)

// FuzzCheckToken feeds arbitrary bytes to the checkpoint token decoder: it
// must reject them with an error, never panic or accept a token that does
// not cover the digest.
func FuzzCheckToken(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0x00, 0x00})
	digest := bytes.Repeat([]byte{0x42}, 32)
	f.Fuzz(func(t *testing.T, token []byte) {
		if err := checkToken(token, digest, nil); err == nil {
			ts, perr := parseToken(token)
			if perr != nil || !bytes.Equal(ts.HashedMessage, digest) {
				t.Fatalf("accepted a token not over the digest")
			}
		}
	})
}
