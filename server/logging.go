package server

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/term"

	"github.com/sigillo/sigillo/config"
)

// NewLogger builds the process logger: JSON when stderr is not a terminal
// (production, containers) or when asked, text otherwise.
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	format := c.Format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// accessLog logs each request at debug level (info for 5xx stays with the
// error writer), without bodies or headers: they carry secrets.
func accessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		lvl := slog.LevelDebug
		if status >= 500 {
			lvl = slog.LevelWarn
		}
		if !log.Enabled(c.Request.Context(), lvl) {
			return // skip building the attributes (ClientIP parses headers)
		}
		log.Log(c.Request.Context(), lvl, "http", "method", c.Request.Method, "route", c.FullPath(),
			"status", status, "duration_ms", time.Since(start).Milliseconds(), "remote", c.ClientIP())
	}
}
