package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigillo/sigillo/csc"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/server/servertest"
	"github.com/sigillo/sigillo/signdoc/signdoctest"
)

// TestSignCommand runs the built `sigillo sign` against a live CSC server
// (real CA with OCSP/TSA endpoints, sam, SoftHSM2, SQLite) and checks every
// signed PDF with qpdf, pdfsig and openssl.
func TestSignCommand(t *testing.T) {
	env := signdoctest.New(t, nil)
	csc.New(env.Sam, csc.Options{TSA: env.Authority}).Register(env.Engine)
	v := signdoctest.NewValidators(t, env.Authority.Root(), env.Authority.Issuer())
	const user = "cli-signer"
	env.User(t, user)
	cred := env.Credential(t, user, sam.NewCredential{SCAL: 2, Multisign: 20})

	dir := t.TempDir()
	var inputs []string
	for i, name := range []string{"a.pdf", "b.pdf", "c.pdf", "d.pdf", "e.pdf"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, signdoctest.MakePDF(1+i, 500*i, "cli "+name), 0o600); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, p)
	}
	sign := func(args ...string) (int, string, string) {
		cmd := exec.Command(binary, append([]string{"sign"}, args...)...)
		cmd.Env = cleanEnv("SIGILLO_SIGN_PASSWORD=" + signdoctest.Password)
		return runBinary(t, cmd)
	}

	t.Run("batch_B-T", func(t *testing.T) {
		out := filepath.Join(dir, "signed")
		before := env.Audit.Count("signature.sign", "success")
		code, stdout, stderr := sign(append([]string{"--server", env.URL, "--user", user, "--credential", cred.CredentialID,
			"--pin", signdoctest.PIN, "--level", "B-T", "--out", out}, inputs...)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if !strings.Contains(stderr, "signed 5/5") || !strings.Contains(stderr, "documents/s") {
			t.Errorf("no progress on stderr:\n%s", stderr)
		}
		if got := env.Audit.Count("signature.sign", "success"); got != before+1 {
			t.Errorf("%d signHash calls, want one for the batch", got-before)
		}
		for _, in := range inputs {
			name := strings.TrimSuffix(filepath.Base(in), ".pdf") + "-signed.pdf"
			path := filepath.Join(out, name)
			if !strings.Contains(stdout, path) {
				t.Errorf("stdout does not list %s:\n%s", path, stdout)
			}
			signed, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			orig, _ := os.ReadFile(in)
			if !bytes.HasPrefix(signed, orig) {
				t.Fatalf("%s is not an incremental update of %s", path, in)
			}
			v.CheckPDF(t, "cli-"+name, signed, signdoctest.PDFWant{Sigs: 1, SignatureTimestamps: 1})
		}
		left, _ := filepath.Glob(filepath.Join(out, ".sigillo-sign-*"))
		if len(left) != 0 {
			t.Errorf("temporary files left: %v", left)
		}
	})

	// B-LT and B-LTA: the validation data comes from the URLs in the
	// certificates (the CA's OCSP responder and CRLs on env.URL), the
	// document time-stamp from the service.
	for _, lv := range []struct {
		level string
		want  signdoctest.PDFWant
	}{
		{"B-LT", signdoctest.PDFWant{Sigs: 1, SignatureTimestamps: 1, DSS: true, TrailingUpdate: true}},
		{"B-LTA", signdoctest.PDFWant{Sigs: 1, DTS: 1, SignatureTimestamps: 1, DSS: true}},
	} {
		t.Run("batch_"+lv.level, func(t *testing.T) {
			out := filepath.Join(dir, "signed-"+lv.level)
			code, _, stderr := sign(append([]string{"--server", env.URL, "--user", user, "--credential", cred.CredentialID,
				"--pin", signdoctest.PIN, "--level", lv.level, "--out", out, "--quiet"}, inputs[:2]...)...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			for _, in := range inputs[:2] {
				name := strings.TrimSuffix(filepath.Base(in), ".pdf") + "-signed.pdf"
				signed, err := os.ReadFile(filepath.Join(out, name))
				if err != nil {
					t.Fatal(err)
				}
				orig, _ := os.ReadFile(in)
				if !bytes.HasPrefix(signed, orig) {
					t.Fatalf("%s is not an incremental update of %s", name, in)
				}
				v.CheckPDF(t, "cli-"+lv.level+"-"+name, signed, lv.want)
			}
			left, _ := filepath.Glob(filepath.Join(out, ".sigillo-sign-*"))
			if len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}

	t.Run("one_file_in_process_flags_after_input", func(t *testing.T) {
		t.Setenv("SIGILLO_SIGN_PASSWORD", signdoctest.Password)
		out := filepath.Join(dir, "one.pdf")
		var stdout, stderr bytes.Buffer
		code := runSign(context.Background(), []string{inputs[0], "--server", env.URL, "--user", user, "--pin", signdoctest.PIN,
			"--credential", cred.CredentialID, "--out", out, "--quiet"}, strings.NewReader(""), &stdout, &stderr)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr.String())
		}
		signed, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		v.CheckPDF(t, "cli-one", signed, signdoctest.PDFWant{Sigs: 1})
		if stderr.Len() != 0 {
			t.Errorf("--quiet printed: %s", stderr.String())
		}
	})

	t.Run("wrong_PIN_writes_nothing", func(t *testing.T) {
		out := filepath.Join(dir, "refused")
		code, _, stderr := sign(append([]string{"--server", env.URL, "--user", user, "--credential", cred.CredentialID,
			"--pin", "00000000", "--out", out}, inputs[:2]...)...)
		if code != 1 || !strings.Contains(stderr, "PIN") {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		entries, _ := os.ReadDir(out)
		if len(entries) != 0 {
			t.Fatalf("files left after a refused batch: %v", entries)
		}
	})

	t.Run("usage_errors", func(t *testing.T) {
		for _, args := range [][]string{
			{"--user", user, "--out", dir, inputs[0]},
			{"--server", env.URL, "--user", user, "--out", dir},
			{"--server", env.URL, "--user", user, "--level", "B-LTX", "--out", dir, inputs[0]},
			{"--server", env.URL, "--user", user, "--out", filepath.Join(dir, "x.pdf"), inputs[0], inputs[1]},
		} {
			if code, _, stderr := sign(args...); code != 2 {
				t.Errorf("%v: exit %d, want 2\n%s", args, code, stderr)
			}
		}
	})
}

// TestSignCommand_realServer runs `sigillo sign` against a whole sigillo
// replica (server.New as `serve` builds it, via servertest): user and
// credential enrolled through the admin API, signHash and timestamp
// through the production wiring.
func TestSignCommand_realServer(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	admin := func(path string, body any) map[string]any { return adminCall(t, srv, http.MethodPost, path, body) }
	user := admin("/users", map[string]any{"username": "cli-real", "password": signdoctest.Password, "email": "cli@example.test",
		"phone": "+393330000001", "givenName": "Anna", "surname": "Bianchi", "fiscalCode": "BNCNNA80A41H501X"})
	cred := admin("/credentials", map[string]any{"userID": user["userID"], "pin": signdoctest.PIN, "keyAlgo": "ecdsa-p256",
		"otp": "none", "scal": 2, "multisign": 5})
	v := signdoctest.NewValidators(t, rootOf(t, cred))
	dir := t.TempDir()
	in := filepath.Join(dir, "contract.pdf")
	os.WriteFile(in, signdoctest.MakePDF(3, 2000, "real server"), 0o600)
	out := filepath.Join(dir, "contract-signed.pdf")
	cmd := exec.Command(binary, "sign", "--server", srv.URL, "--user", "cli-real", "--pin", signdoctest.PIN,
		"--level", "B-T", "--out", out, in)
	cmd.Env = cleanEnv("SIGILLO_SIGN_PASSWORD=" + signdoctest.Password)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sigillo sign: %v\n%s", err, b)
	}
	signed, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	text := v.CheckPDF(t, "cli-real", signed, signdoctest.PDFWant{Sigs: 1, SignatureTimestamps: 1})
	if !strings.Contains(text, "Anna Bianchi") {
		t.Errorf("pdfsig does not name the holder:\n%s", text)
	}
}

// adminCall sends body (nil for none) to the operator API and returns the
// decoded answer, failing the test unless it is a 200 or 201.
func adminCall(t *testing.T, srv *servertest.Server, method, path string, body any) map[string]any {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, srv.URL+"/admin/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, m)
	}
	return m
}

// rootOf returns the last certificate of the chain in an admin
// credentials answer: our root.
func rootOf(t *testing.T, cred map[string]any) *x509.Certificate {
	t.Helper()
	certs := cred["certificates"].([]any)
	der, err := base64.StdEncoding.DecodeString(certs[len(certs)-1].(string))
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestSignCommand_smsOTP: for a credential whose OTP comes by SMS, `sigillo
// sign` without --otp has the service send it (getChallenge) and reads the
// code from standard input; the test plays the holder, reading the SMS
// from the development outbox once the prompt appears.
func TestSignCommand_smsOTP(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	const phone = "+393330000002"
	user := adminCall(t, srv, http.MethodPost, "/users", map[string]any{"username": "cli-sms", "password": signdoctest.Password,
		"email": "sms@example.test", "phone": phone, "givenName": "Carla", "surname": "Verdi", "fiscalCode": "VRDCRL80A41H501U"})
	cred := adminCall(t, srv, http.MethodPost, "/credentials", map[string]any{"userID": user["userID"], "pin": signdoctest.PIN,
		"keyAlgo": "ecdsa-p256", "otp": "sms", "scal": 2, "multisign": 5})
	v := signdoctest.NewValidators(t, rootOf(t, cred))
	dir := t.TempDir()
	in := filepath.Join(dir, "order.pdf")
	os.WriteFile(in, signdoctest.MakePDF(2, 800, "sms otp"), 0o600)
	run := func(stdin string, answer bool) (int, string) {
		out := filepath.Join(dir, "order-signed.pdf")
		cmd := exec.Command(binary, "sign", "--server", srv.URL, "--user", "cli-sms", "--pin", signdoctest.PIN,
			"--out", out, "--quiet", in)
		cmd.Env = cleanEnv("SIGILLO_SIGN_PASSWORD=" + signdoctest.Password)
		w, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		prompt := newWatch()
		var stdout bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, prompt
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if answer {
			if !prompt.wait("Code: ", 30*time.Second) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("no OTP prompt:\n%s", prompt)
			}
			msgs, _ := adminCall(t, srv, http.MethodGet, "/outbox?to="+url.QueryEscape(phone), nil)["messages"].([]any)
			if len(msgs) == 0 {
				t.Fatal("no SMS in the outbox")
			}
			// Newest first: the code this run's getChallenge sent.
			m := regexp.MustCompile(`code is (\d+)`).FindStringSubmatch(msgs[0].(map[string]any)["message"].(string))
			if m == nil {
				t.Fatalf("no code in %v", msgs[0])
			}
			wrong := []byte(m[1])
			wrong[len(wrong)-1] = '0' + (wrong[len(wrong)-1]-'0'+1)%10
			stdin = strings.NewReplacer("CODE", m[1], "WRONG", string(wrong)).Replace(stdin)
		}
		io.WriteString(w, stdin)
		w.Close()
		return exitCode(t, cmd.Wait()), prompt.String()
	}

	// A wrong code: authorize refuses it, nothing is written.
	if code, stderr := run("WRONG\n", true); code != 1 || !strings.Contains(stderr, "OTP is invalid") {
		t.Fatalf("wrong code: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "order-signed.pdf")); !os.IsNotExist(err) {
		t.Fatalf("output written after a refused OTP: %v", err)
	}
	// No code at all (standard input closed).
	if code, stderr := run("", false); code != 1 || !strings.Contains(stderr, "no code given") {
		t.Fatalf("no code: exit %d\n%s", code, stderr)
	}
	// The code from the SMS.
	if code, stderr := run("CODE\n", true); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	signed, err := os.ReadFile(filepath.Join(dir, "order-signed.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	v.CheckPDF(t, "cli-sms", signed, signdoctest.PDFWant{Sigs: 1})
}

// watch is an io.Writer that remembers what was written and lets a test
// wait for a string to appear in it.
type watch struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan struct{}
}

func newWatch() *watch { return &watch{ch: make(chan struct{}, 1)} }

func (w *watch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.ch <- struct{}{}:
	default:
	}
	return w.buf.Write(p)
}

func (w *watch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// wait reports whether s was written within d.
func (w *watch) wait(s string, d time.Duration) bool {
	deadline := time.After(d)
	for !strings.Contains(w.String(), s) {
		select {
		case <-w.ch:
		case <-deadline:
			return false
		}
	}
	return true
}
