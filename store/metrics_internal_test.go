package store

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkMetricsSince is the whole per-call cost SetMetrics adds (one
// time.Now at the start, one time.Since and a histogram observation at the
// end), without a database around it; "unset" is a store without metrics.
func BenchmarkMetricsSince(b *testing.B) {
	s := &Store{}
	b.Run("unset", func(b *testing.B) {
		for b.Loop() {
			func() { defer s.met.since(opQueryRow, time.Now()) }()
		}
	})
	if err := s.SetMetrics(prometheus.NewRegistry()); err != nil {
		b.Fatal(err)
	}
	b.Run("set", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			func() { defer s.met.since(opQueryRow, time.Now()) }()
		}
	})
}
