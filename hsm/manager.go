package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxSessions is the session pool size used when Config.MaxSessions
// is zero. crypto11 opens sessions lazily, so a generous bound costs nothing
// until concurrency asks for it; one session is kept aside to hold the login.
const DefaultMaxSessions = 64

// maxIDLen bounds key ids; PKCS#11 does not, but ids end up in URLs and logs.
const maxIDLen = 255

// Config says which token to use and how.
type Config struct {
	// Module is the path of the PKCS#11 library (e.g. libsofthsm2.so, or
	// p11-kit-client.so for a network HSM).
	Module string
	// TokenLabel selects the token (CKA_LABEL of the token, not of a key).
	TokenLabel string
	// PIN is the user PIN.
	PIN string
	// MaxSessions bounds crypto11's session pool (so the number of
	// concurrent HSM operations) and includes the one session that holds the
	// login. 0 means DefaultMaxSessions; otherwise it must be at least 2.
	MaxSessions int
}

// Option configures a Manager.
type Option func(*options)

type options struct {
	reg prometheus.Registerer
	log *slog.Logger
}

// WithRegisterer registers the Manager's metrics on reg. Without it (or with
// nil) the Manager records no metrics.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(o *options) { o.reg = reg }
}

// WithLogger sets the logger for reconnects and other events worth an
// operator's attention. Without it nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// conn is one crypto11 context: one login, one session pool. A reconnect
// replaces it whole; gen tells cached signers whether their handles belong
// to the current one.
type conn struct {
	c11    *crypto11.Context
	gen    uint64 // Manager-local, increases with each new conn
	modGen uint64 // library generation when opened (see module.gen)
}

// flight is a reconnect in progress that concurrent callers wait for.
type flight struct {
	done chan struct{}
	conn *conn
	err  error
}

// Manager manages the keys of one token and hands out signers for them. It
// is safe for concurrent use.
type Manager struct {
	cfg Config
	mod *module
	log *slog.Logger
	met *metrics

	state atomic.Pointer[conn] // nil while the token is unavailable

	mu      sync.Mutex // guards the fields below and the swap of state
	nextGen uint64
	flight  *flight
	closed  bool

	keygenMu sync.Mutex // makes GenerateKey's duplicate-id check atomic in-process

	signersMu sync.Mutex
	signers   map[string]*cachedSigner
}

type cachedSigner struct {
	key    *keySigner
	signer crypto.Signer // key, decorated with metrics when enabled
}

// Open connects to the token and logs in. It fails (with ErrUnavailable for
// an unreachable token) rather than returning a Manager that cannot work:
// start-up should fail fast. Later outages are survived without restarts.
func Open(cfg Config, opts ...Option) (*Manager, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Module == "":
		return nil, errors.New("hsm: config: Module is required")
	case cfg.TokenLabel == "":
		return nil, errors.New("hsm: config: TokenLabel is required")
	case cfg.MaxSessions < 0 || cfg.MaxSessions == 1:
		return nil, fmt.Errorf("hsm: config: MaxSessions %d: must be 0 (default) or at least 2", cfg.MaxSessions)
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	mod, err := moduleFor(cfg.Module)
	if err != nil {
		return nil, fmt.Errorf("hsm: open: %w", err)
	}
	c11, modGen, err := mod.openContext(cfg, false)
	if err != nil {
		return nil, fmt.Errorf("hsm: open token %q: %w", cfg.TokenLabel, classify(err))
	}
	// Registered only once the token is open, so a failed Open can be
	// retried with the same registerer.
	met, err := newMetrics(o.reg)
	if err != nil {
		mod.closeContext(c11)
		return nil, fmt.Errorf("hsm: register metrics: %w", err)
	}
	m := &Manager{cfg: cfg, mod: mod, log: o.log, met: met, signers: map[string]*cachedSigner{}}
	m.nextGen = 1
	m.state.Store(&conn{c11: c11, gen: 1, modGen: modGen})
	met.setUp(true)
	return m, nil
}

// classify wraps errors that mean "the token is not there" with
// ErrUnavailable, keeping the detail.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	if needsReconnect(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// current returns the live conn, reconnecting first if there is none.
func (m *Manager) current(ctx context.Context) (*conn, error) {
	if c := m.state.Load(); c != nil {
		return c, nil
	}
	return m.reconnect(ctx, nil)
}

// reconnect replaces the failed conn (nil when none is live) with a new one.
// Concurrent callers share one attempt; a caller whose failed conn was
// already replaced gets the replacement at once.
func (m *Manager) reconnect(ctx context.Context, failed *conn) (*conn, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	if cur := m.state.Load(); cur != nil && cur != failed {
		m.mu.Unlock()
		return cur, nil
	}
	if f := m.flight; f != nil {
		m.mu.Unlock()
		select {
		case <-f.done:
			return f.conn, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	m.flight = f
	m.state.Store(nil) // new callers now wait for the flight instead of using failed
	m.mu.Unlock()

	f.conn, f.err = m.doReconnect(failed)

	m.mu.Lock()
	m.flight = nil
	if f.err == nil {
		if m.closed {
			// Close ran while we reconnected: do not leak the new context.
			m.mu.Unlock()
			m.mod.closeContext(f.conn.c11)
			f.conn, f.err = nil, ErrClosed
			close(f.done)
			return nil, ErrClosed
		}
		m.state.Store(f.conn)
	}
	m.mu.Unlock()
	close(f.done)
	m.met.reconnected(f.err)
	return f.conn, f.err
}

func (m *Manager) doReconnect(failed *conn) (*conn, error) {
	reinit := false
	if failed != nil {
		m.log.Warn("hsm: token connection lost, reconnecting", "token", m.cfg.TokenLabel, "module", m.mod.path)
		// Sessions of the failed context are returned by the operations
		// that failed on them, so this does not block for long.
		m.mod.closeContext(failed.c11)
		// Re-initialise the library only if nobody did since our context
		// was opened (another Manager on the same library may have).
		m.mod.mu.Lock()
		reinit = m.mod.gen == failed.modGen
		m.mod.mu.Unlock()
	}
	c11, modGen, err := m.mod.openContext(m.cfg, reinit)
	if err != nil {
		err = fmt.Errorf("%w: reconnect to token %q: %w", ErrUnavailable, m.cfg.TokenLabel, err)
		m.log.Error("hsm: reconnect failed", "token", m.cfg.TokenLabel, "err", err)
		return nil, err
	}
	m.mu.Lock()
	m.nextGen++
	c := &conn{c11: c11, gen: m.nextGen, modGen: modGen}
	m.mu.Unlock()
	m.log.Info("hsm: reconnected", "token", m.cfg.TokenLabel, "generation", c.gen)
	return c, nil
}

// do runs op on the live conn; if it fails because the conn is dead, it
// reconnects (once for all concurrent callers) and runs op once more.
func (m *Manager) do(ctx context.Context, op func(*conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := m.current(ctx)
	if err != nil {
		return err
	}
	return m.retryAfter(ctx, c, m.call(c, op), op)
}

// retryAfter handles the outcome err of a first attempt on conn c: if the
// conn is dead it reconnects and runs op once more.
func (m *Manager) retryAfter(ctx context.Context, c *conn, err error, op func(*conn) error) error {
	if err == nil || !m.retryable(c, err) {
		return classify(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if c, err = m.reconnect(ctx, c); err != nil {
		return err
	}
	return classify(m.call(c, op))
}

// call runs op while the library cannot be finalised underneath it.
func (m *Manager) call(c *conn, op func(*conn) error) error {
	m.mod.lib.RLock()
	defer m.mod.lib.RUnlock()
	return op(c)
}

// retryable: the error came from a dead conn, or from a conn that a
// concurrent caller has already retired (crypto11 then says "closed").
func (m *Manager) retryable(c *conn, err error) bool {
	if errorsIsAny(err, ErrKeyNotFound, ErrKeyExists, ErrBadDigest, ErrUnsupported) {
		return false
	}
	return needsReconnect(err) || m.state.Load() != c
}

// algoSpec is a parsed algo name.
type algoSpec struct {
	rsaBits int
	curve   elliptic.Curve
}

var algos = map[string]algoSpec{
	"rsa-2048":   {rsaBits: 2048},
	"rsa-3072":   {rsaBits: 3072},
	"rsa-4096":   {rsaBits: 4096},
	"ecdsa-p256": {curve: elliptic.P256()},
	"ecdsa-p384": {curve: elliptic.P384()},
}

// Algorithms lists the algo names GenerateKey accepts.
func Algorithms() []string {
	return []string{"rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384"}
}

// algoOf names the algorithm of a public key as GenerateKey would.
func algoOf(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ecdsa-p256"
		case elliptic.P384():
			return "ecdsa-p384"
		}
		return "ecdsa-" + k.Curve.Params().Name
	}
	return "unknown"
}

func checkID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("hsm: key id must be 1..%d bytes, got %d", maxIDLen, len(id))
	}
	return nil
}

// GenerateKey creates a key pair with the given id inside the token and
// returns its public key. algo is one of Algorithms(). The private key is
// sensitive, not extractable, persistent and sign-only. An id already in use
// gives ErrKeyExists.
func (m *Manager) GenerateKey(ctx context.Context, id, algo string) (pub crypto.PublicKey, err error) {
	done := m.met.begin("generate_key", algo)
	defer func() { done(err) }()
	if err := checkID(id); err != nil {
		return nil, err
	}
	spec, ok := algos[algo]
	if !ok {
		return nil, fmt.Errorf("generate key %q: %w: algo %q", id, ErrUnsupported, algo)
	}
	m.keygenMu.Lock()
	defer m.keygenMu.Unlock()
	err = m.do(ctx, func(c *conn) error {
		existing, err := c.c11.FindPrivateKeys([]byte(id), nil)
		if err != nil {
			return err
		}
		if len(existing) > 0 {
			return ErrKeyExists
		}
		pubT, privT, err := keyTemplates(id, spec)
		if err != nil {
			return err
		}
		var s crypto11.Signer
		if spec.rsaBits > 0 {
			s, err = c.c11.GenerateRSAKeyPairWithAttributes(pubT, privT, spec.rsaBits)
		} else {
			s, err = c.c11.GenerateECDSAKeyPairWithAttributes(pubT, privT, spec.curve)
		}
		if err != nil {
			return err
		}
		pub = s.Public()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("generate key %q (%s): %w", id, algo, err)
	}
	// A signer cached for an earlier key with this id (destroyed by
	// another replica) must not shadow the new key.
	m.forget(id, nil)
	m.log.Info("hsm: key generated", "id", id, "algo", algo)
	return pub, nil
}

// keyTemplates builds the attribute templates of a new key pair. crypto11
// only adds its defaults where we set nothing, and its RSA default would
// allow decryption: we say everything explicitly.
func keyTemplates(id string, spec algoSpec) (pub, priv crypto11.AttributeSet, err error) {
	pub, err = crypto11.NewAttributeSetWithIDAndLabel([]byte(id), []byte(id))
	if err != nil {
		return nil, nil, err
	}
	priv = pub.Copy()
	set := func(a crypto11.AttributeSet, kv map[crypto11.AttributeType]bool) {
		for k, v := range kv {
			if err == nil {
				err = a.Set(k, v)
			}
		}
	}
	set(pub, map[crypto11.AttributeType]bool{
		crypto11.CkaToken:  true,
		crypto11.CkaVerify: true,
	})
	set(priv, map[crypto11.AttributeType]bool{
		crypto11.CkaToken:       true,
		crypto11.CkaPrivate:     true,
		crypto11.CkaSensitive:   true,
		crypto11.CkaExtractable: false,
		crypto11.CkaSign:        true,
		crypto11.CkaDecrypt:     false,
		crypto11.CkaUnwrap:      false,
	})
	if spec.rsaBits > 0 {
		set(pub, map[crypto11.AttributeType]bool{crypto11.CkaEncrypt: false, crypto11.CkaWrap: false})
	} else {
		set(priv, map[crypto11.AttributeType]bool{crypto11.CkaDerive: false})
	}
	return pub, priv, err
}

// PublicKey returns the public key of the key pair id (ErrKeyNotFound if
// there is none).
func (m *Manager) PublicKey(ctx context.Context, id string) (crypto.PublicKey, error) {
	s, err := m.Signer(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.Public(), nil
}

// Signer returns a crypto.Signer for the key pair id. Signers are cached per
// id, so asking again is cheap and signing does no object search; the same
// signer keeps working across reconnects (it re-resolves the id by itself).
// Sign accepts SHA-256/384/512 digests: PKCS#1 v1.5 or, with
// *rsa.PSSOptions, PSS for RSA keys; ASN.1 DER ECDSA for EC keys.
func (m *Manager) Signer(ctx context.Context, id string) (signer crypto.Signer, err error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	m.signersMu.Lock()
	cs, ok := m.signers[id]
	m.signersMu.Unlock()
	if ok {
		return cs.signer, nil
	}
	done := m.met.begin("find_key", "")
	defer func() { done(err) }()
	var found *resolved
	err = m.do(ctx, func(c *conn) error {
		r, err := m.resolve(c, id)
		found = r
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("signer %q: %w", id, err)
	}
	ks := &keySigner{m: m, id: id, pub: found.s.Public()}
	ks.algo = algoOf(ks.pub)
	ks.cur.Store(found)
	m.signersMu.Lock()
	defer m.signersMu.Unlock()
	if cs, ok := m.signers[id]; ok { // lost a race: keep the first
		return cs.signer, nil
	}
	cs = &cachedSigner{key: ks, signer: m.met.wrapSigner(ks, ks.algo)}
	m.signers[id] = cs
	return cs.signer, nil
}

// forget drops the cached signer of id (only if it is ks, when ks is not
// nil) and makes signers already handed out for it fail with
// ErrKeyNotFound.
func (m *Manager) forget(id string, ks *keySigner) {
	m.signersMu.Lock()
	defer m.signersMu.Unlock()
	cs, ok := m.signers[id]
	if !ok || (ks != nil && cs.key != ks) {
		return
	}
	cs.key.destroyed.Store(true)
	delete(m.signers, id)
}

// resolve finds the key pair id on conn c.
func (m *Manager) resolve(c *conn, id string) (*resolved, error) {
	pairs, err := m.findPairs(c, id)
	if err != nil {
		return nil, err
	}
	return &resolved{gen: c.gen, s: pairs[0]}, nil
}

// findPairs finds the key pairs with CKA_ID id; ErrKeyNotFound if none.
// Private keys are invisible without a login, and a token that lost our
// login (all sessions closed underneath) answers "nothing found" rather
// than an error: so before saying ErrKeyNotFound, make sure we are still
// logged in, and if not return an error that makes the caller reconnect.
func (m *Manager) findPairs(c *conn, id string) ([]crypto11.Signer, error) {
	pairs, err := c.c11.FindKeyPairs([]byte(id), nil)
	if err != nil {
		return nil, err
	}
	if len(pairs) == 0 {
		if err := m.checkLogin(); err != nil {
			return nil, err
		}
		return nil, ErrKeyNotFound
	}
	return pairs, nil
}

// DestroyKey deletes the key pair id from the token and forgets its cached
// signer (signers already handed out fail with ErrKeyNotFound from then on).
func (m *Manager) DestroyKey(ctx context.Context, id string) (err error) {
	done := m.met.begin("destroy_key", "")
	defer func() { done(err) }()
	if err := checkID(id); err != nil {
		return err
	}
	err = m.do(ctx, func(c *conn) error {
		pairs, err := m.findPairs(c, id)
		if err != nil {
			return err
		}
		for _, p := range pairs {
			if err := p.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || errors.Is(err, ErrKeyNotFound) {
		m.forget(id, nil)
	}
	if err != nil {
		return fmt.Errorf("destroy key %q: %w", id, err)
	}
	m.log.Info("hsm: key destroyed", "id", id)
	return nil
}

// Ready reports whether the token is reachable and the Manager logged in to
// it; the error says why not (wrapping ErrUnavailable). A failed check
// triggers a reconnect, so a readiness probe also heals the Manager once the
// token is back.
func (m *Manager) Ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := m.current(ctx)
	if err == nil {
		if err = m.lockedCheck(c); err != nil && m.retryable(c, err) {
			if c, err = m.reconnect(ctx, c); err == nil {
				err = m.lockedCheck(c)
			}
		}
	}
	if err != nil {
		if errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("hsm token %q not ready: %w", m.cfg.TokenLabel, err)
	}
	return nil
}

// readyProbeID is a key id nobody uses: searching for it exercises one of
// crypto11's pooled sessions end to end without touching a key.
var readyProbeID = []byte("\x00sigillo-ready-probe")

// lockedCheck checks conn c: a search through one of its pooled sessions
// (session alive, token reachable), then, where we can see it, the login.
func (m *Manager) lockedCheck(c *conn) error {
	m.mod.lib.RLock()
	defer m.mod.lib.RUnlock()
	if _, err := c.c11.FindKeyPairs(readyProbeID, nil); err != nil {
		return err
	}
	return m.checkLogin()
}

// checkLogin looks at the token through our own session on the raw handle:
// present, and this process logged in as user (login state is per token and
// application, shared by all its sessions, so a fresh session shows
// crypto11's login). It says nothing (nil) on modules whose raw handle does
// not share crypto11's state. The caller holds m.mod.lib for reading.
func (m *Manager) checkLogin() error {
	if !m.mod.shared {
		return nil
	}
	p := m.mod.raw
	slot, err := findSlot(p, m.cfg.TokenLabel)
	if err != nil {
		return err
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	defer func() { _ = p.CloseSession(s) }()
	info, err := p.GetSessionInfo(s)
	if err != nil {
		return fmt.Errorf("session info: %w", err)
	}
	if info.State != pkcs11.CKS_RO_USER_FUNCTIONS && info.State != pkcs11.CKS_RW_USER_FUNCTIONS {
		return fmt.Errorf("session state %d: %w", info.State, pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN))
	}
	return nil
}

// Close releases the token. Signers handed out fail with ErrClosed after.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	c := m.state.Swap(nil)
	m.mu.Unlock()
	if c != nil {
		m.mod.closeContext(c.c11)
	}
	m.met.setUp(false)
	return nil
}
