package audit

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the log's Prometheus collectors; a nil *metrics (no
// registerer) records nothing.
type metrics struct {
	records     *prometheus.CounterVec
	failures    prometheus.Counter
	latency     prometheus.Histogram
	batchSize   prometheus.Histogram
	checkpoints *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigillo_audit_records_total",
			Help: "Audit records committed, by the event's outcome class (success, failure, other).",
		}, []string{"outcome"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sigillo_audit_record_failures_total",
			Help: "Record calls that returned an error: each one refused the audited action (fail closed).",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sigillo_audit_append_duration_seconds",
			Help:    "Time from Record to its record being committed.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. ~4s
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sigillo_audit_batch_records",
			Help:    "Records committed per append transaction (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 .. 1024
		}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigillo_audit_checkpoints_total",
			Help: "Checkpoint attempts by result (stored, unchanged, error).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.records, m.failures, m.latency, m.batchSize, m.checkpoints} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// outcomeClass keeps the label's cardinality fixed: "failure:<reason>"
// counts as failure.
func outcomeClass(outcome string) string {
	switch {
	case outcome == "success":
		return "success"
	case outcome == "failure" || strings.HasPrefix(outcome, "failure:"):
		return "failure"
	}
	return "other"
}

func (m *metrics) appended(outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.records.WithLabelValues(outcomeClass(outcome)).Inc()
	m.latency.Observe(d.Seconds())
}

func (m *metrics) failed() {
	if m == nil {
		return
	}
	m.failures.Inc()
}

func (m *metrics) batch(n int) {
	if m == nil {
		return
	}
	m.batchSize.Observe(float64(n))
}

func (m *metrics) checkpoint(result string) {
	if m == nil {
		return
	}
	m.checkpoints.WithLabelValues(result).Inc()
}
