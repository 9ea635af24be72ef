package hsm_test

import (
	"context"
	"crypto"
	"log/slog"
	"os"
	"testing"

	"github.com/sigillo/sigillo/hsm"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

func TestDebugCloseAll(t *testing.T) {
	cfg, _ := softhsmtest.Provision(t)
	m, err := hsm.Open(cfg, hsm.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	m.GenerateKey(ctx, "ec", "ecdsa-p256")
	s, _ := m.Signer(ctx, "ec")
	d := digestOf(crypto.SHA256, nil)
	_, err = s.Sign(nil, d, crypto.SHA256)
	t.Log("before", err)
	raw := openRaw(t, cfg.Module, cfg.TokenLabel)
	t.Log("closeall", raw.p.CloseAllSessions(raw.slot))
	_, err = s.Sign(nil, d, crypto.SHA256)
	t.Log("after", err)
	t.Log("ready", m.Ready(ctx))
}
