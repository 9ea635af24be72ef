package hsm

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// module is the process-wide record of one PKCS#11 library (by canonical
// path). A PKCS#11 library has one initialisation state per process and
// crypto11 shares one library handle, reference-counted, between all its
// contexts on the same path. So opening, closing and re-initialising
// contexts on a path must be serialised process-wide, which is what mu does.
//
// This is deliberately package-level state: it mirrors state that already is
// process-global (the dlopen'ed library), not a dependency we could inject.
type module struct {
	path string

	mu sync.Mutex
	// lib is held for reading around every PKCS#11 call this package makes
	// on the library, and for writing while the library is initialised,
	// finalised, or a context is opened or closed. PKCS#11 leaves
	// C_Finalize concurrent with other calls undefined, and SoftHSM indeed
	// crashes: a reconnect by one Manager must not finalise the library
	// under another Manager's in-flight signature. Lock order: mu, then lib.
	lib sync.RWMutex
	// refs is how many crypto11 contexts this package holds open on path.
	// When it drops to zero crypto11 finalizes the library itself.
	refs int
	// gen is bumped every time the library is (re)initialised, so a Manager
	// whose context predates the bump knows its sessions died with the old
	// state and does not re-initialise the library a second time.
	gen uint64
	// raw is our own handle on the same library (for most modules dlopen
	// and C_GetFunctionList give the same instance, so the same
	// initialisation and login state: see shared). It is used to
	// re-initialise the library underneath crypto11's shared handle, to
	// check the login without borrowing crypto11's sessions, and to
	// provision SoftHSM tokens. It keeps the library loaded for the process
	// lifetime.
	raw *pkcs11.Ctx
	// shared says whether raw sees the same library state as crypto11's
	// handle. True for ordinary modules (SoftHSM, vendor HSM clients), whose
	// C_GetFunctionList returns one static table. False for modules such as
	// p11-kit-client that hand out an independent instance per
	// C_GetFunctionList: then raw can neither re-initialise crypto11's
	// instance nor see its login, and we rely on crypto11 alone.
	shared bool
}

var modules struct {
	sync.Mutex
	m map[string]*module
}

// moduleFor returns the record for the library at path, loading it once.
func moduleFor(path string) (*module, error) {
	canon, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("pkcs11 module %s: %w", path, err)
	}
	if canon, err = filepath.Abs(canon); err != nil {
		return nil, fmt.Errorf("pkcs11 module %s: %w", path, err)
	}
	modules.Lock()
	defer modules.Unlock()
	if m, ok := modules.m[canon]; ok {
		return m, nil
	}
	raw := pkcs11.New(canon)
	if raw == nil {
		return nil, fmt.Errorf("pkcs11 module %s: cannot load library", canon)
	}
	if modules.m == nil {
		modules.m = map[string]*module{}
	}
	m := &module{path: canon, raw: raw}
	modules.m[canon] = m
	return m, nil
}

// openContext opens a crypto11 context on this library. reinit allows a
// re-initialisation of the library when the failure says the library itself
// is broken and other contexts share crypto11's handle (so crypto11 would not
// initialise it again by itself). It returns the context and the library
// generation it belongs to.
func (m *module) openContext(cfg Config, reinit bool) (*crypto11.Context, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lib.Lock()
	defer m.lib.Unlock()

	c11cfg := func() *crypto11.Config {
		// crypto11 writes defaults into its Config: give it a fresh one.
		return &crypto11.Config{
			Path:        m.path,
			TokenLabel:  cfg.TokenLabel,
			Pin:         cfg.PIN,
			MaxSessions: cfg.MaxSessions,
		}
	}
	c, err := crypto11.Configure(c11cfg())
	if err == nil {
		m.opened()
		return c, m.gen, nil
	}
	code, _ := p11Code(err)
	switch {
	case code == pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED && m.refs == 0:
		// Someone outside this package (a test's raw context, a stale
		// provisioning) initialised the library; crypto11 insists on
		// initialising it itself. Take it over.
		_ = m.raw.Finalize()
	case code == pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED && m.refs > 0 && m.shared:
		// The library was finalized under crypto11's shared handle, which
		// crypto11 will not re-initialise while other contexts hold it.
		if ierr := m.raw.Initialize(); ierr != nil && !isCode(ierr, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			return nil, m.gen, fmt.Errorf("re-initialise library: %w", ierr)
		}
	case reinit && m.refs > 0 && m.shared && needsLibraryReinit(err):
		// A device-level failure (network HSM gone and back): the library
		// must be finalised and initialised to reconnect.
		_ = m.raw.Finalize()
		if ierr := m.raw.Initialize(); ierr != nil {
			return nil, m.gen, fmt.Errorf("re-initialise library: %w", ierr)
		}
	default:
		return nil, m.gen, err
	}
	m.gen++
	c, err = crypto11.Configure(c11cfg())
	if err != nil {
		return nil, m.gen, err
	}
	m.opened()
	return c, m.gen, nil
}

// opened counts a new context; on the first one (crypto11 just initialised
// the library) it finds out whether raw shares crypto11's library state.
func (m *module) opened() {
	if m.refs == 0 {
		_, err := m.raw.GetSlotList(true)
		m.shared = err == nil
	}
	m.refs++
}

// closeContext closes a context opened by openContext. It blocks until the
// context's sessions are back in its pool.
func (m *module) closeContext(c *crypto11.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lib.Lock()
	defer m.lib.Unlock()
	_ = c.Close()
	m.refs--
	if m.refs == 0 {
		// crypto11 finalized the library with its last reference.
		m.gen++
	}
}

// withLibrary runs f with the raw handle while the library is initialised,
// initialising it (and finalising it afterwards) if no context holds it.
func (m *module) withLibrary(f func(*pkcs11.Ctx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lib.Lock()
	defer m.lib.Unlock()
	if m.refs == 0 {
		err := m.raw.Initialize()
		switch {
		case err == nil:
			defer func() { _ = m.raw.Finalize() }()
		case isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED):
			// Initialised by someone else in the process; leave it so.
		default:
			return fmt.Errorf("initialise %s: %w", m.path, err)
		}
	}
	return f(m.raw)
}

func isCode(err error, code pkcs11.Error) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && e == code
}

// findSlot returns the slot holding the token labelled label.
func findSlot(p *pkcs11.Ctx, label string) (uint, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("list slots: %w", err)
	}
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			return 0, fmt.Errorf("token info of slot %d: %w", s, err)
		}
		if ti.Label == label {
			return s, nil
		}
	}
	return 0, fmt.Errorf("%s: no slot with the token label %q", errTokenNotFoundText, label)
}
