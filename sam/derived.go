package sam

import (
	"context"
	"crypto"
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

// SignDerived is SignHash for server-side document signing, on the same
// path (Service.sign): the credential is checked exactly as for SignHash
// (owner, key enabled, activated, certificate status, options that fit
// the key); len(Items) signatures are consumed from the SAD by the
// authorized values (a SCAL 1 SAD without hashes just counts them) and
// from the usage counters (limit included) in one store transaction; the
// HSM signs every Digest; the call is audited, counted, and written to
// the history and the signature log. Signatures come back in input order
// (ECDSA as DER). Nothing is signed when the SAD does not cover every
// authorized value.
func (s *Service) SignDerived(ctx context.Context, p *Principal, r DerivedRequest) ([][]byte, error) {
	authorized := make([][]byte, len(r.Items))
	digests := make([][]byte, len(r.Items))
	for i, it := range r.Items {
		authorized[i], digests[i] = it.Authorized, it.Digest
	}
	return s.sign(ctx, p, signing{credentialID: r.CredentialID, sad: r.SAD, authHash: r.AuthorizedHash,
		authorized: authorized, digests: digests, opts: r.Opts, derived: true})
}
