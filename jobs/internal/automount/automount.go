// Package automount assembles the automatic-signature pieces (jobs runner,
// CSC asynchronous mode and idempotency, operator usage routes) on top of
// a running server.App, the way server/mount.go will once the lead wires
// them in. It exists so that the end-to-end tests (in-process and the
// kill -9 test's separate process) run the same composition today; it
// serves a handler that answers the automatic-signature routes and passes
// every other path to the App's own engine.
package automount

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/admin"
	"github.com/sigillo/sigillo/csc"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/jobs"
	"github.com/sigillo/sigillo/jobs/callbackhttp"
	"github.com/sigillo/sigillo/server"
	"github.com/sigillo/sigillo/signdoc"
)

// Mount builds the runner and the routes over app. The runner is not
// started: call Run (the caller owns its lifetime).
func Mount(app *server.App, jc jobs.Config) (http.Handler, *jobs.Runner, error) {
	cfg := app.Config
	jc.Docs = signdoc.Config{MaxDocumentBytes: cfg.Batch.MaxDocumentBytes, Timestamper: app.CA, Validation: app.CA, Log: app.Log}
	runner, err := jobs.New(jc, jobs.Deps{Store: app.Store, Signer: app.SAM, Log: app.Log, Notify: callbackhttp.New(jc.CallbackTimeout)})
	if err != nil {
		return nil, nil, err
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.ContextWithFallback = true
	csc.New(app.SAM, csc.Options{Log: app.Log, TSA: app.CA, MaxHashes: cfg.Batch.MaxHashes, Region: cfg.CA.Country,
		Async: runner, Idempotency: app.Store}).Register(e)
	g := e.Group("/admin/v1", httpx.RequireToken(cfg.AdminToken.Value))
	admin.NewUsage(app.SAM, app.Log).Register(g)
	rest := app.Handler()
	e.NoRoute(func(c *gin.Context) { rest.ServeHTTP(c.Writer, c.Request) })
	return e, runner, nil
}

// Run starts the runner until ctx ends.
func Run(ctx context.Context, r *jobs.Runner) { r.Run(ctx) }
