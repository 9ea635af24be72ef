package hsm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/sigillo/sigillo/hsm"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

// TestGenerateKey covers every key type once (RSA-4096 generation is slow
// in SoftHSM, so it is generated here only): the public key has the asked
// shape, the private key's attributes read back through an independent raw
// session are those of a non-extractable sign-only key, and a signature
// made through our Signer verifies with Go's crypto.
func TestGenerateKey(t *testing.T) {
	tok := softhsmtest.New(t)
	ctx := context.Background()
	raw := openRaw(t, tok.Config.Module, tok.Config.TokenLabel)
	sess := raw.session(t, tok.Config.PIN)
	defer func() { _ = raw.p.CloseSession(sess) }()

	tests := []struct {
		algo  string
		bits  int
		curve elliptic.Curve
		hash  crypto.Hash
	}{
		{algo: "rsa-2048", bits: 2048, hash: crypto.SHA256},
		{algo: "rsa-3072", bits: 3072, hash: crypto.SHA384},
		{algo: "rsa-4096", bits: 4096, hash: crypto.SHA512},
		{algo: "ecdsa-p256", curve: elliptic.P256(), hash: crypto.SHA256},
		{algo: "ecdsa-p384", curve: elliptic.P384(), hash: crypto.SHA384},
	}
	for _, tt := range tests {
		t.Run(tt.algo, func(t *testing.T) {
			id := "key-" + tt.algo
			pub, err := tok.Manager.GenerateKey(ctx, id, tt.algo)
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			switch k := pub.(type) {
			case *rsa.PublicKey:
				if tt.bits == 0 || k.N.BitLen() != tt.bits {
					t.Fatalf("got RSA-%d, want %s", k.N.BitLen(), tt.algo)
				}
			case *ecdsa.PublicKey:
				if tt.curve == nil || k.Curve != tt.curve {
					t.Fatalf("got ECDSA %s, want %s", k.Curve.Params().Name, tt.algo)
				}
			default:
				t.Fatalf("public key type %T", pub)
			}

			h := raw.findPrivate(t, sess, id)
			attrs, err := raw.p.GetAttributeValue(sess, h, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_SIGN, nil),
				pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, nil),
				pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, nil),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
				pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_SENSITIVE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil),
			})
			if err != nil {
				t.Fatalf("C_GetAttributeValue: %v", err)
			}
			want := map[uint]bool{
				pkcs11.CKA_SENSITIVE:         true,
				pkcs11.CKA_EXTRACTABLE:       false,
				pkcs11.CKA_TOKEN:             true,
				pkcs11.CKA_PRIVATE:           true,
				pkcs11.CKA_SIGN:              true,
				pkcs11.CKA_DECRYPT:           false,
				pkcs11.CKA_UNWRAP:            false,
				pkcs11.CKA_ALWAYS_SENSITIVE:  true,
				pkcs11.CKA_NEVER_EXTRACTABLE: true,
			}
			for _, a := range attrs {
				if a.Type == pkcs11.CKA_LABEL {
					if string(a.Value) != id {
						t.Errorf("CKA_LABEL = %q, want %q", a.Value, id)
					}
					continue
				}
				got := len(a.Value) == 1 && a.Value[0] != 0
				if got != want[a.Type] {
					t.Errorf("%s = %v, want %v", attrNames[a.Type], got, want[a.Type])
				}
			}
			// The sensitive value itself must not be readable.
			valueAttr := uint(pkcs11.CKA_PRIVATE_EXPONENT)
			if tt.curve != nil {
				valueAttr = pkcs11.CKA_VALUE
			}
			if _, err := raw.p.GetAttributeValue(sess, h, []*pkcs11.Attribute{pkcs11.NewAttribute(valueAttr, nil)}); !isP11(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
				t.Errorf("reading the private value: err = %v, want CKR_ATTRIBUTE_SENSITIVE", err)
			}

			s, err := tok.Manager.Signer(ctx, id)
			if err != nil {
				t.Fatalf("Signer: %v", err)
			}
			digest := digestOf(tt.hash, randomMsg(t))
			sig, err := s.Sign(nil, digest, tt.hash)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if err := verify(pub, digest, sig, tt.hash); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}

var attrNames = map[uint]string{
	pkcs11.CKA_SENSITIVE: "CKA_SENSITIVE", pkcs11.CKA_EXTRACTABLE: "CKA_EXTRACTABLE",
	pkcs11.CKA_TOKEN: "CKA_TOKEN", pkcs11.CKA_PRIVATE: "CKA_PRIVATE", pkcs11.CKA_SIGN: "CKA_SIGN",
	pkcs11.CKA_DECRYPT: "CKA_DECRYPT", pkcs11.CKA_UNWRAP: "CKA_UNWRAP",
	pkcs11.CKA_ALWAYS_SENSITIVE: "CKA_ALWAYS_SENSITIVE", pkcs11.CKA_NEVER_EXTRACTABLE: "CKA_NEVER_EXTRACTABLE",
}

// TestSign checks every supported scheme and hash against Go's verifiers.
func TestSign(t *testing.T) {
	tok := softhsmtest.New(t)
	ctx := context.Background()
	for _, k := range []struct{ id, algo string }{{"rsa", "rsa-2048"}, {"p256", "ecdsa-p256"}, {"p384", "ecdsa-p384"}} {
		if _, err := tok.Manager.GenerateKey(ctx, k.id, k.algo); err != nil {
			t.Fatalf("GenerateKey %s: %v", k.algo, err)
		}
	}
	tests := []struct {
		name string
		key  string
		opts crypto.SignerOpts
	}{
		{"pkcs1v15_sha256", "rsa", crypto.SHA256},
		{"pkcs1v15_sha384", "rsa", crypto.SHA384},
		{"pkcs1v15_sha512", "rsa", crypto.SHA512},
		{"pss_salt_equals_hash_sha256", "rsa", &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: rsa.PSSSaltLengthEqualsHash}},
		{"pss_salt_equals_hash_sha384", "rsa", &rsa.PSSOptions{Hash: crypto.SHA384, SaltLength: rsa.PSSSaltLengthEqualsHash}},
		{"pss_salt_equals_hash_sha512", "rsa", &rsa.PSSOptions{Hash: crypto.SHA512, SaltLength: rsa.PSSSaltLengthEqualsHash}},
		{"pss_salt_20_sha256", "rsa", &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: 20}},
		{"pss_salt_0_via_auto_is_max_sha256", "rsa", &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: rsa.PSSSaltLengthAuto}},
		{"ecdsa_p256_sha256", "p256", crypto.SHA256},
		{"ecdsa_p256_sha384_truncated", "p256", crypto.SHA384},
		{"ecdsa_p256_sha512_truncated", "p256", crypto.SHA512},
		{"ecdsa_p384_sha384", "p384", crypto.SHA384},
		{"ecdsa_p384_sha256", "p384", crypto.SHA256},
		{"ecdsa_p384_sha512_truncated", "p384", crypto.SHA512},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tok.Manager.Signer(ctx, tt.key)
			if err != nil {
				t.Fatalf("Signer: %v", err)
			}
			digest := digestOf(tt.opts.HashFunc(), randomMsg(t))
			sig, err := s.Sign(nil, digest, tt.opts)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if err := verify(s.Public(), digest, sig, tt.opts); err != nil {
				t.Fatalf("verify: %v", err)
			}
			// A verifier given another digest must reject it (guards
			// against a verify helper that accepts anything).
			other := digestOf(tt.opts.HashFunc(), []byte("other"))
			if err := verify(s.Public(), other, sig, tt.opts); err == nil {
				t.Fatal("signature verifies over a different digest")
			}
		})
	}
	t.Run("pss_exact_salt_length_is_used", func(t *testing.T) {
		s, _ := tok.Manager.Signer(ctx, "rsa")
		digest := digestOf(crypto.SHA256, randomMsg(t))
		sig, err := s.Sign(nil, digest, &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: 20})
		if err != nil {
			t.Fatal(err)
		}
		if err := rsa.VerifyPSS(s.Public().(*rsa.PublicKey), crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: 32}); err == nil {
			t.Fatal("salt-20 signature verified as salt-32: salt length ignored")
		}
	})
}

func TestSign_rejectsBadRequests(t *testing.T) {
	tok := softhsmtest.New(t)
	ctx := context.Background()
	for _, k := range []struct{ id, algo string }{{"rsa", "rsa-2048"}, {"ec", "ecdsa-p256"}} {
		if _, err := tok.Manager.GenerateKey(ctx, k.id, k.algo); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		key    string
		digest []byte
		opts   crypto.SignerOpts
		want   error
	}{
		{"rsa_digest_too_short", "rsa", make([]byte, 31), crypto.SHA256, hsm.ErrBadDigest},
		{"rsa_sha384_length_for_sha256", "rsa", make([]byte, 48), crypto.SHA256, hsm.ErrBadDigest},
		{"ecdsa_digest_too_long", "ec", make([]byte, 33), crypto.SHA256, hsm.ErrBadDigest},
		{"ecdsa_empty_digest", "ec", nil, crypto.SHA512, hsm.ErrBadDigest},
		{"pss_wrong_length", "rsa", make([]byte, 32), &rsa.PSSOptions{Hash: crypto.SHA512}, hsm.ErrBadDigest},
		{"sha1_not_supported", "rsa", make([]byte, 20), crypto.SHA1, hsm.ErrBadDigest},
		{"no_hash", "ec", make([]byte, 32), crypto.Hash(0), hsm.ErrBadDigest},
		{"pss_on_ecdsa_key", "ec", make([]byte, 32), &rsa.PSSOptions{Hash: crypto.SHA256}, hsm.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tok.Manager.Signer(ctx, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Sign(nil, tt.digest, tt.opts); !errors.Is(err, tt.want) {
				t.Fatalf("Sign error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestKeyLifecycle(t *testing.T) {
	tok := softhsmtest.New(t)
	m := tok.Manager
	ctx := context.Background()

	t.Run("unknown_id_is_ErrKeyNotFound", func(t *testing.T) {
		if _, err := m.Signer(ctx, "nope"); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("Signer: %v", err)
		}
		if _, err := m.PublicKey(ctx, "nope"); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("PublicKey: %v", err)
		}
		if err := m.DestroyKey(ctx, "nope"); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("DestroyKey: %v", err)
		}
	})
	t.Run("duplicate_id_is_ErrKeyExists", func(t *testing.T) {
		if _, err := m.GenerateKey(ctx, "dup", "ecdsa-p256"); err != nil {
			t.Fatal(err)
		}
		for _, algo := range []string{"ecdsa-p256", "rsa-2048"} {
			if _, err := m.GenerateKey(ctx, "dup", algo); !errors.Is(err, hsm.ErrKeyExists) {
				t.Errorf("second GenerateKey(%s): %v, want ErrKeyExists", algo, err)
			}
		}
	})
	t.Run("unknown_algo_is_ErrUnsupported", func(t *testing.T) {
		if _, err := m.GenerateKey(ctx, "x", "ed25519"); !errors.Is(err, hsm.ErrUnsupported) {
			t.Errorf("GenerateKey: %v", err)
		}
	})
	t.Run("empty_id_rejected", func(t *testing.T) {
		if _, err := m.GenerateKey(ctx, "", "ecdsa-p256"); err == nil {
			t.Error("GenerateKey with empty id succeeded")
		}
	})
	t.Run("signer_is_cached_and_public_key_matches", func(t *testing.T) {
		pub, err := m.GenerateKey(ctx, "cached", "ecdsa-p256")
		if err != nil {
			t.Fatal(err)
		}
		s1, err := m.Signer(ctx, "cached")
		if err != nil {
			t.Fatal(err)
		}
		s2, _ := m.Signer(ctx, "cached")
		if s1 != s2 {
			t.Error("Signer returned a new signer for the same id")
		}
		got, err := m.PublicKey(ctx, "cached")
		if err != nil {
			t.Fatal(err)
		}
		if !got.(*ecdsa.PublicKey).Equal(pub) {
			t.Error("PublicKey differs from the generated key")
		}
	})
	t.Run("destroy_then_recreate", func(t *testing.T) {
		if _, err := m.GenerateKey(ctx, "gone", "ecdsa-p256"); err != nil {
			t.Fatal(err)
		}
		old, err := m.Signer(ctx, "gone")
		if err != nil {
			t.Fatal(err)
		}
		if err := m.DestroyKey(ctx, "gone"); err != nil {
			t.Fatalf("DestroyKey: %v", err)
		}
		digest := digestOf(crypto.SHA256, []byte("x"))
		if _, err := old.Sign(nil, digest, crypto.SHA256); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("Sign with destroyed key: %v, want ErrKeyNotFound", err)
		}
		if _, err := m.Signer(ctx, "gone"); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Errorf("Signer after destroy: %v", err)
		}
		pub, err := m.GenerateKey(ctx, "gone", "ecdsa-p256")
		if err != nil {
			t.Fatalf("re-create: %v", err)
		}
		s, err := m.Signer(ctx, "gone")
		if err != nil {
			t.Fatal(err)
		}
		sig, err := s.Sign(nil, digest, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(pub, digest, sig, crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("key_replaced_by_another_replica", func(t *testing.T) {
		if _, err := m.GenerateKey(ctx, "shared", "ecdsa-p256"); err != nil {
			t.Fatal(err)
		}
		old, err := m.Signer(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		other, err := hsm.Open(tok.Config) // another replica on the same token
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if err := other.DestroyKey(ctx, "shared"); err != nil {
			t.Fatal(err)
		}
		newPub, err := other.GenerateKey(ctx, "shared", "ecdsa-p256")
		if err != nil {
			t.Fatal(err)
		}
		digest := digestOf(crypto.SHA256, []byte("x"))
		if _, err := old.Sign(nil, digest, crypto.SHA256); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Fatalf("old signer after replacement: %v, want ErrKeyNotFound", err)
		}
		s, err := m.Signer(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		if !s.Public().(*ecdsa.PublicKey).Equal(newPub) {
			t.Fatal("Signer still returns the replaced key")
		}
		sig, err := s.Sign(nil, digest, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(newPub, digest, sig, crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("closed_manager_fails_with_ErrClosed", func(t *testing.T) {
		m2, err := hsm.Open(tok.Config)
		if err != nil {
			t.Fatal(err)
		}
		s, err := m2.Signer(ctx, "cached")
		if err != nil {
			t.Fatal(err)
		}
		if err := m2.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Sign(nil, digestOf(crypto.SHA256, nil), crypto.SHA256); !errors.Is(err, hsm.ErrClosed) {
			t.Errorf("Sign after Close: %v", err)
		}
		if err := m2.Ready(ctx); !errors.Is(err, hsm.ErrClosed) {
			t.Errorf("Ready after Close: %v", err)
		}
		// The first Manager on the same token is unaffected.
		if err := m.Ready(ctx); err != nil {
			t.Errorf("Ready of the other Manager: %v", err)
		}
	})
}

func TestOpen_rejectsBadConfig(t *testing.T) {
	cfg, _ := softhsmtest.Provision(t)
	tests := []struct {
		name    string
		mutate  func(*hsm.Config)
		unavail bool
	}{
		{"no_module", func(c *hsm.Config) { c.Module = "" }, false},
		{"missing_module_file", func(c *hsm.Config) { c.Module = "/nonexistent/lib.so" }, false},
		{"no_label", func(c *hsm.Config) { c.TokenLabel = "" }, false},
		{"one_session", func(c *hsm.Config) { c.MaxSessions = 1 }, false},
		{"wrong_pin", func(c *hsm.Config) { c.PIN = "000000" }, false},
		{"unknown_token_is_unavailable", func(c *hsm.Config) { c.TokenLabel = "no-such-token" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			tt.mutate(&c)
			m, err := hsm.Open(c)
			if err == nil {
				_ = m.Close()
				t.Fatal("Open succeeded")
			}
			if got := errors.Is(err, hsm.ErrUnavailable); got != tt.unavail {
				t.Fatalf("Open error %v: ErrUnavailable=%v, want %v", err, got, tt.unavail)
			}
		})
	}
}
