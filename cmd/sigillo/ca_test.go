package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/config"
	softhsmtest "github.com/sigillo/sigillo/softhsm-test"
)

type nopAudit struct{}

func (nopAudit) Record(context.Context, audit.Event) error { return nil }

// TestCAHelperProcess is not a test: run as a subprocess with
// SIGILLO_TEST_CA_HELPER=1 it bootstraps the CA on the dev store and
// SoftHSM2 token of SIGILLO_DATA_DIR, as `serve` will on its first start.
// A subprocess, because a process has one SoftHSM configuration.
func TestCAHelperProcess(t *testing.T) {
	if os.Getenv("SIGILLO_TEST_CA_HELPER") != "1" {
		t.Skip("helper process only")
	}
	cfg, err := config.Load("", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := caOpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := caOpenHSM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	_, err = ca.Open(ctx, ca.Config{PublicURL: cfg.PublicURL, KeyAlgo: "ecdsa-p256", Organization: "CLI Test", Country: "IT"},
		keys, st, ca.WithAudit(nopAudit{}), ca.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
}

func TestCAShowAndImport(t *testing.T) {
	softhsmtest.Require(t)
	dir := t.TempDir()
	env := cleanEnv("SIGILLO_DATA_DIR="+dir, "SIGILLO_MODE=dev")
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), exitCode(t, err)
	}
	if out, code := run("ca", "show"); code != 1 || !strings.Contains(out, "no CA yet") {
		t.Fatalf("show before bootstrap: %d %s", code, out)
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestCAHelperProcess$", "-test.v")
	helper.Env = append(env, "SIGILLO_TEST_CA_HELPER=1")
	if out, err := helper.CombinedOutput(); err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("bootstrap helper: %v\n%s", err, out)
	}
	out, code := run("ca", "show", "--pem")
	if code != 0 {
		t.Fatalf("show: %d %s", code, out)
	}
	for _, want := range []string{"CN=CLI Test Root CA", "CN=CLI Test Issuing CA", "CN=CLI Test OCSP Responder", "CN=CLI Test Time-Stamping Unit"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	var chain []*x509.Certificate
	rest := []byte(out)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	if len(chain) != 2 || chain[0].Subject.CommonName != "CLI Test Issuing CA" || chain[0].CheckSignatureFrom(chain[1]) != nil {
		t.Fatalf("PEM chain: %d certificates", len(chain))
	}
	keyIDs := regexp.MustCompile(`key:\s+(\S+)`).FindAllStringSubmatch(out, -1)
	if len(keyIDs) != 4 {
		t.Fatalf("key ids: %v", keyIDs)
	}
	rootKey, issuingKey := keyIDs[0][1], keyIDs[1][1]
	rootFile := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[1].Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing_flags", []string{"ca", "import", "--role", "root"}, 2, "required"},
		{"wrong_key_is_refused", []string{"ca", "import", "--role", "root", "--cert", rootFile, "--key-id", issuingKey, "--replace"}, 1, "differs"},
		{"existing_role_needs_replace", []string{"ca", "import", "--role", "root", "--cert", rootFile, "--key-id", rootKey}, 1, "already stored"},
		{"root_cert_is_not_an_issuing_ca", []string{"ca", "import", "--role", "tsa", "--cert", rootFile, "--key-id", rootKey, "--replace"}, 1, "timeStamping"},
		{"reimport_with_replace", []string{"ca", "import", "--role", "root", "--cert", rootFile, "--key-id", rootKey, "--replace"}, 0, "imported root CA certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := run(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d (want %d): %s", code, tc.code, out)
			}
		})
	}
}
