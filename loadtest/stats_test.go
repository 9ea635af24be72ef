package loadtest

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value is every percentile", ms(7), 99, 7 * time.Millisecond},
		{"median of odd count", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of even count is the lower middle (nearest rank)", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p90 of 1..100", ms(hundred...), 90, 90 * time.Millisecond},
		{"p100 is the max", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of ten values is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"tiny p gives the min", ms(4, 5, 6), 0.001, 4 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.in, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		want Percentiles
	}{
		{"empty", nil, Percentiles{}},
		{"unsorted input", []time.Duration{4e6, 1e6, 3e6, 2e6}, Percentiles{P50: 2, P90: 4, P99: 4, Max: 4, Mean: 2.5}},
		{"sub-millisecond", []time.Duration{500 * time.Microsecond}, Percentiles{P50: .5, P90: .5, P99: .5, Max: .5, Mean: .5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(slices.Clone(tt.in)); got != tt.want {
				t.Errorf("summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTimeline(t *testing.T) {
	s := func(at, lat float64, sigs int, err string) sample {
		return sample{At: time.Duration(at * float64(time.Second)), Lat: time.Duration(lat * float64(time.Millisecond)), Sigs: sigs, Err: err}
	}
	tests := []struct {
		name string
		in   []sample
		want []Second
	}{
		{"empty", nil, nil},
		{"one second", []sample{s(0.1, 2, 1, ""), s(0.9, 4, 1, "")}, []Second{{T: 0, Signatures: 2, P50: 2, P99: 4}}},
		{"a stall keeps its empty second", []sample{s(0.5, 1, 10, ""), s(2.5, 3, 10, "")},
			[]Second{{T: 0, Signatures: 10, P50: 1, P99: 1}, {T: 1}, {T: 2, Signatures: 10, P50: 3, P99: 3}}},
		{"errors count but do not enter latency", []sample{s(0.2, 100, 0, "http 500"), s(0.3, 2, 5, "")},
			[]Second{{T: 0, Signatures: 5, Errors: 1, P50: 2, P99: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := timeline(tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("timeline = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHistogram(t *testing.T) {
	d := func(msv ...float64) []time.Duration {
		out := make([]time.Duration, len(msv))
		for i, v := range msv {
			out[i] = time.Duration(v * float64(time.Millisecond))
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		want []Bucket
	}{
		{"empty", nil, nil},
		{"bounds are inclusive upper", d(1, 1.25), []Bucket{{UpperMs: 1, Count: 1}, {UpperMs: 1.25, Count: 1}}},
		{"gaps inside are kept, ends trimmed", d(0.9, 1.9), []Bucket{{UpperMs: 1, Count: 1}, {UpperMs: 1.25}, {UpperMs: 1.6}, {UpperMs: 2, Count: 1}}},
		{"overflow", d(90000), []Bucket{{Overflow: true, Count: 1}}},
		{"tiny", d(0.01, 0.01), []Bucket{{UpperMs: 0.1, Count: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := histogram(tt.in)
			if len(got) != len(tt.want) {
				t.Fatalf("histogram = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if math.Abs(got[i].UpperMs-tt.want[i].UpperMs) > 1e-9 || got[i].Count != tt.want[i].Count || got[i].Overflow != tt.want[i].Overflow {
					t.Fatalf("histogram = %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

func TestParseRSS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"prometheus float", "# HELP process_resident_memory_bytes x\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 5.1302e+07\n", 51302000, false},
		{"with timestamp", "process_resident_memory_bytes 1024 1700000000000\n", 1024, false},
		{"similar name is not it", "process_resident_memory_bytes_max 9\nprocess_resident_memory_bytes 7\n", 7, false},
		{"absent", "go_goroutines 12\n", 0, true},
		{"garbage value", "process_resident_memory_bytes lots\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRSS([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseRSS = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestNiceCeil(t *testing.T) {
	tests := []struct{ in, want float64 }{
		{0, 1}, {0.7, 1}, {1, 1}, {1.1, 2}, {2.2, 2.5}, {3, 5}, {7, 10}, {1234, 2000}, {0.03, 0.05},
	}
	for _, tt := range tests {
		if got := niceCeil(tt.in); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("niceCeil(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
