package sam

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	authorize *prometheus.CounterVec // outcome
	signed    *prometheus.CounterVec // outcome; counts hashes
	pinLocked prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		authorize: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigillo_sam_authorize_total", Help: "Credential authorizations by outcome.",
		}, []string{"outcome"}),
		signed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigillo_sam_signatures_total", Help: "Hashes signed (or refused) through sam by outcome.",
		}, []string{"outcome"}),
		pinLocked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sigillo_sam_pin_locked_total", Help: "PINs blocked after too many wrong tries.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	// A second Service on the same registry (tests, two replicas in one
	// process) shares the first one's collectors.
	var err error
	if m.authorize, err = register(reg, m.authorize); err != nil {
		return nil, err
	}
	if m.signed, err = register(reg, m.signed); err != nil {
		return nil, err
	}
	if m.pinLocked, err = register(reg, m.pinLocked); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("sam metrics: %w", err)
	}
	return c, nil
}
