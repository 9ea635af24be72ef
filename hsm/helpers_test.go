package hsm_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"testing"

	"github.com/miekg/pkcs11"
)

// digestOf hashes msg with h.
func digestOf(h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(msg)
		return d[:]
	}
	panic(fmt.Sprintf("digestOf: unexpected hash %v", h))
}

func randomMsg(t testing.TB) []byte {
	msg := make([]byte, 64)
	if _, err := rand.Read(msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

// verify checks sig over digest with Go's crypto, independently of the HSM.
func verify(pub crypto.PublicKey, digest, sig []byte, opts crypto.SignerOpts) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			// Verify with the exact salt length we asked for where one
			// was given, so a token that ignored it would be caught.
			return rsa.VerifyPSS(k, opts.HashFunc(), digest, sig, pss)
		}
		return rsa.VerifyPKCS1v15(k, opts.HashFunc(), digest, sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errors.New("ecdsa signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("unexpected public key type %T", pub)
}

// rawToken is a second, bare PKCS#11 handle on the same module, as another
// library user in the same process would have. It never finalizes the
// library unless a test asks it to.
type rawToken struct {
	p    *pkcs11.Ctx
	slot uint
}

func openRaw(t testing.TB, module, label string) *rawToken {
	t.Helper()
	p := pkcs11.New(module)
	if p == nil {
		t.Fatalf("load %s", module)
	}
	if err := p.Initialize(); err != nil && !isP11(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.Fatalf("C_Initialize: %v", err)
	}
	r := &rawToken{p: p}
	r.slot = r.findSlot(t, label)
	return r
}

func (r *rawToken) findSlot(t testing.TB, label string) uint {
	t.Helper()
	slots, err := r.p.GetSlotList(true)
	if err != nil {
		t.Fatalf("C_GetSlotList: %v", err)
	}
	for _, s := range slots {
		ti, err := r.p.GetTokenInfo(s)
		if err == nil && ti.Label == label {
			return s
		}
	}
	t.Fatalf("no slot with token %q", label)
	return 0
}

// session opens a logged-in session (the login may already be held by the
// Manager: login state is per process).
func (r *rawToken) session(t testing.TB, pin string) pkcs11.SessionHandle {
	t.Helper()
	s, err := r.p.OpenSession(r.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatalf("C_OpenSession: %v", err)
	}
	if err := r.p.Login(s, pkcs11.CKU_USER, pin); err != nil && !isP11(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		t.Fatalf("C_Login: %v", err)
	}
	return s
}

// findPrivate returns the handle of the private key with CKA_ID id.
func (r *rawToken) findPrivate(t testing.TB, s pkcs11.SessionHandle, id string) pkcs11.ObjectHandle {
	t.Helper()
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(id)),
	}
	if err := r.p.FindObjectsInit(s, tmpl); err != nil {
		t.Fatalf("C_FindObjectsInit: %v", err)
	}
	hs, _, err := r.p.FindObjects(s, 2)
	if err != nil {
		t.Fatalf("C_FindObjects: %v", err)
	}
	if err := r.p.FindObjectsFinal(s); err != nil {
		t.Fatalf("C_FindObjectsFinal: %v", err)
	}
	if len(hs) != 1 {
		t.Fatalf("found %d private keys with id %q, want 1", len(hs), id)
	}
	return hs[0]
}

func isP11(err error, code pkcs11.Error) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && e == code
}
