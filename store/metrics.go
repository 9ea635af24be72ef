package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Operation kinds, the only values of the op label: a statement outside or
// inside a transaction is timed by its kind, and every InTx as a whole
// (begin to commit or rollback) as "tx". The label never carries the SQL
// text, so its cardinality is fixed.
const (
	opExec = iota
	opQuery
	opQueryRow
	opTx
	numOps
)

var opNames = [numOps]string{"exec", "query", "queryrow", "tx"}

// metrics times the store's calls. A nil *metrics (no SetMetrics) records
// nothing; the hot path then costs one time.Now and a nil check.
type metrics struct {
	// seconds holds the histogram child of each op, resolved once so a
	// query does no label lookup.
	seconds [numOps]prometheus.Observer
	errors  *prometheus.CounterVec
}

// SetMetrics exports the store's latency and error metrics, and the
// asynchronous jobs waiting in it, on reg. Call it once, right after
// opening and before the store is shared: it is not synchronised with
// queries. A second Store on the same registry shares the first one's
// collectors.
func (s *Store) SetMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sigillo_store_query_seconds",
		Help: "Database call latency by op: exec, query and queryrow time one statement (inside a transaction too; query and queryrow up to the first row); tx times a whole InTx, begin to commit.",
		// 50µs (SQLite in the page cache) to ~3s (a PostgreSQL lock wait).
		Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 13),
	}, []string{"op"})
	errorsVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sigillo_store_errors_total",
		Help: "Database calls that failed, by op and kind: unavailable (the database cannot be reached: requests get 503), conflict (unique violation or lost race), other. Not-found is not an error here.",
	}, []string{"op", "kind"})
	var err error
	if seconds, err = registerOrReuse(reg, seconds); err != nil {
		return err
	}
	if errorsVec, err = registerOrReuse(reg, errorsVec); err != nil {
		return err
	}
	m := &metrics{errors: errorsVec}
	for op, name := range opNames {
		m.seconds[op] = seconds.WithLabelValues(name)
		// Exported at 0 from the start so that increase() sees the first
		// failure.
		for _, kind := range []string{"unavailable", "conflict", "other"} {
			errorsVec.WithLabelValues(name, kind)
		}
	}
	if _, err := registerOrReuse(reg, prometheus.Collector(&jobsCollector{s: s})); err != nil {
		return err
	}
	s.met = m
	return nil
}

func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("store metrics: %w", err)
	}
	return c, nil
}

// since records the duration of an op begun at start; use it deferred:
// defer s.met.since(opExec, time.Now()).
func (m *metrics) since(op int, start time.Time) {
	if m == nil {
		return
	}
	m.seconds[op].Observe(time.Since(start).Seconds())
}

// failed counts err (already mapped by mapErr) and returns it unchanged.
func (m *metrics) failed(op int, err error) error {
	if m == nil || err == nil || errors.Is(err, ErrNotFound) {
		return err
	}
	kind := "other"
	switch {
	case errors.Is(err, ErrUnavailable):
		kind = "unavailable"
	case errors.Is(err, ErrConflict):
		kind = "conflict"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller gave up (client gone, request deadline): not a
		// database problem.
		return err
	}
	m.errors.WithLabelValues(opNames[op], kind).Inc()
	return err
}

// jobsCollector reads, at scrape time, how many asynchronous signing jobs
// wait in the store. The numbers are the store's, so every replica sharing
// it reports the same values: aggregate with max, not sum. It also reports
// whether that query worked, the cheapest honest "database up" signal.
type jobsCollector struct{ s *Store }

var (
	jobsDesc = prometheus.NewDesc("sigillo_jobs_open",
		"Asynchronous signing jobs not yet finished, read from the store at scrape time, by state: queued (no replica holds a live lease: waiting for a worker or for a crashed one's lease to expire), running (leased by a replica), notify (signed, response_uri callback pending). Shared by all replicas: aggregate with max.",
		[]string{"state"}, nil)
	storeUpDesc = prometheus.NewDesc("sigillo_store_up",
		"1 when the scrape-time query on the store succeeded within 2s, 0 when it failed.", nil, nil)
)

// Describe sends the collector's fixed descriptors.
func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsDesc
	ch <- storeUpDesc
}

// Collect runs one small grouped count over the (status, lease_until)
// index of open jobs.
func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.s.openJobs(context.Background(), time.Now())
	if err != nil {
		ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 1)
	for _, state := range []string{"queued", "running", "notify"} {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(counts[state]), state)
	}
}

// openJobs counts unexpired jobs by state. It goes to the pool directly so
// that scrapes do not show up in the store's own latency metrics.
func (s *Store) openJobs(ctx context.Context, now time.Time) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, s.Rebind(`SELECT CASE WHEN status = 'notify' THEN 'notify'
		WHEN lease_until < ? THEN 'queued' ELSE 'running' END, COUNT(*)
		FROM sign_jobs WHERE status IN ('running', 'notify') AND expires_at > ? GROUP BY 1`), Millis(now), Millis(now))
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, s.mapErr(err)
		}
		out[state] += n
	}
	return out, s.mapErr(rows.Err())
}
