package csc

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts signHash signatures by API version, scheme and outcome.
// Request counts and latency by route are the server's middleware.
type metrics struct {
	sigs *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{sigs: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sigillo_csc_signatures_total",
		Help: "Signatures requested through CSC signHash, by API version, algorithm (scheme and hash) and outcome (success, rejected = client or policy refusal, error = server failure).",
	}, []string{"version", "algo", "outcome"})}
	if reg != nil {
		reg.MustRegister(m.sigs)
	}
	return m
}

// signatures adds n signatures (at least one event) with the given labels.
func (m *metrics) signatures(d *dialect, algo, outcome string, n int) {
	m.sigs.WithLabelValues("v"+strconv.Itoa(d.version), algo, outcome).Add(float64(max(n, 1)))
}
