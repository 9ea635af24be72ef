package hsm_test

import (
	"context"
	"crypto"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/sigillo/sigillo/hsm"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

// requireTool returns the path of a tool, failing in CI and skipping loudly
// elsewhere when it is missing.
func requireTool(t *testing.T, what string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
		if m, _ := filepath.Glob(c); len(m) > 0 {
			return m[0]
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI (Debian: apt-get install p11-kit p11-kit-modules)", what)
	}
	t.Skipf("!!! SKIPPING %s: %s not installed (Debian: apt-get install p11-kit p11-kit-modules) !!!", t.Name(), what)
	return ""
}

// netHSM is a SoftHSM2 token exported by `p11-kit server` on a unix socket:
// a network HSM on one machine (see NETWORK-HSM.md). Its SoftHSM runs in
// the server process, with its own conf, not in ours.
type netHSM struct {
	t      *testing.T
	p11kit string
	module string // SoftHSM, loaded by the server
	conf   string
	sock   string
	label  string
	cmd    *exec.Cmd
}

func (n *netHSM) start() {
	n.t.Helper()
	_ = os.Remove(n.sock)
	cmd := exec.Command(n.p11kit, "server", "-f", "-n", n.sock, "--provider", n.module, "pkcs11:token="+n.label)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+n.conf)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	// p11-kit server forks a child per client connection, which would
	// outlive the server: give them a process group of their own so the
	// whole "appliance" can be cut away at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start p11-kit server: %v", err)
	}
	n.cmd = cmd
	for i := 0; ; i++ {
		if _, err := os.Stat(n.sock); err == nil {
			return
		}
		if i == 500 {
			n.t.Fatal("p11-kit server did not create its socket within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (n *netHSM) stop() {
	if n.cmd == nil {
		return
	}
	// The group of the server this test started, by its id.
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	_ = n.cmd.Wait()
	n.cmd = nil
}

// TestNetworkHSM_survivesOutage cuts a p11-kit remoted token away by killing
// its server and brings it back: while it is gone, calls fail with
// ErrUnavailable and Ready says so; once it is back, the same cached signer
// signs again, in the same process.
func TestNetworkHSM_survivesOutage(t *testing.T) {
	module := softhsmtest.Require(t)
	p11kit := requireTool(t, "p11-kit", "p11-kit")
	client := requireTool(t, "p11-kit-client.so",
		"/usr/lib/*-linux-gnu/pkcs11/p11-kit-client.so", "/usr/lib64/pkcs11/p11-kit-client.so", "/usr/lib/pkcs11/p11-kit-client.so")
	dir := t.TempDir()
	out, err := exec.Command("sh", "../softhsm-test/mktoken.sh", dir, "net").Output()
	if err != nil {
		t.Fatalf("mktoken.sh: %v", err)
	}
	pin := regexp.MustCompile(`SIGILLO_PKCS11_PIN='([^']+)'`).FindSubmatch(out)
	if pin == nil {
		t.Fatalf("no PIN in mktoken output:\n%s", out)
	}
	n := &netHSM{t: t, p11kit: p11kit, module: module, conf: filepath.Join(dir, "softhsm2.conf"),
		sock: filepath.Join(dir, "p11.sock"), label: "net"}
	n.start()
	t.Cleanup(n.stop)
	t.Setenv("P11_KIT_SERVER_ADDRESS", "unix:path="+n.sock)

	ctx := context.Background()
	m, err := hsm.Open(hsm.Config{Module: client, TokenLabel: "net", PIN: string(pin[1])})
	if err != nil {
		t.Fatalf("Open through p11-kit-client: %v", err)
	}
	defer m.Close()
	if _, err := m.GenerateKey(ctx, "k", "ecdsa-p256"); err != nil {
		t.Fatal(err)
	}
	s, err := m.Signer(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	sign := func() error {
		d := digestOf(crypto.SHA256, randomMsg(t))
		sig, err := s.Sign(nil, d, crypto.SHA256)
		if err != nil {
			return err
		}
		return verify(s.Public(), d, sig, crypto.SHA256)
	}
	if err := sign(); err != nil {
		t.Fatalf("sign while up: %v", err)
	}

	n.stop()
	for i := range 3 {
		if err := sign(); !errors.Is(err, hsm.ErrUnavailable) {
			t.Fatalf("sign #%d while down: %v, want ErrUnavailable", i, err)
		}
	}
	if err := m.Ready(ctx); !errors.Is(err, hsm.ErrUnavailable) {
		t.Fatalf("Ready while down: %v, want ErrUnavailable", err)
	} else {
		t.Logf("Ready while down: %v", err)
	}
	if _, err := m.PublicKey(ctx, "other"); !errors.Is(err, hsm.ErrUnavailable) {
		t.Fatalf("PublicKey while down: %v, want ErrUnavailable", err)
	}

	n.start()
	if err := sign(); err != nil {
		t.Fatalf("sign after the HSM came back: %v", err)
	}
	if err := m.Ready(ctx); err != nil {
		t.Fatalf("Ready after the HSM came back: %v", err)
	}
}
