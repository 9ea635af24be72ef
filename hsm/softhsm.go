package hsm

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
)

// softhsmModuleCandidates are where distributions install SoftHSM2.
var softhsmModuleCandidates = []string{
	"/usr/lib/softhsm/libsofthsm2.so", // Debian, Ubuntu (symlink)
	"/usr/lib/" + runtime.GOARCH + "-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so", // Fedora, RHEL
	"/usr/lib64/softhsm/libsofthsm2.so",
	"/usr/lib/pkcs11/libsofthsm2.so", // Arch
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so", // macOS
	"/usr/local/opt/softhsm/lib/softhsm/libsofthsm2.so",
}

// FindSoftHSMModule returns the path of the SoftHSM2 PKCS#11 library: the
// SOFTHSM2_MODULE environment variable if set, else the first of the usual
// install locations that exists. ErrModuleNotFound if none does.
func FindSoftHSMModule() (string, error) {
	if p := os.Getenv("SOFTHSM2_MODULE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: SOFTHSM2_MODULE=%s: %w", ErrModuleNotFound, p, err)
		}
		return p, nil
	}
	for _, p := range softhsmModuleCandidates {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (install the softhsm2 package, or set SOFTHSM2_MODULE)", ErrModuleNotFound)
}

// softhsmConf is the SoftHSM configuration this process uses. SoftHSM reads
// SOFTHSM2_CONF at every C_Initialize, and a reconnect re-initialises the
// library: so once a process has chosen a conf it must never change it, or a
// reconnect would silently switch token directories.
var softhsmConf struct {
	sync.Mutex
	path     string // the conf SOFTHSM2_CONF points at
	tokenDir string
}

// pinsFile is dir/pins.json.
type pinsFile struct {
	SOPIN   string `json:"so_pin"`
	UserPIN string `json:"user_pin"`
}

// ProvisionSoftHSM makes sure a SoftHSM2 token labelled label exists in a
// private directory and returns a Config for it. It is for development
// defaults and tests; nothing global on the machine is touched.
//
// On the first call in a process it creates dir (mode 0700) with its own
// softhsm2.conf (tokendir dir/tokens, file object store, log level ERROR)
// and points SOFTHSM2_CONF at it. That conf is then fixed for the process:
// later calls, even with another dir, create their tokens in that same
// token directory (SoftHSM reads its conf only at C_Initialize, and one
// process has one SoftHSM state), and write into their own dir only
// pins.json and, if absent, a softhsm2.conf that points at the shared token
// directory (so humans can inspect the token). Call it before anything in
// the process loads SoftHSM.
//
// The SO and user PINs are random on first use and kept in dir/pins.json
// (mode 0600), reused later; the token is initialised (C_InitToken on a free
// slot, then C_InitPIN) only if no token has the label yet.
func ProvisionSoftHSM(dir, label string) (Config, error) {
	if label == "" || len(label) > 32 {
		return Config{}, fmt.Errorf("provision softhsm: token label must be 1..32 bytes, got %q", label)
	}
	modPath, err := FindSoftHSMModule()
	if err != nil {
		return Config{}, fmt.Errorf("provision softhsm: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return Config{}, fmt.Errorf("provision softhsm: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Config{}, fmt.Errorf("provision softhsm: %w", err)
	}

	softhsmConf.Lock()
	defer softhsmConf.Unlock()
	confPath := filepath.Join(dir, "softhsm2.conf")
	if softhsmConf.path == "" {
		tokenDir := filepath.Join(dir, "tokens")
		if err := writeSoftHSMConf(confPath, tokenDir, false); err != nil {
			return Config{}, fmt.Errorf("provision softhsm: %w", err)
		}
		// Honour an existing conf in dir (a restart of `sigillo serve`):
		// its token directory is where this dir's tokens are.
		if tokenDir, err = confTokenDir(confPath); err != nil {
			return Config{}, fmt.Errorf("provision softhsm: %w", err)
		}
		if err := os.MkdirAll(tokenDir, 0o700); err != nil {
			return Config{}, fmt.Errorf("provision softhsm: %w", err)
		}
		if err := os.Setenv("SOFTHSM2_CONF", confPath); err != nil {
			return Config{}, fmt.Errorf("provision softhsm: %w", err)
		}
		softhsmConf.path, softhsmConf.tokenDir = confPath, tokenDir
	} else if confPath != softhsmConf.path {
		// Informational copy for humans; the process keeps the first conf.
		if err := writeSoftHSMConf(confPath, softhsmConf.tokenDir, false); err != nil {
			return Config{}, fmt.Errorf("provision softhsm: %w", err)
		}
	}

	pins, err := loadOrCreatePins(filepath.Join(dir, "pins.json"))
	if err != nil {
		return Config{}, fmt.Errorf("provision softhsm: %w", err)
	}
	mod, err := moduleFor(modPath)
	if err != nil {
		return Config{}, fmt.Errorf("provision softhsm: %w", err)
	}
	if err := mod.withLibrary(func(p *pkcs11.Ctx) error { return initToken(p, label, pins) }); err != nil {
		return Config{}, fmt.Errorf("provision softhsm token %q: %w", label, err)
	}
	return Config{Module: modPath, TokenLabel: label, PIN: pins.UserPIN}, nil
}

// SoftHSMConfPath returns the SoftHSM conf this process uses (set by the
// first ProvisionSoftHSM), or "" before that.
func SoftHSMConfPath() string {
	softhsmConf.Lock()
	defer softhsmConf.Unlock()
	return softhsmConf.path
}

func writeSoftHSMConf(path, tokenDir string, overwrite bool) error {
	if !overwrite {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
	}
	conf := fmt.Sprintf("# Private SoftHSM2 configuration written by sigillo (hsm.ProvisionSoftHSM).\n"+
		"directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokenDir)
	return os.WriteFile(path, []byte(conf), 0o600)
}

// confTokenDir reads directories.tokendir from a SoftHSM conf.
func confTokenDir(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var dir string
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "directories.tokendir" {
			dir = strings.TrimSpace(v)
		}
	}
	if dir == "" {
		return "", fmt.Errorf("%s: no directories.tokendir", path)
	}
	return dir, nil
}

func loadOrCreatePins(path string) (pinsFile, error) {
	var p pinsFile
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &p); err != nil {
			return p, fmt.Errorf("%s: %w", path, err)
		}
		if p.SOPIN == "" || p.UserPIN == "" {
			return p, fmt.Errorf("%s: missing so_pin or user_pin", path)
		}
		return p, nil
	case !errors.Is(err, fs.ErrNotExist):
		return p, err
	}
	p = pinsFile{SOPIN: randomPIN(), UserPIN: randomPIN()}
	b, err = json.MarshalIndent(p, "", "  ")
	if err != nil {
		return p, err
	}
	// O_EXCL: two processes provisioning the same dir must not end up
	// with different PINs.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return p, err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close()
		return p, err
	}
	return p, f.Close()
}

func randomPIN() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// initToken creates the token label unless it exists.
func initToken(p *pkcs11.Ctx, label string, pins pinsFile) error {
	if _, err := findSlot(p, label); err == nil {
		return nil
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("list slots: %w", err)
	}
	free, found := uint(0), false
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			return fmt.Errorf("token info of slot %d: %w", s, err)
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			free, found = s, true
			break
		}
	}
	if !found {
		return errors.New("no free slot to initialise a token in")
	}
	if err := p.InitToken(free, pins.SOPIN, label); err != nil {
		return fmt.Errorf("C_InitToken: %w", err)
	}
	// SoftHSM gives the new token a new slot id: look it up again.
	slot, err := findSlot(p, label)
	if err != nil {
		return err
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	defer func() { _ = p.CloseSession(s) }()
	if err := p.Login(s, pkcs11.CKU_SO, pins.SOPIN); err != nil {
		return fmt.Errorf("SO login: %w", err)
	}
	defer func() { _ = p.Logout(s) }()
	if err := p.InitPIN(s, pins.UserPIN); err != nil {
		return fmt.Errorf("C_InitPIN: %w", err)
	}
	return nil
}
