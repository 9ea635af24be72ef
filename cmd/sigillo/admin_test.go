package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/server/servertest"
	"github.com/sigillo/sigillo/signdoc/signdoctest"
)

// TestAdminCommand drives the operator CLI against a whole replica: a
// user and a credential created and read back, the SMS outbox, the mail
// queue (404: dev mode mails to the outbox), a refused token, a usage
// error.
func TestAdminCommand(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	admin := func(token string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"admin", "--server", srv.URL, "--token", token}, args...)...)
		cmd.Env = cleanEnv()
		return runBinary(t, cmd)
	}
	ok := func(args ...string) map[string]any {
		t.Helper()
		code, out, errOut := admin(srv.AdminToken, args...)
		if code != 0 {
			t.Fatalf("sigillo admin %v: exit %d\n%s%s", args, code, out, errOut)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("sigillo admin %v printed no JSON: %v\n%s", args, err, out)
		}
		return m
	}
	u := ok("user", "create", "--username", "cli-op", "--password", signdoctest.Password, "--email", "op@example.test",
		"--phone", "+393330000003", "--given-name", "Olga", "--surname", "Neri", "--fiscal-code", "NRELGO80A41H501X")
	if u["userID"] != "cli-op" {
		t.Fatalf("user create: %v", u)
	}
	if g := ok("user", "get", "cli-op"); g["email"] != "op@example.test" {
		t.Fatalf("user get: %v", g)
	}
	c := ok("credential", "create", "--user", "cli-op", "--pin", signdoctest.PIN, "--otp", "sms", "--scal", "2")
	id, _ := c["credentialID"].(string)
	if id == "" || c["puk"] == nil || c["erc"] == nil {
		t.Fatalf("credential create: %v", c)
	}
	if g := ok("credential", "get", id); g["credentialID"] != id && g["id"] != id {
		t.Fatalf("credential get: %v", g)
	}
	if u := ok("credential", "limit", id, "--max", "5"); u["maxSignatures"] != float64(5) {
		t.Fatalf("credential limit: %v", u)
	}
	if u := ok("credential", "usage", id); u["credentialID"] != id || u["totalSignatures"] != float64(0) || u["maxSignatures"] != float64(5) {
		t.Fatalf("credential usage: %v", u)
	}
	ok("credential", "history", id, "--size", "10")
	if code, _, errOut := admin(srv.AdminToken, "credential", "limit", id); code != 2 || !strings.Contains(errOut, "--max") {
		t.Fatalf("limit without --max: exit %d\n%s", code, errOut)
	}
	cl := ok("client", "create", "--name", "Firma App", "--redirect-uri", "https://app.example.test/cb",
		"--grant", "authorization_code", "--scope", "service", "--scope", "credential")
	cid, _ := cl["clientID"].(string)
	if cid == "" || cl["clientSecret"] == nil {
		t.Fatalf("client create: %v", cl)
	}
	if g := ok("client", "get", cid); g["name"] != "Firma App" || g["clientSecret"] != nil {
		t.Fatalf("client get: %v", g)
	}
	ok("identification", "list", "--status", "pending")
	if code, _, errOut := admin(srv.AdminToken, "identification", "get", "nope"); code != 1 || !strings.Contains(errOut, "HTTP 404") {
		t.Fatalf("unknown identification: exit %d\n%s", code, errOut)
	}
	ok("outbox", "--to", "+393330000003")
	ok("emails", "--limit", "5")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Olga Neri", Country: []string{"IT"}}}, key)
	csrFile := filepath.Join(t.TempDir(), "req.pem")
	os.WriteFile(csrFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o600)
	issued := ok("cert", "issue", "--csr", csrFile, "--owner", "cli-op")
	serial, _ := issued["serial"].(string)
	if serial == "" {
		t.Fatalf("cert issue: %v", issued)
	}
	if g := ok("cert", "get", serial); g["status"] != "valid" {
		t.Fatalf("cert get: %v", g)
	}
	ok("cert", "suspend", serial)
	if g := ok("cert", "get", serial); g["status"] != "suspended" {
		t.Fatalf("after suspend: %v", g)
	}
	if code, _, errOut := admin(srv.AdminToken, "mail-queue", "--state", "failed"); code != 1 || !strings.Contains(errOut, "there is no queue") || !strings.Contains(errOut, "HTTP 404") {
		t.Fatalf("mail-queue with the dev outbox: exit %d %s", code, errOut)
	}
	if code, _, errOut := admin("wrong-token", "user", "get", "cli-op"); code != 1 || !strings.Contains(errOut, "HTTP 401") {
		t.Fatalf("wrong token: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := admin(srv.AdminToken, "frobnicate"); code != 2 || !strings.Contains(errOut, "mail-queue") {
		t.Fatalf("unknown command: exit %d\n%s", code, errOut)
	}
}
