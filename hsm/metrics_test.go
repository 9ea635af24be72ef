package hsm_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sigillo/sigillo/hsm"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

func TestMetrics(t *testing.T) {
	cfg, _ := softhsmtest.Provision(t)
	reg := prometheus.NewPedanticRegistry()
	m, err := hsm.Open(cfg, hsm.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	if _, err := m.GenerateKey(ctx, "k", "ecdsa-p256"); err != nil {
		t.Fatal(err)
	}
	s, err := m.Signer(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.Sign(nil, digestOf(crypto.SHA256, nil), crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Sign(nil, []byte("short"), crypto.SHA256); !errors.Is(err, hsm.ErrBadDigest) {
		t.Fatalf("bad digest: %v", err)
	}
	// A recovery is counted as a reconnect, and the signature still
	// succeeds (so no error is counted for it).
	raw := openRaw(t, cfg.Module, cfg.TokenLabel)
	unlock := hsm.LockLibrary(cfg.Module)
	if err := raw.p.Finalize(); err != nil {
		t.Fatal(err)
	}
	unlock()
	if _, err := s.Sign(nil, digestOf(crypto.SHA256, nil), crypto.SHA256); err != nil {
		t.Fatal(err)
	}

	samples := map[string]int{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			labels := ""
			for _, l := range mt.GetLabel() {
				labels += l.GetName() + "=" + l.GetValue() + ","
			}
			key := mf.GetName() + "{" + labels + "}"
			switch {
			case mt.GetHistogram() != nil:
				samples[key] = int(mt.GetHistogram().GetSampleCount())
			case mt.GetCounter() != nil:
				samples[key] = int(mt.GetCounter().GetValue())
			case mt.GetGauge() != nil:
				samples[key] = int(mt.GetGauge().GetValue())
			}
		}
	}
	want := map[string]int{
		"sigillo_hsm_operation_seconds{algo=ecdsa-p256,op=sign,}":         5,
		"sigillo_hsm_operation_seconds{algo=ecdsa-p256,op=generate_key,}": 1,
		"sigillo_hsm_operation_errors_total{code=other,op=sign,}":         1,
		"sigillo_hsm_reconnects_total{result=ok,}":                        1,
		"sigillo_hsm_operations_in_flight{}":                              0,
		"sigillo_hsm_up{}":                                                1,
	}
	for k, v := range want {
		if got, ok := samples[k]; !ok || got != v {
			t.Errorf("%s = %d (present %v), want %d", k, got, ok, v)
		}
	}
	if t.Failed() {
		t.Logf("all samples: %v", samples)
	}
}

func TestMetrics_nilRegistererIsSafe(t *testing.T) {
	cfg, _ := softhsmtest.Provision(t)
	m, err := hsm.Open(cfg, hsm.WithRegisterer(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.GenerateKey(context.Background(), "k", "ecdsa-p256"); err != nil {
		t.Fatal(err)
	}
}

func TestCodeName(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("boom"), "other"},
		{hsm.ErrBadDigest, "other"},
		{fmt.Errorf("sign: %w", pkcs11.Error(pkcs11.CKR_DEVICE_REMOVED)), "CKR_DEVICE_REMOVED"},
		{fmt.Errorf("x: %w: %w", hsm.ErrUnavailable, pkcs11.Error(pkcs11.CKR_SESSION_HANDLE_INVALID)), "CKR_SESSION_HANDLE_INVALID"},
	}
	for _, tt := range tests {
		if got := hsm.CodeName(tt.err); got != tt.want {
			t.Errorf("CodeName(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestOpen_failedOpenCanBeRetriedWithTheSameRegisterer(t *testing.T) {
	cfg, _ := softhsmtest.Provision(t)
	reg := prometheus.NewRegistry()
	bad := cfg
	bad.PIN = "wrong-pin"
	if m, err := hsm.Open(bad, hsm.WithRegisterer(reg)); err == nil {
		_ = m.Close()
		t.Fatal("Open with a wrong PIN succeeded")
	}
	m, err := hsm.Open(cfg, hsm.WithRegisterer(reg))
	if err != nil {
		t.Fatalf("Open after a failed Open: %v", err)
	}
	_ = m.Close()
}
