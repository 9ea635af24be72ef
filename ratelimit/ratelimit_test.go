package ratelimit_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/ratelimit"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ratelimit.Rule
		bad  bool
	}{
		{in: "30/5m", want: ratelimit.Rule{Limit: 30, Window: 5 * time.Minute}},
		{in: " 1 / 1s ", want: ratelimit.Rule{Limit: 1, Window: time.Second}},
		{in: "off", want: ratelimit.Rule{}},
		{in: "0", want: ratelimit.Rule{}},
		{in: "30", bad: true},
		{in: "-1/1m", bad: true},
		{in: "5/10ms", bad: true},
		{in: "x/1m", bad: true},
	} {
		got, err := ratelimit.ParseRule(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseRule(%q) = %v, %v; want %v, bad=%v", tc.in, got, err, tc.want, tc.bad)
		}
		if err == nil {
			if back, err := ratelimit.ParseRule(got.String()); err != nil || back != got {
				t.Errorf("round trip of %q: %v %v", tc.in, back, err)
			}
		}
	}
}

func TestParseRules(t *testing.T) {
	rules, err := ratelimit.ParseRules(map[string]string{"login:user": "5/1m", "otp:ip": "off", "authorize:cred": ""})
	if err != nil {
		t.Fatal(err)
	}
	def := ratelimit.DefaultRules()
	if rules["login:user"] != (ratelimit.Rule{Limit: 5, Window: time.Minute}) || !rules["otp:ip"].Off() || rules["authorize:cred"] != def["authorize:cred"] {
		t.Fatalf("rules %v", rules)
	}
	_, err = ratelimit.ParseRules(map[string]string{"login:usr": "5/1m", "otp:ip": "five"})
	if err == nil || !strings.Contains(err.Error(), "login:usr") || !strings.Contains(err.Error(), "otp:ip") {
		t.Fatalf("bad rules: %v (want both problems listed)", err)
	}
}

func newLimiter(t *testing.T, s *store.Store, rules ratelimit.Rules, reg prometheus.Registerer) (*ratelimit.Limiter, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 1, 10, 0, 10, 0, time.UTC)}
	l, err := ratelimit.New(s, rules, ratelimit.WithClock(c.Now), ratelimit.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

func TestAllow(t *testing.T) {
	ctx := context.Background()
	s := storetest.NewSQLite(t)
	reg := prometheus.NewRegistry()
	rules := ratelimit.Rules{
		"login:user": {Limit: 3, Window: time.Minute},
		"login:ip":   {Limit: 5, Window: time.Minute},
		"otp:cred":   {}, // off
	}
	l, c := newLimiter(t, s, rules, reg)

	t.Run("limit_per_subject_then_429_with_retry_after", func(t *testing.T) {
		for i := range 3 {
			if err := l.Allow(ctx, ratelimit.Login, ratelimit.IP("192.0.2.1"), ratelimit.User("alice")); err != nil {
				t.Fatalf("hit %d: %v", i+1, err)
			}
		}
		err := l.Allow(ctx, ratelimit.Login, ratelimit.IP("192.0.2.1"), ratelimit.User("alice"))
		e, ok := errs.As(err)
		if !ok || e.Kind != errs.RateLimited || !errors.Is(err, ratelimit.ErrLimited) {
			t.Fatalf("4th hit: %v, want RateLimited", err)
		}
		// The clock is 10s into a 1-minute window.
		if e.RetryAfter != 50*time.Second {
			t.Errorf("RetryAfter %v, want 50s", e.RetryAfter)
		}
		if got := denied(t, reg, "login:user"); got != 1 {
			t.Errorf("denied counter %v, want 1", got)
		}
		// A second limiter on the same registry shares the counter.
		if _, err := ratelimit.New(s, nil, ratelimit.WithRegisterer(reg)); err != nil {
			t.Fatalf("second limiter on one registry: %v", err)
		}
	})
	t.Run("other_user_same_ip_until_ip_limit", func(t *testing.T) {
		// The IP has 4 hits (3 admitted + the refused one counted before
		// the user's refusal), so one more passes, then the IP is full.
		if err := l.Allow(ctx, ratelimit.Login, ratelimit.IP("192.0.2.1"), ratelimit.User("bob")); err != nil {
			t.Fatalf("bob: %v", err)
		}
		if err := l.Allow(ctx, ratelimit.Login, ratelimit.IP("192.0.2.1"), ratelimit.User("carol")); err == nil {
			t.Fatal("IP limit not enforced")
		}
		if err := l.Allow(ctx, ratelimit.Login, ratelimit.IP("192.0.2.2"), ratelimit.User("carol")); err != nil {
			t.Fatalf("carol from another address: %v", err)
		}
	})
	t.Run("next_window_admits_again", func(t *testing.T) {
		c.Add(time.Minute)
		if err := l.Allow(ctx, ratelimit.Login, ratelimit.IP("192.0.2.1"), ratelimit.User("alice")); err != nil {
			t.Fatalf("next window: %v", err)
		}
	})
	t.Run("no_rule_or_off_or_empty_id_is_free", func(t *testing.T) {
		for range 20 {
			if err := l.Allow(ctx, ratelimit.OTP, ratelimit.Cred("c1"), ratelimit.User("x"), ratelimit.IP("")); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("prune", func(t *testing.T) {
		c.Add(time.Hour)
		n, err := l.Prune(ctx)
		if err != nil || n == 0 {
			t.Fatalf("prune: %d %v", n, err)
		}
	})
}

func denied(t *testing.T, reg *prometheus.Registry, rule string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sigillo_ratelimit_denied_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == rule {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestAllowConcurrentExact: 64 concurrent attempts against a limit of 10
// through two limiters (two "replicas") on one store admit exactly 10.
func TestAllowConcurrentExact(t *testing.T) {
	s := storetest.NewSQLite(t)
	rules := ratelimit.Rules{"authorize:cred": {Limit: 10, Window: time.Hour}}
	a, _ := newLimiter(t, s, rules, nil)
	b, _ := newLimiter(t, s, rules, nil)
	var ok, limited atomic.Int32
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := a
			if i%2 == 1 {
				l = b
			}
			err := l.Allow(context.Background(), ratelimit.Authorize, ratelimit.Cred("c1"))
			switch e, _ := errs.As(err); {
			case err == nil:
				ok.Add(1)
			case e != nil && e.Kind == errs.RateLimited:
				limited.Add(1)
			default:
				t.Errorf("unexpected: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 10 || limited.Load() != 54 {
		t.Fatalf("admitted %d, limited %d; want 10 and 54", ok.Load(), limited.Load())
	}
}

// TestAllowFailsClosed: a store that cannot be reached refuses with
// Unavailable (503), never admits.
func TestAllowFailsClosed(t *testing.T) {
	s := storetest.NewSQLite(t)
	l, _ := newLimiter(t, s, nil, nil)
	s.Close()
	err := l.Allow(context.Background(), ratelimit.Login, ratelimit.User("alice"))
	if e, ok := errs.As(err); !ok || e.Kind != errs.Unavailable {
		t.Fatalf("closed store: %v, want Unavailable", err)
	}
}

func TestClientIPContext(t *testing.T) {
	ctx := context.Background()
	if ratelimit.ClientIP(ctx) != "" {
		t.Fatal("empty context has an IP")
	}
	if got := ratelimit.ClientIP(ratelimit.WithClientIP(ctx, "198.51.100.4")); got != "198.51.100.4" {
		t.Fatalf("ClientIP = %q", got)
	}
}

// FuzzParseRule: any operator string either fails cleanly or yields a
// rule that prints back to itself.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"30/5m", "off", "0", "1/1s", "10/1h30m", "x", "/", "-1/1m", "9999999999999999999/1m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ratelimit.ParseRule(s)
		if err != nil {
			return
		}
		if !r.Off() && (r.Limit < 1 || r.Window < time.Second) {
			t.Fatalf("ParseRule(%q) = %v: out of bounds", s, r)
		}
		back, err := ratelimit.ParseRule(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRule(%q) = %v, printed %q, parsed back %v, %v", s, r, r.String(), back, err)
		}
	})
}
