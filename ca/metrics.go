package ca

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts what the CA produces. With no Registerer the collectors
// still work but are not exported.
type metrics struct {
	issued     *prometheus.CounterVec
	ocsp       *prometheus.CounterVec
	timestamps *prometheus.CounterVec
	crls       *prometheus.CounterVec
	changes    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sigillo_ca_certificates_issued_total",
			Help: "End-entity certificates issued, by profile."}, []string{"profile"}),
		ocsp: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sigillo_ca_ocsp_responses_total",
			Help: "OCSP responses signed, by certificate status."}, []string{"status"}),
		timestamps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sigillo_ca_timestamps_total",
			Help: "RFC 3161 time-stamp requests answered, by outcome."}, []string{"outcome"}),
		crls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sigillo_ca_crls_generated_total",
			Help: "CRLs signed, by issuing CA."}, []string{"issuer"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sigillo_ca_status_changes_total",
			Help: "End-entity certificate state changes made, by action (suspended, reactivated, revoked)."}, []string{"action"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []**prometheus.CounterVec{&m.issued, &m.ocsp, &m.timestamps, &m.crls, &m.changes} {
		if err := reg.Register(*c); err != nil {
			// A second Authority on the same registry (tests, a reopen)
			// shares the first one's counters.
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, err
			}
			*c = existing
		}
	}
	return m, nil
}
