package hsm_test

import (
	"context"
	"crypto"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sigillo/sigillo/hsm"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

// processCPU is the CPU time (user + system, all threads) this process has
// used. The machine is shared and often oversubscribed: wall-clock ns/op
// then measures the load as much as the code, CPU time per signature much
// less so.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ns/op: the process CPU time spent since start, per op.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
}

// benchKeys are the keys both benchmarks sign with.
var benchKeys = []struct{ id, algo string }{{"rsa-2048", "rsa-2048"}, {"ecdsa-p256", "ecdsa-p256"}}

// benchToken makes a token with the bench keys and a Manager with metrics
// on, as in production.
func benchToken(b *testing.B) (hsm.Config, *hsm.Manager) {
	b.Helper()
	cfg, _ := softhsmtest.Provision(b)
	m, err := hsm.Open(cfg, hsm.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	for _, k := range benchKeys {
		if _, err := m.GenerateKey(context.Background(), k.id, k.algo); err != nil {
			b.Fatal(err)
		}
	}
	return cfg, m
}

// BenchmarkSignDigest signs a SHA-256 digest through Manager.Signer (cached
// signer, metrics decorator, crypto11 session pool), in parallel.
func BenchmarkSignDigest(b *testing.B) {
	_, m := benchToken(b)
	digest := digestOf(crypto.SHA256, []byte("benchmark"))
	for _, k := range benchKeys {
		b.Run(k.id, func(b *testing.B) {
			s, err := m.Signer(context.Background(), k.id)
			if err != nil {
				b.Fatal(err)
			}
			sig, err := s.Sign(nil, digest, crypto.SHA256)
			if err != nil {
				b.Fatal(err)
			}
			if err := verify(s.Public(), digest, sig, crypto.SHA256); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			cpu := processCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Sign(nil, digest, crypto.SHA256); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			reportCPU(b, cpu)
		})
	}
}

// sha256DigestInfo is the DER DigestInfo prefix for SHA-256 (RFC 8017
// §9.2 note 1): CKM_RSA_PKCS signs DigestInfo || digest.
var sha256DigestInfo = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// BenchmarkRawPKCS11 is the floor BenchmarkSignDigest is compared with:
// bare miekg/pkcs11, one session per goroutine, key handle found once,
// C_SignInit + C_Sign per signature, same keys and same input.
func BenchmarkRawPKCS11(b *testing.B) {
	cfg, _ := benchToken(b)
	raw := openRaw(b, cfg.Module, cfg.TokenLabel)
	digest := digestOf(crypto.SHA256, []byte("benchmark"))
	for _, k := range benchKeys {
		b.Run(k.id, func(b *testing.B) {
			mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}
			input := digest
			if k.algo == "rsa-2048" {
				mech = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)}
				input = append(append([]byte{}, sha256DigestInfo...), digest...)
			}
			s0 := raw.session(b, cfg.PIN)
			key := raw.findPrivate(b, s0, k.id)
			b.ResetTimer()
			cpu := processCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				s, err := raw.p.OpenSession(raw.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
				if err != nil {
					b.Error(err)
					return
				}
				defer func() { _ = raw.p.CloseSession(s) }()
				for pb.Next() {
					if err := raw.p.SignInit(s, mech, key); err != nil {
						b.Error(err)
						return
					}
					if _, err := raw.p.Sign(s, input); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			reportCPU(b, cpu)
			_ = raw.p.CloseSession(s0)
		})
	}
}
