package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sigillo/sigillo/softhsm-test"
)

// binary is the sigillo executable built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sigillo-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "sigillo")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build sigillo: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cleanEnv is the environment without any SIGILLO_ configuration.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SIGILLO_") || strings.HasPrefix(kv, "SIGILLO_TEST_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// runBinary runs cmd and returns its exit status, standard output and
// standard error; a command that cannot run fails the test.
func runBinary(t *testing.T, cmd *exec.Cmd) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return exitCode(t, cmd.Run()), stdout.String(), stderr.String()
}

// exitCode is the exit status behind a finished command's error (0 for
// nil); any other error fails the test.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func TestBadConfigExitsTwoListingEveryProblem(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	os.WriteFile(file, []byte("listen: 127.0.0.1:8080\nunknown_thing: 1\n"), 0o600)
	cmd := exec.Command(binary, "check-config", "--config", file)
	cmd.Env = cleanEnv("SIGILLO_PUBLIC_URL=not a url", "SIGILLO_PKCS11_MODULE=/nonexistent/libpkcs11.so")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("want exit 2, got %v\n%s", err, out)
	}
	for _, want := range []string{"unknown_thing", "public_url", "pkcs11.module"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not mention %s:\n%s", want, out)
		}
	}
}

func TestCheckConfigRedactsSecrets(t *testing.T) {
	cmd := exec.Command(binary, "check-config")
	cmd.Env = cleanEnv("SIGILLO_ADMIN_TOKEN=very-secret-operator-token", "SIGILLO_PKCS11_PIN=987654")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "very-secret") || strings.Contains(string(out), "987654") {
		t.Fatalf("secret printed:\n%s", out)
	}
	if !strings.Contains(string(out), "<redacted>") {
		t.Fatalf("no redaction marker:\n%s", out)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeEmbeddedDefaults starts `sigillo serve` with no configuration in
// an empty directory, as a newcomer would, and checks the dev defaults,
// the operational endpoints and a graceful SIGTERM.
func TestServeEmbeddedDefaults(t *testing.T) {
	softhsmtest.Require(t)
	dir := t.TempDir()
	addr := freePort(t)
	cmd := exec.Command(binary, "serve")
	cmd.Dir = dir
	cmd.Env = cleanEnv("SIGILLO_LISTEN="+addr, "SOFTHSM2_CONF=")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	base := "http://" + addr
	waitReady(t, base+"/readyz", 30*time.Second)
	for _, f := range []string{"var/sigillo.db", "var/admin-token", "var/softhsm/pins.json", "var/softhsm/softhsm2.conf"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("dev default %s missing: %v", f, err)
		}
		if strings.Contains(f, "token") || strings.Contains(f, "pins") {
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
			}
		}
	}
	tok, _ := os.ReadFile(filepath.Join(dir, "var/admin-token"))
	if body := get(t, base+"/healthz", 200); !strings.Contains(body, "ok") {
		t.Errorf("healthz: %s", body)
	}
	if body := get(t, base+"/metrics", 200); !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "sigillo_http_requests_total") {
		t.Errorf("metrics lack runtime or http series")
	}
	// The operator API refuses a wrong token in the CSC error shape.
	req, _ := http.NewRequest("GET", base+"/admin/v1/users/x", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 && resp.StatusCode != 404 {
		t.Errorf("wrong admin token: status %d %s", resp.StatusCode, b)
	}
	_ = tok

	// SIGTERM: drain and exit 0.
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGTERM")
	}
	var all []string
	for l := range logs {
		all = append(all, l)
	}
	if !strings.Contains(strings.Join(all, "\n"), "generated operator API token") {
		t.Errorf("generated admin token not announced on first start")
	}
}

func waitReady(t *testing.T, url string, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not ready within %v (last: %v)", url, within, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %s", url, resp.StatusCode, want, b)
	}
	return string(b)
}
