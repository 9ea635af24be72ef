package tsaclient_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/sigillo/sigillo/cms"
	"github.com/sigillo/sigillo/cms/cmstest"
	"github.com/sigillo/sigillo/cms/tsaclient"
)

func TestClient_checksEveryReply(t *testing.T) {
	root := cmstest.NewRoot(t, "tsa test root")
	tsa := cmstest.NewTSA(t, root)
	srv := httptest.NewServer(tsa.Handler())
	defer srv.Close()
	refused, _ := timestamp.CreateErrorResponse(timestamp.Rejection, timestamp.BadAlgorithm)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
		}
	}))
	defer slow.Close()
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	digest := sha256.Sum256([]byte("signature value"))

	tests := []struct {
		name    string
		url     string
		mutate  func(*timestamp.Request)
		tamper  func([]byte) []byte
		timeout time.Duration
		wantErr bool
	}{
		{name: "granted", url: srv.URL},
		{name: "nonce_changed", url: srv.URL, mutate: func(r *timestamp.Request) { r.Nonce = new(big.Int).Add(r.Nonce, big.NewInt(1)) }, wantErr: true},
		{name: "nonce_dropped", url: srv.URL, mutate: func(r *timestamp.Request) { r.Nonce = nil }, wantErr: true},
		{name: "imprint_changed", url: srv.URL, mutate: func(r *timestamp.Request) { r.HashedMessage = make([]byte, 32) }, wantErr: true},
		{name: "rejection_status", url: srv.URL, tamper: func([]byte) []byte { return refused }, wantErr: true},
		{name: "garbage", url: srv.URL, tamper: func([]byte) []byte { return []byte("<html>oops</html>") }, wantErr: true},
		{name: "token_signature_broken", url: srv.URL, tamper: func(b []byte) []byte { c := append([]byte(nil), b...); c[len(c)-5] ^= 1; return c }, wantErr: true},
		{name: "http_503", url: unavailable.URL, wantErr: true},
		{name: "timeout", url: slow.URL, timeout: 200 * time.Millisecond, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tsa.Mutate, tsa.Tamper = tc.mutate, tc.tamper
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			c := &tsaclient.Client{URL: tc.url}
			tok, err := c.Timestamp(ctx, digest[:], crypto.SHA256)
			if tc.wantErr {
				if !errors.Is(err, cms.ErrTimestamp) {
					t.Fatalf("got %v, want a cms.ErrTimestamp error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			info, err := cms.ParseTimestampToken(tok)
			if err != nil {
				t.Fatal(err)
			}
			if !info.Token.Signer.Equal(tsa.Cert) {
				t.Error("token not signed by the TSA")
			}
		})
	}
}
