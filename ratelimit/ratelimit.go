// Package ratelimit bounds how often a user, a credential or a client
// address may attempt the expensive or guessable operations: login,
// credential authorization and sending an OTP.
//
// It exists because PIN and OTP retry counters stop guessing of one
// credential, but not a flood of logins that burns argon2 CPU, nor SMS
// bombing, nor one address trying many credentials. Limits must hold for
// the whole service, not per replica, so every counter lives in the store:
// a hit is one conditional UPSERT on a fixed-window counter keyed by a
// scope such as "login:user:alice", "authorize:cred:c-1", "otp:cred:c-2"
// or "login:ip:192.0.2.7". No replica keeps a counter in memory.
//
// Invariants:
//   - a hit is counted before the protected work runs, and at most Limit
//     hits per scope are admitted per window, whatever the number of
//     replicas (the store's conditional UPSERT makes this exact);
//   - a refused hit is an errs.RateLimited error carrying RetryAfter (the
//     end of the window), which the HTTP edge renders as 429 +
//     Retry-After;
//   - when the store cannot be reached the limiter fails closed with
//     errs.Unavailable (503): an attacker must not gain by breaking it.
//
// Windows are fixed (aligned to multiples of the window length since the
// Unix epoch), so a burst of up to 2×Limit can straddle a boundary; that
// is the price of one row and one statement per hit.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// Actions the service limits. A rule is named action + ":" + subject kind.
// (The emergency/ERC endpoint keeps its own store-backed limits in
// sam.Emergency.)
const (
	Login     = "login"
	Authorize = "authorize"
	OTP       = "otp"
)

// Subject kinds.
const (
	KindUser = "user"
	KindCred = "cred"
	KindIP   = "ip"
)

// Store is the persistence the limiter needs; *store.Store satisfies it.
type Store interface {
	HitRateLimit(ctx context.Context, scope string, windowStart time.Time, window time.Duration, limit int) (hits int, allowed bool, err error)
	PruneRateLimits(ctx context.Context, now time.Time) (int64, error)
}

var _ Store = (*store.Store)(nil)

// Rule is "at most Limit hits per Window". The zero Rule means no limit.
type Rule struct {
	Limit  int
	Window time.Duration
}

// Off reports whether the rule limits nothing.
func (r Rule) Off() bool { return r.Limit <= 0 || r.Window <= 0 }

// String writes the rule as ParseRule reads it ("30/5m0s", or "off").
func (r Rule) String() string {
	if r.Off() {
		return "off"
	}
	return strconv.Itoa(r.Limit) + "/" + r.Window.String()
}

// ParseRule reads "LIMIT/WINDOW" (e.g. "30/5m", "10/1h") or "off".
func ParseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return Rule{}, nil
	}
	n, w, ok := strings.Cut(s, "/")
	if !ok {
		return Rule{}, fmt.Errorf("rate limit %q: want LIMIT/WINDOW like 30/5m, or off", s)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || limit < 1 {
		return Rule{}, fmt.Errorf("rate limit %q: limit must be a positive integer", s)
	}
	window, err := time.ParseDuration(strings.TrimSpace(w))
	if err != nil || window < time.Second {
		return Rule{}, fmt.Errorf("rate limit %q: window must be a duration of at least 1s", s)
	}
	return Rule{Limit: limit, Window: window}, nil
}

// Rules maps a rule name ("login:user", "authorize:ip"...) to its rule.
// Names without a rule are not limited.
type Rules map[string]Rule

// RuleName is the name of the rule for action and subject kind.
func RuleName(action, kind string) string { return action + ":" + kind }

// DefaultRules are the limits used when the operator sets none. They are
// far above what an honest client does (a signer authorizes a few times
// a minute; an integration signs thousands of hashes per SAD) and far
// below what guessing or flooding needs.
func DefaultRules() Rules {
	return Rules{
		RuleName(Login, KindUser):     {Limit: 30, Window: 5 * time.Minute},
		RuleName(Login, KindIP):       {Limit: 300, Window: 5 * time.Minute},
		RuleName(Authorize, KindCred): {Limit: 60, Window: time.Minute},
		RuleName(Authorize, KindIP):   {Limit: 600, Window: time.Minute},
		RuleName(OTP, KindCred):       {Limit: 10, Window: 10 * time.Minute},
		RuleName(OTP, KindUser):       {Limit: 20, Window: 10 * time.Minute},
		RuleName(OTP, KindIP):         {Limit: 100, Window: 10 * time.Minute},
	}
}

// ParseRules returns DefaultRules with the rules in m (rule name →
// "LIMIT/WINDOW" or "off") put over them; empty values keep the default.
// Every bad entry (unknown name, bad rule) is reported at once.
func ParseRules(m map[string]string) (Rules, error) {
	rules := DefaultRules()
	var problems []error
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		v := m[name]
		if strings.TrimSpace(v) == "" {
			continue
		}
		if _, known := rules[name]; !known {
			problems = append(problems, fmt.Errorf("rate limit %q: unknown rule (known: %s)", name, strings.Join(DefaultRules().Names(), ", ")))
			continue
		}
		r, err := ParseRule(v)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", name, err))
			continue
		}
		rules[name] = r
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return rules, nil
}

// Names lists the rule names in a stable order (docs, config listings).
func (r Rules) Names() []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Subject is who or what a hit is counted against.
type Subject struct{ Kind, ID string }

// User is the subject for a user id (or the username given at login).
func User(id string) Subject { return Subject{KindUser, id} }

// Cred is the subject for a credential id.
func Cred(id string) Subject { return Subject{KindCred, id} }

// IP is the subject for a client address.
func IP(addr string) Subject { return Subject{KindIP, addr} }

// Scope is the store key of a subject's counter for action.
func Scope(action string, s Subject) string { return action + ":" + s.Kind + ":" + s.ID }

// Option configures a Limiter.
type Option func(*Limiter)

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(l *Limiter) { l.now = now } }

// WithLogger sets the logger for refusals and store failures.
func WithLogger(log *slog.Logger) Option { return func(l *Limiter) { l.log = log } }

// WithRegisterer registers sigillo_ratelimit_denied_total on reg. A
// second Limiter on the same registerer shares the counter.
func WithRegisterer(reg prometheus.Registerer) Option { return func(l *Limiter) { l.reg = reg } }

// Limiter admits or refuses hits. It is safe for concurrent use and holds
// no counter in memory.
type Limiter struct {
	st     Store
	rules  Rules
	now    func() time.Time
	log    *slog.Logger
	reg    prometheus.Registerer
	denied *prometheus.CounterVec
}

// New returns a limiter over st with rules (nil: DefaultRules).
func New(st Store, rules Rules, opts ...Option) (*Limiter, error) {
	if st == nil {
		return nil, errors.New("ratelimit: store is required")
	}
	if rules == nil {
		rules = DefaultRules()
	}
	l := &Limiter{st: st, rules: rules, now: time.Now, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(l)
	}
	l.denied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sigillo_ratelimit_denied_total",
		Help: "Attempts refused by a rate limit, by rule (action:kind).",
	}, []string{"rule"})
	if l.reg != nil {
		if err := l.reg.Register(l.denied); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("ratelimit: register metrics: %w", err)
			}
			cv, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("ratelimit: register metrics: %w", err)
			}
			l.denied = cv
		}
	}
	return l, nil
}

// Rules returns the rules in force.
func (l *Limiter) Rules() Rules { return l.rules }

// Allow counts one hit of action against each subject that has a rule, in
// order, and stops at the first refusal (later subjects are not charged).
// Subjects with an empty ID are skipped. A refusal is an errs.RateLimited
// error with RetryAfter set; a store failure is errs.Unavailable.
func (l *Limiter) Allow(ctx context.Context, action string, subjects ...Subject) error {
	if l == nil {
		return nil
	}
	now := l.now()
	for _, s := range subjects {
		if s.ID == "" {
			continue
		}
		name := RuleName(action, s.Kind)
		r, ok := l.rules[name]
		if !ok || r.Off() {
			continue
		}
		start := now.Truncate(r.Window)
		_, allowed, err := l.st.HitRateLimit(ctx, Scope(action, s), start, r.Window, r.Limit)
		if err != nil {
			l.log.Error("rate limit store failure", "rule", name, "error", err)
			return errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", fmt.Errorf("rate limit %s: %w", name, err))
		}
		if !allowed {
			l.denied.WithLabelValues(name).Inc()
			wait := start.Add(r.Window).Sub(now)
			if wait < time.Second {
				wait = time.Second
			}
			l.log.Warn("rate limited", "rule", name, "subject", s.ID, "retry_after", wait.String())
			return &errs.Error{Kind: errs.RateLimited, Code: "too_many_requests",
				Msg: "Too many attempts: try again later", RetryAfter: wait,
				Err: fmt.Errorf("%w: %s", ErrLimited, name)}
		}
	}
	return nil
}

// ErrLimited is wrapped by every refusal (errors.Is works through the
// errs.Error).
var ErrLimited = errors.New("ratelimit: limit reached")

// Prune deletes counters whose window has ended.
func (l *Limiter) Prune(ctx context.Context) (int64, error) {
	return l.st.PruneRateLimits(ctx, l.now())
}

// Run prunes every interval until ctx ends (servers run it in the
// background; any replica may, pruning is idempotent).
func (l *Limiter) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 10 * time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := l.Prune(ctx); err != nil {
				l.log.Warn("rate limit prune", "error", err)
			} else if n > 0 {
				l.log.Debug("rate limit prune", "deleted", n)
			}
		}
	}
}

type ipKey struct{}

// WithClientIP returns ctx carrying the client's address, for the limits
// by IP. The HTTP edge sets it once per request (server middleware);
// domain code reads it with ClientIP.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, ipKey{}, ip)
}

// ClientIP returns the client address set by WithClientIP, or "".
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(ipKey{}).(string)
	return ip
}

// Unlimited admits everything: for callers that must not be limited
// (benchmarks, a store without rate-limit counters).
type Unlimited struct{}

// Allow always admits.
func (Unlimited) Allow(context.Context, string, ...Subject) error { return nil }
