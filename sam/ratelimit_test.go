package sam_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/ratelimit"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
)

// TestRateLimits: with no Limiter given, sam applies ratelimit's default
// rules over its store; each hooked operation is refused with
// errs.RateLimited (429 + Retry-After at the edge) once its rule is
// exhausted, and a second Service on the same store (another replica)
// sees the same counters.
func TestRateLimits(t *testing.T) {
	ctx := context.Background()
	rules := ratelimit.DefaultRules()
	limited := func(t *testing.T, err error) {
		t.Helper()
		e, ok := errs.As(err)
		if !ok || e.Kind != errs.RateLimited || e.RetryAfter <= 0 || !errors.Is(err, ratelimit.ErrLimited) {
			t.Fatalf("got %v, want a rate-limit refusal with RetryAfter", err)
		}
	}

	t.Run("login_per_user_across_replicas", func(t *testing.T) {
		e := samtest.New(t)
		other, err := sam.New(e.Config, sam.Deps{Store: e.Store, Keys: e.Keys, Issuer: e.CA, Audit: e.Audit, Now: e.Clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		u := e.User(t, "alice")
		limit := rules["login:user"].Limit
		for i := range limit {
			svc := e.Service
			if i%2 == 1 {
				svc = other
			}
			if _, err := svc.Login(ctx, u, "wrong password", false); !errors.Is(err, sam.ErrAuthentication) {
				t.Fatalf("attempt %d: %v, want ErrAuthentication", i+1, err)
			}
		}
		_, err = other.Login(ctx, u, samtest.Password, false)
		limited(t, err)
		// Another user is not affected.
		if _, err := e.Service.Login(ctx, e.User(t, "bob"), samtest.Password, false); err != nil {
			t.Fatalf("bob: %v", err)
		}
		// The next window lets alice in with her password.
		e.Clock.Advance(rules["login:user"].Window)
		if _, err := e.Service.Login(ctx, u, samtest.Password, false); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})

	t.Run("authorize_per_credential", func(t *testing.T) {
		e := samtest.New(t)
		u := e.User(t, "carol")
		cc := e.Credential(t, u, sam.NewCredential{Multisign: 10})
		p := e.Login(t, u)
		limit := rules["authorize:cred"].Limit
		for i := range limit {
			if _, err := e.Service.Authorize(ctx, p, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN}); err != nil {
				t.Fatalf("authorize %d: %v", i+1, err)
			}
		}
		_, err := e.Service.Authorize(ctx, p, sam.AuthorizeRequest{CredentialID: cc.CredentialID, NumSignatures: 1, PIN: samtest.PIN})
		limited(t, err)
	})

	t.Run("per_client_ip", func(t *testing.T) {
		e := samtest.New(t)
		l, err := ratelimit.New(e.Store, ratelimit.Rules{"login:ip": {Limit: 2, Window: time.Minute}}, ratelimit.WithClock(e.Clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		svc, err := sam.New(e.Config, sam.Deps{Store: e.Store, Keys: e.Keys, Issuer: e.CA, Audit: e.Audit, Now: e.Clock.Now, Limiter: l})
		if err != nil {
			t.Fatal(err)
		}
		from := ratelimit.WithClientIP(ctx, "203.0.113.9")
		for _, name := range []string{"erin", "frank"} {
			if _, err := svc.Login(from, e.User(t, name), samtest.Password, false); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		_, err = svc.Login(from, e.User(t, "grace"), samtest.Password, false)
		limited(t, err)
		if _, err := svc.Login(ratelimit.WithClientIP(ctx, "203.0.113.10"), "grace", samtest.Password, false); err != nil {
			t.Fatalf("grace from another address: %v", err)
		}
	})

	t.Run("unlimited_opt_out", func(t *testing.T) {
		e := samtest.New(t)
		svc, err := sam.New(e.Config, sam.Deps{Store: e.Store, Keys: e.Keys, Issuer: e.CA, Audit: e.Audit, Now: e.Clock.Now, Limiter: ratelimit.Unlimited{}})
		if err != nil {
			t.Fatal(err)
		}
		u := e.User(t, "dave")
		for range rules["login:user"].Limit + 5 {
			if _, err := svc.Login(ctx, u, samtest.Password, false); err != nil {
				t.Fatal(err)
			}
		}
	})
}
