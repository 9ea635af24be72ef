package server

import (
	"context"
	"fmt"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/internal/httpx"
)

// mount builds the domain services and mounts their HTTP layers.
func (a *App) mount(ctx context.Context) error {
	log, err := audit.Open(ctx, a.Store, audit.WithLogger(a.Log), audit.WithRegisterer(a.Registry))
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	a.Audit = log
	a.closers = append(a.closers, log.Close)
	if err := log.Record(ctx, audit.Event{Actor: "system", Action: "config.loaded", Object: "replica", Outcome: "success",
		Detail: map[string]string{"mode": a.Config.Mode, "database": a.Store.Dialect().String(), "public_url": a.Config.PublicURL}}); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}

	admin := a.engine.Group("/admin/v1", httpx.RequireToken(a.Config.AdminToken.Value))
	_ = admin
	return nil
}
