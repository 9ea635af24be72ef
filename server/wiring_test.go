package server_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/server/servertest"
	"github.com/sigillo/sigillo/signdoc/signdoctest"
)

// TestAssembledReplicaSignsAPDFAtBLTA drives the wiring end to end: the
// operator enrolls a holder, the holder authorizes the document's hash with
// a SCAL2 SAD and gets a B-LTA PDF from signDoc, checked by qpdf, pdfsig and
// openssl; v1 has no signDoc.
func TestAssembledReplicaSignsAPDFAtBLTA(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	call := func(path, auth string, basic bool, body any, want int) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(b))
		if basic {
			req.SetBasicAuth("wire", signdoctest.Password)
		} else {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode != want {
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, m)
		}
		return m
	}
	user := call("/admin/v1/users", srv.AdminToken, false, map[string]any{"username": "wire", "password": signdoctest.Password, "email": "w@example.test",
		"phone": "+393330000001", "givenName": "Anna", "surname": "Bianchi", "fiscalCode": "BNCNNA80A41H501X"}, 201)
	cred := call("/admin/v1/credentials", srv.AdminToken, false, map[string]any{"userID": user["userID"], "pin": signdoctest.PIN, "keyAlgo": "ecdsa-p256",
		"otp": "none", "scal": 2, "multisign": 5}, 201)
	certs := cred["certificates"].([]any)
	rootDER, _ := base64.StdEncoding.DecodeString(certs[len(certs)-1].(string))
	issDER, _ := base64.StdEncoding.DecodeString(certs[1].(string))
	root, _ := x509.ParseCertificate(rootDER)
	iss, _ := x509.ParseCertificate(issDER)
	v := signdoctest.NewValidators(t, root, iss)
	info := call("/csc/v2/info", "", false, map[string]any{}, 200)
	if !strings.Contains(func() string { b, _ := json.Marshal(info); return string(b) }(), "signatures/signDoc") {
		t.Fatalf("info: %v", info)
	}
	tok := call("/csc/v2/auth/login", "", true, map[string]any{}, 200)["access_token"].(string)
	doc := signdoctest.MakePDF(2, 1000, "wired")
	h := sha256.Sum256(doc)
	sad := call("/csc/v2/credentials/authorize", tok, false, map[string]any{"credentialID": cred["credentialID"], "numSignatures": 1,
		"hashes": []string{base64.StdEncoding.EncodeToString(h[:])}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
		"authData": []map[string]string{{"id": "PIN", "value": signdoctest.PIN}}}, 200)["SAD"]
	res := call("/csc/v2/signatures/signDoc", tok, false, map[string]any{"credentialID": cred["credentialID"], "SAD": sad,
		"returnValidationInfo": true,
		"documents":            []map[string]any{{"document": base64.StdEncoding.EncodeToString(doc), "signature_format": "P", "conformance_level": "Ades-B-LTA"}}}, 200)
	pdf, _ := base64.StdEncoding.DecodeString(res["DocumentWithSignature"].([]any)[0].(string))
	v.CheckPDF(t, "wired", pdf, signdoctest.PDFWant{Sigs: 1, DTS: 1, SignatureTimestamps: 1, DSS: true})
	call("/csc/v1/signatures/signDoc", tok, false, map[string]any{}, 501)
}
