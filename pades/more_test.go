package pades_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigillo/sigillo/cms/cmstest"
	"github.com/sigillo/sigillo/cms/tsaclient"
	"github.com/sigillo/sigillo/pades"
	"github.com/sigillo/sigillo/pades/revfetch"
)

func TestSign_neverOverflowsContents(t *testing.T) {
	root := cmstest.NewRoot(t, "pades test root")
	tsa := cmstest.NewTSA(t, root)
	// A TSA whose tokens carry its (self-signed) issuer 30 times, ~12 KB.
	for i := 0; i < 30; i++ {
		tsa.ExtraCerts = append(tsa.ExtraCerts, root.Cert)
	}
	in := makePDF(pdfSpec{})
	tests := []struct {
		name string
		key  string
		opts pades.Options
	}{
		// Time-stamp budgets below the token size: the CMS cannot fit.
		{"timestamp_larger_than_budget", "rsa-2048", pades.Options{Level: pades.BT, Timestamper: tsa, TimestampReserve: 2000}},
		{"doc_timestamp_larger_than_budget", "p-256", pades.Options{Level: pades.BLTA, Timestamper: tsa, TimestampReserve: 9000,
			Validation: &cmstest.Revocations{T: t, CAs: []*cmstest.CA{root}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, chain := root.Leaf(t, "signer", tc.key, cmstest.Signer)
			var out bytes.Buffer
			err := pades.Sign(context.Background(), bytes.NewReader(in), int64(len(in)), &out, key, chain, tc.opts)
			if !errors.Is(err, pades.ErrContentsTooSmall) {
				t.Fatalf("got %v, want ErrContentsTooSmall", err)
			}
			if out.Len() != 0 {
				t.Fatalf("%d bytes written after an overflow", out.Len())
			}
		})
	}
	t.Run("embed_too_large", func(t *testing.T) {
		_, chain := root.Leaf(t, "signer", "p-256", cmstest.Signer)
		path := filepath.Join(t.TempDir(), "p.pdf")
		f, _ := os.Create(path)
		defer f.Close()
		p, err := pades.Prepare(context.Background(), bytes.NewReader(in), int64(len(in)), f, chain, pades.Options{})
		if err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)
		if err := pades.Embed(f, p, make([]byte, p.Capacity+1)); !errors.Is(err, pades.ErrContentsTooSmall) {
			t.Fatalf("got %v, want ErrContentsTooSmall", err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Fatal("file changed by a refused Embed")
		}
	})
}

// TestSign_BLTA_overHTTP uses the network implementations: the RFC 3161
// client against an HTTP TSA and the OCSP/CRL fetcher against the CA's
// HTTP responder.
func TestSign_BLTA_overHTTP(t *testing.T) {
	root := cmstest.NewRoot(t, "pades http root")
	rev := httptest.NewServer(root.RevocationHandler(t))
	defer rev.Close()
	root.OCSPURL, root.CRLURL = rev.URL+"/ocsp", rev.URL+"/crl"
	tsa := cmstest.NewTSA(t, root)
	ts := httptest.NewServer(tsa.Handler())
	defer ts.Close()
	v := newValidators(t, root)
	key, chain := root.Leaf(t, "http signer", "p-256", cmstest.Signer)
	in := makePDF(pdfSpec{textField: true})
	out := sign(t, in, key, chain, pades.Options{Level: pades.BLTA, Clock: fixedClock,
		Timestamper: &tsaclient.Client{URL: ts.URL}, Validation: &revfetch.Fetcher{}})
	v.check(t, "blta_http", out, 1, 1)
	_, ocsps, _ := readDSS(t, out)
	if len(ocsps) != 2 { // signer and TSA
		t.Errorf("%d OCSP responses in the DSS, want 2", len(ocsps))
	}
}

// TestSign_50MB checks a large input end to end (skipped with -short).
func TestSign_50MB(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB PDF skipped in -short mode")
	}
	root := cmstest.NewRoot(t, "pades test root")
	v := newValidators(t, root)
	key, chain := root.Leaf(t, "signer", "p-256", cmstest.Signer)
	path := filepath.Join(t.TempDir(), "big.pdf")
	if err := os.WriteFile(path, makePDF(pdfSpec{padBytes: 50 << 20}), 0o600); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	st, _ := f.Stat()
	var out bytes.Buffer
	if err := pades.Sign(context.Background(), f, st.Size(), &out, key, chain, pades.Options{Clock: fixedClock}); err != nil {
		t.Fatal(err)
	}
	v.check(t, "big", out.Bytes(), 1, 0)
}
