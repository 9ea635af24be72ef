package cahttp_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/ocsp"
)

// Every client mistake is a 4xx with a clear {"error","error_description"}.
func TestBadInputsAre4xxWithAClearMessage(t *testing.T) {
	s := newServer(t, "ecdsa-p256")
	leaf := s.issue(t)
	goodOCSP, err := ocsp.CreateRequest(leaf.Cert, s.a.Issuer(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, method, path, contentType, body string
		status                                int
		wantMsg                               string
	}{
		{"malformed_ocsp_request", "POST", "/ca/ocsp", "application/ocsp-request", "\x30\x03garbage", 400, "Malformed OCSP request"},
		{"empty_ocsp_request", "POST", "/ca/ocsp", "application/ocsp-request", "", 400, "Empty request body"},
		{"ocsp_wrong_content_type", "POST", "/ca/ocsp", "application/json", string(goodOCSP), 400, "Content-Type must be application/ocsp-request"},
		{"ocsp_get_not_base64", "GET", "/ca/ocsp/not*base64!", "", "", 400, "not base64"},
		{"ocsp_get_base64_garbage", "GET", "/ca/ocsp/" + base64.StdEncoding.EncodeToString([]byte("hello")), "", "", 400, "Malformed OCSP request"},
		{"garbage_timestamp_query", "POST", "/tsa", "application/timestamp-query", "not a TimeStampReq", 400, "Malformed time-stamp request"},
		{"timestamp_wrong_content_type", "POST", "/tsa", "text/plain", "x", 400, "Content-Type must be application/timestamp-query"},
		{"crl_unknown_format", "GET", "/ca/crl?format=xml", "", "", 400, "Unknown format"},
		{"unknown_serial", "GET", "/admin/v1/certificates/7fffffffffffffffffffffffffffff01", "", "", 404, "Unknown certificate serial"},
		{"malformed_serial", "GET", "/admin/v1/certificates/zz-top", "", "", 400, "Malformed certificate serial"},
		{"suspend_unknown_serial", "POST", "/admin/v1/certificates/7fffffffffffffffffffffffffffff01/suspend", "", "", 404, "Unknown certificate serial"},
		{"unknown_reason", "POST", "/admin/v1/certificates/" + leaf.Serial + "/revoke", "application/json", `{"reason":"lostMyPhone"}`, 400, "Unknown revocation reason"},
		{"missing_reason", "POST", "/admin/v1/certificates/" + leaf.Serial + "/revoke", "application/json", `{}`, 400, "Missing reason"},
		{"revoke_body_not_json", "POST", "/admin/v1/certificates/" + leaf.Serial + "/revoke", "application/json", `reason=keyCompromise`, 400, "JSON object"},
		{"unknown_action", "POST", "/admin/v1/certificates/" + leaf.Serial + "/destroy", "", "", 404, "Unknown action"},
		{"reactivate_valid", "POST", "/admin/v1/certificates/" + leaf.Serial + "/reactivate", "", "", 409, "not suspended"},
		{"issue_without_csr", "POST", "/admin/v1/certificates", "application/json", `{"owner":"x"}`, 400, "Missing csr"},
		{"issue_garbage_csr", "POST", "/admin/v1/certificates", "application/json", `{"csr":"aGVsbG8="}`, 400, "Malformed PKCS#10"},
		{"issue_wrong_pem", "POST", "/admin/v1/certificates", "application/json", `{"csr":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}`, 400, "CERTIFICATE REQUEST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, s.srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
				t.Fatalf("body is not the error shape: %s", body)
			}
			if !strings.Contains(e.Description, tc.wantMsg) {
				t.Fatalf("error_description %q lacks %q", e.Description, tc.wantMsg)
			}
		})
	}
}

// A request about a certificate of another CA gets OCSP "unauthorized".
func TestOCSPForeignIssuerIsUnauthorized(t *testing.T) {
	s := newServer(t, "ecdsa-p256")
	leaf := s.issue(t)
	req, err := ocsp.CreateRequest(leaf.Cert, s.a.Root(), nil) // wrong issuer hashes
	if err != nil {
		t.Fatal(err)
	}
	resp := s.post(t, "/ca/ocsp", "application/ocsp-request", req)
	body := readAll(t, resp)
	if resp.StatusCode != 200 || body != string(ocsp.UnauthorizedErrorResponse) {
		t.Fatalf("got %d %x", resp.StatusCode, body)
	}
}
