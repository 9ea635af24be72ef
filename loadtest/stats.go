package loadtest

import (
	"math"
	"slices"
	"time"
)

// sample is one timed operation (a signing request, or for authorize-sign
// a whole login-authorize-sign session).
type sample struct {
	At   time.Duration // completion, from the start of the run
	Lat  time.Duration
	Sigs int    // signatures obtained (0 on error)
	Err  string // error kind; "" on success
}

// Percentiles are latencies in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted: the smallest value with at least p% of the values at or below
// it. Empty input gives 0.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarize sorts lats in place and returns their percentiles.
func summarize(lats []time.Duration) Percentiles {
	if len(lats) == 0 {
		return Percentiles{}
	}
	slices.Sort(lats)
	var sum time.Duration
	for _, l := range lats {
		sum += l
	}
	return Percentiles{
		P50:  ms(percentile(lats, 50)),
		P90:  ms(percentile(lats, 90)),
		P99:  ms(percentile(lats, 99)),
		Max:  ms(lats[len(lats)-1]),
		Mean: ms(sum / time.Duration(len(lats))),
	}
}

// Second is one second of the run.
type Second struct {
	T          int     `json:"t"`          // seconds since start
	Signatures int     `json:"signatures"` // completed in this second
	Errors     int     `json:"errors"`
	P50        float64 `json:"p50_ms"` // of operations completed in this second
	P99        float64 `json:"p99_ms"`
}

// timeline buckets samples by the second they completed in, with empty
// seconds kept (a stall must show as a gap, not vanish).
func timeline(samples []sample) []Second {
	if len(samples) == 0 {
		return nil
	}
	last := 0
	for _, s := range samples {
		last = max(last, int(s.At/time.Second))
	}
	out := make([]Second, last+1)
	lats := make([][]time.Duration, last+1)
	for i := range out {
		out[i].T = i
	}
	for _, s := range samples {
		i := int(s.At / time.Second)
		out[i].Signatures += s.Sigs
		if s.Err != "" {
			out[i].Errors++
			continue
		}
		lats[i] = append(lats[i], s.Lat)
	}
	for i := range out {
		slices.Sort(lats[i])
		out[i].P50 = ms(percentile(lats[i], 50))
		out[i].P99 = ms(percentile(lats[i], 99))
	}
	return out
}

// Bucket is one bar of the latency histogram: operations with latency in
// (previous UpperMs, UpperMs], or above every bound when Overflow.
type Bucket struct {
	UpperMs  float64 `json:"upper_ms,omitempty"`
	Overflow bool    `json:"overflow,omitempty"`
	Count    int     `json:"count"`
}

// histogramBounds are the Renard R10 series (ten log-even steps per
// decade, rounded) from 0.1 ms to 80 s: fine enough to show the shape of a
// distribution that spans a factor of two, with readable labels.
var histogramBounds = func() []float64 {
	var b []float64
	for dec := 0.1; dec < 50000; dec *= 10 {
		for _, m := range []float64{1, 1.25, 1.6, 2, 2.5, 3.2, 4, 5, 6.3, 8} {
			b = append(b, math.Round(m*dec*1e6)/1e6)
		}
	}
	return b
}()

// histogram counts successful latencies into histogramBounds, trimming
// empty buckets at both ends.
func histogram(lats []time.Duration) []Bucket {
	if len(lats) == 0 {
		return nil
	}
	counts := make([]int, len(histogramBounds)+1)
	for _, l := range lats {
		v := ms(l)
		i, _ := slices.BinarySearch(histogramBounds, v)
		counts[i]++
	}
	lo, hi := 0, len(counts)-1
	for lo < hi && counts[lo] == 0 {
		lo++
	}
	for hi > lo && counts[hi] == 0 {
		hi--
	}
	out := make([]Bucket, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		if i == len(histogramBounds) {
			out = append(out, Bucket{Overflow: true, Count: counts[i]})
			continue
		}
		out = append(out, Bucket{UpperMs: histogramBounds[i], Count: counts[i]})
	}
	return out
}
