package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssMonitor reads process_resident_memory_bytes (and the CPU counter
// process_cpu_seconds_total) from each server's /metrics: a leak under load
// shows as a climbing line.
type rssMonitor struct {
	clients []*client
	every   time.Duration

	mu  sync.Mutex
	out []RSS
	cpu [][]float64 // per server: process_cpu_seconds_total readings
}

func newRSSMonitor(clients []*client, every time.Duration) *rssMonitor {
	m := &rssMonitor{clients: clients, every: every, out: make([]RSS, len(clients)), cpu: make([][]float64, len(clients))}
	for i, c := range clients {
		m.out[i].Server = c.base
	}
	return m
}

// sample reads every server once; t is seconds since the start of the run.
func (m *rssMonitor) sample(ctx context.Context, t float64) {
	for i, c := range m.clients {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		body, err := c.get(ctx, "/metrics")
		cancel()
		var v int64
		if err == nil {
			v, err = parseRSS(body)
		}
		m.mu.Lock()
		if err == nil {
			if cpu, err := parseMetric(body, "process_cpu_seconds_total"); err == nil {
				m.cpu[i] = append(m.cpu[i], cpu)
			}
		}
		r := &m.out[i]
		if err != nil {
			if r.Error == "" {
				r.Error = err.Error()
			}
		} else {
			r.Series = append(r.Series, RSSSample{T: t, Bytes: v})
		}
		m.mu.Unlock()
	}
}

func (m *rssMonitor) loop(ctx context.Context, start time.Time, stop <-chan struct{}) {
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			m.sample(ctx, time.Since(start).Seconds())
		}
	}
}

// results fills Start, End and Max from the series. A server whose metrics
// were read at least once loses its error (a transient miss is noise).
func (m *rssMonitor) results() []RSS {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]RSS, len(m.out))
	for i, r := range m.out {
		if n := len(r.Series); n > 0 {
			r.Start, r.End = r.Series[0].Bytes, r.Series[n-1].Bytes
			for _, s := range r.Series {
				r.Max = max(r.Max, s.Bytes)
			}
			r.Error = ""
		}
		out[i] = r
	}
	return out
}

// cpuSeconds is the CPU the servers used between the first and the last
// reading, summed over servers; ok is false unless every server was read.
func (m *rssMonitor) cpuSeconds() (total float64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.cpu {
		if len(c) < 2 {
			return 0, false
		}
		total += c[len(c)-1] - c[0]
	}
	return total, len(m.cpu) > 0
}

var errNoRSS = errors.New("no process_resident_memory_bytes in /metrics")

// parseRSS finds process_resident_memory_bytes in Prometheus text format.
func parseRSS(body []byte) (int64, error) {
	v, err := parseMetric(body, "process_resident_memory_bytes")
	if err != nil {
		return 0, errNoRSS
	}
	return int64(v), nil
}

// parseMetric returns the value of the unlabelled series name in
// Prometheus text format.
func parseMetric(body []byte, name string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if strings.HasPrefix(rest, "{") { // labels (none expected)
			rest = rest[strings.LastIndex(rest, "}")+1:]
		}
		fields := strings.Fields(rest) // value [timestamp]
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		return v, nil
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}
