package loadtest

import (
	"context"
	"crypto"
	"errors"
	"sync"
	"testing"
	"time"

	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

// recordingKeys remembers which keys were made and destroyed.
type recordingKeys struct {
	HSMKeys
	mu                   sync.Mutex
	generated, destroyed []string
}

func (r *recordingKeys) GenerateKey(ctx context.Context, id, algo string) (crypto.PublicKey, error) {
	r.mu.Lock()
	r.generated = append(r.generated, id)
	r.mu.Unlock()
	return r.HSMKeys.GenerateKey(ctx, id, algo)
}

func (r *recordingKeys) DestroyKey(ctx context.Context, id string) error {
	r.mu.Lock()
	r.destroyed = append(r.destroyed, id)
	r.mu.Unlock()
	return r.HSMKeys.DestroyKey(ctx, id)
}

func TestMeasureHSMOnSoftHSM(t *testing.T) {
	tok := softhsmtest.New(t)
	for _, algo := range []string{"ecdsa-p256", "rsa-2048"} {
		t.Run(algo, func(t *testing.T) {
			keys := &recordingKeys{HSMKeys: tok.Manager}
			res, err := MeasureHSM(context.Background(), keys, algo, 2, 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if res.Signatures <= 0 || res.Rate <= 0 || res.KeyAlgo != algo || res.Workers != 2 {
				t.Errorf("result %+v", res)
			}
			if len(keys.generated) != 1 || len(keys.destroyed) != 1 || keys.generated[0] != keys.destroyed[0] {
				t.Fatalf("temporary key not destroyed: generated %v, destroyed %v", keys.generated, keys.destroyed)
			}
			if _, err := tok.Manager.PublicKey(context.Background(), keys.generated[0]); err == nil {
				t.Errorf("key %s still on the token", keys.generated[0])
			}
		})
	}
}

func TestMeasureHSMRefusesBadArguments(t *testing.T) {
	if _, err := MeasureHSM(context.Background(), nil, "ecdsa-p256", 0, time.Second); err == nil {
		t.Error("zero workers accepted")
	}
	if _, err := MeasureHSM(context.Background(), nil, "ecdsa-p256", 1, 0); err == nil {
		t.Error("zero duration accepted")
	}
}

func TestOpenHSMNeedsATarget(t *testing.T) {
	_, err := OpenHSM(HSMTarget{DataDir: t.TempDir()})
	if err == nil {
		t.Fatal("a data dir without a SoftHSM token was accepted")
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
