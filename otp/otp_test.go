package otp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/sigillo/sigillo/otp"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/storetest"
)

var ctx = context.Background()

// steps is an in-memory TOTPStore with the store's semantics (the real
// conditional UPDATE is tested in storetest on SQLite and PostgreSQL).
type steps struct {
	mu   sync.Mutex
	last map[string]int64
}

func (s *steps) AdvanceTOTPStep(_ context.Context, id string, step int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]int64{}
	}
	if s.last[id] >= step {
		return false, nil
	}
	s.last[id] = step
	return true, nil
}

func TestTOTPVerify(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	v := otp.NewTOTP(otp.Config{}, &steps{}, clock)
	secret, uri, err := v.Generate("alice")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^otpauth://totp/sigillo:alice\?.*secret=` + secret).MatchString(uri) {
		t.Fatalf("uri %q", uri)
	}
	code := func(d time.Duration) string {
		c, err := v.Code(secret, now.Add(d))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name string
		cred string
		code string
		want error
	}{
		{"two_steps_ahead_refused", "a", code(60 * time.Second), otp.ErrInvalid},
		{"two_steps_behind_refused", "a", code(-60 * time.Second), otp.ErrInvalid},
		{"previous_step_accepted", "a", code(-30 * time.Second), nil},
		{"same_code_again_refused", "a", code(-30 * time.Second), otp.ErrReplayed},
		{"current_step_accepted", "a", code(0), nil},
		{"current_code_replayed", "a", code(0), otp.ErrReplayed},
		{"older_step_after_newer_refused", "b", code(30 * time.Second), nil},
		{"then_current_refused", "b", code(0), otp.ErrReplayed},
		{"wrong_length", "c", "12345", otp.ErrInvalid},
		{"garbage", "c", "abcdef", otp.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(ctx, tt.cred, secret, tt.code)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTOTPDigitsAndPeriodConfigurable(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	v := otp.NewTOTP(otp.Config{Digits: 8, Period: 60 * time.Second, NoSkew: true}, &steps{}, func() time.Time { return now })
	secret, uri, err := v.Generate("bob")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`digits=8`).MatchString(uri) || !regexp.MustCompile(`period=60`).MatchString(uri) {
		t.Fatalf("uri %q", uri)
	}
	c, _ := v.Code(secret, now.Add(-60*time.Second))
	if err := v.Verify(ctx, "x", secret, c); !errors.Is(err, otp.ErrInvalid) {
		t.Fatalf("previous step with no skew: %v", err)
	}
	c, _ = v.Code(secret, now.Add(59*time.Second))
	if len(c) != 8 {
		t.Fatalf("code %q", c)
	}
	if err := v.Verify(ctx, "x", secret, c); err != nil {
		t.Fatalf("same 60 s step: %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	seed := []byte("JBSWY3DPEHPK3PXP")
	sealed, err := otp.Seal(key, seed, []byte("c-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, seed) {
		t.Fatal("seed visible in the sealed value")
	}
	again, _ := otp.Seal(key, seed, []byte("c-1"))
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals are equal: nonce reused")
	}
	got, err := otp.Open(key, sealed, []byte("c-1"))
	if err != nil || !bytes.Equal(got, seed) {
		t.Fatalf("open: %q, %v", got, err)
	}
	if _, err := otp.Open(key, sealed, []byte("c-2")); err == nil {
		t.Fatal("a seed opened under another credential id")
	}
	other := make([]byte, 32)
	if _, err := otp.Open(other, sealed, []byte("c-1")); err == nil {
		t.Fatal("a seed opened under another key")
	}
	if _, err := otp.Seal(key[:16], seed, nil); err == nil {
		t.Fatal("a 16-byte key was accepted")
	}
}

// capture is a Sender that keeps the last message.
type capture struct {
	mu   sync.Mutex
	msgs []string
}

func (c *capture) Send(_ context.Context, phone, msg string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, phone+" "+msg)
	return nil
}

func (c *capture) code(t *testing.T) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := regexp.MustCompile(`code is (\d+)`).FindStringSubmatch(c.msgs[len(c.msgs)-1])
	if m == nil {
		t.Fatalf("no code in %q", c.msgs)
	}
	return m[1]
}

func TestSMS(t *testing.T) {
	st := storetest.NewSQLite(t)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	snd := &capture{}
	s := otp.NewSMS(otp.Config{}, st, snd, clock)
	wrong := func(code string) string {
		if code == "000000" {
			return "111111"
		}
		return "000000"
	}

	t.Run("right_code_once", func(t *testing.T) {
		if err := s.Send(ctx, "c1", "+391", nil); err != nil {
			t.Fatal(err)
		}
		code := snd.code(t)
		if err := s.Verify(ctx, "c1", code, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(ctx, "c1", code, nil); !errors.Is(err, otp.ErrNoChallenge) {
			t.Fatalf("second use: %v", err)
		}
	})

	t.Run("void_after_5_attempts", func(t *testing.T) {
		if err := s.Send(ctx, "c2", "+391", nil); err != nil {
			t.Fatal(err)
		}
		code := snd.code(t)
		for range 5 {
			if err := s.Verify(ctx, "c2", wrong(code), nil); !errors.Is(err, otp.ErrInvalid) {
				t.Fatalf("wrong code: %v", err)
			}
		}
		if err := s.Verify(ctx, "c2", code, nil); !errors.Is(err, otp.ErrNoChallenge) {
			t.Fatalf("right code after 5 wrong: %v", err)
		}
	})

	t.Run("bound_to_the_hashes", func(t *testing.T) {
		h := [][]byte{[]byte("h1"), []byte("h2")}
		if err := s.Send(ctx, "c3", "+391", otp.Binding(h)); err != nil {
			t.Fatal(err)
		}
		code := snd.code(t)
		if err := s.Verify(ctx, "c3", code, otp.Binding([][]byte{[]byte("h1")})); !errors.Is(err, otp.ErrBinding) {
			t.Fatalf("other hashes: %v", err)
		}
		// Order does not matter.
		if err := s.Verify(ctx, "c3", code, otp.Binding([][]byte{[]byte("h2"), []byte("h1")})); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("expires", func(t *testing.T) {
		if err := s.Send(ctx, "c4", "+391", nil); err != nil {
			t.Fatal(err)
		}
		code := snd.code(t)
		advance(61 * time.Second)
		if err := s.Verify(ctx, "c4", code, nil); !errors.Is(err, otp.ErrNoChallenge) {
			t.Fatalf("expired: %v", err)
		}
	})

	t.Run("a_new_code_voids_the_old", func(t *testing.T) {
		if err := s.Send(ctx, "c5", "+391", nil); err != nil {
			t.Fatal(err)
		}
		first := snd.code(t)
		if err := s.Send(ctx, "c5", "+391", nil); err != nil {
			t.Fatal(err)
		}
		second := snd.code(t)
		if first != second {
			if err := s.Verify(ctx, "c5", first, nil); !errors.Is(err, otp.ErrInvalid) {
				t.Fatalf("old code: %v", err)
			}
		}
		if err := s.Verify(ctx, "c5", second, nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("send_rate_limited", func(t *testing.T) {
		for range 5 {
			if err := s.Send(ctx, "c6", "+391", nil); err != nil {
				t.Fatal(err)
			}
		}
		var rl *otp.RateLimitError
		if err := s.Send(ctx, "c6", "+391", nil); !errors.As(err, &rl) || rl.RetryAfter <= 0 {
			t.Fatalf("sixth send: %v", err)
		}
	})

	t.Run("no_sender", func(t *testing.T) {
		if err := otp.NewSMS(otp.Config{}, st, nil, clock).Send(ctx, "c7", "+391", nil); !errors.Is(err, otp.ErrNoSender) {
			t.Fatalf("no sender: %v", err)
		}
	})
}

func TestOutboxSender(t *testing.T) {
	st := storetest.NewSQLite(t)
	o := otp.NewOutbox(st, nil)
	if err := o.Send(ctx, "+39333", "hello"); err != nil {
		t.Fatal(err)
	}
	msgs, err := st.Outbox(ctx, "+39333", 0)
	if err != nil || len(msgs) != 1 || msgs[0].Body != "hello" {
		t.Fatalf("outbox %+v, %v", msgs, err)
	}
	var _ otp.OutboxStore = (*store.Store)(nil)
}
