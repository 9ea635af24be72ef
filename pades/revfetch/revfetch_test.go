package revfetch_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/sigillo/sigillo/cms/cmstest"
	"github.com/sigillo/sigillo/pades"
	"github.com/sigillo/sigillo/pades/revfetch"
)

var _ pades.ValidationSource = (*revfetch.Fetcher)(nil)

func TestFetcher_revocationOverHTTP(t *testing.T) {
	root := cmstest.NewRoot(t, "revfetch root")
	srv := httptest.NewServer(root.RevocationHandler(t))
	defer srv.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer down.Close()

	issue := func(ocspURL, crlURL string) *cmstestLeaf {
		root.OCSPURL, root.CRLURL = ocspURL, crlURL
		defer func() { root.OCSPURL, root.CRLURL = "", "" }()
		_, chain := root.Leaf(t, "leaf", "p-256", cmstest.Signer)
		return &cmstestLeaf{chain[0]}
	}
	good := issue(srv.URL+"/ocsp", srv.URL+"/crl")
	crlOnly := issue(down.URL+"/ocsp", srv.URL+"/crl")
	revoked := issue(srv.URL+"/ocsp", srv.URL+"/crl")
	root.Revoke(revoked.c)
	revokedCRL := issue("", srv.URL+"/crl")
	root.Revoke(revokedCRL.c)
	noURL := issue("", "")

	tests := []struct {
		name     string
		leaf     *cmstestLeaf
		wantOCSP bool
		wantCRL  bool
		wantErr  error
	}{
		{"ocsp_good", good, true, false, nil},
		{"ocsp_down_falls_back_to_crl", crlOnly, false, true, nil},
		{"revoked_by_ocsp", revoked, false, false, revfetch.ErrRevoked},
		{"revoked_by_crl", revokedCRL, false, false, revfetch.ErrRevoked},
		{"no_urls", noURL, false, false, revfetch.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &revfetch.Fetcher{}
			o, c, err := f.Revocation(context.Background(), tc.leaf.c, root.Cert)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (len(o) > 0) != tc.wantOCSP || (len(c) > 0) != tc.wantCRL {
				t.Fatalf("OCSP %d bytes, CRL %d bytes", len(o), len(c))
			}
			if len(o) > 0 {
				if _, err := ocsp.ParseResponseForCert(o, tc.leaf.c, root.Cert); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

type cmstestLeaf struct{ c *x509.Certificate }
