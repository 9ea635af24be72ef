package sam_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
)

func sum(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }

// TestSignDerived checks that the SAD is consumed by the authorized value
// while the HSM (SoftHSM2) signs the derived digest, and that a refusal
// consumes nothing and signs nothing.
func TestSignDerived(t *testing.T) {
	e := samtest.New(t)
	ctx := context.Background()
	uid := e.User(t, "derived")
	p := e.Login(t, uid)
	scal2 := e.Credential(t, uid, sam.NewCredential{SCAL: 2, Multisign: 5})
	scal1 := e.Credential(t, uid, sam.NewCredential{SCAL: 1, Multisign: 5})
	leaf, err := x509.ParseCertificate(scal2.Certificates[0])
	if err != nil {
		t.Fatal(err)
	}
	docA, docB := sum("document A"), sum("document B")
	attrsA, attrsB := sum("signed attributes A"), sum("signed attributes B")
	successes := func() int { return e.Audit.Count("signature.sign", "success") }

	t.Run("bound_SAD_signs_derived_digest", func(t *testing.T) {
		sad, err := e.Service.Authorize(ctx, p, sam.AuthorizeRequest{CredentialID: scal2.CredentialID, NumSignatures: 2,
			Hashes: [][]byte{docA, docB}, HashAlgo: crypto.SHA256, PIN: samtest.PIN})
		if err != nil {
			t.Fatal(err)
		}
		sigs, err := e.Service.SignDerived(ctx, p, sam.DerivedRequest{CredentialID: scal2.CredentialID, SAD: sad.Value,
			AuthorizedHash: crypto.SHA256, Opts: crypto.SHA256,
			Items: []sam.DerivedItem{{Authorized: docB, Digest: attrsB}, {Authorized: docA, Digest: attrsA}}})
		if err != nil {
			t.Fatal(err)
		}
		pub := leaf.PublicKey.(*ecdsa.PublicKey)
		if len(sigs) != 2 || !ecdsa.VerifyASN1(pub, attrsB, sigs[0]) || !ecdsa.VerifyASN1(pub, attrsA, sigs[1]) {
			t.Fatal("signatures do not verify over the derived digests in input order")
		}
		if ecdsa.VerifyASN1(pub, docA, sigs[1]) {
			t.Fatal("the authorized value was signed instead of the derived digest")
		}
		// The SAD is used up.
		_, err = e.Service.SignDerived(ctx, p, sam.DerivedRequest{CredentialID: scal2.CredentialID, SAD: sad.Value,
			AuthorizedHash: crypto.SHA256, Opts: crypto.SHA256, Items: []sam.DerivedItem{{Authorized: docA, Digest: attrsA}}})
		if err == nil {
			t.Fatal("a consumed SAD signed again")
		}
	})

	t.Run("other_hashes_refused_nothing_consumed", func(t *testing.T) {
		sad, err := e.Service.Authorize(ctx, p, sam.AuthorizeRequest{CredentialID: scal2.CredentialID, NumSignatures: 1,
			Hashes: [][]byte{docA}, HashAlgo: crypto.SHA256, PIN: samtest.PIN})
		if err != nil {
			t.Fatal(err)
		}
		before := successes()
		for _, tc := range []struct {
			name string
			item sam.DerivedItem
			h    crypto.Hash
			want error
		}{
			{"unauthorized document", sam.DerivedItem{Authorized: docB, Digest: attrsB}, crypto.SHA256, sam.ErrHashNotAuth},
			// The derived digest is not what was authorized.
			{"derived digest as authorized", sam.DerivedItem{Authorized: attrsA, Digest: attrsA}, crypto.SHA256, sam.ErrHashNotAuth},
			{"short authorized", sam.DerivedItem{Authorized: docA[:20], Digest: attrsA}, crypto.SHA256, sam.ErrDigestLength},
			{"other algorithm", sam.DerivedItem{Authorized: append(docA, docA[:16]...), Digest: attrsA}, crypto.SHA384, sam.ErrHashNotAuth},
		} {
			_, err := e.Service.SignDerived(ctx, p, sam.DerivedRequest{CredentialID: scal2.CredentialID, SAD: sad.Value,
				AuthorizedHash: tc.h, Opts: crypto.SHA256, Items: []sam.DerivedItem{tc.item}})
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			}
		}
		if successes() != before {
			t.Fatal("a refused request was signed")
		}
		// Still usable for the authorized document.
		if _, err := e.Service.SignDerived(ctx, p, sam.DerivedRequest{CredentialID: scal2.CredentialID, SAD: sad.Value,
			AuthorizedHash: crypto.SHA256, Opts: crypto.SHA256, Items: []sam.DerivedItem{{Authorized: docA, Digest: attrsA}}}); err != nil {
			t.Fatalf("SAD consumed by refused requests: %v", err)
		}
	})

	t.Run("unbound_SAD_counts", func(t *testing.T) {
		sad, err := e.Service.Authorize(ctx, p, sam.AuthorizeRequest{CredentialID: scal1.CredentialID, NumSignatures: 2, PIN: samtest.PIN})
		if err != nil {
			t.Fatal(err)
		}
		items := []sam.DerivedItem{{Authorized: docA, Digest: attrsA}, {Authorized: docB, Digest: attrsB}, {Authorized: docA, Digest: attrsB}}
		if _, err := e.Service.SignDerived(ctx, p, sam.DerivedRequest{CredentialID: scal1.CredentialID, SAD: sad.Value,
			AuthorizedHash: crypto.SHA256, Opts: crypto.SHA256, Items: items}); !errors.Is(err, sam.ErrTooMany) {
			t.Fatalf("3 signatures on a SAD for 2: err = %v", err)
		}
		sigs, err := e.Service.SignDerived(ctx, p, sam.DerivedRequest{CredentialID: scal1.CredentialID, SAD: sad.Value,
			AuthorizedHash: crypto.SHA256, Opts: crypto.SHA256, Items: items[:2]})
		if err != nil || len(sigs) != 2 {
			t.Fatalf("2 signatures on a SAD for 2: %v", err)
		}
	})

	t.Run("other_users_principal", func(t *testing.T) {
		other := e.Login(t, e.User(t, "derived-other"))
		_, err := e.Service.SignDerived(ctx, other, sam.DerivedRequest{CredentialID: scal1.CredentialID, SAD: "x",
			AuthorizedHash: crypto.SHA256, Opts: crypto.SHA256, Items: []sam.DerivedItem{{Authorized: docA, Digest: attrsA}}})
		if !errors.Is(err, sam.ErrCredentialGone) {
			t.Fatalf("err = %v, want ErrCredentialGone", err)
		}
	})
}
