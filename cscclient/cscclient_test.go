package cscclient_test

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sigillo/sigillo/cscclient"
)

// TestErrors: CSC error bodies become *Error with the code and the
// description; other failures still carry the status. (The successful
// paths run end to end in cmd/sigillo's TestSignCommand.)
func TestErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/csc/v2/auth/login":
			if u, p, ok := r.BasicAuth(); !ok || u != "maria" || p != "pw" {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":"authentication_error","error_description":"Invalid username or password"}`))
				return
			}
			w.Write([]byte(`{"access_token":"tok"}`))
		case "/csc/v2/credentials/authorize":
			if r.Header.Get("Authorization") != "Bearer tok" {
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"error":"invalid_token"}`))
				return
			}
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_request","error_description":"Hash is not authorized by the SAD"}`))
		default:
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>proxy error</html>"))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := &cscclient.Client{BaseURL: srv.URL + "/"}
	var e *cscclient.Error

	err := c.Login(ctx, "maria", "wrong")
	if !errors.As(err, &e) || e.Status != 400 || e.Code != "authentication_error" || e.Description != "Invalid username or password" {
		t.Fatalf("login: %v", err)
	}
	if _, err := c.Authorize(ctx, cscclient.AuthorizeRequest{CredentialID: "c", NumSignatures: 1}); !errors.As(err, &e) || e.Status != 401 || e.Code != "invalid_token" {
		t.Fatalf("authorize without token: %v", err)
	}
	if err := c.Login(ctx, "maria", "pw"); err != nil || c.Token != "tok" {
		t.Fatalf("login: %v", err)
	}
	_, err = c.Authorize(ctx, cscclient.AuthorizeRequest{CredentialID: "c", NumSignatures: 1, Hashes: [][]byte{make([]byte, 32)}, Hash: crypto.SHA256, PIN: "1"})
	if !errors.As(err, &e) || e.Description != "Hash is not authorized by the SAD" {
		t.Fatalf("authorize: %v", err)
	}
	if _, err := c.List(ctx); !errors.As(err, &e) || e.Status != http.StatusBadGateway || e.Code != "Bad Gateway" {
		t.Fatalf("list through a broken proxy: %v", err)
	}
	if _, err := c.Timestamp(ctx, make([]byte, 20), crypto.SHA1); err == nil {
		t.Fatal("SHA-1 time-stamp requested")
	}
}
