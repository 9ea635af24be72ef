// Command autoserve is `sigillo serve` plus the automatic-signature wiring
// (jobs runner, CSC asynchronous mode, usage routes) from package
// automount, configured by the same SIGILLO_* variables. The kill -9 test
// of package jobs runs it as a separate process until server/mount.go
// wires these pieces into the real binary; then the test builds
// ./cmd/sigillo instead.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sigillo/sigillo/config"
	"github.com/sigillo/sigillo/jobs"
	"github.com/sigillo/sigillo/jobs/internal/automount"
	"github.com/sigillo/sigillo/server"
)

func main() {
	cfg, err := config.Load("", os.Environ())
	if err != nil {
		fmt.Fprintln(os.Stderr, "autoserve:", err)
		os.Exit(2)
	}
	log := server.NewLogger(cfg.Log, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	app, err := server.New(ctx, cfg, log)
	if err != nil {
		log.Error("start-up failed", "error", err)
		os.Exit(1)
	}
	defer app.Close()
	h, runner, err := automount.Mount(app, jobs.Config{Lease: 3 * time.Second, HashChunk: 100})
	if err != nil {
		log.Error("automatic signature", "error", err)
		os.Exit(1)
	}
	go runner.Run(ctx)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("listen", "addr", cfg.Listen, "error", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("autoserve serving", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "error", err)
		os.Exit(1)
	}
}
