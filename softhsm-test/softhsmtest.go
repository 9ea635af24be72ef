// Package softhsmtest gives tests a private, freshly initialised SoftHSM2
// token and an hsm.Manager opened on it, so every package can test against
// a real PKCS#11 token without touching anything global on the machine.
//
// Usage from any package's tests:
//
//	tok := softhsmtest.New(t)           // fresh token, unique label
//	pub, err := tok.Manager.GenerateKey(ctx, "k1", "ecdsa-p256")
//	signer, err := tok.Manager.Signer(ctx, "k1")
//
// A process has one SoftHSM configuration (SoftHSM reads SOFTHSM2_CONF at
// C_Initialize and a reconnect re-initialises the library), so all tokens
// of a test binary live in one private token directory under
// os.TempDir()/sigillo-softhsm-<pid>; a later test binary removes the
// directories of processes that no longer run. Do not set SOFTHSM2_CONF
// yourself in tests that use this package.
//
// When the SoftHSM2 library is missing, tests fail if CI=true and are
// skipped loudly otherwise.
package softhsmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/sigillo/sigillo/hsm"
)

// Token is a fresh SoftHSM2 token and a Manager logged in to it.
type Token struct {
	// Config opens the token (module path, unique label, user PIN).
	Config hsm.Config
	// Dir holds this token's pins.json (and an informational conf copy).
	Dir string
	// ConfPath is the SoftHSM conf the process uses (SOFTHSM2_CONF).
	ConfPath string
	// Manager is open on the token and closed by t.Cleanup.
	Manager *hsm.Manager
}

var (
	baseOnce sync.Once
	baseDir  string
	baseErr  error
	counter  atomic.Uint64
)

// Require returns the SoftHSM2 module path, or ends the test: t.Fatal when
// CI=true (CI must have SoftHSM2), a loud t.Skip otherwise.
func Require(t testing.TB) string {
	t.Helper()
	module, err := hsm.FindSoftHSMModule()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("SoftHSM2 is required in CI: %v", err)
		}
		t.Skipf("!!! SKIPPING %s: SoftHSM2 not available (%v). Install it (Debian/Ubuntu: apt-get install softhsm2) to run this test. !!!", t.Name(), err)
	}
	return module
}

// New provisions a fresh token with a unique label and opens a Manager on
// it (default MaxSessions, no metrics). Both are released by t.Cleanup.
func New(t testing.TB) *Token {
	t.Helper()
	Require(t)
	cfg, dir := Provision(t)
	m, err := hsm.Open(cfg)
	if err != nil {
		t.Fatalf("softhsmtest: open token %q: %v", cfg.TokenLabel, err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return &Token{Config: cfg, Dir: dir, ConfPath: hsm.SoftHSMConfPath(), Manager: m}
}

// Provision creates a fresh token with a unique label without opening a
// Manager (for tests that open their own, e.g. with metrics or a logger).
// It returns the token's Config and its directory.
func Provision(t testing.TB) (hsm.Config, string) {
	t.Helper()
	Require(t)
	baseOnce.Do(func() {
		removeStale()
		baseDir = filepath.Join(os.TempDir(), "sigillo-softhsm-"+strconv.Itoa(os.Getpid()))
		baseErr = os.MkdirAll(baseDir, 0o700)
	})
	if baseErr != nil {
		t.Fatalf("softhsmtest: %v", baseErr)
	}
	// SoftHSM token labels are at most 32 bytes.
	label := fmt.Sprintf("t%d-%d", os.Getpid(), counter.Add(1))
	dir := filepath.Join(baseDir, label)
	cfg, err := hsm.ProvisionSoftHSM(dir, label)
	if err != nil {
		t.Fatalf("softhsmtest: %v", err)
	}
	return cfg, dir
}

// removeStale deletes token directories left by test processes that are gone.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "sigillo-softhsm-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "sigillo-softhsm-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			_ = os.RemoveAll(d)
		}
	}
}
