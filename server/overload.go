package server

// Bounded admission in front of the HSM: at most MaxInFlight signing
// requests run at once and at most MaxQueue wait, each for at most
// QueueTimeout. Everything beyond is refused at once with 503 and
// Retry-After, so overload shows up as fast refusals a client can back off
// from, never as latency and memory that grow with the offered load.

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/ratelimit"
)

// OverloadConfig bounds the signing routes of one replica.
type OverloadConfig struct {
	// MaxInFlight requests run at once (default 32). Size it near the HSM
	// session pool: more only queues inside the HSM client.
	MaxInFlight int
	// MaxQueue requests may wait for a slot (default 4×MaxInFlight); 0
	// after defaults means "use the default", negative means no queue.
	MaxQueue int
	// QueueTimeout bounds a queued request's wait (default 2s): the
	// latency an admitted request can gain from overload.
	QueueTimeout time.Duration
	// RetryAfter is what refused clients are told (default 1s).
	RetryAfter time.Duration
}

func (c OverloadConfig) withDefaults() OverloadConfig {
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 32
	}
	switch {
	case c.MaxQueue == 0:
		c.MaxQueue = 4 * c.MaxInFlight
	case c.MaxQueue < 0:
		c.MaxQueue = 0
	}
	if c.QueueTimeout <= 0 {
		c.QueueTimeout = 2 * time.Second
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = time.Second
	}
	return c
}

// Overload is the bounded admission. Create one per replica with
// NewOverload and put Middleware in front of the routes it guards.
type Overload struct {
	cfg    OverloadConfig
	slots  chan struct{}
	queued atomic.Int64

	inflight prometheus.Gauge
	waiting  prometheus.Gauge
	rejected *prometheus.CounterVec
	wait     prometheus.Histogram
}

// NewOverload returns the admission with cfg's bounds; reg (may be nil)
// receives sigillo_admission_* metrics.
func NewOverload(cfg OverloadConfig, reg prometheus.Registerer) (*Overload, error) {
	cfg = cfg.withDefaults()
	o := &Overload{
		cfg:   cfg,
		slots: make(chan struct{}, cfg.MaxInFlight),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sigillo_admission_in_flight", Help: "Signing requests running now (bounded by overload.max_in_flight).",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sigillo_admission_queued", Help: "Signing requests waiting for a slot (bounded by overload.max_queue).",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigillo_admission_rejected_total", Help: "Signing requests refused with 503 by the admission, by reason (queue_full, queue_timeout).",
		}, []string{"reason"}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sigillo_admission_wait_seconds", Help: "Time admitted signing requests waited for a slot.",
			Buckets: []float64{0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5},
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{o.inflight, o.waiting, o.rejected, o.wait} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("admission metrics: %w", err)
			}
		}
	}
	return o, nil
}

// errOverloaded is the refusal: 503 temporarily_unavailable + Retry-After.
func (o *Overload) errOverloaded(reason string) error {
	return &errs.Error{Kind: errs.Unavailable, Msg: "The service is overloaded: retry later",
		RetryAfter: o.cfg.RetryAfter, Err: errors.New("admission: " + reason)}
}

// Middleware admits, queues (bounded) or refuses each request.
func (o *Overload) Middleware() gin.HandlerFunc { return o.ForPaths(nil) }

// ForPaths is Middleware applied only to requests whose path match
// accepts (nil: all). Mount it on the engine before the routes.
func (o *Overload) ForPaths(match func(path string) bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if match != nil && !match(c.Request.URL.Path) {
			c.Next()
			return
		}
		release, reason := o.acquire(c)
		if release == nil {
			o.rejected.WithLabelValues(reason).Inc()
			httpx.WriteError(c, nil, httpx.CSC, o.errOverloaded(reason))
			return
		}
		defer release()
		c.Next()
	}
}

// acquire returns the release func of a slot, or nil and why not.
func (o *Overload) acquire(c *gin.Context) (func(), string) {
	release := func() {
		o.inflight.Dec()
		<-o.slots
	}
	select {
	case o.slots <- struct{}{}:
		o.inflight.Inc()
		o.wait.Observe(0)
		return release, ""
	default:
	}
	if o.queued.Add(1) > int64(o.cfg.MaxQueue) {
		o.queued.Add(-1)
		return nil, "queue_full"
	}
	o.waiting.Inc()
	defer func() {
		o.queued.Add(-1)
		o.waiting.Dec()
	}()
	t0 := time.Now()
	timer := time.NewTimer(o.cfg.QueueTimeout)
	defer timer.Stop()
	select {
	case o.slots <- struct{}{}:
		o.inflight.Inc()
		o.wait.Observe(time.Since(t0).Seconds())
		return release, ""
	case <-timer.C:
		return nil, "queue_timeout"
	case <-c.Request.Context().Done():
		return nil, "client_gone"
	}
}

// SigningRoute reports whether path is one of the routes that reach the
// HSM or argon2 per request, which the admission guards: CSC signHash,
// signDoc and credentials/authorize (v1 and v2).
func SigningRoute(path string) bool {
	if !strings.HasPrefix(path, "/csc/") {
		return false
	}
	return strings.HasSuffix(path, "/signatures/signHash") ||
		strings.HasSuffix(path, "/signatures/signDoc") ||
		strings.HasSuffix(path, "/credentials/authorize")
}

// ClientIP puts the client's address into the request context for the
// rate limits by IP (ratelimit.ClientIP). With forwarded false it is the
// TCP peer address and forwarding headers are ignored: a client must not
// pick its own address. Set forwarded only behind a load balancer, after
// telling the engine which proxies to trust (gin's SetTrustedProxies,
// whose default trusts everyone); then gin's ClientIP is used.
func ClientIP(forwarded bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		ip := c.RemoteIP()
		if forwarded {
			ip = c.ClientIP()
		}
		c.Request = c.Request.WithContext(ratelimit.WithClientIP(c.Request.Context(), ip))
		c.Next()
	}
}
