// Package smtptest runs a real SMTP server for tests: aiosmtpd (Debian's
// python3-aiosmtpd) started by smtpd.py beside this file, in one of three
// modes (STARTTLS, implicit TLS, plain), optionally requiring AUTH, with
// every accepted message stored in a Maildir the test reads back.
package smtptest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sigillo/sigillo/internal/testenv"
)

// Modes of Start.
const (
	StartTLS = "starttls" // STARTTLS required before MAIL
	SMTPS    = "smtps"    // TLS from the first byte
	Plain    = "plain"    // no TLS offered
)

// Server is a running SMTP server on 127.0.0.1.
type Server struct {
	// Port it listens on.
	Port int
	// Roots trusts its certificate (issued for 127.0.0.1 and localhost).
	Roots   *x509.CertPool
	maildir string
}

// Start runs a server in mode; with creds ("user:password") it requires
// AUTH. A missing python3-aiosmtpd fails the test in CI and skips it by
// hand. The server stops when the test ends.
func Start(t testing.TB, mode, creds string) *Server {
	t.Helper()
	return StartAt(t, FreePort(t), mode, creds)
}

// FreePort returns a loopback port nothing listens on (yet): a server
// that is down, until StartAt starts one there.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// StartAt is Start on a given port.
func StartAt(t testing.TB, port int, mode, creds string) *Server {
	t.Helper()
	py := "/usr/bin/python3" // Debian's, which has the package; PATH may hold another
	if err := exec.Command(py, "-c", "import aiosmtpd").Run(); err != nil {
		testenv.Missing(t, "Debian's python3 with aiosmtpd (apt-get install python3-aiosmtpd): %v", err)
	}
	dir := t.TempDir()
	cert, key, roots := tlsFiles(t, dir)
	s := &Server{Port: port, Roots: roots, maildir: filepath.Join(dir, "Maildir")}
	_, here, _, _ := runtime.Caller(0)
	args := []string{filepath.Join(filepath.Dir(here), "smtpd.py"), mode, strconv.Itoa(port), s.maildir, cert, key}
	if creds != "" {
		args = append(args, creds)
	}
	cmd := exec.Command(py, args...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // smtpd.py stops when its stdin closes
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if strings.TrimSpace(line) != "ready" {
			t.Fatalf("smtpd.py did not start: %q\n%s", line, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("smtpd.py did not start in 20 s\n%s", stderr.String())
	}
	return s
}

// Messages returns the messages the server accepted so far.
func (s *Server) Messages(t testing.TB) []*mail.Message {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.maildir, "new", "*"))
	var out []*mail.Message
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("stored message does not parse: %v\n%s", err, b)
		}
		out = append(out, m)
	}
	return out
}

// tlsFiles writes a self-signed certificate for 127.0.0.1 and localhost
// and its key, and returns the pool that trusts it.
func tlsFiles(t testing.TB, dir string) (cert, key string, roots *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtptest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(c)
	return cert, key, roots
}
