package enroll_test

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sigillo/sigillo/enroll"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/otp"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/sam/samtest"
	"github.com/sigillo/sigillo/store"
)

type env struct {
	svc *enroll.Service
	sam *samtest.Env
	st  *store.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := samtest.New(t)
	svc, err := enroll.New(enroll.Config{PublicURL: "http://portal.test/"}, enroll.Deps{Store: e.Store, SAM: e.Service, Status: e.CA,
		Mailer: enroll.OutboxMailer{St: e.Store, Now: e.Clock.Now}, SMS: otp.NewOutbox(e.Store, e.Clock.Now), Audit: e.Audit, Now: e.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, sam: e, st: e.Store}
}

const pw = "Corr3ct-Horse!"

func fieldsOf(err error) map[string]string {
	var fe *enroll.FieldError
	if errors.As(err, &fe) {
		return fe.Fields
	}
	return nil
}

func TestNew_listsEveryMissingDependency(t *testing.T) {
	_, err := enroll.New(enroll.Config{}, enroll.Deps{})
	for _, want := range []string{"Store", "SAM", "Status", "Mailer", "Audit", "PublicURL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestRegister_refusesBadFormsWithOneKeyPerField(t *testing.T) {
	e := newEnv(t)
	c := context.Background()
	ok := enroll.Registration{Email: "a@example.test", Password: pw, PasswordConfirm: pw, Country: "IT", ConsentProcessing: true}
	mod := func(f func(*enroll.Registration)) enroll.Registration { r := ok; f(&r); return r }
	tests := []struct {
		name  string
		r     enroll.Registration
		field string
		key   string
	}{
		{"empty", enroll.Registration{}, "email", "required"},
		{"email without domain dot", mod(func(r *enroll.Registration) { r.Email = "a@b" }), "email", "email_format"},
		{"email with display name", mod(func(r *enroll.Registration) { r.Email = "Bob <a@example.test>" }), "email", "email_format"},
		{"email too long", mod(func(r *enroll.Registration) { r.Email = strings.Repeat("a", 250) + "@e.it" }), "email", "too_long"},
		{"password policy", mod(func(r *enroll.Registration) { r.Password, r.PasswordConfirm = "aaaaaaaa", "aaaaaaaa" }), "password", "password_policy"},
		{"password confirmation", mod(func(r *enroll.Registration) { r.PasswordConfirm = "x" }), "passwordConfirm", "mismatch"},
		{"country unknown", mod(func(r *enroll.Registration) { r.Country = "ZZ" }), "country", "country"},
		{"country missing", mod(func(r *enroll.Registration) { r.Country = "" }), "country", "required"},
		{"no consent", mod(func(r *enroll.Registration) { r.ConsentProcessing = false }), "consentProcessing", "consent_required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Register(c, tc.r)
			if f := fieldsOf(err); f[tc.field] != tc.key {
				t.Fatalf("fields %v (err %v), want %s=%s", f, err, tc.field, tc.key)
			}
			if errs.KindOf(err) != errs.Invalid {
				t.Fatalf("kind %v", errs.KindOf(err))
			}
		})
	}
	if ms, _ := e.st.Emails(c, "", 10); len(ms) != 0 {
		t.Fatalf("%d e-mails sent for refused registrations", len(ms))
	}
}

var reToken = regexp.MustCompile(`token=([0-9a-f]+)`)

// verified registers and verifies a holder and returns the UserID.
func (e *env) verified(t *testing.T, email, country string) string {
	t.Helper()
	c := context.Background()
	id, err := e.svc.Register(c, enroll.Registration{Email: email, Password: pw, PasswordConfirm: pw, Country: country, ConsentProcessing: true, Lang: "it"})
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := e.st.Emails(c, strings.ToLower(email), 1)
	if len(ms) != 1 || !strings.Contains(ms[0].Subject, "Conferma") {
		t.Fatalf("verification e-mail %+v", ms)
	}
	tok := reToken.FindStringSubmatch(ms[0].Body)[1]
	if _, err := e.svc.VerifyEmail(c, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.VerifyEmail(c, tok); !errors.Is(err, enroll.ErrBadVerifyLink) {
		t.Fatalf("link used twice: %v", err)
	}
	return id
}

func TestRegister_emailIsCaseInsensitiveAndUnique(t *testing.T) {
	e := newEnv(t)
	c := context.Background()
	id := e.verified(t, "Zoe@Example.test", "IT")
	if got, _ := e.svc.ResolveLogin(c, " zoe@example.TEST "); got != id {
		t.Fatalf("login by e-mail resolves to %q, want %q", got, id)
	}
	_, err := e.svc.Register(c, enroll.Registration{Email: "zoe@example.test", Password: pw, PasswordConfirm: pw, Country: "IT", ConsentProcessing: true})
	if f := fieldsOf(err); f["email"] != "email_taken" {
		t.Fatalf("second registration: %v", err)
	}
}

func TestVerifyEmail_linkExpires(t *testing.T) {
	e := newEnv(t)
	c := context.Background()
	if _, err := e.svc.Register(c, enroll.Registration{Email: "late@example.test", Password: pw, PasswordConfirm: pw, Country: "IT", ConsentProcessing: true}); err != nil {
		t.Fatal(err)
	}
	ms, _ := e.st.Emails(c, "late@example.test", 1)
	u, _ := url.Parse(regexp.MustCompile(`http\S+`).FindString(ms[0].Body))
	if u.Host != "portal.test" || u.Path != "/portal/verify" {
		t.Fatalf("link %v", u)
	}
	e.sam.Clock.Advance(49 * time.Hour)
	if _, err := e.svc.VerifyEmail(c, u.Query().Get("token")); !errors.Is(err, enroll.ErrBadVerifyLink) {
		t.Fatalf("expired link: %v", err)
	}
}

// TestResendVerification: an expired link can be replaced by a new one
// (in the account's language), which replaces the previous link too; an
// unknown or already confirmed address gets the same answer and no mail;
// the requests per address are limited.
func TestResendVerification(t *testing.T) {
	e := newEnv(t)
	c := context.Background()
	if _, err := e.svc.Register(c, enroll.Registration{Email: "late@example.test", Password: pw, PasswordConfirm: pw, Country: "IT",
		ConsentProcessing: true, Lang: "it"}); err != nil {
		t.Fatal(err)
	}
	token := func() string { // the newest mail's; the clock moves so that "newest" is well defined
		t.Helper()
		ms, _ := e.st.Emails(c, "late@example.test", 1)
		e.sam.Clock.Advance(time.Second)
		return reToken.FindStringSubmatch(ms[0].Body)[1]
	}
	first := token()
	e.sam.Clock.Advance(49 * time.Hour) // the first link expired
	if err := e.svc.ResendVerification(c, " Late@Example.test ", "192.0.2.7"); err != nil {
		t.Fatal(err)
	}
	second := token()
	if second == first {
		t.Fatal("no new link")
	}
	if ms, _ := e.st.Emails(c, "late@example.test", 1); !strings.Contains(ms[0].Subject, "Conferma") {
		t.Errorf("the new link is not in the account's language: %q", ms[0].Subject)
	}
	if err := e.svc.ResendVerification(c, "late@example.test", "192.0.2.7"); err != nil {
		t.Fatal(err)
	}
	third := token()
	if _, err := e.svc.VerifyEmail(c, second); !errors.Is(err, enroll.ErrBadVerifyLink) {
		t.Fatalf("a replaced link still works: %v", err)
	}
	if _, err := e.svc.VerifyEmail(c, third); err != nil {
		t.Fatalf("the newest link: %v", err)
	}

	count := func() int {
		ms, _ := e.st.Emails(c, "", 100)
		return len(ms)
	}
	before := count()
	for _, addr := range []string{"late@example.test", "nobody@example.test"} { // confirmed; unknown
		if err := e.svc.ResendVerification(c, addr, "192.0.2.8"); err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
	}
	if count() != before {
		t.Fatal("a mail went to a confirmed or unknown address")
	}
	if f := fieldsOf(e.svc.ResendVerification(c, "not an address", "192.0.2.8")); f["email"] != "email_format" {
		t.Fatalf("malformed address: %v", f)
	}
	// Three per address per hour (two used above, one by the confirmed
	// probe): the next is refused, whatever the outcome would be.
	err := e.svc.ResendVerification(c, "late@example.test", "192.0.2.9")
	if re, ok := errs.As(err); !ok || re.Kind != errs.RateLimited || re.RetryAfter <= 0 {
		t.Fatalf("fourth request within the hour: %v", err)
	}
}

func approvedRequest(t *testing.T, e *env, userID, phone string) string {
	t.Helper()
	c := context.Background()
	r, err := e.svc.SubmitRequest(c, userID, enroll.RequestInput{GivenName: "Zoe", Surname: "Neri", FiscalCode: " rssmra80a01h501u ",
		Phone: phone, Method: "cie", DocType: "identity-card", DocNumber: "ca 12345 ab", DocCountry: "it", DocExpiry: "2031-01-01"})
	if err != nil {
		t.Fatal(err)
	}
	if r.FiscalCode != "RSSMRA80A01H501U" || r.DocNumber != "CA12345AB" || r.DocCountry != "IT" {
		t.Fatalf("not normalized: %+v", r)
	}
	if _, err := e.svc.Complete(c, userID, enroll.Completion{}); errs.KindOf(err) != errs.Conflict {
		t.Fatalf("complete before approval: %v", err)
	}
	if err := e.svc.Decide(c, r.ID, true, "operator:test", ""); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

var reSMS = regexp.MustCompile(`code is ([0-9]+)`)

func (e *env) sms(t *testing.T, phone string) string {
	t.Helper()
	ms, _ := e.st.Outbox(context.Background(), phone, 1)
	if len(ms) == 0 {
		t.Fatal("no SMS")
	}
	return reSMS.FindStringSubmatch(ms[0].Body)[1]
}

func TestComplete_checksEveryFieldThenIssuesOnce(t *testing.T) {
	e := newEnv(t)
	c := context.Background()
	uid := e.verified(t, "zoe@example.test", "IT")
	reqID := approvedRequest(t, e, uid, "+393334445556")
	good := enroll.Completion{AcceptContract: true, AcceptPrivacy: true, PIN: "12344321", PINConfirm: "12344321",
		Passphrase: "open sesame please", PassphraseConfirm: "open sesame please", OTP: "123456"}
	mod := func(f func(*enroll.Completion)) enroll.Completion { x := good; f(&x); return x }
	tests := []struct {
		name  string
		c     enroll.Completion
		field string
		key   string
	}{
		{"no contract acceptance", mod(func(x *enroll.Completion) { x.AcceptContract = false }), "acceptContract", "acceptance"},
		{"no privacy acceptance", mod(func(x *enroll.Completion) { x.AcceptPrivacy = false }), "acceptPrivacy", "acceptance"},
		{"PIN too short", mod(func(x *enroll.Completion) { x.PIN, x.PINConfirm = "1234", "1234" }), "pin", "pin_format"},
		{"PIN confirmation", mod(func(x *enroll.Completion) { x.PINConfirm = "12344322" }), "pinConfirm", "mismatch"},
		{"passphrase short", mod(func(x *enroll.Completion) { x.Passphrase, x.PassphraseConfirm = "short", "short" }), "passphrase", "passphrase_policy"},
		{"passphrase confirmation", mod(func(x *enroll.Completion) { x.PassphraseConfirm = "other" }), "passphraseConfirm", "mismatch"},
		{"OTP missing", mod(func(x *enroll.Completion) { x.OTP = "" }), "otp", "required"},
		{"OTP letters", mod(func(x *enroll.Completion) { x.OTP = "abcdef" }), "otp", "otp_format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Complete(c, uid, tc.c)
			if f := fieldsOf(err); f[tc.field] != tc.key {
				t.Fatalf("fields %v (%v), want %s=%s", f, err, tc.field, tc.key)
			}
		})
	}
	if _, err := e.svc.Complete(c, uid, good); !errors.Is(err, enroll.ErrInvalidOTP) {
		t.Fatalf("no code sent yet: %v", err)
	}
	if err := e.svc.SendContractOTP(c, uid); err != nil {
		t.Fatal(err)
	}
	code := e.sms(t, "+393334445556")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if _, err := e.svc.Complete(c, uid, mod(func(x *enroll.Completion) { x.OTP = wrong })); !errors.Is(err, enroll.ErrInvalidOTP) {
		t.Fatalf("wrong code: %v", err)
	}
	if cs, _ := e.st.CredentialsByUser(c, uid); len(cs) != 0 {
		t.Fatalf("%d credentials before the contract was signed", len(cs))
	}
	e.sam.Clock.Advance(time.Second) // the envelope is the newest mail
	is, err := e.svc.Complete(c, uid, mod(func(x *enroll.Completion) { x.OTP = code }))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := e.st.CertRequest(c, reqID)
	if r.Status != "issued" || r.CredentialID != is.CredentialID || r.ContractAcceptedAt.IsZero() || r.PrivacyAcceptedAt.IsZero() || r.ContractVersion == "" {
		t.Fatalf("request after issuance %+v", r)
	}
	if _, err := e.svc.Complete(c, uid, mod(func(x *enroll.Completion) { x.OTP = code })); errs.KindOf(err) != errs.Conflict {
		t.Fatalf("second completion: %v", err)
	}
	ms, _ := e.st.Emails(c, "zoe@example.test", 1)
	if len(ms) != 1 || !strings.HasPrefix(string(ms[0].Attachment), "%PDF") || !strings.Contains(ms[0].Subject, is.EnvelopeNumber) {
		t.Fatalf("envelope mail %+v", ms)
	}
	// Neither the PIN nor the passphrase is anywhere in the database.
	for _, secret := range []string{"12344321", "open sesame please"} {
		if n := countInDB(t, e.st, secret); n != 0 {
			t.Fatalf("%q stored in clear in %d places", secret, n)
		}
	}
	// The same mobile or e-mail cannot get a second certificate.
	other := e.verified(t, "other@example.test", "IT")
	_, err = e.svc.SubmitRequest(c, other, enroll.RequestInput{GivenName: "O", Surname: "T", FiscalCode: "RSSMRA80A01H501U",
		Phone: "+393334445556", Method: "cie", DocType: "passport", DocNumber: "YA99999", DocCountry: "IT", DocExpiry: "2031-01-01"})
	if f := fieldsOf(err); f["phone"] != "bound" {
		t.Fatalf("bound mobile: %v", err)
	}
}

// countInDB counts text columns of the self-care and identity tables that
// contain s.
func countInDB(t *testing.T, st *store.Store, s string) int {
	t.Helper()
	n := 0
	for _, q := range []string{
		`SELECT COUNT(*) FROM users WHERE password_hash LIKE ? OR phone LIKE ?`,
		`SELECT COUNT(*) FROM credentials WHERE pin_hash LIKE ? OR puk_hash LIKE ?`,
		`SELECT COUNT(*) FROM cert_requests WHERE doc_number LIKE ? OR envelope_number LIKE ?`,
		`SELECT COUNT(*) FROM email_outbox WHERE body LIKE ? OR subject LIKE ?`,
	} {
		var k int
		if err := st.QueryRow(context.Background(), q, "%"+s+"%", "%"+s+"%").Scan(&k); err != nil {
			t.Fatal(err)
		}
		n += k
	}
	return n
}

func TestValidFiscalCode(t *testing.T) {
	for _, tc := range []struct {
		cf string
		ok bool
	}{
		{"RSSMRA80A01H501U", true},
		{"RSSMRA85T10A562S", true},
		{"RSSMRA80A01H501X", false}, // wrong check character
		{"RSSMRA80A01H501", false},  // too short
		{"rssmra80a01h501u", false}, // the caller upper-cases
		{"12345678901", false},      // a company VAT number is not a person's code
		{"RSSMRA80Z01H501U", false}, // no month Z
	} {
		if got := enroll.ValidFiscalCode(tc.cf); got != tc.ok {
			t.Errorf("%s: %v, want %v", tc.cf, got, tc.ok)
		}
	}
}

func TestSubmitRequest_refusesBadEvidenceWithOneKeyPerField(t *testing.T) {
	e := newEnv(t)
	c := context.Background()
	it := e.verified(t, "it@example.test", "IT")
	fr := e.verified(t, "fr@example.test", "FR")
	okFR := enroll.RequestInput{GivenName: "Jean", Surname: "Dupont", BirthDate: "1980-02-03", Phone: "+33612345678", Method: "video-operator",
		DocType: "passport", DocNumber: "12AB34567", DocCountry: "FR", DocExpiry: "2030-01-01"}
	mod := func(f func(*enroll.RequestInput)) enroll.RequestInput { x := okFR; f(&x); return x }
	tests := []struct {
		name, user string
		in         enroll.RequestInput
		field, key string
	}{
		{"Italian without fiscal code", it, okFR, "fiscalCode", "required"},
		{"foreign without birth date", fr, mod(func(x *enroll.RequestInput) { x.BirthDate = "" }), "birthDate", "required"},
		{"birth date format", fr, mod(func(x *enroll.RequestInput) { x.BirthDate = "3/2/1980" }), "birthDate", "date_format"},
		{"minor", fr, mod(func(x *enroll.RequestInput) { x.BirthDate = "2015-01-01" }), "birthDate", "underage"},
		{"foreign with a driving licence", fr, mod(func(x *enroll.RequestInput) { x.DocType = "driving-licence" }), "docType", "doc_foreign"},
		{"unknown method", fr, mod(func(x *enroll.RequestInput) { x.Method = "fax" }), "method", "choice"},
		{"mobile without country code", fr, mod(func(x *enroll.RequestInput) { x.Phone = "0612345678" }), "phone", "phone_format"},
		{"expired document", fr, mod(func(x *enroll.RequestInput) { x.DocExpiry = "2020-01-01" }), "docExpiry", "expired"},
		{"name with digits", fr, mod(func(x *enroll.RequestInput) { x.GivenName = "J3an" }), "givenName", "choice"},
		{"unknown issuing country", fr, mod(func(x *enroll.RequestInput) { x.DocCountry = "QQ" }), "docCountry", "country"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.SubmitRequest(c, tc.user, tc.in)
			if f := fieldsOf(err); f[tc.field] != tc.key {
				t.Fatalf("fields %v (%v), want %s=%s", f, err, tc.field, tc.key)
			}
		})
	}
	if rs, _ := e.st.CertRequests(c, "", 10); len(rs) != 0 {
		t.Fatalf("%d requests stored from bad forms", len(rs))
	}
	// Unverified and operator-created users cannot request here.
	if _, err := e.svc.SubmitRequest(c, "nobody", okFR); errs.KindOf(err) != errs.Forbidden {
		t.Fatalf("unknown user: %v", err)
	}
}

// TestNewEnvelope_operatorEnrolledHolder: a holder the operator enrolled
// (no self-care account) gets the new envelope at the user's own address,
// in Italian for an Italian fiscal code; a wrong PIN sends nothing.
func TestNewEnvelope_operatorEnrolledHolder(t *testing.T) {
	e := newEnv(t)
	c := context.Background()
	uid := e.sam.User(t, "opholder")
	cc := e.sam.Credential(t, uid, sam.NewCredential{})
	if _, err := e.svc.NewEnvelope(c, uid, cc.CredentialID, "00000000", "", "new passphrase", "new passphrase"); !errors.Is(err, sam.ErrInvalidPIN) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if ms, _ := e.st.Emails(c, "opholder@example.test", 10); len(ms) != 0 {
		t.Fatalf("mail after a wrong PIN: %d", len(ms))
	}
	n, err := e.svc.NewEnvelope(c, uid, cc.CredentialID, samtest.PIN, "", "new passphrase", "new passphrase")
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := e.st.Emails(c, "opholder@example.test", 10)
	if len(ms) != 1 || !strings.Contains(ms[0].Subject, n) || !strings.Contains(ms[0].Subject, "busta") || len(ms[0].Attachment) == 0 {
		t.Fatalf("envelope mail %+v", ms)
	}
}
