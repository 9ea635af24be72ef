package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigillo/sigillo/config"
	"github.com/sigillo/sigillo/server/servertest"
)

func TestReadyzReportsAStoreOutage(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	resp, err := http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("readyz before outage: %d", resp.StatusCode)
	}
	s.App.Store.Close() // the database goes away underneath
	resp, err = http.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status  string   `json:"status"`
		Reasons []string `json:"reasons"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || len(body.Reasons) == 0 || !strings.HasPrefix(body.Reasons[0], "store:") {
		t.Fatalf("readyz during outage: %d %+v", resp.StatusCode, body)
	}
}

func TestUnknownRoutesAnswerInTheErrorShape(t *testing.T) {
	s := servertest.Start(t, servertest.Options{})
	for _, path := range []string{"/nope", "/csc/v2/nope", "/admin/v1/../../etc/passwd"} {
		resp, err := http.Post(s.URL+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 || !strings.Contains(string(b), `"error"`) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
}

// The TLS listener refuses anything older than TLS 1.2.
func TestTLSRefusesOldVersions(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	s := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) {
		c.TLS.Cert, c.TLS.Key = certFile, keyFile
	}})
	addr := strings.TrimPrefix(s.URL, "http://")
	tests := []struct {
		name    string
		version uint16
		ok      bool
	}{
		{"TLS 1.0 refused", tls.VersionTLS10, false},
		{"TLS 1.1 refused", tls.VersionTLS11, false},
		{"TLS 1.2 accepted", tls.VersionTLS12, true},
		{"TLS 1.3 accepted", tls.VersionTLS13, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tt.version, MaxVersion: tt.version})
			if tt.ok != (err == nil) {
				t.Fatalf("handshake at %x: err %v, want ok=%v", tt.version, err, tt.ok)
			}
			if conn != nil {
				conn.Close()
			}
		})
	}
	// And it serves HTTPS for real.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over TLS: %d", resp.StatusCode)
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}
