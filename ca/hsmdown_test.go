package ca_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"io"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/errs"
)

// switchableKeys hands out signers that fail while down is set, as an HSM
// that went away would.
type switchableKeys struct {
	ca.Keys
	down atomic.Bool
}

type switchableSigner struct {
	crypto.Signer
	k *switchableKeys
}

func (s switchableSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	if s.k.down.Load() {
		return nil, errors.New("CKR_DEVICE_REMOVED")
	}
	return s.Signer.Sign(r, d, o)
}

func (k *switchableKeys) Signer(ctx context.Context, id string) (crypto.Signer, error) {
	s, err := k.Keys.Signer(ctx, id)
	if err != nil {
		return nil, err
	}
	return switchableSigner{s, k}, nil
}

func TestHSMDownIsUnavailableAndRecovers(t *testing.T) {
	e := newEnv(t)
	keys := &switchableKeys{Keys: e.keys}
	e.keys = keys
	e.a = e.open(t)
	ctx := context.Background()
	leaf, err := e.a.Issue(ctx, holder(e.credentialKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := ocsp.CreateRequest(leaf.Cert, e.a.Issuer(), nil)
	digest := sha256.Sum256([]byte("x"))
	ops := map[string]func() error{
		"issue": func() error { _, err := e.a.Issue(ctx, holder(e.credentialKey(t))); return err },
		"ocsp":  func() error { _, err := e.a.OCSP(ctx, req); return err },
		"timestamp": func() error {
			_, err := e.a.Timestamp(ctx, digest[:], crypto.SHA256)
			return err
		},
		"crl": func() error { _, err := e.a.GenerateCRL(ctx, ca.RoleIssuing); return err },
	}
	keys.down.Store(true)
	for name, op := range ops {
		if err := op(); errs.KindOf(err) != errs.Unavailable {
			t.Errorf("%s with the HSM down: %v, want Unavailable", name, err)
		}
	}
	// A status change still takes effect (the store decides; OCSP will
	// sign it once the HSM is back) and the CRL is regenerated later.
	if err := e.a.Suspend(ctx, leaf.Serial, "admin"); err != nil {
		t.Fatalf("suspend with the HSM down: %v", err)
	}
	keys.down.Store(false)
	for name, op := range ops {
		if err := op(); err != nil {
			t.Errorf("%s after the HSM came back: %v", name, err)
		}
	}
	der, _ := e.a.OCSP(ctx, req)
	if r, err := ocsp.ParseResponseForCert(der, leaf.Cert, e.a.Issuer()); err != nil || r.Status != ocsp.Revoked {
		t.Fatalf("OCSP after recovery: %v", err)
	}
}
