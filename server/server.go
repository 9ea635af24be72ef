// Package server assembles sigillo from its configuration: it opens the
// store and the HSM, builds the domain services, mounts every HTTP layer on
// one gin engine, and runs it with health checks, metrics and a bounded,
// graceful shutdown. It is the only place that knows every package.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/config"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/hsm"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/postgres"
	"github.com/sigillo/sigillo/store/sqlite"
)

// App is one running sigillo replica.
type App struct {
	Config   *config.Config
	Log      *slog.Logger
	Store    *store.Store
	HSM      *hsm.Manager
	Audit    *audit.Log
	CA       *ca.Authority
	SAM      *sam.Service
	Registry *prometheus.Registry

	engine   *gin.Engine
	draining atomic.Bool
	closers  []func() error
	stopBg   context.CancelFunc
	bgCtx    context.Context
	bgWG     sync.WaitGroup
}

// New opens everything the configuration names. On the embedded dev
// defaults it creates the data directory, a private SoftHSM2 token and a
// generated admin token. It fails fast, with the reason, when a dependency
// is unusable.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (a *App, err error) {
	a = &App{Config: cfg, Log: log, Registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if cfg.Mode == "dev" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	if err := a.openHSM(); err != nil {
		return nil, err
	}
	if err := a.openStore(ctx); err != nil {
		return nil, err
	}
	if err := a.devSecrets(); err != nil {
		return nil, err
	}
	a.engine = a.routes()
	if err := a.mount(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *App) openHSM() error {
	cfg := a.Config
	hc := hsm.Config{Module: cfg.PKCS11.Module, TokenLabel: cfg.PKCS11.Token, PIN: cfg.PKCS11.PIN.Value, MaxSessions: cfg.PKCS11.MaxSessions}
	if cfg.Mode == "dev" && hc.Module == "" && hc.TokenLabel == "" {
		// Embedded default: a private SoftHSM2 token under the data dir.
		dev, err := hsm.ProvisionSoftHSM(filepath.Join(cfg.DataDir, "softhsm"), "sigillo")
		if err != nil {
			return fmt.Errorf("dev SoftHSM2 token: %w", err)
		}
		dev.MaxSessions = hc.MaxSessions
		hc = dev
		a.Log.Info("using the private dev SoftHSM2 token", "dir", filepath.Join(cfg.DataDir, "softhsm"), "token", hc.TokenLabel)
	}
	if hc.Module == "" {
		m, err := hsm.FindSoftHSMModule()
		if err != nil {
			return fmt.Errorf("pkcs11.module not set and %w", err)
		}
		hc.Module = m
	}
	if hc.TokenLabel == "" {
		return errors.New("pkcs11.token is required when pkcs11.module is set")
	}
	m, err := hsm.Open(hc, hsm.WithRegisterer(a.Registry), hsm.WithLogger(a.Log))
	if err != nil {
		return fmt.Errorf("hsm: %w", err)
	}
	a.HSM = m
	a.closers = append(a.closers, m.Close)
	return nil
}

func (a *App) openStore(ctx context.Context) error {
	cfg := a.Config
	var (
		s   *store.Store
		err error
	)
	if config.DatabaseKind(cfg.Database) == "postgres" {
		s, err = postgres.Open(ctx, cfg.Database, postgres.Options{MaxConns: cfg.DatabaseMaxConns})
	} else {
		s, err = sqlite.Open(ctx, cfg.Database)
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	a.Store = s
	a.closers = append(a.closers, s.Close)
	if err := s.SetMetrics(a.Registry); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// devSecrets fills, in dev mode only, the secrets production must set:
// each is generated once into the data directory (0600) and reused.
func (a *App) devSecrets() error {
	cfg := a.Config
	if cfg.Mode != "dev" {
		return nil
	}
	if cfg.AdminToken.Value == "" {
		tok, created, err := fileSecret(filepath.Join(cfg.DataDir, "admin-token"), 32)
		if err != nil {
			return fmt.Errorf("admin token: %w", err)
		}
		cfg.AdminToken.Value = tok
		if created {
			// Printed once, on the start that generates it (dev mode only).
			fmt.Fprintf(os.Stderr, "sigillo: generated operator API token (saved in %s):\n  %s\n",
				filepath.Join(cfg.DataDir, "admin-token"), tok)
		}
	}
	if cfg.Auth.SecretKey.Value == "" {
		key, _, err := fileSecret(filepath.Join(cfg.DataDir, "secret-key"), 32)
		if err != nil {
			return fmt.Errorf("secret key: %w", err)
		}
		cfg.Auth.SecretKey.Value = key
	}
	return nil
}

// fileSecret reads a hex secret from path, creating it with n random bytes
// when it does not exist. created reports whether it was made now.
func fileSecret(path string, n int) (secret string, created bool, err error) {
	if data, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(data)), false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", false, err
	}
	secret = hex.EncodeToString(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return fileSecret(path, n)
		}
		return "", false, err
	}
	defer f.Close()
	if _, err := f.WriteString(secret + "\n"); err != nil {
		return "", false, err
	}
	return secret, true, nil
}

// routes builds the engine with the cross-cutting middleware and the
// operational endpoints; mount adds the APIs.
func (a *App) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	// Believe X-Forwarded-For only from configured proxies: per-IP limits
	// (login, emergency) must not be dodged with a forged header.
	var proxies []string
	for _, p := range strings.Split(a.Config.TrustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			proxies = append(proxies, p)
		}
	}
	if err := e.SetTrustedProxies(proxies); err != nil {
		a.Log.Warn("trusted_proxies", "error", err)
	}
	met := newHTTPMetrics(a.Registry)
	e.Use(a.recovery(), met.middleware(), accessLog(a.Log))
	// Client address for the per-IP rate limits (X-Forwarded-For only
	// from trusted proxies), then the bounded admission of signing routes.
	e.Use(ClientIP(len(proxies) > 0))
	maxQueue := a.Config.Overload.MaxQueue
	if maxQueue == 0 {
		maxQueue = -1 // configured 0: no queue
	}
	ov, err := NewOverload(OverloadConfig{MaxInFlight: a.Config.Overload.MaxInFlight, MaxQueue: maxQueue,
		QueueTimeout: a.Config.Overload.QueueTimeout.D()}, a.Registry)
	if err != nil {
		panic(err) // duplicate metric registration: a wiring bug
	}
	e.Use(ov.ForPaths(SigningRoute))
	e.NoRoute(func(c *gin.Context) {
		httpx.WriteError(c, nil, httpx.REST, errs.New(errs.NotFound, "not_found", "No such endpoint"))
	})
	e.NoMethod(func(c *gin.Context) {
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, httpx.ErrorBody{Error: "invalid_request", Description: "Method not allowed"})
	})
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", a.readyz)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{Registry: a.Registry})))
	return e
}

// recovery turns a panic into a logged 500 in the CSC error shape. A
// panic is always a bug; the request gets no detail.
func (a *App) recovery() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				a.Log.Error("panic in handler", "route", c.FullPath(), "panic", fmt.Sprint(r))
				c.AbortWithStatusJSON(http.StatusInternalServerError, httpx.ErrorBody{Error: "server_error", Description: "Internal server error"})
			}
		}()
		c.Next()
	}
}

// readyz reports whether this replica can serve: not draining, store and
// HSM reachable. 503 lists every reason.
func (a *App) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	var reasons []string
	if a.draining.Load() {
		reasons = append(reasons, "shutting down")
	}
	if err := a.Store.Ping(ctx); err != nil {
		reasons = append(reasons, "store: "+err.Error())
	}
	if err := a.HSM.Ready(ctx); err != nil {
		reasons = append(reasons, "hsm: "+err.Error())
	}
	if len(reasons) > 0 {
		c.Header("Retry-After", "1")
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "reasons": reasons})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// Handler is the HTTP handler of the replica (tests mount it on httptest).
func (a *App) Handler() http.Handler { return a.engine }

// Serve accepts connections on ln until ctx is cancelled, then stops
// accepting, waits for in-flight requests (bounded by the shutdown
// timeout) and returns nil on a clean drain.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.engine,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}
	errc := make(chan error, 1)
	go func() {
		if a.Config.TLS.Cert != "" {
			errc <- srv.ServeTLS(ln, a.Config.TLS.Cert, a.Config.TLS.Key)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	a.Log.Info("sigillo serving", "addr", ln.Addr().String(), "public_url", a.Config.PublicURL, "database", a.Store.Dialect().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.draining.Store(true)
	a.Log.Info("draining in-flight requests", "timeout", a.Config.ShutdownTimeout.D().String())
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout.D())
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// background runs fn until Close; loops like CRL refresh and audit
// checkpoints live here.
func (a *App) background(fn func(ctx context.Context)) {
	if a.stopBg == nil {
		ctx, cancel := context.WithCancel(context.Background())
		a.stopBg = cancel
		a.bgCtx = ctx
	}
	a.bgWG.Add(1)
	go func() {
		defer a.bgWG.Done()
		fn(a.bgCtx)
	}()
}

// Close releases the store and the HSM, in reverse order of opening.
func (a *App) Close() {
	if a.stopBg != nil {
		a.stopBg()
		a.bgWG.Wait()
		a.stopBg = nil
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil && a.Log != nil {
			a.Log.Warn("close", "error", err)
		}
	}
	a.closers = nil
}
