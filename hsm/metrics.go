package hsm

import (
	"crypto"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Manager's Prometheus collectors. A nil *metrics records
// nothing, so a Manager without WithRegisterer pays one nil check per call.
type metrics struct {
	seconds    *prometheus.HistogramVec
	errors     *prometheus.CounterVec
	inFlight   prometheus.Gauge
	reconnects *prometheus.CounterVec
	up         prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sigillo_hsm_operation_seconds",
			Help: "Duration of HSM operations (sign, generate_key, public_key, destroy_key), including a reconnect and retry when one was needed.",
			// Sub-millisecond ECDSA on a local token up to multi-second
			// RSA-4096 key generation.
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}, []string{"op", "algo"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigillo_hsm_operation_errors_total",
			Help: "HSM operations that failed, by PKCS#11 return code name (or \"other\").",
		}, []string{"op", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sigillo_hsm_operations_in_flight",
			Help: "HSM operations currently running; bounded by the session pool (Config.MaxSessions - 1).",
		}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigillo_hsm_reconnects_total",
			Help: "Attempts to re-open the PKCS#11 library and log in again after the token went away.",
		}, []string{"result"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sigillo_hsm_up",
			Help: "1 while the Manager holds a logged-in context on the token, 0 while it is unavailable.",
		}),
	}
	for _, c := range []prometheus.Collector{m.seconds, m.errors, m.inFlight, m.reconnects, m.up} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// begin marks the start of an operation; the returned func records its end.
func (m *metrics) begin(op, algo string) func(error) {
	if m == nil {
		return func(error) {}
	}
	start := time.Now()
	m.inFlight.Inc()
	return func(err error) {
		m.inFlight.Dec()
		m.seconds.WithLabelValues(op, algo).Observe(time.Since(start).Seconds())
		if err != nil {
			m.errors.WithLabelValues(op, CodeName(err)).Inc()
		}
	}
}

func (m *metrics) reconnected(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.reconnects.WithLabelValues("error").Inc()
		m.up.Set(0)
		return
	}
	m.reconnects.WithLabelValues("ok").Inc()
	m.up.Set(1)
}

func (m *metrics) setUp(up bool) {
	if m == nil {
		return
	}
	if up {
		m.up.Set(1)
	} else {
		m.up.Set(0)
	}
}

// meteredSigner decorates a crypto.Signer with the operation histogram,
// error counter and in-flight gauge. The histogram child is resolved once per
// signer so the hot path does no label lookup.
type meteredSigner struct {
	next     crypto.Signer
	observe  prometheus.Observer
	errors   *prometheus.CounterVec
	inFlight prometheus.Gauge
}

var _ crypto.Signer = (*meteredSigner)(nil)

func (m *metrics) wrapSigner(s crypto.Signer, algo string) crypto.Signer {
	if m == nil {
		return s
	}
	return &meteredSigner{
		next:     s,
		observe:  m.seconds.WithLabelValues("sign", algo),
		errors:   m.errors,
		inFlight: m.inFlight,
	}
}

// Public returns the key's public half.
func (s *meteredSigner) Public() crypto.PublicKey { return s.next.Public() }

// Sign signs through the decorated signer, timing and counting the call.
func (s *meteredSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	start := time.Now()
	s.inFlight.Inc()
	sig, err := s.next.Sign(rand, digest, opts)
	s.inFlight.Dec()
	s.observe.Observe(time.Since(start).Seconds())
	if err != nil {
		s.errors.WithLabelValues("sign", CodeName(err)).Inc()
	}
	return sig, err
}
