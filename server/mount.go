package server

import (
	"context"

	"github.com/sigillo/sigillo/internal/httpx"
)

// mount builds the domain services and mounts their HTTP layers.
func (a *App) mount(ctx context.Context) error {
	_ = ctx
	admin := a.engine.Group("/admin/v1", httpx.RequireToken(a.Config.AdminToken.Value))
	_ = admin
	return nil
}
