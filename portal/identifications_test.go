package portal_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The operator's identification API (admin.RegisterIdentifications),
// exercised through the same stack the holder uses.
func TestAdminIdentifications(t *testing.T) {
	s := newStack(t)
	c := s.newClient()
	email := "ivy@example.test"
	c.must(http.MethodPost, "/register", map[string]any{"email": email, "password": testPassword, "passwordConfirm": testPassword,
		"country": "FR", "consentProcessing": true, "consentMarketing": true})
	u, _ := url.Parse(s.verifyLink(email))
	c.must(http.MethodPost, "/verify", map[string]any{"token": u.Query().Get("token")})
	m := c.must(http.MethodPost, "/login", map[string]any{"login": email, "password": testPassword})
	c.csrf = m["csrfToken"].(string)
	// A non-Italian holder gives the birth date instead of the fiscal code.
	if st, m := c.api(http.MethodPost, "/request", map[string]any{"givenName": "Ivy", "surname": "Martin", "phone": "+33612345678",
		"birthDate": time.Now().AddDate(-17, 0, 0).Format("2006-01-02"), "method": "video-self", "docType": "passport",
		"docNumber": "FR998877", "docCountry": "FR", "docExpiry": "2031-05-01"}); st != 400 || m["fields"].(map[string]any)["birthDate"] == nil {
		t.Fatalf("minor: %d %v", st, m)
	}
	req := c.must(http.MethodPost, "/request", map[string]any{"givenName": "Ivy", "surname": "Martin", "phone": "+33612345678",
		"birthDate": "1990-04-02", "method": "video-self", "docType": "passport", "docNumber": "FR998877", "docCountry": "FR",
		"docExpiry": "2031-05-01"})
	id := req["id"].(string)
	if st, m := c.api(http.MethodPost, "/request", map[string]any{"givenName": "Ivy", "surname": "Martin", "phone": "+33612345679",
		"birthDate": "1990-04-02", "method": "video-self", "docType": "passport", "docNumber": "FR998877", "docCountry": "FR",
		"docExpiry": "2031-05-01"}); st != http.StatusConflict {
		t.Fatalf("second open request: %d %v", st, m)
	}
	// Signing before approval is refused.
	if st, _ := c.api(http.MethodPost, "/request/otp", nil); st != http.StatusConflict {
		t.Fatalf("OTP before approval: %d", st)
	}

	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
	}{
		{"list: bad status", "GET", "/identifications?status=maybe", nil, 400},
		{"list: bad limit", "GET", "/identifications?limit=0", nil, 400},
		{"get: unknown", "GET", "/identifications/nope", nil, 404},
		{"approve: unknown", "POST", "/identifications/nope/approve", nil, 404},
		{"reject: no reason", "POST", "/identifications/" + id + "/reject", map[string]any{}, 400},
		{"reject: reason too long", "POST", "/identifications/" + id + "/reject", map[string]any{"reason": string(make([]byte, 600))}, 400},
		{"approve: operator name too long", "POST", "/identifications/" + id + "/approve", map[string]any{"operator": string(make([]byte, 100))}, 400},
		{"approve: not JSON", "POST", "/identifications/" + id + "/approve", "x", 400},
		{"emails: bad limit", "GET", "/emails?limit=abc", nil, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if st, m := s.admin(tc.method, tc.path, tc.body); st != tc.status || m["error"] == nil {
				t.Fatalf("%d %v, want %d", st, m, tc.status)
			}
		})
	}
	st, m := s.admin(http.MethodGet, "/identifications?status=pending", nil)
	list := m["identifications"].([]any)
	if st != 200 || len(list) != 1 {
		t.Fatalf("pending: %d %v", st, m)
	}
	ev := list[0].(map[string]any)
	if ev["method"] != "video-self" || ev["docNumber"] != "FR998877" || ev["birthDate"] != "1990-04-02" || ev["fiscalCode"] != nil {
		t.Fatalf("evidence %v", ev)
	}
	st, m = s.admin(http.MethodPost, "/identifications/"+id+"/reject", map[string]any{"reason": "document unreadable", "operator": "bob"})
	if st != 200 || m["status"] != "rejected" || m["operator"] != "operator:bob" {
		t.Fatalf("reject: %d %v", st, m)
	}
	if st, _ := s.admin(http.MethodPost, "/identifications/"+id+"/approve", nil); st != http.StatusConflict {
		t.Fatalf("approve after reject: %d", st)
	}
	// The holder sees the reason and may try again.
	if m := c.must(http.MethodGet, "/request", nil); m["status"] != "rejected" || m["reason"] != "document unreadable" {
		t.Fatalf("holder view %v", m)
	}
	c.must(http.MethodPost, "/request", map[string]any{"givenName": "Ivy", "surname": "Martin", "phone": "+33612345678",
		"birthDate": "1990-04-02", "method": "edoc-nfc", "docType": "identity-card", "docNumber": "FR112233", "docCountry": "FR", "docExpiry": "2031-05-01"})
	if ids := s.approvePending(); len(ids) != 1 {
		t.Fatalf("approved %v", ids)
	}
	// Issued to a holder without a fiscal code: the subject names the document.
	c.must(http.MethodPost, "/request/otp", nil)
	m = c.must(http.MethodPost, "/request/complete", map[string]any{"acceptContract": true, "acceptPrivacy": true, "pin": "86427531",
		"pinConfirm": "86427531", "passphrase": testPassphrase, "passphraseConfirm": testPassphrase, "otp": s.lastSMS("+33612345678")})
	cr, err := s.CA.Get(context.Background(), m["serialNumber"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if sn := cr.Cert.Subject.SerialNumber; sn != "IDCFR-FR112233" {
		t.Fatalf("subject serialNumber %q", sn)
	}
	// Unauthenticated operator calls are refused.
	req2, _ := http.NewRequest(http.MethodGet, s.URL+"/admin/v1/identifications", nil)
	resp, err := http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no operator token: %d", resp.StatusCode)
	}
	// The e-mail outbox lists the verification mail.
	st, m = s.admin(http.MethodGet, "/emails?to="+url.QueryEscape(email), nil)
	msgs, _ := m["messages"].([]any)
	if st != 200 || len(msgs) != 2 {
		t.Fatalf("emails: %d, %d messages", st, len(msgs))
	}
	pdf, err := base64.StdEncoding.DecodeString(msgs[0].(map[string]any)["attachment"].(string))
	if err != nil || !strings.HasPrefix(string(pdf), "%PDF-") {
		t.Fatalf("envelope attachment: %v", err)
	}
}
