package pades_test

import (
	"bytes"
	"crypto/x509"
	"io"
	"testing"

	"github.com/digitorus/pdf"
	"golang.org/x/crypto/ocsp"

	"github.com/sigillo/sigillo/cms/cmstest"
	"github.com/sigillo/sigillo/pades"
)

func TestSign_levels(t *testing.T) {
	root := cmstest.NewRoot(t, "pades test root")
	sub := root.SubCA(t, "pades test issuing CA")
	tsa := cmstest.NewTSA(t, root)
	v := newValidators(t, root)
	revs := &cmstest.Revocations{T: t, CAs: []*cmstest.CA{root, sub}, WithCRL: true}
	in := makePDF(pdfSpec{textField: true})
	inStream := qpdfConvert(t, in, "--object-streams=generate")

	tests := []struct {
		name  string
		in    []byte
		key   string
		level pades.Level
	}{
		{"BT_rsa2048", in, "rsa-2048", pades.BT},
		{"BLT_p256_xrefstream", inStream, "p-256", pades.BLT},
		{"BLTA_p256", in, "p-256", pades.BLTA},
		{"BLTA_rsa2048_xrefstream", inStream, "rsa-2048", pades.BLTA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, chain := sub.Leaf(t, "signer "+tc.name, tc.key, cmstest.Signer)
			before := tsa.Calls.Load()
			out := sign(t, tc.in, key, chain, pades.Options{Level: tc.level, Clock: fixedClock, Timestamper: tsa, Validation: revs})
			wantDTS := 0
			if tc.level == pades.BLTA {
				wantDTS = 1
			}
			if got, want := tsa.Calls.Load()-before, int64(1+wantDTS); got != want {
				t.Errorf("%d time-stamps requested, want %d", got, want)
			}
			v.allowTrailingUpdate = tc.level == pades.BLT
			v.check(t, tc.name, out, 1, wantDTS)
			requireFieldReachable(t, out, "customer")
			infos, err := pades.Verify(bytes.NewReader(out), int64(len(out)))
			if err != nil {
				t.Fatal(err)
			}
			var sig, dts *pades.SignatureInfo
			for i := range infos {
				if infos[i].Err != nil {
					t.Errorf("%s: %v", infos[i].Field, infos[i].Err)
				}
				switch infos[i].Type {
				case "Sig":
					sig = &infos[i]
				case "DocTimeStamp":
					dts = &infos[i]
				}
			}
			if sig == nil || sig.Timestamp == nil {
				t.Fatalf("no signature-time-stamp in the CMS: %+v", infos)
			}
			if (dts != nil) != (tc.level == pades.BLTA) {
				t.Errorf("document time-stamp present = %v at %v", dts != nil, tc.level)
			}
			if dts != nil && !dts.CoversWholeFile {
				t.Error("document time-stamp does not cover the whole file")
			}
			if tc.level < pades.BLT {
				if bytes.Contains(out, []byte("/DSS")) {
					t.Error("DSS written below B-LT")
				}
				return
			}
			certs, ocsps, crls := readDSS(t, out)
			wantCerts := append(append([]*x509.Certificate{}, chain...), tsa.Cert)
			for _, c := range wantCerts {
				found := false
				for _, d := range certs {
					found = found || d.Equal(c)
				}
				if !found {
					t.Errorf("DSS lacks certificate %q", c.Subject.CommonName)
				}
			}
			// Revocation data for signer, issuing CA and TSA (root is trusted).
			if len(ocsps) != 3 || len(crls) != 3 {
				t.Errorf("DSS has %d OCSP responses and %d CRLs, want 3 and 3", len(ocsps), len(crls))
			}
			for _, o := range ocsps {
				if _, err := ocsp.ParseResponse(o, nil); err != nil {
					t.Errorf("DSS OCSP response: %v", err)
				}
			}
			for _, c := range crls {
				if _, err := x509.ParseRevocationList(c); err != nil {
					t.Errorf("DSS CRL: %v", err)
				}
			}
			if tc.level == pades.BLTA {
				// The document time-stamp must come after (and so cover) the DSS.
				if bytes.LastIndex(out, []byte("/Certs [")) > int(dts.ByteRange[1]) {
					t.Error("DSS not covered by the document time-stamp")
				}
			}
		})
	}
}

// readDSS reads /DSS with an independent parser (digitorus/pdf) and returns
// its certificates, OCSP responses and CRLs.
func readDSS(t *testing.T, b []byte) (certs []*x509.Certificate, ocsps, crls [][]byte) {
	t.Helper()
	r, err := pdf.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	dss := r.Trailer().Key("Root").Key("DSS")
	if dss.Kind() != pdf.Dict {
		t.Fatal("no /DSS in the catalog")
	}
	read := func(key string) [][]byte {
		a := dss.Key(key)
		var out [][]byte
		for i := 0; i < a.Len(); i++ {
			data, err := io.ReadAll(a.Index(i).Reader())
			if err != nil {
				t.Fatalf("DSS %s[%d]: %v", key, i, err)
			}
			out = append(out, data)
		}
		return out
	}
	for _, c := range read("Certs") {
		cert, err := x509.ParseCertificate(c)
		if err != nil {
			t.Fatalf("DSS certificate: %v", err)
		}
		certs = append(certs, cert)
	}
	return certs, read("OCSPs"), read("CRLs")
}
