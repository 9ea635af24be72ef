package sam

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"strconv"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
)

// SignHash signs the hashes with the credential's key, consuming them from
// the SAD. Per call: one credential lookup, one certificate status check,
// one SAD consumption for all hashes, then the HSM; argon2 never runs
// here. Signatures come back in input order; ECDSA as DER.
func (s *Service) SignHash(ctx context.Context, p *Principal, r SignRequest) ([][]byte, error) {
	if r.Opts == nil {
		return nil, errs.Invalidf("Invalid parameter signAlgo")
	}
	hf := r.Opts.HashFunc()
	if !allowedHash(hf) {
		return nil, ErrHashAlgo
	}
	if len(r.Hashes) == 0 {
		return nil, ErrEmptyHashes
	}
	for _, d := range r.Hashes {
		if len(d) != hf.Size() {
			return nil, ErrDigestLength
		}
	}
	if r.SAD == "" {
		return nil, errs.Invalidf("Missing (or invalid type) string parameter SAD")
	}
	c, err := s.loadOwned(ctx, p, r.CredentialID)
	if err != nil {
		return nil, err
	}
	n := len(r.Hashes)
	fail := func(reason string, err error) ([][]byte, error) {
		s.met.signed.WithLabelValues(reason).Add(float64(n))
		s.history(ctx, c, "sign", hf, n, "failure:"+reason)
		s.logFailure(ctx, p, c, hf, n, "failure:"+reason, "")
		s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "signature.sign", Object: "credential:" + c.ID,
			Outcome: "failure:" + reason, Detail: map[string]string{"hashAlgo": hf.String(), "count": strconv.Itoa(n)}})
		return nil, err
	}
	cert, err := s.usable(ctx, c)
	if err != nil {
		return fail("not_usable", err)
	}
	if _, pss := r.Opts.(*rsa.PSSOptions); pss {
		if _, isRSA := cert.PublicKey.(*rsa.PublicKey); !isRSA {
			return fail("bad_request", errs.Invalidf("Invalid parameter signAlgo"))
		}
	}
	err = s.consumeCounted(ctx, p, c, r.SAD, hf.String(), r.Hashes)
	s.met.sadUsed(c, n, err)
	if err != nil {
		return fail("sad", err)
	}
	signer, err := s.signer(ctx, c.ID)
	if err != nil {
		return fail("hsm", err)
	}
	sigs, err := s.signAll(ctx, c, signer, r.Hashes, r.Opts)
	if err != nil {
		return fail("hsm", err)
	}
	if err := s.recordStrict(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "signature.sign", Object: "credential:" + c.ID,
		Outcome: "success", Detail: map[string]string{"hashAlgo": hf.String(), "count": strconv.Itoa(n)}}); err != nil {
		s.met.signed.WithLabelValues("audit").Add(float64(n))
		s.history(ctx, c, "sign", hf, n, "failure:audit")
		return nil, err
	}
	s.met.signed.WithLabelValues("success").Add(float64(n))
	s.history(ctx, c, "sign", hf, n, "success")
	s.logSignatures(ctx, p, c, hf, r.Hashes)
	return sigs, nil
}

// signer returns the credential's crypto.Signer, cached so that the HSM
// key object is looked up once, not per signature.
func (s *Service) signer(ctx context.Context, id string) (crypto.Signer, error) {
	if v, ok := s.signers.Load(id); ok {
		return v.(crypto.Signer), nil
	}
	sg, err := s.keys.Signer(ctx, id)
	if err != nil {
		if e, ok := errs.As(err); ok {
			return nil, e
		}
		return nil, errs.Wrap(errs.Unavailable, "HSM unavailable", fmt.Errorf("signer %s: %w", id, err))
	}
	if sg == nil {
		return nil, errs.Wrap(errs.Internal, "Internal error", errors.New("nil signer"))
	}
	s.signers.Store(id, sg)
	return sg, nil
}
