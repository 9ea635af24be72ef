package pades_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/digitorus/pdf"
	pdfsign "github.com/digitorus/pdfsign/sign"

	"github.com/sigillo/sigillo/cms/cmstest"
	"github.com/sigillo/sigillo/pades"
)

// peakHeap samples the live heap while f runs and returns the peak above
// the level before f (bytes). Sampling every 200µs through runtime/metrics
// is cheap and does not stop the world.
func peakHeap(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak {
				peak = v
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	if peak < base {
		return 0
	}
	return peak - base
}

// BenchmarkSign signs the same file with the same RSA-2048 key at B-B with
// sigillo's pades.Sign and with the pinned digitorus/pdfsign, input from a
// file, output discarded. Metrics: ns/op, B/op (allocated), and peak-MB
// (peak live heap during one signature).
func BenchmarkSign(b *testing.B) {
	root := cmstest.NewRoot(b, "bench root")
	key, chain := root.Leaf(b, "bench signer", "rsa-2048", cmstest.Signer)
	for _, size := range []struct {
		name  string
		bytes int
	}{{"100KB", 100 << 10}, {"5MB", 5 << 20}, {"50MB", 50 << 20}} {
		path := filepath.Join(b.TempDir(), size.name+".pdf")
		if err := os.WriteFile(path, makePDF(pdfSpec{padBytes: size.bytes}), 0o600); err != nil {
			b.Fatal(err)
		}
		for _, impl := range []struct {
			name string
			sign func(f *os.File, size int64) error
		}{
			{"sigillo", func(f *os.File, n int64) error {
				return pades.Sign(context.Background(), f, n, io.Discard, key, chain, pades.Options{})
			}},
			{"pdfsign", func(f *os.File, n int64) error { return signWithPdfsign(f, n, key, chain) }},
		} {
			b.Run(fmt.Sprintf("%s/%s", size.name, impl.name), func(b *testing.B) {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				st, _ := f.Stat()
				var peak uint64
				b.ReportAllocs()
				b.SetBytes(st.Size())
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					f.Seek(0, io.SeekStart)
					var err error
					p := peakHeap(func() { err = impl.sign(f, st.Size()) })
					if err != nil {
						b.Fatal(err)
					}
					if p > peak {
						peak = p
					}
				}
				b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
			})
		}
	}
}

func signWithPdfsign(f *os.File, size int64, key crypto.Signer, chain []*x509.Certificate) error {
	r, err := pdf.NewReader(f, size)
	if err != nil {
		return err
	}
	return pdfsign.Sign(f, io.Discard, r, size, pdfsign.SignData{
		Signature:         pdfsign.SignDataSignature{CertType: pdfsign.ApprovalSignature},
		Signer:            key,
		DigestAlgorithm:   crypto.SHA256,
		Certificate:       chain[0],
		CertificateChains: [][]*x509.Certificate{chain},
	})
}
