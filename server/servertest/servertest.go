// Package servertest starts a whole sigillo replica in-process for
// end-to-end tests: a real HTTP server on a loopback port, a fresh SoftHSM2
// token, and a fresh SQLite (or PostgreSQL) database. Tests talk to it over
// HTTP exactly as clients do.
package servertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sigillo/sigillo/config"
	"github.com/sigillo/sigillo/server"
	"github.com/sigillo/sigillo/softhsm-test"
	"github.com/sigillo/sigillo/store/storetest"
)

// Options adjust the replica.
type Options struct {
	// Postgres uses a fresh PostgreSQL database instead of SQLite.
	Postgres bool
	// Database, when set, is used as is (e.g. to share one between replicas).
	Database string
	// Configure may change the configuration before start.
	Configure func(*config.Config)
	// Verbose sends the server's logs to the test log.
	Verbose bool
}

// Server is a running replica.
type Server struct {
	URL        string
	AdminToken string
	App        *server.App
	Config     *config.Config
	stop       context.CancelFunc
	done       chan error
}

// Start runs a replica until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	hc, _ := softhsmtest.Provision(t)
	dir := t.TempDir()
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = ln.Addr().String()
	cfg.PublicURL = "http://" + ln.Addr().String()
	cfg.DataDir = dir
	cfg.Database = filepath.Join(dir, "sigillo.db")
	switch {
	case o.Database != "":
		cfg.Database = o.Database
	case o.Postgres:
		cfg.Database = storetest.PostgresURL(t)
	}
	cfg.PKCS11.Module, cfg.PKCS11.Token, cfg.PKCS11.PIN.Value = hc.Module, hc.TokenLabel, hc.PIN
	cfg.AdminToken.Value = randomHex(16)
	cfg.Auth.SecretKey.Value = randomHex(32)
	cfg.ShutdownTimeout = config.Duration(10 * time.Second)
	if o.Configure != nil {
		o.Configure(cfg)
	}
	var w io.Writer = io.Discard
	if o.Verbose || os.Getenv("SIGILLO_TEST_VERBOSE") != "" {
		w = testWriter{t}
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	app, err := server.New(ctx, cfg, log)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatalf("start sigillo: %v", err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), AdminToken: cfg.AdminToken.Value, App: app, Config: cfg, stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- app.Serve(ctx, ln) }()
	t.Cleanup(s.Stop)
	return s
}

// Stop drains and closes the replica (idempotent).
func (s *Server) Stop() {
	if s.stop == nil {
		return
	}
	s.stop()
	s.stop = nil
	<-s.done
	s.App.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
