package sam

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/otp"
	"github.com/sigillo/sigillo/store"
)

type metrics struct {
	authorize *prometheus.CounterVec // outcome
	signed    *prometheus.CounterVec // outcome; counts hashes
	pinLocked prometheus.Counter
	sadIssued *prometheus.CounterVec // credential_type
	sadUses   *prometheus.CounterVec // credential_type, result; counts signatures
	otpSent   *prometheus.CounterVec // outcome
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
		sadIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigillo_sam_sad_issued_total",
			Help: "SADs issued by credentials/authorize, by credential type (scal1, scal2, automatic = domain + alias).",
		}, []string{"credential_type"}),
		sadUses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigillo_sam_sad_signatures_total",
			Help: "Signatures asked of a SAD (signHash, signDoc, async job acceptance), by credential type and result: consumed (taken from its budget), expired, invalid (unknown, revoked or another's), exhausted (more than it has left), hash_not_authorized, limit (credential usage limit), error.",
		}, []string{"credential_type", "result"}),
		otpSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sigillo_sam_otp_sent_total",
			Help: "SMS OTPs requested to authorize signatures (sendOTP, OAuth authorize), by outcome: sent (handed to the sender), rate_limited, error (sender failure). Enrollment codes are not counted.",
		}, []string{"outcome"}),
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
	for _, c := range []**prometheus.CounterVec{&m.sadIssued, &m.sadUses, &m.otpSent} {
		if *c, err = register(reg, *c); err != nil {
			return nil, err
		}
	}
	// Export the known series at 0 from the start, so that rate() and
	// increase() see the first event and the series exist before it.
	for _, ct := range []string{"scal1", "scal2", "automatic"} {
		m.sadIssued.WithLabelValues(ct)
		for _, r := range []string{"consumed", "expired", "invalid", "exhausted", "hash_not_authorized", "limit", "error"} {
			m.sadUses.WithLabelValues(ct, r)
		}
	}
	for _, o := range []string{"sent", "rate_limited", "error"} {
		m.otpSent.WithLabelValues(o)
	}
	return m, nil
}

// credType is the credential_type label: automatic for a domain + alias
// credential (unattended integrations), else its SCAL.
func credType(c *store.Credential) string {
	switch {
	case c.Domain != "" && c.Alias != "":
		return "automatic"
	case c.SCAL >= 2:
		return "scal2"
	}
	return "scal1"
}

// sadUsed counts n signatures asked of a SAD; err is the consumption's
// result, either the store's error or sam's mapping of it.
func (m *metrics) sadUsed(c *store.Credential, n int, err error) {
	result := "error"
	var le *store.UsageLimitError
	switch {
	case err == nil:
		result = "consumed"
	case errors.Is(err, store.ErrSADExpired), errors.Is(err, ErrSADExpired):
		result = "expired"
	case errors.Is(err, store.ErrSADInvalid), errors.Is(err, ErrSADInvalid):
		result = "invalid"
	case errors.Is(err, store.ErrSADExhausted), errors.Is(err, ErrTooMany):
		result = "exhausted"
	case errors.Is(err, store.ErrSADHashNotAuthorized), errors.Is(err, ErrHashNotAuth):
		result = "hash_not_authorized"
	case errors.As(err, &le):
		result = "limit"
	}
	m.sadUses.WithLabelValues(credType(c), result).Add(float64(n))
}

// otpSend counts one SMS OTP send by the sender's result.
func (m *metrics) otpSend(err error) {
	var rl *otp.RateLimitError
	switch {
	case err == nil:
		m.otpSent.WithLabelValues("sent").Inc()
	case errors.As(err, &rl):
		m.otpSent.WithLabelValues("rate_limited").Inc()
	default:
		m.otpSent.WithLabelValues("error").Inc()
	}
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
