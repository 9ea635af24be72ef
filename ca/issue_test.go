package ca_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/errs"
)

func TestIssue(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pub := e.credentialKey(t)
	roots := x509.NewCertPool()
	roots.AddCert(e.a.Chain()[1])
	inter := x509.NewCertPool()
	inter.AddCert(e.a.Chain()[0])

	for _, qualified := range []bool{true, false} {
		name := map[bool]string{true: "qualified_profile_has_QC_statements", false: "standard_profile_has_none"}[qualified]
		t.Run(name, func(t *testing.T) {
			req := holder(pub)
			req.Qualified = qualified
			req.Organization = "ACME S.p.A."
			c, err := e.a.Issue(ctx, req)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			cert := c.Cert
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Fatalf("chain does not verify: %v", err)
			}
			if c.Serial != cert.SerialNumber.Text(16) || len(cert.SerialNumber.Bytes()) != 16 {
				t.Errorf("serial %s / %x: want 16 bytes in lower-case hex", c.Serial, cert.SerialNumber)
			}
			if cert.IsCA || cert.KeyUsage&x509.KeyUsageContentCommitment == 0 {
				t.Errorf("key usage %v, IsCA %v", cert.KeyUsage, cert.IsCA)
			}
			if !cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Error("certificate is not for the credential key")
			}
			s := cert.Subject
			if s.CommonName != "Mario Rossi" || s.SerialNumber != "TINIT-RSSMRA80A01H501U" || s.Country[0] != "IT" || s.Organization[0] != "ACME S.p.A." {
				t.Errorf("subject %s", s)
			}
			var given, sur string
			for _, n := range s.Names {
				switch {
				case n.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 42}):
					given = n.Value.(string)
				case n.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 4}):
					sur = n.Value.(string)
				}
			}
			if given != "Mario" || sur != "Rossi" {
				t.Errorf("givenName %q surname %q", given, sur)
			}
			if cert.OCSPServer[0] != "http://ca.test/ca/ocsp" || cert.IssuingCertificateURL[0] != "http://ca.test/ca/issuer.crt" ||
				cert.CRLDistributionPoints[0] != "http://ca.test/ca/crl" {
				t.Errorf("AIA/CDP: %v %v %v", cert.OCSPServer, cert.IssuingCertificateURL, cert.CRLDistributionPoints)
			}
			if got := ca.IsQualified(cert); got != qualified {
				t.Errorf("IsQualified = %v", got)
			}
			if got, want := ca.SignatureQualifier(cert), map[bool]string{true: ca.QualifierQES, false: ca.QualifierAES}[qualified]; got != want {
				t.Errorf("SignatureQualifier = %s, want %s", got, want)
			}
			wantPolicy := asn1.ObjectIdentifier{0, 4, 0, 2042, 1, 1}
			if qualified {
				wantPolicy = asn1.ObjectIdentifier{0, 4, 0, 194112, 1, 2}
			}
			if len(cert.PolicyIdentifiers) == 0 || !cert.PolicyIdentifiers[0].Equal(wantPolicy) {
				t.Errorf("policies %v", cert.PolicyIdentifiers)
			}
			if d := cert.NotAfter.Sub(cert.NotBefore); d < ca.DefaultValidity || d > ca.DefaultValidity+2*time.Minute {
				t.Errorf("validity %s", d)
			}
			st, err := e.a.Status(ctx, c.Serial)
			if err != nil || st != ca.StatusValid {
				t.Fatalf("Status = %q, %v", st, err)
			}
			if chain := e.a.ChainDER(c); len(chain) != 3 || !bytes.Equal(chain[0], c.DER) || !bytes.Equal(chain[2], e.a.Root().Raw) {
				t.Errorf("ChainDER: %d certificates", len(chain))
			}
			got, err := e.a.Get(ctx, c.Serial)
			if err != nil || !bytes.Equal(got.DER, c.DER) || got.Owner != "cred-1" || got.Qualified != qualified {
				t.Fatalf("Get: %+v, %v", got, err)
			}
		})
	}
}

func TestIssueRejectsBadRequests(t *testing.T) {
	e := newEnv(t)
	pub := e.credentialKey(t)
	cases := map[string]func(*ca.IssueRequest){
		"no_key":                      func(r *ca.IssueRequest) { r.PublicKey = nil },
		"no_common_name":              func(r *ca.IssueRequest) { r.CommonName = "" },
		"bad_country":                 func(r *ca.IssueRequest) { r.Country = "Italy" },
		"qualified_without_surname":   func(r *ca.IssueRequest) { r.Surname = "" },
		"qualified_without_fiscal_id": func(r *ca.IssueRequest) { r.SerialNumber = "" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			req := holder(pub)
			mutate(&req)
			_, err := e.a.Issue(context.Background(), req)
			if errs.KindOf(err) != errs.Invalid {
				t.Fatalf("got %v, want an Invalid error", err)
			}
		})
	}
}

func TestIssueFailsClosedWhenAuditIsDown(t *testing.T) {
	e := newEnv(t)
	e.audit.fail = true
	_, err := e.a.Issue(context.Background(), holder(e.credentialKey(t)))
	if errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("got %v, want Unavailable", err)
	}
	// The unaudited certificate was withdrawn, not left valid.
	owned, err := e.a.ByOwner(context.Background(), "cred-1")
	if err != nil || len(owned) != 1 || owned[0].Status != ca.StatusRevoked {
		t.Fatalf("after failed audit: %d certificates, %v", len(owned), err)
	}
}

func TestNaturalPersonSerial(t *testing.T) {
	for in, want := range map[string]string{
		"rssmra80a01h501u":       "TINIT-RSSMRA80A01H501U",
		"TINIT-RSSMRA80A01H501U": "TINIT-RSSMRA80A01H501U",
		"PASIT-AA1234567":        "PASIT-AA1234567",
		"":                       "",
	} {
		if got := ca.NaturalPersonSerial("it", in); got != want {
			t.Errorf("NaturalPersonSerial(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIssueCSR(t *testing.T) {
	e := newEnv(t)
	k := memKey(t)
	subject := pkix.Name{CommonName: "Anna Bianchi", SerialNumber: "TINIT-BNCNNA90A41F205X", Country: []string{"IT"},
		ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{2, 5, 4, 42}, Value: "Anna"},
			{Type: asn1.ObjectIdentifier{2, 5, 4, 4}, Value: "Bianchi"},
		}}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.a.IssueCSR(context.Background(), der, true, "cred-csr", "admin")
	if err != nil {
		t.Fatalf("IssueCSR: %v", err)
	}
	if c.Cert.Subject.CommonName != "Anna Bianchi" || !ca.IsQualified(c.Cert) || !k.PublicKey.Equal(c.Cert.PublicKey) {
		t.Fatalf("issued %s qualified=%v", c.Cert.Subject, ca.IsQualified(c.Cert))
	}
	t.Run("tampered_CSR_is_refused", func(t *testing.T) {
		bad := bytes.Clone(der)
		bad[len(bad)-3] ^= 0xff
		if _, err := e.a.IssueCSR(context.Background(), bad, false, "x", "admin"); errs.KindOf(err) != errs.Invalid {
			t.Fatalf("got %v, want Invalid", err)
		}
	})
	t.Run("garbage_is_refused", func(t *testing.T) {
		if _, err := e.a.IssueCSR(context.Background(), []byte("hello"), false, "x", "admin"); errs.KindOf(err) != errs.Invalid {
			t.Fatalf("got %v, want Invalid", err)
		}
	})
}

// TestSignatureQualifierFromStatements: each combination of QcCompliance,
// QcSSCD and QcType gives its qualifier; a malformed extension counts as
// no statement.
func TestSignatureQualifierFromStatements(t *testing.T) {
	oid := func(a ...int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier(a) }
	type st struct {
		ID   asn1.ObjectIdentifier
		Info asn1.RawValue `asn1:"optional"`
	}
	typ := func(t ...asn1.ObjectIdentifier) st {
		b, _ := asn1.Marshal(t)
		return st{ID: oid(0, 4, 0, 1862, 1, 6), Info: asn1.RawValue{FullBytes: b}}
	}
	compliance, sscd := st{ID: oid(0, 4, 0, 1862, 1, 1)}, st{ID: oid(0, 4, 0, 1862, 1, 4)}
	esign, eseal := oid(0, 4, 0, 1862, 1, 6, 1), oid(0, 4, 0, 1862, 1, 6, 2)
	for _, tc := range []struct {
		name  string
		value []byte // nil: no extension
		sts   []st
		want  string
	}{
		{"none", nil, nil, ca.QualifierAES},
		{"qes", nil, []st{compliance, sscd, typ(esign)}, ca.QualifierQES},
		{"qes_without_type", nil, []st{compliance, sscd}, ca.QualifierQES},
		{"aesqc", nil, []st{compliance, typ(esign)}, ca.QualifierAESQC},
		{"qeseal", nil, []st{compliance, sscd, typ(eseal)}, ca.QualifierQESeal},
		{"aesealqc", nil, []st{compliance, typ(eseal)}, ca.QualifierAESealQC},
		{"aeseal", nil, []st{typ(eseal)}, ca.QualifierAESeal},
		{"sscd_without_compliance", nil, []st{sscd}, ca.QualifierAES},
		{"malformed", []byte{0x30, 0x03, 0x06, 0x01}, nil, ca.QualifierAES},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := memKey(t)
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: tc.name},
				NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
			v := tc.value
			if v == nil && tc.sts != nil {
				v, _ = asn1.Marshal(tc.sts)
			}
			if v != nil {
				tmpl.ExtraExtensions = []pkix.Extension{{Id: oid(1, 3, 6, 1, 5, 5, 7, 1, 3), Value: v}}
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
			if err != nil {
				t.Fatal(err)
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if got := ca.SignatureQualifier(c); got != tc.want {
				t.Errorf("SignatureQualifier = %s, want %s", got, tc.want)
			}
			if !slices.Contains(ca.Qualifiers, tc.want) {
				t.Errorf("%s is not listed in Qualifiers", tc.want)
			}
		})
	}
}
