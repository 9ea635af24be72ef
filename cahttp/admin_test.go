package cahttp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"testing"

	"golang.org/x/crypto/ocsp"
)

type certView struct {
	Serial      string `json:"serial"`
	Status      string `json:"status"`
	Reason      string `json:"reason"`
	RevokedAt   string `json:"revoked_at"`
	Qualified   bool   `json:"qualified"`
	Owner       string `json:"owner"`
	Certificate string `json:"certificate"`
}

func decodeView(t *testing.T, resp *http.Response, want int) certView {
	t.Helper()
	body := readAll(t, resp)
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, want, body)
	}
	var v certView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

func TestAdminAPILifecycle(t *testing.T) {
	s := newServer(t, "ecdsa-p256")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	subject := pkix.Name{CommonName: "Anna Bianchi", SerialNumber: "TINIT-BNCNNA90A41F205X", Country: []string{"IT"},
		ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 42}, Value: "Anna"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 4}, Value: "Bianchi"}}}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, k)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})), "qualified": true, "owner": "cred-9"})
	v := decodeView(t, s.post(t, "/admin/v1/certificates", "application/json", body), http.StatusCreated)
	if v.Status != "valid" || !v.Qualified || v.Owner != "cred-9" {
		t.Fatalf("issued %+v", v)
	}
	block, _ := pem.Decode([]byte(v.Certificate))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !k.PublicKey.Equal(cert.PublicKey) {
		t.Fatalf("issued certificate: %v", err)
	}
	// base64 DER is accepted too.
	body, _ = json.Marshal(map[string]any{"csr": base64.StdEncoding.EncodeToString(csr)})
	decodeView(t, s.post(t, "/admin/v1/certificates", "application/json", body), http.StatusCreated)

	base := "/admin/v1/certificates/" + v.Serial
	steps := []struct {
		action, body, status, reason string
	}{
		{"suspend", "", "suspended", "certificateHold"},
		{"reactivate", "", "valid", ""},
		{"revoke", `{"reason":"cessationOfOperation"}`, "revoked", "cessationOfOperation"},
	}
	for _, st := range steps {
		got := decodeView(t, s.post(t, base+"/"+st.action, "application/json", []byte(st.body)), http.StatusOK)
		if got.Status != st.status || got.Reason != st.reason {
			t.Fatalf("%s: %+v", st.action, got)
		}
		resp, err := http.Get(s.srv.URL + base)
		if err != nil {
			t.Fatal(err)
		}
		if again := decodeView(t, resp, http.StatusOK); again.Status != st.status {
			t.Fatalf("GET after %s: %+v", st.action, again)
		}
	}
	// OCSP over GET (RFC 6960 A.1) sees the revocation.
	req, _ := ocsp.CreateRequest(cert, s.a.Issuer(), nil)
	resp, err := http.Get(s.srv.URL + "/ca/ocsp/" + base64.StdEncoding.EncodeToString(req))
	if err != nil {
		t.Fatal(err)
	}
	der := readAll(t, resp)
	r, err := ocsp.ParseResponseForCert([]byte(der), cert, s.a.Issuer())
	if err != nil || r.Status != ocsp.Revoked || r.RevocationReason != ocsp.CessationOfOperation {
		t.Fatalf("OCSP GET: %v %+v", err, r)
	}
}
