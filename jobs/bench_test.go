package jobs_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigillo/sigillo/sam"
)

// BenchmarkAutomaticBatch measures batch signHash throughput of an
// automatic-signature credential against the raw HSM rate of the same
// key on the same token, interleaved in the same run (so that load from
// elsewhere on the machine hits both alike). Each iteration signs one
// batch of 1,000 digests three ways:
//
//   - raw: the HSM signer alone, on as many goroutines as sam uses;
//   - sam: sam.SignHash (SAD + usage counters in one transaction, CA
//     status, parallel HSM signatures, audit log, history and
//     per-signature log rows), on a whole replica (servertest);
//   - http: the same through CSC signHash over loopback HTTP (the
//     request body is encoded before the clock starts).
//
// Reported: sigs/s of each (totals), and the medians of the per-batch
// sam/raw and http/raw ratios.
func BenchmarkAutomaticBatch(b *testing.B) {
	for _, tc := range []struct{ algo, signAlgo string }{{"rsa-2048", sha256WithRSA}, {"ecdsa-p256", ecdsaWithSHA256}} {
		b.Run(tc.algo, func(b *testing.B) {
			a, srv := startReplica(b)
			tok, cred := a.integration("bench-"+tc.algo, "bench.example", "ALIAS-"+tc.algo, tc.algo)
			ctx := context.Background()
			signer, err := srv.App.HSM.Signer(ctx, cred)
			if err != nil {
				b.Fatal(err)
			}
			p, err := srv.App.SAM.Authenticate(ctx, tok)
			if err != nil {
				b.Fatal(err)
			}
			const batch = 1000
			workers := sam.DefaultSignParallelism
			sad := a.authorize(tok, cred, 100000)
			left := 100000
			var raw, viaSAM, viaHTTP time.Duration
			var rSAM, rHTTP []float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				hs := hashes(fmt.Sprint("bench-", i), batch)
				if left < 2*batch {
					b.StopTimer()
					sad, left = a.authorize(tok, cred, 100000), 100000
					b.StartTimer()
				}
				runRaw := func() time.Duration {
					start := time.Now()
					var next atomic.Int64
					var wg sync.WaitGroup
					for range workers {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for {
								k := int(next.Add(1) - 1)
								if k >= batch {
									return
								}
								if _, err := signer.Sign(rand.Reader, hs[k], crypto.SHA256); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					wg.Wait()
					return time.Since(start)
				}
				runSAM := func() time.Duration {
					start := time.Now()
					if _, err := srv.App.SAM.SignHash(ctx, p, sam.SignRequest{CredentialID: cred, SAD: sad, Hashes: hs, Opts: crypto.SHA256}); err != nil {
						b.Fatal(err)
					}
					return time.Since(start)
				}
				// The client's own JSON encoding is not the server's cost.
				body := mustJSON(b, map[string]any{"credentialID": cred, "SAD": sad, "hashes": b64(hs), "signAlgo": tc.signAlgo})
				runHTTP := func() time.Duration {
					start := time.Now()
					status, _, data := a.do(http.MethodPost, "/csc/v2/signatures/signHash", map[string]string{"Authorization": "Bearer " + tok}, body)
					if status != http.StatusOK {
						b.Fatalf("signHash: %d %s", status, truncate(data))
					}
					return time.Since(start)
				}
				// The order rotates so that none always runs first.
				var dr, ds, dh time.Duration
				switch i % 3 {
				case 0:
					dr, ds, dh = runRaw(), runSAM(), runHTTP()
				case 1:
					ds, dh, dr = runSAM(), runHTTP(), runRaw()
				default:
					dh, dr, ds = runHTTP(), runRaw(), runSAM()
				}
				raw, viaSAM, viaHTTP = raw+dr, viaSAM+ds, viaHTTP+dh
				rSAM, rHTTP = append(rSAM, dr.Seconds()/ds.Seconds()), append(rHTTP, dr.Seconds()/dh.Seconds())
				left -= 2 * batch
			}
			b.StopTimer()
			n := float64(b.N * batch)
			b.ReportMetric(n/raw.Seconds(), "raw_sigs/s")
			b.ReportMetric(n/viaSAM.Seconds(), "sam_sigs/s")
			b.ReportMetric(n/viaHTTP.Seconds(), "http_sigs/s")
			// Medians of the per-batch ratios: robust to bursts of load
			// from elsewhere on a shared machine.
			b.ReportMetric(median(rSAM), "sam/raw")
			b.ReportMetric(median(rHTTP), "http/raw")
		})
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
