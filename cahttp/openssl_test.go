package cahttp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/internal/testenv"
)

func TestOpenSSLVerifiesIssuedChain(t *testing.T) {
	bin := testenv.Tool(t, "openssl")
	s := newServer(t, "ecdsa-p256")
	leaf := s.issue(t)
	root := s.fetchToFile(t, "/ca/root.crt", "root.der")
	issuer := s.fetchToFile(t, "/ca/issuer.crt", "issuer.der")
	leafPEM := s.writePEM(t, "leaf.pem", leaf.DER)
	chain := s.fetchToFile(t, "/ca/chain.pem", "chain.pem")
	rootPEM := s.derToPEM(t, bin, root)
	issuerPEM := s.derToPEM(t, bin, issuer)
	out, err := openssl(t, bin, "verify", "-CAfile", rootPEM, "-untrusted", issuerPEM, leafPEM)
	if err != nil || !strings.Contains(out, leafPEM+": OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	// chain.pem holds issuing CA then root: verifying against it works too.
	out, err = openssl(t, bin, "verify", "-CAfile", chain, leafPEM)
	if err != nil || !strings.Contains(out, ": OK") {
		t.Fatalf("openssl verify with chain.pem: %v\n%s", err, out)
	}
	// Tampered leaf does not verify (the check can fail).
	bad := append([]byte(nil), leaf.DER...)
	bad[len(bad)-5] ^= 0x55
	badPEM := s.writePEM(t, "bad.pem", bad)
	if out, err := openssl(t, bin, "verify", "-CAfile", rootPEM, "-untrusted", issuerPEM, badPEM); err == nil {
		t.Fatalf("openssl verified a tampered certificate:\n%s", out)
	}
	out, _ = openssl(t, bin, "x509", "-in", leafPEM, "-noout", "-text")
	for _, want := range []string{"Non Repudiation", "CA:FALSE", "OCSP - URI:" + s.srv.URL + "/ca/ocsp",
		"CA Issuers - URI:" + s.srv.URL + "/ca/issuer.crt", s.srv.URL + "/ca/crl", "0.4.0.194112.1.2", "qcStatements",
		"GN = Mario", "SN = Rossi", "serialNumber = TINIT-RSSMRA80A01H501U"} {
		if !strings.Contains(out, want) {
			t.Errorf("openssl x509 -text lacks %q", want)
		}
	}
}

func TestOpenSSLOCSPFollowsLifecycle(t *testing.T) {
	bin := testenv.Tool(t, "openssl")
	s := newServer(t, "ecdsa-p256")
	ctx := context.Background()
	leaf := s.issue(t)
	other := s.issue(t) // never touched: stays good
	rootPEM := s.derToPEM(t, bin, s.fetchToFile(t, "/ca/root.crt", "root.der"))
	issuerPEM := s.derToPEM(t, bin, s.fetchToFile(t, "/ca/issuer.crt", "issuer.der"))
	leafPEM := s.writePEM(t, "leaf.pem", leaf.DER)
	otherPEM := s.writePEM(t, "other.pem", other.DER)

	ocspCheck := func(t *testing.T, certPEM string, want ...string) {
		t.Helper()
		out, err := openssl(t, bin, "ocsp", "-issuer", issuerPEM, "-cert", certPEM, "-url", s.srv.URL+"/ca/ocsp",
			"-CAfile", rootPEM, "-verify_other", issuerPEM)
		if err != nil {
			t.Fatalf("openssl ocsp: %v\n%s", err, out)
		}
		want = append(want, "Response verify OK")
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Fatalf("openssl ocsp output lacks %q:\n%s", w, out)
			}
		}
		if strings.Contains(out, "WARNING") || strings.Contains(out, "nonce") {
			t.Fatalf("openssl ocsp complains (nonce not echoed?):\n%s", out)
		}
	}
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"good_after_issue", nil, []string{leafPEM + ": good"}},
		{"suspended_is_revoked_certificateHold", func() error { return s.a.Suspend(ctx, leaf.Serial, "admin") },
			[]string{leafPEM + ": revoked", "Reason: certificateHold"}},
		{"good_after_reactivate", func() error { return s.a.Reactivate(ctx, leaf.Serial, "admin") }, []string{leafPEM + ": good"}},
		{"revoked_keyCompromise", func() error { return s.a.Revoke(ctx, leaf.Serial, "keyCompromise", "admin") },
			[]string{leafPEM + ": revoked", "Reason: keyCompromise"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.do != nil {
				if err := st.do(); err != nil {
					t.Fatal(err)
				}
			}
			ocspCheck(t, leafPEM, st.want...)
		})
	}
	t.Run("reactivate_after_revoke_is_refused_and_stays_revoked", func(t *testing.T) {
		resp := s.post(t, "/admin/v1/certificates/"+leaf.Serial+"/reactivate", "application/json", nil)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "revocation is final") {
			t.Fatalf("reactivate revoked: %d %s", resp.StatusCode, body)
		}
		ocspCheck(t, leafPEM, leafPEM+": revoked", "Reason: keyCompromise")
	})
	t.Run("untouched_certificate_stays_good", func(t *testing.T) { ocspCheck(t, otherPEM, otherPEM+": good") })
	t.Run("two_certificates_in_one_request", func(t *testing.T) {
		out, err := openssl(t, bin, "ocsp", "-issuer", issuerPEM, "-cert", leafPEM, "-cert", otherPEM,
			"-url", s.srv.URL+"/ca/ocsp", "-CAfile", rootPEM, "-verify_other", issuerPEM)
		if err != nil || !strings.Contains(out, leafPEM+": revoked") || !strings.Contains(out, otherPEM+": good") ||
			!strings.Contains(out, "Response verify OK") || strings.Contains(out, "WARNING") {
			t.Fatalf("openssl ocsp two certificates: %v\n%s", err, out)
		}
	})
	t.Run("unknown_serial_is_unknown", func(t *testing.T) {
		out, err := openssl(t, bin, "ocsp", "-issuer", issuerPEM, "-serial", "0x7fffffffffffffffffffffffffffff01",
			"-url", s.srv.URL+"/ca/ocsp", "-CAfile", rootPEM, "-verify_other", issuerPEM)
		if err != nil || !strings.Contains(out, ": unknown") {
			t.Fatalf("openssl ocsp unknown serial: %v\n%s", err, out)
		}
	})
}

func TestOpenSSLCRLListsExactlySuspendedAndRevoked(t *testing.T) {
	bin := testenv.Tool(t, "openssl")
	s := newServer(t, "ecdsa-p256")
	ctx := context.Background()
	var certs []string
	for i := 0; i < 5; i++ {
		certs = append(certs, s.issue(t).Serial)
	}
	must(t, s.a.Suspend(ctx, certs[0], "admin"))
	must(t, s.a.Revoke(ctx, certs[1], "keyCompromise", "admin"))
	must(t, s.a.Suspend(ctx, certs[2], "admin"))
	must(t, s.a.Revoke(ctx, certs[2], "affiliationChanged", "admin"))
	must(t, s.a.Suspend(ctx, certs[3], "admin"))
	must(t, s.a.Reactivate(ctx, certs[3], "admin"))

	issuerPEM := s.derToPEM(t, bin, s.fetchToFile(t, "/ca/issuer.crt", "issuer.der"))
	for _, format := range []string{"der", "pem"} {
		t.Run(format, func(t *testing.T) {
			crl := s.fetchToFile(t, "/ca/crl?format="+format, "crl."+format)
			out, err := openssl(t, bin, "crl", "-inform", strings.ToUpper(format), "-in", crl, "-text", "-noout", "-CAfile", issuerPEM)
			if err != nil || !strings.Contains(out, "verify OK") {
				t.Fatalf("openssl crl: %v\n%s", err, out)
			}
			got := regexp.MustCompile(`Serial Number: ([0-9A-F]+)`).FindAllStringSubmatch(out, -1)
			var serials []string
			for _, m := range got {
				serials = append(serials, strings.ToLower(m[1]))
			}
			want := []string{certs[0], certs[1], certs[2]}
			sort.Strings(serials)
			sort.Strings(want)
			if strings.Join(serials, ",") != strings.Join(want, ",") {
				t.Fatalf("CRL lists %v, want %v\n%s", serials, want, out)
			}
			for _, w := range []string{"Certificate Hold", "Key Compromise", "Affiliation Changed", "X509v3 CRL Number", "Next Update"} {
				if !strings.Contains(out, w) {
					t.Errorf("CRL text lacks %q", w)
				}
			}
		})
	}
	t.Run("root_crl", func(t *testing.T) {
		rootPEM := s.derToPEM(t, bin, s.fetchToFile(t, "/ca/root.crt", "root.der"))
		crl := s.fetchToFile(t, "/ca/root.crl", "root.crl")
		out, err := openssl(t, bin, "crl", "-inform", "DER", "-in", crl, "-text", "-noout", "-CAfile", rootPEM)
		if err != nil || !strings.Contains(out, "verify OK") || !strings.Contains(out, "No Revoked Certificates") {
			t.Fatalf("openssl crl root: %v\n%s", err, out)
		}
	})
}

func TestOpenSSLTimestampRoundTrip(t *testing.T) {
	bin := testenv.Tool(t, "openssl")
	s := newServer(t, "ecdsa-p256")
	rootPEM := s.derToPEM(t, bin, s.fetchToFile(t, "/ca/root.crt", "root.der"))
	issuerPEM := s.derToPEM(t, bin, s.fetchToFile(t, "/ca/issuer.crt", "issuer.der"))
	data := filepath.Join(s.dir, "document.pdf")
	doc := make([]byte, 4096)
	_, _ = rand.Read(doc)
	must(t, os.WriteFile(data, doc, 0o600))
	for _, hash := range []string{"sha256", "sha384", "sha512"} {
		t.Run(hash, func(t *testing.T) {
			query := filepath.Join(s.dir, hash+".tsq")
			reply := filepath.Join(s.dir, hash+".tsr")
			if out, err := openssl(t, bin, "ts", "-query", "-data", data, "-"+hash, "-cert", "-out", query); err != nil {
				t.Fatalf("openssl ts -query: %v\n%s", err, out)
			}
			q, _ := os.ReadFile(query)
			resp := s.post(t, "/tsa", "application/timestamp-query", q)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/timestamp-reply" {
				t.Fatalf("POST /tsa: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			must(t, os.WriteFile(reply, []byte(readAll(t, resp)), 0o600))
			// -queryfile makes openssl check the message imprint and the nonce.
			out, err := openssl(t, bin, "ts", "-verify", "-queryfile", query, "-in", reply, "-CAfile", rootPEM, "-untrusted", issuerPEM)
			if err != nil || !strings.Contains(out, "Verification: OK") {
				t.Fatalf("openssl ts -verify: %v\n%s", err, out)
			}
			out, err = openssl(t, bin, "ts", "-verify", "-data", data, "-in", reply, "-CAfile", rootPEM, "-untrusted", issuerPEM)
			if err != nil || !strings.Contains(out, "Verification: OK") {
				t.Fatalf("openssl ts -verify -data: %v\n%s", err, out)
			}
			text, _ := openssl(t, bin, "ts", "-reply", "-in", reply, "-text")
			for _, w := range []string{"Status: Granted", "Policy OID: 0.4.0.2023.1.1", "Accuracy: 0x01 seconds", "Nonce: 0x"} {
				if !strings.Contains(text, w) {
					t.Errorf("reply text lacks %q:\n%s", w, text)
				}
			}
			// Another document's digest must not verify against this token.
			other := filepath.Join(s.dir, "other")
			must(t, os.WriteFile(other, []byte("something else"), 0o600))
			if out, err := openssl(t, bin, "ts", "-verify", "-data", other, "-in", reply, "-CAfile", rootPEM, "-untrusted", issuerPEM); err == nil {
				t.Fatalf("token verified for another document:\n%s", out)
			}
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (s *server) fetchToFile(t testing.TB, path, name string) string {
	t.Helper()
	resp, err := http.Get(s.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	p := filepath.Join(s.dir, name)
	must(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func (s *server) derToPEM(t testing.TB, bin, der string) string {
	t.Helper()
	p := der + ".pem"
	if out, err := openssl(t, bin, "x509", "-inform", "DER", "-in", der, "-out", p); err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	return p
}

func (s *server) post(t testing.TB, path, contentType string, body []byte) *http.Response {
	t.Helper()
	resp, err := http.Post(s.srv.URL+path, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
