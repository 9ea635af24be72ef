package cahttp_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"golang.org/x/crypto/ocsp"

	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/store"
)

// The CA benchmarks measure whole requests through the HTTP handlers
// (decode, store lookup, HSM signature, encode) on SoftHSM2 and SQLite,
// next to BenchmarkCARawSign: the bare HSM signature rate of the same key
// through the same crypto.Signer, which is their ceiling.
//
//	go test -run '^$' -bench 'BenchmarkCA' -benchtime 3s ./cahttp/
var benchAlgos = []string{"ecdsa-p256", "ecdsa-p384", "rsa-3072"}

type benchEnv struct {
	*server
	handler http.Handler
	ocspReq []byte
	tsaReq  []byte
}

func newBenchEnv(b *testing.B, algo string) *benchEnv {
	b.Helper()
	s := newServer(b, algo)
	leaf := s.issue(b)
	req, err := ocsp.CreateRequest(leaf.Cert, s.a.Issuer(), nil)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("document"))
	tsq, err := (&timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: digest[:], Certificates: true}).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{server: s, handler: s.srv.Config.Handler, ocspReq: req, tsaReq: tsq}
}

func (e *benchEnv) do(path, ct string, body []byte) error {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("%s: %d %s", path, rec.Code, rec.Body.String())
	}
	return nil
}

// signer returns the HSM signer of one of the CA's keys, by role.
func (e *benchEnv) signer(b *testing.B, st interface {
	CA(context.Context, string) (store.CAEntry, error)
}, role string) crypto.Signer {
	entry, err := st.CA(context.Background(), role)
	if err != nil {
		b.Fatal(err)
	}
	s, err := e.keys.Signer(context.Background(), entry.KeyID)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkCA(b *testing.B) {
	for _, algo := range benchAlgos {
		b.Run(algo, func(b *testing.B) {
			e := newBenchEnv(b, algo)
			sig := e.signer(b, e.store, ca.RoleOCSP)
			hash := crypto.SHA256
			if k, ok := sig.Public().(*ecdsa.PublicKey); ok && k.Curve == elliptic.P384() {
				hash = crypto.SHA384
			}
			digest := make([]byte, hash.Size())
			_, _ = rand.Read(digest)
			run := func(name string, op func() error) {
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if err := op(); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				})
				b.Run(name+"_parallel", func(b *testing.B) {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := op(); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				})
			}
			run("RawSign", func() error {
				_, err := sig.Sign(rand.Reader, digest, hash)
				return err
			})
			run("OCSP", func() error { return e.do("/ca/ocsp", "application/ocsp-request", e.ocspReq) })
			run("Timestamp", func() error { return e.do("/tsa", "application/timestamp-query", e.tsaReq) })
		})
	}
}

// BenchmarkCAInterleaved runs one raw HSM signature, one OCSP request and
// one time-stamp request per iteration and times each separately, so the
// three rates are measured under the same machine load (on a shared
// machine, separate benchmarks run minutes apart under different loads).
func BenchmarkCAInterleaved(b *testing.B) {
	for _, algo := range benchAlgos {
		b.Run(algo, func(b *testing.B) {
			e := newBenchEnv(b, algo)
			sig := e.signer(b, e.store, ca.RoleOCSP)
			hash := crypto.SHA256
			if k, ok := sig.Public().(*ecdsa.PublicKey); ok && k.Curve == elliptic.P384() {
				hash = crypto.SHA384
			}
			digest := make([]byte, hash.Size())
			_, _ = rand.Read(digest)
			var raw, ocspD, tsaD time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := sig.Sign(rand.Reader, digest, hash); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := e.do("/ca/ocsp", "application/ocsp-request", e.ocspReq); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				if err := e.do("/tsa", "application/timestamp-query", e.tsaReq); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				raw, ocspD, tsaD = raw+t1.Sub(t0), ocspD+t2.Sub(t1), tsaD+t3.Sub(t2)
			}
			n := float64(b.N)
			b.ReportMetric(n/raw.Seconds(), "rawsign/s")
			b.ReportMetric(n/ocspD.Seconds(), "ocsp/s")
			b.ReportMetric(n/tsaD.Seconds(), "timestamps/s")
		})
	}
}
