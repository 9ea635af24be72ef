package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sigillo/sigillo/config"
	"github.com/sigillo/sigillo/server"
)

func init() {
	commands["serve"] = command{"run the signing service", serveMain}
	commands["healthcheck"] = command{"probe /readyz (container health check)", healthcheckMain}
	commands["check-config"] = command{"validate the configuration and print it with secrets redacted", checkConfigMain}
}

// loadConfig parses --config and loads; on failure it prints every problem
// and returns exit code 2.
func loadConfig(name string, args []string) (*config.Config, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", os.Getenv("SIGILLO_CONFIG"), "YAML configuration file (optional; SIGILLO_* variables override it)")
	if err := fs.Parse(args); err != nil {
		return nil, 2
	}
	cfg, err := config.Load(*path, os.Environ())
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigillo:", err)
		return nil, 2
	}
	return cfg, 0
}

func checkConfigMain(args []string) int {
	os.Unsetenv("SIGILLO_CONFIG")
	cfg, code := loadConfig("check-config", args)
	if cfg == nil {
		return code
	}
	fmt.Print(cfg.Redacted())
	return 0
}

func serveMain(args []string) int {
	os.Unsetenv("SIGILLO_CONFIG")
	cfg, code := loadConfig("serve", args)
	if cfg == nil {
		return code
	}
	log := server.NewLogger(cfg.Log, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	app, err := server.New(ctx, cfg, log)
	if err != nil {
		log.Error("start-up failed", "error", err)
		return 1
	}
	defer app.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("listen", "addr", cfg.Listen, "error", err)
		return 1
	}
	if err := app.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("serve", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// healthcheckMain probes a URL and exits 0 on 2xx: the container
// HEALTHCHECK, so the runtime image needs no curl.
func healthcheckMain(args []string) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "URL to probe")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(*url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		fmt.Fprintln(os.Stderr, "healthcheck:", resp.Status)
		return 1
	}
	return 0
}
