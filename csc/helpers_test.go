package csc

import (
	"crypto"
	"encoding/asn1"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// pssParamsDER encodes RSASSA-PSS-params for h with MGF1(h) and the given
// salt length. Tests and clients use it to build signAlgoParams.
func pssParamsDER(h crypto.Hash, salt int, mgfHash crypto.Hash) []byte {
	var b cryptobyte.Builder
	algID := func(b *cryptobyte.Builder, oid string) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(mustOID(oid))
			b.AddASN1NULL()
		})
	}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			algID(b, hashOIDOf(h))
		})
		b.AddASN1(cbasn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(mustOID(oidMGF1))
				algID(b, hashOIDOf(mgfHash))
			})
		})
		b.AddASN1(cbasn1.Tag(2).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1Int64(int64(salt))
		})
	})
	return b.BytesOrPanic()
}

func mustOID(s string) asn1.ObjectIdentifier {
	var oid asn1.ObjectIdentifier
	for _, part := range strings.Split(s, ".") {
		var n int
		if _, err := fmt.Sscan(part, &n); err != nil {
			panic("bad OID " + s)
		}
		oid = append(oid, n)
	}
	return oid
}
