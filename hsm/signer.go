package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/ThalesGroup/crypto11"
)

// resolved is a key's crypto11 signer (an object handle) on one conn.
type resolved struct {
	gen uint64
	s   crypto11.Signer
}

// keySigner is the crypto.Signer handed out by Manager.Signer. It holds the
// key id and the handle it last resolved with the conn generation of that
// handle: while the generation is current it signs straight away; after a
// reconnect it finds the key by id again (once, under mu).
type keySigner struct {
	m    *Manager
	id   string
	algo string
	pub  crypto.PublicKey

	cur       atomic.Pointer[resolved]
	mu        sync.Mutex // serialises re-resolution
	destroyed atomic.Bool
}

var _ crypto.Signer = (*keySigner)(nil)

// Public returns the public key, known since the signer was made.
func (k *keySigner) Public() crypto.PublicKey { return k.pub }

// Sign signs digest, which must be the output of opts.HashFunc() (SHA-256,
// SHA-384 or SHA-512). For RSA keys opts *rsa.PSSOptions selects PSS
// (PSSSaltLengthAuto means the largest salt, as in crypto/rsa), anything else
// PKCS#1 v1.5. ECDSA signatures are ASN.1 DER. rand is ignored: the token
// makes its own randomness.
func (k *keySigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	opts, err := k.checkOpts(digest, opts)
	if err != nil {
		return nil, fmt.Errorf("sign with %q: %w", k.id, err)
	}
	// Hot path: live conn, handle resolved on it. Two atomic loads and
	// the read lock around crypto11; nothing allocated here.
	if c := k.m.state.Load(); c != nil {
		if r := k.cur.Load(); r != nil && r.gen == c.gen {
			k.m.mod.lib.RLock()
			sig, err := r.s.Sign(nil, digest, opts)
			k.m.mod.lib.RUnlock()
			if err == nil {
				return sig, nil
			}
			if !isHandleStale(err) {
				// The same one reconnect-and-retry as Manager.do.
				return k.slow(c, err, digest, opts)
			}
		}
	}
	return k.slow(nil, nil, digest, opts)
}

// slow signs through Manager.do, or, when the hot path already failed on
// conn c with err, through the one retry that follows such a failure.
func (k *keySigner) slow(c *conn, err error, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	var sig []byte
	op := k.signOp(digest, opts, &sig)
	if c != nil {
		err = k.m.retryAfter(context.Background(), c, err, op)
	} else {
		err = k.m.do(context.Background(), op)
	}
	if err != nil {
		return nil, fmt.Errorf("sign with %q: %w", k.id, err)
	}
	return sig, nil
}

// signOp is one signing attempt on a conn, for Manager.do: it resolves the
// key on that conn when needed, and re-resolves once if the handle turns
// out stale.
func (k *keySigner) signOp(digest []byte, opts crypto.SignerOpts, sig *[]byte) func(*conn) error {
	return func(c *conn) error {
		r, err := k.handle(c)
		if err != nil {
			return err
		}
		*sig, err = r.s.Sign(nil, digest, opts)
		if err != nil && isHandleStale(err) {
			// The object is gone though the session is fine: the key was
			// destroyed, or destroyed and re-created, behind our back.
			if r, err = k.reresolve(c, r); err != nil {
				return err
			}
			*sig, err = r.s.Sign(nil, digest, opts)
		}
		return err
	}
}

// checkOpts validates the request before it costs an HSM round trip, and
// turns PSSSaltLengthAuto into an explicit length (crypto11 refuses Auto).
func (k *keySigner) checkOpts(digest []byte, opts crypto.SignerOpts) (crypto.SignerOpts, error) {
	if k.destroyed.Load() {
		return nil, ErrKeyNotFound
	}
	if opts == nil {
		return nil, fmt.Errorf("%w: nil SignerOpts (a hash is required)", ErrUnsupported)
	}
	h := opts.HashFunc()
	switch h {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512:
	default:
		return nil, fmt.Errorf("%w: hash %v not supported (SHA-256/384/512 only)", ErrBadDigest, h)
	}
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("%w: %d bytes for %v, want %d", ErrBadDigest, len(digest), h, h.Size())
	}
	pss, isPSS := opts.(*rsa.PSSOptions)
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		if isPSS {
			p := *pss
			switch {
			case p.SaltLength == rsa.PSSSaltLengthAuto:
				// What crypto/rsa does for Auto when signing: the
				// largest salt the modulus allows.
				p.SaltLength = (pub.N.BitLen()-1+7)/8 - 2 - h.Size()
			case p.SaltLength < rsa.PSSSaltLengthEqualsHash:
				return nil, fmt.Errorf("%w: PSS salt length %d", ErrUnsupported, p.SaltLength)
			}
			return &p, nil
		}
	case *ecdsa.PublicKey:
		if isPSS {
			return nil, fmt.Errorf("%w: PSS options with an ECDSA key", ErrUnsupported)
		}
	}
	return opts, nil
}

// handle returns the key's resolved handle on conn c, resolving by id when
// the cached one belongs to an older conn.
func (k *keySigner) handle(c *conn) (*resolved, error) {
	if r := k.cur.Load(); r != nil && r.gen == c.gen {
		return r, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if r := k.cur.Load(); r != nil && r.gen == c.gen {
		return r, nil
	}
	return k.store(c)
}

func (k *keySigner) reresolve(c *conn, stale *resolved) (*resolved, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r := k.cur.Load(); r != stale && r != nil && r.gen == c.gen {
		return r, nil
	}
	return k.store(c)
}

// store resolves the id on c and caches the result; k.mu must be held.
func (k *keySigner) store(c *conn) (*resolved, error) {
	r, err := k.m.resolve(c, k.id)
	if errors.Is(err, ErrKeyNotFound) {
		k.m.forget(k.id, k)
	}
	if err != nil {
		return nil, err
	}
	// A key re-created under the same id is a different key: signing with
	// it would contradict Public(). This signer is done; Manager.Signer
	// will hand out one for the new key.
	if !samePublicKey(r.s.Public(), k.pub) {
		k.m.forget(k.id, k)
		return nil, fmt.Errorf("%w: key %q was replaced on the token", ErrKeyNotFound, k.id)
	}
	k.cur.Store(r)
	return r, nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := a.(equaler); ok {
		return e.Equal(b)
	}
	return reflect.DeepEqual(a, b)
}

// errorsIsAny is errors.Is over several targets.
func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
