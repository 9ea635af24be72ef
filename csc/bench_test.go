package csc

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

// BenchmarkSignHashHTTP measures signatures through the whole CSC stack
// (HTTP server, gin, decoding, sam: token, SAD consumption, audit,
// history; SoftHSM2) against a raw-HSM baseline: the same key's
// crypto.Signer on the same token, with the same parallelism, in the same
// run, interleaved (see interleaved). A raw call is n Sign calls; an http
// call is one signHash of n hashes. ratio = http throughput ÷ raw
// throughput (1.0 = no overhead). The SAD is authorized once (SCAL 1, huge
// numSignatures), as an automatic-signature integration would.
//
// csc-only is the same HTTP path over a Service that signs with the same
// HSM signer and does nothing else (no store, no audit): it isolates what
// package csc (with net/http and an in-process client) costs from what
// sam costs.
func BenchmarkSignHashHTTP(b *testing.B) {
	env := samtest.New(b, samtest.WithKeys(softhsmtest.New(b).Manager), samtest.WithConfig(func(c *sam.Config) {
		c.MaxMultisign = 1 << 30
		c.SADTTL = 24 * time.Hour
	}))
	uid := env.User(b, "bench")
	r := gin.New()
	New(env.Service, Options{}).Register(r)
	srv := httptest.NewServer(r)
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.Cleanup(client.CloseIdleConnections)
	ctx := context.Background()

	tok, err := env.Service.Login(ctx, "bench", samtest.Password, false)
	if err != nil {
		b.Fatal(err)
	}
	p, err := env.Service.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		b.Fatal(err)
	}
	auth := "Bearer " + tok.AccessToken

	for _, kc := range []struct{ algo, signAlgo string }{
		{"rsa-2048", oidSHA256WithRSA}, {"ecdsa-p256", oidECDSAWithSHA256},
	} {
		cc := env.Credential(b, uid, sam.NewCredential{KeyAlgo: kc.algo, SCAL: 1, Multisign: 1 << 30})
		sad, err := env.Service.Authorize(ctx, p, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1 << 30, PIN: samtest.PIN})
		if err != nil {
			b.Fatal(err)
		}
		signer, err := env.Keys.Signer(ctx, cc.CredentialID)
		if err != nil {
			b.Fatal(err)
		}
		info, err := env.Service.Credential(ctx, p, cc.CredentialID)
		if err != nil {
			b.Fatal(err)
		}
		br := gin.New()
		New(&signerOnly{signer: signer, info: *info}, Options{}).Register(br)
		bare := httptest.NewServer(br)
		b.Cleanup(bare.Close)

		for _, n := range []int{1, 100} {
			hashes := make([]string, n)
			digests := make([][]byte, n)
			for i := range digests {
				digests[i] = digestOf(crypto.SHA256, fmt.Sprintf("document %d", i))
				hashes[i] = b64(digests[i])
			}
			body, _ := json.Marshal(map[string]any{"credentialID": cc.CredentialID, "SAD": sad.Value, "hashes": hashes, "signAlgo": kc.signAlgo})
			raw := func() error {
				for _, d := range digests {
					if _, err := signer.Sign(rand.Reader, d, crypto.SHA256); err != nil {
						return err
					}
				}
				return nil
			}
			post := func(url, auth string) func() error {
				return func() error {
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					req.Header.Set("Authorization", auth)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						return err
					}
					out, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						return fmt.Errorf("signHash: %d %s", resp.StatusCode, out)
					}
					return nil
				}
			}
			b.Run(fmt.Sprintf("%s/hashes=%d", kc.algo, n), func(b *testing.B) {
				interleaved(b, n, []phase{
					{"raw", raw},
					{"http", post(srv.URL+"/csc/v2/signatures/signHash", auth)},
					{"csc-only", post(bare.URL+"/csc/v2/signatures/signHash", "Bearer bare")},
				})
			})
		}
	}
}

// phase is one way of producing n signatures per call.
type phase struct {
	name string
	op   func() error
}

// interleaved runs, b.N times, each phase in turn for phaseDur with
// 2 × GOMAXPROCS callers (as the load test's default workers), each
// calling op back to back, and adds up each phase's signatures and wall
// time. Because the phases alternate every half second, they see the same
// machine load: on a shared machine the ratio of their throughputs is far
// steadier than that of separate sub-benchmarks run a minute apart.
// Callers run freely within a phase (no barrier between calls), so a
// slow call does not hold the others back; the one barrier per phase
// costs at most one call. Reported: <phase>-sigs/s for each phase, and
// ratio / ratio-csc-only = that phase's throughput ÷ raw's.
func interleaved(b *testing.B, n int, phases []phase) {
	const phaseDur = 500 * time.Millisecond
	par := 2 * runtime.GOMAXPROCS(0)
	total := make([]time.Duration, len(phases))
	calls := make([]int64, len(phases))
	for i := 0; i < b.N; i++ {
		for pi, ph := range phases {
			var wg sync.WaitGroup
			var done atomic.Int64
			start := time.Now()
			for range par {
				wg.Go(func() {
					for time.Since(start) < phaseDur {
						if err := ph.op(); err != nil {
							b.Error(err)
							return
						}
						done.Add(1)
					}
				})
			}
			wg.Wait()
			total[pi] += time.Since(start)
			calls[pi] += done.Load()
		}
	}
	rate := make([]float64, len(phases))
	for pi, ph := range phases {
		rate[pi] = float64(calls[pi]*int64(n)) / total[pi].Seconds()
		b.ReportMetric(rate[pi], ph.name+"-sigs/s")
	}
	b.ReportMetric(rate[1]/rate[0], "ratio")
	b.ReportMetric(rate[2]/rate[0], "ratio-csc-only")
	b.ReportMetric(0, "ns/op")
}

// signerOnly is a Service that authenticates anyone and signs with one
// crypto.Signer, for measuring the HTTP layer alone. Methods the
// benchmark does not call are left to the nil embedded interface.
type signerOnly struct {
	Service
	signer crypto.Signer
	info   sam.CredentialInfo
}

func (s *signerOnly) Authenticate(context.Context, string) (*sam.Principal, error) {
	return &sam.Principal{UserID: "bench"}, nil
}

func (s *signerOnly) Credential(context.Context, *sam.Principal, string) (*sam.CredentialInfo, error) {
	info := s.info
	return &info, nil
}

func (s *signerOnly) SignHash(_ context.Context, _ *sam.Principal, r sam.SignRequest) ([][]byte, error) {
	out := make([][]byte, len(r.Hashes))
	for i, d := range r.Hashes {
		sig, err := s.signer.Sign(rand.Reader, d, r.Opts)
		if err != nil {
			return nil, err
		}
		out[i] = sig
	}
	return out, nil
}

// nopSigner returns a fixed-size "signature" at once, so that
// BenchmarkSignHashOverhead measures only our code and net/http.
type nopSigner struct{}

func (nopSigner) Public() crypto.PublicKey { return nil }

func (nopSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return make([]byte, 72), nil
}

// BenchmarkSignHashOverhead is the per-request cost of package csc
// (routing, bearer, decoding, validation, key check, encoding) with a
// signer that costs nothing: "handler" calls the gin engine directly,
// "http" adds a loopback HTTP round trip with an in-process client.
func BenchmarkSignHashOverhead(b *testing.B) {
	r := gin.New()
	New(&signerOnly{signer: nopSigner{}, info: sam.CredentialInfo{KeyAlgo: "ecdsa-p256", KeyLen: 256}}, Options{}).Register(r)
	srv := httptest.NewServer(r)
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.Cleanup(client.CloseIdleConnections)
	body, _ := json.Marshal(map[string]any{"credentialID": "c", "SAD": "s", "hashes": []string{b256}, "signAlgo": oidECDSAWithSHA256})
	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := httptest.NewRequest(http.MethodPost, "/csc/v2/signatures/signHash", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer x")
				w := httptest.NewRecorder()
				r.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Errorf("signHash: %d %s", w.Code, w.Body)
					return
				}
			}
		})
	})
	b.Run("http", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/csc/v2/signatures/signHash", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer x")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("signHash: %d", resp.StatusCode)
					return
				}
			}
		})
	})
}
