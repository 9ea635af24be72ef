package loadtest

// This is the one file of the package that talks PKCS#11 (through hsm):
// the raw rate is the yardstick the service's rate is divided by.

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigillo/sigillo/hsm"
)

// HSMKeys is what the raw measurement needs from a key manager;
// *hsm.Manager implements it.
type HSMKeys interface {
	GenerateKey(ctx context.Context, id, algo string) (crypto.PublicKey, error)
	Signer(ctx context.Context, id string) (crypto.Signer, error)
	DestroyKey(ctx context.Context, id string) error
}

var _ HSMKeys = (*hsm.Manager)(nil)

// MeasureHSM generates a temporary key of algo on the token, signs random
// SHA-256 digests with it from workers goroutines for d (after a short
// warm-up that fills the session pool), destroys the key and returns the
// rate. The first signature is verified, so a broken key cannot pass as
// a fast one.
func MeasureHSM(ctx context.Context, keys HSMKeys, algo string, workers int, d time.Duration) (*HSMResult, error) {
	if workers < 1 || d <= 0 {
		return nil, errors.New("measure HSM: workers and duration must be positive")
	}
	id := "loadtest-raw-" + randomHex(8)
	pub, err := keys.GenerateKey(ctx, id, algo)
	if err != nil {
		return nil, fmt.Errorf("measure HSM: %w", err)
	}
	defer func() { _ = keys.DestroyKey(context.WithoutCancel(ctx), id) }()
	signer, err := keys.Signer(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("measure HSM: %w", err)
	}
	digest := make([]byte, 32)
	_, _ = rand.Read(digest)
	sig, err := signer.Sign(rand.Reader, digest, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("measure HSM: sign: %w", err)
	}
	if err := verifyPub(pub, digest, sig); err != nil {
		return nil, fmt.Errorf("measure HSM: the token's signature does not verify: %w", err)
	}

	var (
		counting atomic.Bool
		count    atomic.Int64
		stop     atomic.Bool
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			dg := make([]byte, 32)
			_, _ = rand.Read(dg)
			for !stop.Load() && ctx.Err() == nil {
				dg[0]++ // distinct digests, no RNG cost in the loop
				if _, err := signer.Sign(rand.Reader, dg, crypto.SHA256); err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					return
				}
				if counting.Load() {
					count.Add(1)
				}
			}
		})
	}
	warm := min(d/5, time.Second)
	sleep(ctx, warm)
	start, cpu0 := time.Now(), processCPU()
	counting.Store(true)
	sleep(ctx, d)
	n := count.Load()
	el, cpu := time.Since(start), processCPU()-cpu0
	stop.Store(true)
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("measure HSM: sign: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("measure HSM: %w", err)
	}
	r := &HSMResult{KeyAlgo: algo, Workers: workers, Seconds: el.Seconds(), Signatures: n, Rate: float64(n) / el.Seconds()}
	if cpu > 0 && n > 0 {
		r.CPUSeconds = cpu.Seconds()
		r.CPUPerSigMicros = float64(cpu.Microseconds()) / float64(n)
	}
	return r, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// HSMTarget names the token to measure: either explicitly (Module, Token,
// PIN) or as the dev token of a `sigillo serve` data directory (DataDir,
// e.g. ./var: softhsm/softhsm2.conf and softhsm/pins.json, token
// "sigillo").
type HSMTarget struct {
	Module, Token, PIN string
	DataDir            string
	// MaxSessions sizes the session pool (0: hsm's default).
	MaxSessions int
}

// devTokenLabel is the label `sigillo serve` gives its dev SoftHSM2 token.
const devTokenLabel = "sigillo"

// OpenHSM opens the token t names. For a data directory it points
// SOFTHSM2_CONF at that directory's conf first (for this process: SoftHSM
// reads it at initialisation), so it must be called before anything else
// in the process loads SoftHSM.
func OpenHSM(t HSMTarget) (*hsm.Manager, error) {
	cfg := hsm.Config{Module: t.Module, TokenLabel: t.Token, PIN: t.PIN, MaxSessions: t.MaxSessions}
	if t.DataDir != "" && (cfg.Module == "" || cfg.PIN == "") {
		dir := filepath.Join(t.DataDir, "softhsm")
		conf := filepath.Join(dir, "softhsm2.conf")
		if _, err := os.Stat(conf); err != nil {
			return nil, fmt.Errorf("open HSM: dev token of %s: %w", t.DataDir, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "pins.json"))
		if err != nil {
			return nil, fmt.Errorf("open HSM: dev token of %s: %w", t.DataDir, err)
		}
		var pins struct {
			UserPIN string `json:"user_pin"`
		}
		if err := json.Unmarshal(b, &pins); err != nil || pins.UserPIN == "" {
			return nil, fmt.Errorf("open HSM: %s: no user_pin (%v)", filepath.Join(dir, "pins.json"), err)
		}
		if err := os.Setenv("SOFTHSM2_CONF", conf); err != nil {
			return nil, fmt.Errorf("open HSM: %w", err)
		}
		if cfg.PIN == "" {
			cfg.PIN = pins.UserPIN
		}
		if cfg.TokenLabel == "" {
			cfg.TokenLabel = devTokenLabel
		}
	}
	if cfg.Module == "" {
		m, err := hsm.FindSoftHSMModule()
		if err != nil {
			return nil, fmt.Errorf("open HSM: %w", err)
		}
		cfg.Module = m
	}
	if cfg.TokenLabel == "" || cfg.PIN == "" {
		return nil, errors.New("open HSM: need a token label and PIN (--pkcs11-token, --pkcs11-pin) or a data directory")
	}
	m, err := hsm.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("open HSM: %w", err)
	}
	return m, nil
}
