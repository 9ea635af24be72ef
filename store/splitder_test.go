package store

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

func TestSplitDERRoundTripsAChain(t *testing.T) {
	var chain [][]byte
	for i := 0; i < 3; i++ {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: "c"},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, der)
	}
	got, err := splitDER(joinDER(chain))
	if err != nil || len(got) != 3 {
		t.Fatalf("split: %d certs, %v", len(got), err)
	}
	for i := range chain {
		if !bytes.Equal(got[i], chain[i]) {
			t.Fatalf("cert %d differs", i)
		}
	}
	if got, err := splitDER(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range [][]byte{{0x30}, {0x02, 0x01, 0x01}, append(joinDER(chain), 0x30, 0x05)} {
		if _, err := splitDER(bad); err == nil {
			t.Errorf("malformed % x accepted", bad[:min(len(bad), 4)])
		}
	}
}

func BenchmarkSplitDER(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "c"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	joined := joinDER([][]byte{der, der, der})
	for b.Loop() {
		if _, err := splitDER(joined); err != nil {
			b.Fatal(err)
		}
	}
}
