package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sigillo/sigillo/store"
)

func init() {
	register("metrics/calls_timed_by_op", metricsCallsTimed)
	register("metrics/jobs_open_by_state", metricsJobsOpen)
}

// gather returns the registry's families by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// series finds the series of name with exactly the given label values.
func series(fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	for _, m := range fams[name].GetMetric() {
		ok := len(m.GetLabel()) == len(labels)
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				ok = false
			}
		}
		if ok {
			return m
		}
	}
	return nil
}

func metricsCallsTimed(t *testing.T, s *store.Store) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	if err := s.SetMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, 0)`, "metrics-test", "1"); err != nil {
		t.Fatal(err)
	}
	// A duplicate key is a conflict, counted as such.
	if _, err := s.Exec(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, 0)`, "metrics-test", "2"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate insert: %v, want ErrConflict", err)
	}
	var v string
	if err := s.QueryRow(ctx, `SELECT value FROM settings WHERE key = ?`, "metrics-test").Scan(&v); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Query(ctx, `SELECT key FROM settings`)
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	err = s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE settings SET value = ? WHERE key = ?`, "3", "metrics-test")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// A second SetMetrics on the same registry (two stores, one process)
	// shares the collectors instead of failing.
	if err := s.SetMetrics(reg); err != nil {
		t.Fatalf("second SetMetrics: %v", err)
	}

	fams := gather(t, reg)
	for _, tt := range []struct {
		op   string
		want uint64
	}{{"exec", 3}, {"queryrow", 1}, {"query", 1}, {"tx", 1}} {
		m := series(fams, "sigillo_store_query_seconds", map[string]string{"op": tt.op})
		if got := m.GetHistogram().GetSampleCount(); got != tt.want {
			t.Errorf("op %s: %d observations, want %d", tt.op, got, tt.want)
		}
	}
	for _, tt := range []struct {
		kind string
		want float64
	}{{"conflict", 1}, {"unavailable", 0}, {"other", 0}} {
		m := series(fams, "sigillo_store_errors_total", map[string]string{"op": "exec", "kind": tt.kind})
		if m == nil || m.GetCounter().GetValue() != tt.want {
			t.Errorf("errors{op=exec,kind=%s} = %v, want %v", tt.kind, m.GetCounter().GetValue(), tt.want)
		}
	}
}

func metricsJobsOpen(t *testing.T, s *store.Store) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	if err := s.SetMetrics(reg); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	jobs := []struct {
		id, status  string
		leaseUntil  time.Time
		expiresAt   time.Time
		countsUnder string
	}{
		{"queued-new", "running", time.Time{}, now.Add(time.Hour), "queued"},
		{"queued-lease-expired", "running", now.Add(-time.Minute), now.Add(time.Hour), "queued"},
		{"running", "running", now.Add(time.Minute), now.Add(time.Hour), "running"},
		{"notify", "notify", now.Add(time.Minute), now.Add(time.Hour), "notify"},
		{"done", "done", time.Time{}, now.Add(time.Hour), ""},
		{"expired", "running", time.Time{}, now.Add(-time.Second), ""},
	}
	for _, j := range jobs {
		if _, err := s.Exec(ctx, `INSERT INTO sign_jobs (id, user_id, credential_id, kind, status, sad_hash, sign_opts, total,
			lease_until, created_at, expires_at) VALUES (?, 'u', 'c', 'hash', ?, 's', 'SHA-256', 1, ?, ?, ?)`,
			j.id, j.status, store.Millis(j.leaseUntil), store.Millis(now), store.Millis(j.expiresAt)); err != nil {
			t.Fatalf("insert job %s: %v", j.id, err)
		}
	}
	fams := gather(t, reg)
	if up := series(fams, "sigillo_store_up", map[string]string{}); up.GetGauge().GetValue() != 1 {
		t.Errorf("sigillo_store_up = %v, want 1", up.GetGauge().GetValue())
	}
	for state, want := range map[string]float64{"queued": 2, "running": 1, "notify": 1} {
		m := series(fams, "sigillo_jobs_open", map[string]string{"state": state})
		if m.GetGauge().GetValue() != want {
			t.Errorf("sigillo_jobs_open{state=%q} = %v, want %v", state, m.GetGauge().GetValue(), want)
		}
	}

	// The database goes away: the scrape still works and says so.
	s.Close()
	fams = gather(t, reg)
	if up := series(fams, "sigillo_store_up", map[string]string{}); up == nil || up.GetGauge().GetValue() != 0 {
		t.Errorf("after Close: sigillo_store_up = %v, want 0", up.GetGauge().GetValue())
	}
}
