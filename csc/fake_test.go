package csc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/sam"
)

// fakeService is an in-memory Service for router tests: one user, a few
// credentials with in-memory keys, SADs that count signatures. It exists
// to drive the HTTP layer (routing, decoding, rendering, error mapping);
// the real rules are tested end to end against sam in e2e_test.go.
type fakeService struct {
	mu     sync.Mutex
	creds  map[string]*fakeCred
	sads   map[string]int // SAD → signatures left
	signed int
	// failSign makes SignHash fail with this error.
	failSign error
}

type fakeCred struct {
	info   sam.CredentialInfo
	signer crypto.Signer
}

const (
	fakeToken   = "good-token"
	fakeExpired = "expired-token"
	fakeUser    = "alice"
	fakePass    = "Secret-Pass-1"
)

func newFakeService(t testing.TB) *fakeService {
	t.Helper()
	f := &fakeService{creds: map[string]*fakeCred{}, sads: map[string]int{}}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f.add(t, "cred-ec", ec, "ecdsa-p256", 256, "1.2.840.10045.3.1.7", "totp")
	f.add(t, "cred-rsa", rk, "rsa-2048", 2048, "", "sms")
	f.add(t, "cred-b", ec, "ecdsa-p256", 256, "1.2.840.10045.3.1.7", "none")
	return f
}

func (f *fakeService) add(t testing.TB, id string, key crypto.Signer, algo string, bits int, curve, otpType string) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0xabcdef), Subject: pkix.Name{CommonName: "Alice " + id, Country: []string{"IT"}},
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	f.creds[id] = &fakeCred{signer: key, info: sam.CredentialInfo{
		ID: id, Description: "test " + id, KeyStatus: "enabled", KeyAlgo: algo, KeyLen: bits, CurveOID: curve,
		CertStatus: "valid", Certificates: [][]byte{der, der}, Cert: cert, SCAL: 1, Multisign: 5,
		OTPType: otpType, Activated: true, UserID: fakeUser,
	}}
}

func (f *fakeService) Login(_ context.Context, u, p string, remember bool) (*sam.Tokens, error) {
	if u != fakeUser || p != fakePass {
		return nil, sam.ErrAuthentication
	}
	t := &sam.Tokens{AccessToken: fakeToken, ExpiresIn: 3600}
	if remember {
		t.RefreshToken = "refresh"
	}
	return t, nil
}

func (f *fakeService) Refresh(_ context.Context, rt string) (*sam.Tokens, error) {
	if rt != "refresh" {
		return nil, sam.ErrInvalidGrant
	}
	return &sam.Tokens{AccessToken: fakeToken, RefreshToken: "refresh", ExpiresIn: 3600}, nil
}

func (f *fakeService) Authenticate(_ context.Context, tok string) (*sam.Principal, error) {
	switch tok {
	case fakeToken:
		return &sam.Principal{UserID: fakeUser}, nil
	case fakeExpired:
		return nil, sam.ErrExpiredToken
	}
	return nil, sam.ErrInvalidToken
}

func (f *fakeService) RevokeToken(context.Context, *sam.Principal, string, string) error { return nil }

func (f *fakeService) ListCredentials(context.Context, *sam.Principal) ([]sam.CredentialInfo, error) {
	var out []sam.CredentialInfo
	for _, id := range []string{"cred-rsa", "cred-ec", "cred-b"} {
		out = append(out, f.creds[id].info)
	}
	return out, nil
}

func (f *fakeService) cred(id string) (*fakeCred, error) {
	c, ok := f.creds[id]
	if !ok {
		return nil, sam.ErrCredentialGone
	}
	return c, nil
}

func (f *fakeService) Credential(_ context.Context, _ *sam.Principal, id string) (*sam.CredentialInfo, error) {
	c, err := f.cred(id)
	if err != nil {
		return nil, err
	}
	info := c.info
	return &info, nil
}

func (f *fakeService) CredentialByQualifier(_ context.Context, _ *sam.Principal, q string) (*sam.CredentialInfo, error) {
	var found []sam.CredentialInfo
	for _, c := range f.creds {
		if c.info.SignatureQualifier == q {
			found = append(found, c.info)
		}
	}
	if len(found) != 1 {
		return nil, errs.Invalidf("Invalid parameter signatureQualifier")
	}
	return &found[0], nil
}

func (f *fakeService) SendOTP(_ context.Context, _ *sam.Principal, id string) error {
	c, err := f.cred(id)
	if err != nil {
		return err
	}
	if c.info.OTPType != "sms" {
		return sam.ErrOTPUnavailable
	}
	return nil
}

func (f *fakeService) Authorize(_ context.Context, _ *sam.Principal, r sam.AuthorizeRequest) (*sam.SAD, error) {
	if _, err := f.cred(r.CredentialID); err != nil {
		return nil, err
	}
	if r.PIN != "12345678" {
		return nil, sam.ErrInvalidPIN
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v := "sad-" + r.CredentialID
	f.sads[v] = r.NumSignatures
	return &sam.SAD{Value: v, ExpiresIn: 300}, nil
}

func (f *fakeService) ExtendTransaction(_ context.Context, _ *sam.Principal, id, sad string, _ [][]byte, _ crypto.Hash) (*sam.SAD, error) {
	if _, err := f.cred(id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sads[sad]; !ok {
		return nil, sam.ErrSADInvalid
	}
	return &sam.SAD{Value: sad, ExpiresIn: 300}, nil
}

func (f *fakeService) SignHash(_ context.Context, _ *sam.Principal, r sam.SignRequest) ([][]byte, error) {
	c, err := f.cred(r.CredentialID)
	if err != nil {
		return nil, err
	}
	if f.failSign != nil {
		return nil, f.failSign
	}
	f.mu.Lock()
	left, ok := f.sads[r.SAD]
	if !ok || left < len(r.Hashes) {
		f.mu.Unlock()
		return nil, sam.ErrSADInvalid
	}
	f.sads[r.SAD] = left - len(r.Hashes)
	f.signed += len(r.Hashes)
	f.mu.Unlock()
	out := make([][]byte, len(r.Hashes))
	for i, d := range r.Hashes {
		s, err := c.signer.Sign(rand.Reader, d, r.Opts)
		if err != nil {
			return nil, errs.Wrap(errs.Unavailable, "HSM unavailable", err)
		}
		out[i] = s
	}
	return out, nil
}

var _ Service = (*fakeService)(nil)
