package sam

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strconv"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
)

// DerivedItem is one signature whose signed value differs from what the
// holder approved: the holder authorized Authorized (e.g. the SHA-256 of a
// PDF, or a CAdES content digest), while the HSM signs Digest (the hash of
// the CMS signed attributes that embed it). The SAD is consumed by
// Authorized; only Digest reaches the key.
type DerivedItem struct {
	Authorized []byte
	Digest     []byte
}

// DerivedRequest asks for signatures over derived digests (CSC signDoc).
type DerivedRequest struct {
	CredentialID, SAD string
	// AuthorizedHash is the algorithm of every Items[i].Authorized: it
	// must be the one the SAD was bound with (SCAL 2).
	AuthorizedHash crypto.Hash
	Items          []DerivedItem
	// Opts is a crypto.Hash for PKCS#1 v1.5 and ECDSA, *rsa.PSSOptions for
	// PSS; its hash is the algorithm of every Items[i].Digest.
	Opts crypto.SignerOpts
}

// SignDerived is SignHash for server-side document signing: it checks the
// credential exactly as SignHash does (owner, key enabled, activated,
// certificate status), consumes len(Items) signatures from the SAD by the
// authorized values in one store transaction (a SCAL 1 SAD without hashes
// just counts them), then calls the HSM once per item over Digest.
// Signatures come back in input order (ECDSA as DER). Nothing is signed
// when the SAD does not cover every authorized value.
func (s *Service) SignDerived(ctx context.Context, p *Principal, r DerivedRequest) ([][]byte, error) {
	if r.Opts == nil {
		return nil, errs.Invalidf("Invalid parameter signAlgo")
	}
	hf := r.Opts.HashFunc()
	if !allowedHash(hf) || !allowedHash(r.AuthorizedHash) {
		return nil, ErrHashAlgo
	}
	if len(r.Items) == 0 {
		return nil, ErrEmptyHashes
	}
	authorized := make([][]byte, len(r.Items))
	for i, it := range r.Items {
		if len(it.Digest) != hf.Size() || len(it.Authorized) != r.AuthorizedHash.Size() {
			return nil, ErrDigestLength
		}
		authorized[i] = it.Authorized
	}
	if r.SAD == "" {
		return nil, errs.Invalidf("Missing (or invalid type) string parameter SAD")
	}
	c, err := s.loadOwned(ctx, p, r.CredentialID)
	if err != nil {
		return nil, err
	}
	n := len(r.Items)
	detail := func() map[string]string {
		return map[string]string{"hashAlgo": hf.String(), "authorizedHashAlgo": r.AuthorizedHash.String(),
			"count": strconv.Itoa(n), "mode": "derived"}
	}
	fail := func(reason string, err error) ([][]byte, error) {
		s.met.signed.WithLabelValues(reason).Add(float64(n))
		s.history(ctx, c, "sign", hf, n, "failure:"+reason)
		s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "signature.sign", Object: "credential:" + c.ID,
			Outcome: "failure:" + reason, Detail: detail()})
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
	err = s.st.ConsumeSAD(ctx, tokenHash(r.SAD), p.UserID, c.ID, r.AuthorizedHash.String(), authorized, s.now())
	s.met.sadUsed(c, n, err)
	if err != nil {
		return fail("sad", sadErr(err))
	}
	signer, err := s.signer(ctx, c.ID)
	if err != nil {
		return fail("hsm", err)
	}
	sigs := make([][]byte, n)
	for i, it := range r.Items {
		sig, err := signer.Sign(rand.Reader, it.Digest, r.Opts)
		if err != nil {
			s.signers.Delete(c.ID)
			return fail("hsm", errs.Wrap(errs.Unavailable, "HSM unavailable", fmt.Errorf("sign with %s: %w", c.ID, err)))
		}
		sigs[i] = sig
	}
	if err := s.recordStrict(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "signature.sign", Object: "credential:" + c.ID,
		Outcome: "success", Detail: detail()}); err != nil {
		s.met.signed.WithLabelValues("audit").Add(float64(n))
		s.history(ctx, c, "sign", hf, n, "failure:audit")
		return nil, err
	}
	s.met.signed.WithLabelValues("success").Add(float64(n))
	s.history(ctx, c, "sign", hf, n, "success")
	return sigs, nil
}
