package smshttp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sigillo/sigillo/otp/smshttp"
)

func TestWebhookSender(t *testing.T) {
	var got map[string]string
	var auth string
	status := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("decode: %v", err)
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	s := smshttp.New(srv.URL, "gw-token")
	if err := s.Send(context.Background(), "+39333", "code 123456"); err != nil {
		t.Fatal(err)
	}
	if got["to"] != "+39333" || got["message"] != "code 123456" || auth != "Bearer gw-token" {
		t.Fatalf("gateway got %v, auth %q", got, auth)
	}
	status = http.StatusBadGateway
	if err := s.Send(context.Background(), "+39333", "x"); err == nil {
		t.Fatal("a 502 from the gateway was treated as sent")
	}
}
