package sam

import (
	"context"
	"fmt"

	"github.com/sigillo/sigillo/ratelimit"
)

// Limiter bounds attempts per user, credential and client address before
// the expensive or guessable work (argon2 of a password or PIN, an SMS).
// Package ratelimit implements it over the store, so limits hold across
// replicas. Deps.Limiter nil means ratelimit's DefaultRules over the
// service's store; ratelimit.Unlimited turns limits off (tests, benches).
type Limiter interface {
	Allow(ctx context.Context, action string, subjects ...ratelimit.Subject) error
}

var _ Limiter = (*ratelimit.Limiter)(nil)

// limiterFor is the limiter a Service uses: the one given, or the default
// rules over the store when the store keeps rate-limit counters. A store
// without them (a test double) gets no limits.
func limiterFor(d Deps) (Limiter, error) {
	if d.Limiter != nil {
		return d.Limiter, nil
	}
	st, ok := d.Store.(ratelimit.Store)
	if !ok {
		return ratelimit.Unlimited{}, nil
	}
	l, err := ratelimit.New(st, nil, ratelimit.WithClock(d.Now), ratelimit.WithLogger(d.Log), ratelimit.WithRegisterer(d.Metrics))
	if err != nil {
		return nil, fmt.Errorf("sam: rate limiter: %w", err)
	}
	return l, nil
}

// limit counts one attempt of action against the subjects, plus the
// client address the HTTP edge put in ctx (ratelimit.WithClientIP).
func (s *Service) limit(ctx context.Context, action string, subjects ...ratelimit.Subject) error {
	all := append([]ratelimit.Subject{ratelimit.IP(ratelimit.ClientIP(ctx))}, subjects...)
	return s.limiter.Allow(ctx, action, all...)
}
