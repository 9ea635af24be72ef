package sam

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// SignHash signs the hashes with the credential's key, consuming them from
// the SAD. Per call: one credential lookup, one certificate status check,
// one SAD consumption for all hashes, then the HSM; argon2 never runs
// here. Signatures come back in input order; ECDSA as DER.
func (s *Service) SignHash(ctx context.Context, p *Principal, r SignRequest) ([][]byte, error) {
	if r.Opts == nil {
		return nil, errs.Invalidf("Invalid parameter signAlgo")
	}
	return s.sign(ctx, p, signing{credentialID: r.CredentialID, sad: r.SAD, authHash: r.Opts.HashFunc(),
		authorized: r.Hashes, digests: r.Hashes, opts: r.Opts})
}

// signing is one synchronous signing call, whatever its entry point
// (signHash, signDoc): the SAD and the usage counters are consumed by
// authorized (hashed with authHash), the key signs digests (hashed with
// opts.HashFunc()); the two lists have one length and one order. For
// signHash they are the same values.
type signing struct {
	credentialID, sad string
	authHash          crypto.Hash
	authorized        [][]byte
	digests           [][]byte
	opts              crypto.SignerOpts
	// derived marks a signDoc call: what the key signs differs from what
	// the holder authorized.
	derived bool
}

// validate checks what needs neither the store nor the HSM.
func (r *signing) validate() error {
	if r.opts == nil {
		return errs.Invalidf("Invalid parameter signAlgo")
	}
	hf := r.opts.HashFunc()
	if !allowedHash(hf) || !allowedHash(r.authHash) {
		return ErrHashAlgo
	}
	if len(r.digests) == 0 {
		return ErrEmptyHashes
	}
	if len(r.authorized) != len(r.digests) {
		return errs.Wrap(errs.Internal, "Internal error", errors.New("sam: authorized and signed lists differ in length"))
	}
	for i := range r.digests {
		if len(r.digests[i]) != hf.Size() || len(r.authorized[i]) != r.authHash.Size() {
			return ErrDigestLength
		}
	}
	if r.sad == "" {
		return errs.Invalidf("Missing (or invalid type) string parameter SAD")
	}
	return nil
}

// sign is the one synchronous signing path: every signature it makes is
// checked (owner, key enabled, activated, certificate status, options fit
// the key), consumed from the SAD and the usage counters (limit included)
// in one transaction, signed in parallel, audited (fail closed), counted
// in the metrics, and written to the history and the signature log.
// Nothing is signed when the SAD does not cover every authorized value.
func (s *Service) sign(ctx context.Context, p *Principal, r signing) ([][]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	c, err := s.loadOwned(ctx, p, r.credentialID)
	if err != nil {
		return nil, err
	}
	hf := r.opts.HashFunc()
	n := len(r.digests)
	detail := func() map[string]string {
		d := map[string]string{"hashAlgo": hf.String(), "count": strconv.Itoa(n)}
		if r.derived {
			d["authorizedHashAlgo"], d["mode"] = r.authHash.String(), "derived"
		}
		return d
	}
	fail := func(reason string, err error) ([][]byte, error) {
		s.met.signed.WithLabelValues(reason).Add(float64(n))
		outcome := "failure:" + reason
		s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "signature.sign", Object: "credential:" + c.ID,
			Outcome: outcome, Detail: detail(), With: store.AuditExtras{
				History:    []store.HistoryEntry{s.historyEntry(c, "sign", hf, n, outcome)},
				Signatures: []store.SignatureRecord{s.failureRecord(p, c, r.authHash, n, outcome, "")},
			}})
		return nil, err
	}
	cert, err := s.usable(ctx, c)
	if err != nil {
		return fail("not_usable", err)
	}
	if err := optsFitKey(r.opts, cert.PublicKey); err != nil {
		return fail("bad_request", err)
	}
	err = s.consumeCounted(ctx, p, c, r.sad, r.authHash.String(), r.authorized)
	s.met.sadUsed(c, n, err)
	if err != nil {
		return fail("sad", err)
	}
	signer, err := s.signer(ctx, c.ID)
	if err != nil {
		if us, ok := s.st.(usageStore); ok {
			if rerr := us.RefundUsage(context.WithoutCancel(ctx), c.ID, n, s.now()); rerr != nil {
				s.log.Error("usage refund", "credential", c.ID, "error", rerr)
			}
		}
		s.refundSAD(ctx, p, c, r.sad, r.authHash, r.authorized, err)
		return fail("hsm", err)
	}
	// signAll gives the usage counters back itself when it fails.
	sigs, err := s.signAll(ctx, c, signer, r.digests, r.opts)
	if err != nil {
		s.refundSAD(ctx, p, c, r.sad, r.authHash, r.authorized, err)
		return fail("hsm", err)
	}
	format := "hash"
	if r.derived {
		format = "derived"
	}
	// The history and log rows commit with the audit record: one commit,
	// shared with concurrent calls (the audit log's group commit).
	if err := s.recordStrict(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "signature.sign", Object: "credential:" + c.ID,
		Outcome: "success", Detail: detail(), With: store.AuditExtras{
			History:    []store.HistoryEntry{s.historyEntry(c, "sign", hf, n, "success")},
			Signatures: []store.SignatureRecord{s.signatureRecord(p, c, format, r.authHash, r.authorized)},
		}}); err != nil {
		s.met.signed.WithLabelValues("audit").Add(float64(n))
		s.history(ctx, c, "sign", hf, n, "failure:audit")
		return nil, err
	}
	s.met.signed.WithLabelValues("success").Add(float64(n))
	return sigs, nil
}

// optsFitKey refuses signer options the key cannot honour: PSS needs an
// RSA key; an EC key signs a plain hash (ECDSA); an RSA key signs a plain
// hash (PKCS#1 v1.5) or PSS. The HTTP layer checks this too, but sam is
// the boundary in front of the HSM.
func optsFitKey(opts crypto.SignerOpts, pub crypto.PublicKey) error {
	bad := errs.Invalidf("Invalid parameter signAlgo")
	switch pub.(type) {
	case *rsa.PublicKey:
		switch opts.(type) {
		case crypto.Hash, *rsa.PSSOptions:
			return nil
		}
	case *ecdsa.PublicKey:
		if _, ok := opts.(crypto.Hash); ok {
			return nil
		}
	}
	return bad
}

// refundSAD gives back to the SAD what a call took when the HSM failed
// (errs.Unavailable) before any of its signatures was returned: the whole
// batch is refused, so none of it was used, and the client can retry
// after the outage with the same SAD. Other failures keep the budget.
func (s *Service) refundSAD(ctx context.Context, p *Principal, c *store.Credential, sad string, h crypto.Hash, authorized [][]byte, cause error) {
	if errs.KindOf(cause) != errs.Unavailable {
		return
	}
	rs, ok := s.st.(sadRefunder)
	if !ok {
		return
	}
	// The caller may have gone (a cancelled request is one way to fail
	// here): the refund still happens.
	if err := rs.RefundSAD(context.WithoutCancel(ctx), tokenHash(sad), p.UserID, c.ID, authorized, s.now()); err != nil {
		s.log.Error("SAD refund", "credential", c.ID, "hashAlgo", h.String(), "error", err)
	}
}

// sadRefunder returns unused SAD budget; *store.Store has it.
type sadRefunder interface {
	RefundSAD(ctx context.Context, sadHash, userID, credentialID string, hashes [][]byte, now time.Time) error
}

var _ sadRefunder = (*store.Store)(nil)

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
