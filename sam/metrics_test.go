package sam

import (
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sigillo/sigillo/otp"
	"github.com/sigillo/sigillo/store"
)

// counterValue reads one series of a registered counter vector.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	if len(m.GetLabel()) != len(want) {
		return false
	}
	for _, l := range m.GetLabel() {
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

func TestSADMetricsClassifyConsumption(t *testing.T) {
	scal1 := &store.Credential{SCAL: 1}
	scal2 := &store.Credential{SCAL: 2}
	auto := &store.Credential{SCAL: 1, Domain: "example.com", Alias: "RSSMRA80A01H501U"}
	tests := []struct {
		name     string
		cred     *store.Credential
		err      error
		credType string
		result   string
	}{
		{"success is consumed", scal2, nil, "scal2", "consumed"},
		{"store expiry", scal2, fmt.Errorf("consume SAD: %w", store.ErrSADExpired), "scal2", "expired"},
		{"mapped expiry", scal1, ErrSADExpired, "scal1", "expired"},
		{"store invalid", scal1, store.ErrSADInvalid, "scal1", "invalid"},
		{"mapped invalid", scal1, ErrSADInvalid, "scal1", "invalid"},
		{"store exhausted", auto, store.ErrSADExhausted, "automatic", "exhausted"},
		{"mapped exhausted", auto, ErrTooMany, "automatic", "exhausted"},
		{"store hash not bound", scal2, store.ErrSADHashNotAuthorized, "scal2", "hash_not_authorized"},
		{"mapped hash not bound", scal2, ErrHashNotAuth, "scal2", "hash_not_authorized"},
		{"usage limit", auto, limitError(&store.UsageLimitError{Limit: 10, Total: 10, Wanted: 1}), "automatic", "limit"},
		{"database down", scal1, fmt.Errorf("consume SAD: %w", store.ErrUnavailable), "scal1", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := newMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			m.sadUsed(tt.cred, 3, tt.err)
			labels := map[string]string{"credential_type": tt.credType, "result": tt.result}
			if got := counterValue(t, reg, "sigillo_sam_sad_signatures_total", labels); got != 3 {
				t.Errorf("%v = %v, want 3", labels, got)
			}
		})
	}
}

func TestOTPSentMetricsByOutcome(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.otpSend(nil)
	m.otpSend(nil)
	m.otpSend(fmt.Errorf("send: %w", &otp.RateLimitError{}))
	m.otpSend(errors.New("gateway down"))
	for outcome, want := range map[string]float64{"sent": 2, "rate_limited": 1, "error": 1} {
		if got := counterValue(t, reg, "sigillo_sam_otp_sent_total", map[string]string{"outcome": outcome}); got != want {
			t.Errorf("%s = %v, want %v", outcome, got, want)
		}
	}
}
