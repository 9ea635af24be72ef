package store_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/store/storetest"
)

// BenchmarkQueryRowMetrics measures what SetMetrics adds to the cheapest
// call the store makes (a primary-key lookup on SQLite); compare the two
// sub-benchmarks.
func BenchmarkQueryRowMetrics(b *testing.B) {
	for _, metered := range []bool{false, true} {
		name := "without_metrics"
		if metered {
			name = "with_metrics"
		}
		b.Run(name, func(b *testing.B) {
			s := storetest.NewSQLite(b)
			if metered {
				if err := s.SetMetrics(prometheus.NewRegistry()); err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()
			if _, err := s.Exec(ctx, `INSERT INTO settings (key, value, updated_at) VALUES ('bench', 'v', 0)`); err != nil {
				b.Fatal(err)
			}
			var v string
			b.ReportAllocs()
			for b.Loop() {
				if err := s.QueryRow(ctx, `SELECT value FROM settings WHERE key = ?`, "bench").Scan(&v); err != nil {
					b.Fatal(s.MapErr(err))
				}
			}
		})
	}
}
