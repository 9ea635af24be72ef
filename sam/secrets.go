package sam

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"sync"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
)

// hash computes an argon2id hash under the concurrency bound.
func (s *Service) hash(ctx context.Context, secret string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	h, err := hashSecret(s.cfg.Argon2, secret)
	if err != nil {
		return "", errs.Wrap(errs.Internal, "Internal error", err)
	}
	return h, nil
}

// verify checks secret against an argon2id hash under the concurrency
// bound; argon2 is memory-hard, so unbounded parallel checks would let a
// burst of logins exhaust memory.
func (s *Service) verify(ctx context.Context, encoded, secret string) (bool, error) {
	if err := s.acquire(ctx); err != nil {
		return false, err
	}
	defer s.release()
	ok, err := verifySecret(encoded, secret)
	if err != nil {
		return false, errs.Wrap(errs.Internal, "Internal error", err)
	}
	return ok, nil
}

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.hashSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", ctx.Err())
	}
}

func (s *Service) release() { <-s.hashSem }

// dummyHashes caches, per parameter set, a hash that no password
// matches; it is verified for unknown users so that they cost the same
// time as known ones. A cache, not injected state: it holds no secret.
var dummyHashes sync.Map // Argon2Params → string

// dummyHash returns the unmatched hash for p.
func dummyHash(p Argon2Params) string {
	if v, ok := dummyHashes.Load(p); ok {
		return v.(string)
	}
	h, _ := hashSecret(p, "not a password")
	v, _ := dummyHashes.LoadOrStore(p, h)
	return v.(string)
}

// record writes an audit event; failures are logged. Signatures use
// recordStrict instead.
func (s *Service) record(ctx context.Context, e audit.Event) {
	if err := s.audit.Record(ctx, e); err != nil {
		s.log.Error("audit record failed", "action", e.Action, "object", e.Object, "error", err)
	}
}

// recordStrict writes an audit event and turns a failure into
// Unavailable: the action it describes must not complete.
func (s *Service) recordStrict(ctx context.Context, e audit.Event) error {
	if err := s.audit.Record(ctx, e); err != nil {
		s.log.Error("audit record failed, refusing", "action", e.Action, "object", e.Object, "error", err)
		return errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", fmt.Errorf("audit: %w", err))
	}
	return nil
}

// randomDigits returns n uniformly random decimal digits (PIN, PUK).
func randomDigits(n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			return "", err
		}
		b[i] = byte('0' + v.Int64())
	}
	return string(b), nil
}

// codeAlphabet has no look-alike characters (0/O, 1/I/L), for codes people
// copy from paper (ERC, IUT).
const codeAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

func randomCode(n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(codeAlphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b[i] = codeAlphabet[v.Int64()]
	}
	return string(b), nil
}
