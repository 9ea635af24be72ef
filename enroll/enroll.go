// Package enroll turns a stranger into a certificate holder: registration
// (e-mail, password, country, consents) with e-mail verification, the
// certificate request with the holder's data and the identification
// evidence an operator approves, the contract acceptances, the PIN choice
// and the signature of the contract confirmed with an SMS code, and the
// envelope (an AES-256 encrypted PDF with PUK, ERC, IUT and envelope
// number) mailed to the holder.
//
// Invariants: no secret is stored in clear (the PIN, the envelope
// passphrase and the codes go straight from the form to sam's hashes or to
// the encrypted envelope); a request is issued at most once (claimed with a
// conditional UPDATE); an e-mail address or mobile number already bound to
// a live certificate cannot get a second one; issuance happens only after
// an operator approved the identification evidence.
package enroll

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/otp"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/store"
)

// Store is the persistence enrollment needs; *store.Store satisfies it.
type Store interface {
	otp.SMSStore
	CreateAccount(ctx context.Context, a store.Account) error
	AccountByEmail(ctx context.Context, email string) (*store.Account, error)
	Account(ctx context.Context, userID string) (*store.Account, error)
	VerifyEmail(ctx context.Context, verifyHash string, now time.Time) (string, error)
	RenewVerification(ctx context.Context, userID, verifyHash string, expires time.Time) (bool, error)
	User(ctx context.Context, id string) (*store.User, error)
	SetHolderData(ctx context.Context, userID, givenName, surname, fiscalCode, phone string) error
	CreateCertRequest(ctx context.Context, r store.CertRequest) error
	CertRequest(ctx context.Context, id string) (*store.CertRequest, error)
	LatestCertRequest(ctx context.Context, userID string) (*store.CertRequest, error)
	CertRequests(ctx context.Context, status string, limit int) ([]store.CertRequest, error)
	DecideCertRequest(ctx context.Context, id, status, operator, reason string, at time.Time) error
	ClaimCertRequest(ctx context.Context, id string) error
	ReleaseCertRequest(ctx context.Context, id string) error
	FinishCertRequest(ctx context.Context, r store.CertRequest) error
	BindingsFor(ctx context.Context, email, phone string) ([]store.Binding, error)
	PutEmail(ctx context.Context, m store.Email) error
}

var _ Store = (*store.Store)(nil)

// SAM is the part of the signature activation module enrollment calls.
type SAM interface {
	CreateHolder(ctx context.Context, h sam.HolderAccount) error
	CreateCredential(ctx context.Context, nc sam.NewCredential) (*sam.CreatedCredential, error)
	ReplaceRecoveryCodes(ctx context.Context, p *sam.Principal, credentialID, pin, otpCode string) (*sam.RecoveryCodes, error)
}

var _ SAM = (*sam.Service)(nil)

// CertStatus tells whether a certificate is still alive (sam.Issuer has it).
type CertStatus interface {
	CertStatus(ctx context.Context, serial string) (string, error)
}

// Auditor records security-relevant events.
type Auditor interface {
	Record(ctx context.Context, e audit.Event) error
}

// Mail is an e-mail with an optional attachment.
type Mail struct {
	To, Subject, Body string
	AttachmentName    string
	Attachment        []byte
}

// Mailer delivers e-mail. OutboxMailer is the development one;
// enroll/smtpmail delivers through an SMTP server.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// OutboxMailer "sends" by writing to the store's e-mail outbox, which the
// operator API lists (GET /admin/v1/emails).
type OutboxMailer struct {
	St interface {
		PutEmail(context.Context, store.Email) error
	}
	Now func() time.Time
}

// Send stores the message.
func (o OutboxMailer) Send(ctx context.Context, m Mail) error {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	return o.St.PutEmail(ctx, store.Email{ID: randomHex(16), To: m.To, Subject: m.Subject, Body: m.Body,
		AttachmentName: m.AttachmentName, Attachment: m.Attachment, CreatedAt: now()})
}

// Config tunes enrollment. Zero values take the documented defaults.
type Config struct {
	// PublicURL is where holders reach the portal (verification links).
	PublicURL string
	// KeyAlgo of holders' keys (default "ecdsa-p256").
	KeyAlgo string
	// Multisign of issued credentials (default 20). Credentials are SCAL 2
	// with SMS OTP.
	Multisign int
	// VerifyTTL is how long an e-mail verification link works (default 48h).
	VerifyTTL time.Duration
	// ContractVersion names the contract documents the holder accepts.
	ContractVersion string
	// OTP tunes the SMS code confirming the contract signature.
	OTP otp.Config
}

func (c Config) withDefaults() Config {
	if c.KeyAlgo == "" {
		c.KeyAlgo = "ecdsa-p256"
	}
	if c.Multisign == 0 {
		c.Multisign = 20
	}
	if c.VerifyTTL == 0 {
		c.VerifyTTL = 48 * time.Hour
	}
	if c.ContractVersion == "" {
		c.ContractVersion = "2026-01"
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return c
}

// Deps are the service's collaborators.
type Deps struct {
	Store  Store
	SAM    SAM
	Status CertStatus
	Mailer Mailer
	SMS    otp.Sender
	Audit  Auditor
	Now    func() time.Time
	Log    *slog.Logger
}

// Service runs enrollment. It is safe for concurrent use.
type Service struct {
	cfg    Config
	st     Store
	sam    SAM
	status CertStatus
	mail   Mailer
	sms    *otp.SMS
	audit  Auditor
	now    func() time.Time
	log    *slog.Logger
}

// New checks the dependencies and returns the service.
func New(cfg Config, d Deps) (*Service, error) {
	cfg = cfg.withDefaults()
	var problems []error
	if d.Store == nil {
		problems = append(problems, errors.New("enroll: Store is required"))
	}
	if d.SAM == nil {
		problems = append(problems, errors.New("enroll: SAM is required"))
	}
	if d.Status == nil {
		problems = append(problems, errors.New("enroll: Status is required"))
	}
	if d.Mailer == nil {
		problems = append(problems, errors.New("enroll: Mailer is required"))
	}
	if d.Audit == nil {
		problems = append(problems, errors.New("enroll: Audit is required"))
	}
	if cfg.PublicURL == "" {
		problems = append(problems, errors.New("enroll: PublicURL is required"))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, st: d.Store, sam: d.SAM, status: d.Status, mail: d.Mailer, audit: d.Audit,
		sms: otp.NewSMS(cfg.OTP, d.Store, d.SMS, d.Now), now: d.Now, log: d.Log}, nil
}

// FieldError lists, per form field, what is wrong with it, as message
// keys the portal translates (e.g. "required", "email_format"). It
// unwraps to an errs.Invalid so the JSON API answers 400.
type FieldError struct {
	Fields map[string]string
}

// Error lists the fields and their problems in a stable order.
func (e *FieldError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + Describe(e.Fields[k])
	}
	return "Invalid parameters: " + strings.Join(parts, "; ")
}

// Unwrap gives the classified error the HTTP edge maps to 400.
func (e *FieldError) Unwrap() error { return errs.Invalidf("%s", e.Error()) }

// Describe returns the English text of a message key.
func Describe(key string) string {
	if m, ok := messages[key]; ok {
		return m
	}
	return key
}

// messages are the English texts of the keys in FieldError (the portal
// carries the translations).
var messages = map[string]string{
	"required":          "required",
	"too_long":          "too long",
	"email_format":      "not a valid e-mail address",
	"email_taken":       "an account with this e-mail already exists",
	"password_policy":   "does not meet the password policy",
	"mismatch":          "does not match",
	"country":           "not a valid ISO country code",
	"consent_required":  "this consent is required",
	"fiscal_code":       "not a valid Italian fiscal code",
	"phone_format":      "not a valid mobile number (international format, e.g. +393331234567)",
	"date_format":       "not a valid date (YYYY-MM-DD)",
	"underage":          "the holder must be at least 18 years old",
	"expired":           "the document has expired",
	"choice":            "not one of the allowed values",
	"doc_number":        "not a valid document number (5-20 letters and digits)",
	"pin_format":        "the PIN must be exactly 8 digits",
	"passphrase_policy": "the passphrase must be 8 to 128 characters",
	"acceptance":        "you must accept to continue",
	"otp_format":        "the code must be 6 to 8 digits",
	"puk_format":        "the PUK must be exactly 8 digits",
	"confirm":           "type the confirmation word exactly",
	"bound":             "already bound to an active certificate",
	"doc_foreign":       "without an Italian fiscal code, identify with a passport or an identity card",
}

type fields map[string]string

func (f fields) set(name, key string) {
	if _, ok := f[name]; !ok {
		f[name] = key
	}
}

func (f fields) err() error {
	if len(f) == 0 {
		return nil
	}
	return &FieldError{Fields: f}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func storeErr(what string, err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", fmt.Errorf("%s: %w", what, err))
	}
	if _, ok := errs.As(err); ok {
		return err
	}
	return errs.Wrap(errs.Internal, "Internal error", fmt.Errorf("%s: %w", what, err))
}

func (s *Service) record(ctx context.Context, e audit.Event) {
	if err := s.audit.Record(ctx, e); err != nil {
		s.log.Error("audit record failed", "action", e.Action, "error", err)
	}
}

// Countries accepted at registration (ISO 3166-1 alpha-2, the EU/EEA plus
// a few common ones); the portal offers them in a list.
var Countries = []string{"AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GR", "HR",
	"HU", "IE", "IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK", "SM", "US", "VA"}

func validCountry(c string) bool {
	for _, x := range Countries {
		if x == c {
			return true
		}
	}
	return false
}

// Registration is the sign-up form.
type Registration struct {
	Email, Password, PasswordConfirm string
	Country                          string
	ConsentProcessing                bool
	ConsentMarketing                 bool
	// Lang is the holder's language ("en" or "it") for e-mails.
	Lang string
}

func normEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

func checkEmail(f fields, name, e string) {
	switch {
	case e == "":
		f.set(name, "required")
	case len(e) > 254:
		f.set(name, "too_long")
	default:
		a, err := mail.ParseAddress(e)
		if err != nil || a.Address != e || !strings.Contains(e[strings.LastIndex(e, "@"):], ".") {
			f.set(name, "email_format")
		}
	}
}

// Register creates a pending account and mails a verification link. It
// returns the new UserID.
func (s *Service) Register(ctx context.Context, r Registration) (string, error) {
	f := fields{}
	email := normEmail(r.Email)
	checkEmail(f, "email", email)
	switch {
	case r.Password == "":
		f.set("password", "required")
	case utf8.RuneCountInString(r.Password) > 128:
		f.set("password", "too_long")
	case len(sam.PasswordViolations(r.Password)) > 0:
		f.set("password", "password_policy")
	}
	if r.PasswordConfirm != r.Password {
		f.set("passwordConfirm", "mismatch")
	}
	country := strings.ToUpper(strings.TrimSpace(r.Country))
	if country == "" {
		f.set("country", "required")
	} else if !validCountry(country) {
		f.set("country", "country")
	}
	if !r.ConsentProcessing {
		f.set("consentProcessing", "consent_required")
	}
	if err := f.err(); err != nil {
		return "", err
	}
	if _, err := s.st.AccountByEmail(ctx, email); err == nil {
		return "", &FieldError{Fields: map[string]string{"email": "email_taken"}}
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", storeErr("register", err)
	}
	lang := "en"
	if r.Lang == "it" {
		lang = "it"
	}
	userID := "u" + randomHex(5)
	if err := s.sam.CreateHolder(ctx, sam.HolderAccount{UserID: userID, Email: email, Password: r.Password}); err != nil {
		return "", err
	}
	token := randomHex(24)
	now := s.now()
	err := s.st.CreateAccount(ctx, store.Account{UserID: userID, Email: email, Country: country, Lang: lang,
		ConsentProcessing: true, ConsentMarketing: r.ConsentMarketing, VerifyHash: tokenHash(token),
		VerifyExpiresAt: now.Add(s.cfg.VerifyTTL), CreatedAt: now})
	if errors.Is(err, store.ErrConflict) {
		return "", &FieldError{Fields: map[string]string{"email": "email_taken"}}
	}
	if err != nil {
		return "", storeErr("register", err)
	}
	if err := s.mail.Send(ctx, s.verificationMail(userID, email, lang, token)); err != nil {
		return "", errs.Wrap(errs.Unavailable, "The e-mail could not be sent; try again later", err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + userID, Action: "enroll.register", Object: "user:" + userID, Outcome: "success",
		Detail: map[string]string{"country": country, "marketing": fmt.Sprint(r.ConsentMarketing)}})
	return userID, nil
}

// verificationMail is the message with the link that confirms email.
func (s *Service) verificationMail(userID, email, lang, token string) Mail {
	link := s.cfg.PublicURL + "/portal/verify?token=" + token
	m := Mail{To: email, Subject: "Confirm your e-mail address", Body: fmt.Sprintf(
		"Welcome to sigillo.\n\nYour UserID is %s.\nConfirm your e-mail address by opening this link:\n%s\n\nThe link works for %d hours.\n",
		userID, link, int(s.cfg.VerifyTTL.Hours()))}
	if lang == "it" {
		m.Subject = "Conferma il tuo indirizzo e-mail"
		m.Body = fmt.Sprintf("Benvenuto in sigillo.\n\nIl tuo UserID è %s.\nConferma l'indirizzo e-mail aprendo questo link:\n%s\n\nIl link vale %d ore.\n",
			userID, link, int(s.cfg.VerifyTTL.Hours()))
	}
	return m
}

// Verification resends are limited per address and per client address,
// in the store so that every replica counts the same requests.
const (
	ResendWindow   = time.Hour
	ResendMaxEmail = 3
	ResendMaxIP    = 30
)

// ResendVerification mails a new verification link to the account that
// registered with email, if its address is not confirmed yet; the old
// link stops working. It answers the same (nil) whether or not there is
// such an account, so that nobody learns which addresses are registered;
// only a malformed address and the rate limits answer otherwise.
func (s *Service) ResendVerification(ctx context.Context, email, clientIP string) error {
	email = normEmail(email)
	f := fields{}
	checkEmail(f, "email", email)
	if err := f.err(); err != nil {
		return err
	}
	now := s.now()
	for _, k := range []struct {
		key string
		max int
	}{{"verify:ip:" + clientIP, ResendMaxIP}, {"verify:email:" + email, ResendMaxEmail}} {
		ok, wait, err := s.st.TakeSendToken(ctx, k.key, ResendWindow, k.max, now)
		if err != nil {
			return storeErr("resend rate", err)
		}
		if !ok {
			return &errs.Error{Kind: errs.RateLimited, Msg: "Too many requests: retry later", RetryAfter: wait}
		}
	}
	a, err := s.st.AccountByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return storeErr("resend verification", err)
	}
	if !a.VerifiedAt.IsZero() {
		return nil
	}
	token := randomHex(24)
	renewed, err := s.st.RenewVerification(ctx, a.UserID, tokenHash(token), now.Add(s.cfg.VerifyTTL))
	if err != nil {
		return storeErr("resend verification", err)
	}
	if !renewed { // confirmed meanwhile
		return nil
	}
	if err := s.mail.Send(ctx, s.verificationMail(a.UserID, email, a.Lang, token)); err != nil {
		return errs.Wrap(errs.Unavailable, "The e-mail could not be sent; try again later", err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + a.UserID, Action: "enroll.verify_resent", Object: "user:" + a.UserID, Outcome: "success"})
	return nil
}

// ErrBadVerifyLink is an unknown, used or expired verification link.
var ErrBadVerifyLink = errs.Invalidf("This verification link is not valid or has expired")

// VerifyEmail activates the account the link was sent for.
func (s *Service) VerifyEmail(ctx context.Context, token string) (string, error) {
	if token == "" || len(token) > 128 {
		return "", ErrBadVerifyLink
	}
	uid, err := s.st.VerifyEmail(ctx, tokenHash(token), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrBadVerifyLink
	}
	if err != nil {
		return "", storeErr("verify email", err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + uid, Action: "enroll.email_verified", Object: "user:" + uid, Outcome: "success"})
	return uid, nil
}

// ResolveLogin maps what a holder types as login (e-mail or UserID) to
// the UserID.
func (s *Service) ResolveLogin(ctx context.Context, login string) (string, error) {
	login = strings.TrimSpace(login)
	if !strings.Contains(login, "@") {
		return login, nil
	}
	a, err := s.st.AccountByEmail(ctx, normEmail(login))
	if errors.Is(err, store.ErrNotFound) {
		return login, nil // sam answers "invalid username or password"
	}
	if err != nil {
		return "", storeErr("login", err)
	}
	return a.UserID, nil
}

// Account returns the holder's registration, or nil for operator-created
// users (no portal registration).
func (s *Service) Account(ctx context.Context, userID string) (*store.Account, error) {
	a, err := s.st.Account(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeErr("account", err)
	}
	return a, nil
}

// Identification methods and document types.
var (
	Methods  = []string{"edoc-nfc", "video-operator", "video-self", "cie"}
	DocTypes = []string{"identity-card", "passport", "driving-licence"}
)

func oneOf(v string, set []string) bool {
	for _, x := range set {
		if v == x {
			return true
		}
	}
	return false
}

var (
	rePhone  = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
	reDocNum = regexp.MustCompile(`^[A-Z0-9]{5,20}$`)
	reName   = regexp.MustCompile(`^[\p{L}][\p{L} '.-]*$`)
)

// RequestInput is the certificate request form: holder data and
// identification evidence.
type RequestInput struct {
	GivenName, Surname string
	// FiscalCode is required for Italian holders (country IT).
	FiscalCode string
	// BirthDate (YYYY-MM-DD) is required for the others.
	BirthDate string
	Phone     string
	// Method is one of Methods; the document is what was shown.
	Method, DocType, DocNumber, DocCountry, DocExpiry string
}

// Normalize trims and upper-cases what is case-insensitive.
func (r *RequestInput) normalize() {
	r.GivenName, r.Surname = strings.TrimSpace(r.GivenName), strings.TrimSpace(r.Surname)
	r.FiscalCode = strings.ToUpper(strings.TrimSpace(r.FiscalCode))
	r.BirthDate, r.DocExpiry = strings.TrimSpace(r.BirthDate), strings.TrimSpace(r.DocExpiry)
	r.Phone = strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(r.Phone))
	r.DocNumber = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(r.DocNumber), " ", ""))
	r.DocCountry = strings.ToUpper(strings.TrimSpace(r.DocCountry))
}

func (s *Service) checkRequest(r RequestInput, italian bool) error {
	f := fields{}
	for _, n := range []struct{ name, v string }{{"givenName", r.GivenName}, {"surname", r.Surname}} {
		switch {
		case n.v == "":
			f.set(n.name, "required")
		case utf8.RuneCountInString(n.v) > 64:
			f.set(n.name, "too_long")
		case !reName.MatchString(n.v):
			f.set(n.name, "choice")
		}
	}
	now := s.now()
	if italian {
		switch {
		case r.FiscalCode == "":
			f.set("fiscalCode", "required")
		case !ValidFiscalCode(r.FiscalCode):
			f.set("fiscalCode", "fiscal_code")
		}
	} else {
		switch d, err := time.Parse("2006-01-02", r.BirthDate); {
		case r.BirthDate == "":
			f.set("birthDate", "required")
		case err != nil:
			f.set("birthDate", "date_format")
		case d.AddDate(18, 0, 0).After(now):
			f.set("birthDate", "underage")
		}
	}
	switch {
	case r.Phone == "":
		f.set("phone", "required")
	case !rePhone.MatchString(r.Phone):
		f.set("phone", "phone_format")
	}
	if r.Method == "" {
		f.set("method", "required")
	} else if !oneOf(r.Method, Methods) {
		f.set("method", "choice")
	}
	switch {
	case r.DocType == "":
		f.set("docType", "required")
	case !oneOf(r.DocType, DocTypes):
		f.set("docType", "choice")
	case !italian && r.DocType == "driving-licence":
		// Without a fiscal code the certificate names the holder by the
		// document (ETSI EN 319 412-1 "PAS"/"IDC"), which a driving
		// licence cannot do.
		f.set("docType", "doc_foreign")
	}
	switch {
	case r.DocNumber == "":
		f.set("docNumber", "required")
	case !reDocNum.MatchString(r.DocNumber):
		f.set("docNumber", "doc_number")
	}
	if r.DocCountry == "" {
		f.set("docCountry", "required")
	} else if !validCountry(r.DocCountry) {
		f.set("docCountry", "country")
	}
	switch d, err := time.Parse("2006-01-02", r.DocExpiry); {
	case r.DocExpiry == "":
		f.set("docExpiry", "required")
	case err != nil:
		f.set("docExpiry", "date_format")
	case !d.After(now):
		f.set("docExpiry", "expired")
	}
	return f.err()
}

// ErrOpenRequest: the holder already has a request in progress.
var ErrOpenRequest = errs.New(errs.Conflict, "", "You already have a certificate request in progress")

// SubmitRequest records a certificate request and its identification
// evidence; it waits for an operator's decision.
func (s *Service) SubmitRequest(ctx context.Context, userID string, in RequestInput) (*store.CertRequest, error) {
	acc, err := s.st.Account(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.New(errs.Forbidden, "", "Only holders registered in the portal can request a certificate here")
	}
	if err != nil {
		return nil, storeErr("request", err)
	}
	if acc.VerifiedAt.IsZero() {
		return nil, errs.New(errs.Forbidden, "", "Verify your e-mail address first")
	}
	in.normalize()
	if err := s.checkRequest(in, acc.Country == "IT"); err != nil {
		return nil, err
	}
	if prev, err := s.st.LatestCertRequest(ctx, userID); err == nil {
		switch prev.Status {
		case "pending", "approved", "issuing":
			return nil, ErrOpenRequest
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, storeErr("request", err)
	}
	if err := s.checkBindings(ctx, acc.Email, in.Phone); err != nil {
		return nil, err
	}
	fiscal := ""
	if acc.Country == "IT" {
		fiscal = in.FiscalCode
	}
	req := store.CertRequest{ID: "r" + randomHex(8), UserID: userID, Status: "pending", GivenName: in.GivenName,
		Surname: in.Surname, FiscalCode: fiscal, BirthDate: in.BirthDate, Phone: in.Phone, Email: acc.Email,
		Country: acc.Country, Method: in.Method, DocType: in.DocType, DocNumber: in.DocNumber, DocCountry: in.DocCountry,
		DocExpiry: in.DocExpiry, CreatedAt: s.now()}
	if err := s.st.CreateCertRequest(ctx, req); err != nil {
		return nil, storeErr("request", err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + userID, Action: "enroll.request", Object: "request:" + req.ID, Outcome: "success",
		Detail: map[string]string{"method": in.Method, "docType": in.DocType}})
	return &req, nil
}

// holderID is what goes in the user's fiscal-code field, which the CA puts
// in the certificate subject's serialNumber: the Italian fiscal code, or
// for a holder without one the ETSI EN 319 412-1 natural-person
// identifier of the identity document (type, issuing country and number,
// e.g. "PASFR-12AB34567").
func holderID(r *store.CertRequest) string {
	if r.FiscalCode != "" {
		return r.FiscalCode
	}
	kind := "IDC"
	if r.DocType == "passport" {
		kind = "PAS"
	}
	return kind + r.DocCountry + "-" + r.DocNumber
}

// checkBindings refuses an e-mail or mobile number already bound to a
// credential whose certificate is alive (valid or suspended).
func (s *Service) checkBindings(ctx context.Context, email, phone string) error {
	bs, err := s.st.BindingsFor(ctx, email, phone)
	if err != nil {
		return storeErr("bindings", err)
	}
	for _, b := range bs {
		if b.KeyStatus != sam.KeyEnabled {
			continue
		}
		st, err := s.status.CertStatus(ctx, b.CertSerial)
		if err != nil {
			return errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", err)
		}
		if st == "valid" || st == "suspended" {
			return &FieldError{Fields: map[string]string{"phone": "bound"}}
		}
	}
	return nil
}

// CurrentRequest returns the holder's newest request (nil when none).
func (s *Service) CurrentRequest(ctx context.Context, userID string) (*store.CertRequest, error) {
	r, err := s.st.LatestCertRequest(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeErr("request", err)
	}
	return r, nil
}

// Identifications lists requests by status ("pending", "approved",
// "rejected", "issued"; "" = all) for the operator.
func (s *Service) Identifications(ctx context.Context, status string, limit int) ([]store.CertRequest, error) {
	switch status {
	case "", "pending", "approved", "rejected", "issued":
	default:
		return nil, errs.Invalidf("Invalid parameter status (pending, approved, rejected, issued)")
	}
	if limit < 0 || limit > 1000 {
		return nil, errs.Invalidf("Invalid parameter limit (1..1000)")
	}
	out, err := s.st.CertRequests(ctx, status, limit)
	if err != nil {
		return nil, storeErr("identifications", err)
	}
	return out, nil
}

// Identification returns one request for the operator.
func (s *Service) Identification(ctx context.Context, id string) (*store.CertRequest, error) {
	r, err := s.st.CertRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.New(errs.NotFound, "", "Unknown identification")
	}
	if err != nil {
		return nil, storeErr("identification", err)
	}
	return r, nil
}

// Decide records the operator's approval or rejection of the evidence.
func (s *Service) Decide(ctx context.Context, id string, approve bool, operator, reason string) error {
	if utf8.RuneCountInString(reason) > 500 {
		return errs.Invalidf("Invalid parameter reason (at most 500 characters)")
	}
	if !approve && strings.TrimSpace(reason) == "" {
		return errs.Invalidf("Missing parameter reason: say why the identification is rejected")
	}
	status := "rejected"
	if approve {
		status = "approved"
	}
	err := s.st.DecideCertRequest(ctx, id, status, operator, strings.TrimSpace(reason), s.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errs.New(errs.NotFound, "", "Unknown identification")
	case errors.Is(err, store.ErrConflict):
		return errs.New(errs.Conflict, "", "The identification was already decided")
	case err != nil:
		return storeErr("decide", err)
	}
	s.record(ctx, audit.Event{Actor: operator, Action: "enroll.identification." + status, Object: "request:" + id, Outcome: "success"})
	return nil
}

func (s *Service) approvedRequest(ctx context.Context, userID string) (*store.CertRequest, error) {
	r, err := s.CurrentRequest(ctx, userID)
	if err != nil {
		return nil, err
	}
	if r == nil || r.Status != "approved" {
		return nil, errs.New(errs.Conflict, "", "There is no approved certificate request to sign")
	}
	return r, nil
}

// SendContractOTP texts the code that confirms the contract signature to
// the mobile number of the approved request.
func (s *Service) SendContractOTP(ctx context.Context, userID string) error {
	r, err := s.approvedRequest(ctx, userID)
	if err != nil {
		return err
	}
	err = s.sms.Send(ctx, "req:"+r.ID, r.Phone, nil)
	var rl *otp.RateLimitError
	switch {
	case err == nil:
		s.record(ctx, audit.Event{Actor: "user:" + userID, Action: "enroll.otp_send", Object: "request:" + r.ID, Outcome: "success"})
		return nil
	case errors.As(err, &rl):
		return &errs.Error{Kind: errs.RateLimited, Msg: "Too many codes requested: retry later", RetryAfter: rl.RetryAfter, Err: err}
	}
	return errs.Wrap(errs.Unavailable, "The code could not be sent; try again later", err)
}

// Completion is the last step: acceptances, PIN, envelope passphrase and
// the SMS code that signs the contract.
type Completion struct {
	AcceptContract, AcceptPrivacy bool
	PIN, PINConfirm               string
	Passphrase, PassphraseConfirm string
	OTP                           string
}

var rePIN = regexp.MustCompile(`^[0-9]{8}$`)
var reOTP = regexp.MustCompile(`^[0-9]{6}$`)

func (c Completion) check() error {
	f := fields{}
	if !c.AcceptContract {
		f.set("acceptContract", "acceptance")
	}
	if !c.AcceptPrivacy {
		f.set("acceptPrivacy", "acceptance")
	}
	switch {
	case c.PIN == "":
		f.set("pin", "required")
	case !rePIN.MatchString(c.PIN):
		f.set("pin", "pin_format")
	}
	if c.PINConfirm != c.PIN {
		f.set("pinConfirm", "mismatch")
	}
	checkPassphrase(f, c.Passphrase, c.PassphraseConfirm)
	switch {
	case c.OTP == "":
		f.set("otp", "required")
	case !reOTP.MatchString(c.OTP):
		f.set("otp", "otp_format")
	}
	return f.err()
}

// Issued is what the holder learns when the certificate is issued.
type Issued struct {
	CredentialID, Serial, EnvelopeNumber string
}

// ErrInvalidOTP is a wrong, expired or used contract-signature code.
var ErrInvalidOTP = errs.New(errs.Invalid, "invalid_otp", "The OTP is invalid")

// Complete signs the contract with the SMS code, has sam generate the key
// in the HSM and the certificate issued, and mails the encrypted envelope.
func (s *Service) Complete(ctx context.Context, userID string, c Completion) (*Issued, error) {
	c.OTP = strings.TrimSpace(c.OTP)
	r, err := s.approvedRequest(ctx, userID)
	if err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := s.sms.Verify(ctx, "req:"+r.ID, c.OTP, nil); err != nil {
		s.record(ctx, audit.Event{Actor: "user:" + userID, Action: "enroll.sign_contract", Object: "request:" + r.ID, Outcome: "failure:invalid_otp"})
		if errors.Is(err, otp.ErrInvalid) || errors.Is(err, otp.ErrNoChallenge) || errors.Is(err, otp.ErrReplayed) {
			return nil, ErrInvalidOTP
		}
		return nil, storeErr("otp", err)
	}
	if err := s.checkBindings(ctx, r.Email, r.Phone); err != nil {
		return nil, err
	}
	if err := s.st.ClaimCertRequest(ctx, r.ID); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, errs.New(errs.Conflict, "", "The request is already being issued")
		}
		return nil, storeErr("claim", err)
	}
	now := s.now()
	release := func() {
		if err := s.st.ReleaseCertRequest(context.WithoutCancel(ctx), r.ID); err != nil {
			s.log.Error("certificate request left claimed", "request", r.ID, "error", err)
		}
	}
	if err := s.st.SetHolderData(ctx, userID, r.GivenName, r.Surname, holderID(r), r.Phone); err != nil {
		release()
		return nil, storeErr("holder data", err)
	}
	cc, err := s.sam.CreateCredential(ctx, sam.NewCredential{UserID: userID, PIN: c.PIN, KeyAlgo: s.cfg.KeyAlgo,
		OTP: "sms", SCAL: 2, Multisign: s.cfg.Multisign, Description: "Qualified signature", Actor: "user:" + userID})
	if err != nil {
		release()
		return nil, err
	}
	number := "E" + strings.ToUpper(randomHex(6))
	// The credential exists now: record it on the request before anything
	// else can fail, so the request is never left claimed without it.
	fin := store.CertRequest{ID: r.ID, ContractAcceptedAt: now, PrivacyAcceptedAt: now, ContractVersion: s.cfg.ContractVersion,
		CredentialID: cc.CredentialID, EnvelopeNumber: number, IssuedAt: now}
	if err := s.st.FinishCertRequest(ctx, fin); err != nil {
		s.log.Error("certificate request not marked issued", "request", r.ID, "credential", cc.CredentialID, "error", err)
	}
	env := Envelope{Number: number, IUT: cc.IUT, PUK: cc.PUK, ERC: cc.ERC, Holder: r.GivenName + " " + r.Surname,
		UserID: userID, Serial: cc.Serial, IssuedAt: now.UTC().Format("2006-01-02 15:04 UTC"), Italian: r.Country == "IT",
		PortalURL: s.cfg.PublicURL}
	pdf, err := EnvelopePDF(env, c.Passphrase)
	if err != nil {
		// Without the envelope the holder has no PUK/ERC: the operator
		// must reissue (the audit record says which credential).
		s.log.Error("envelope not generated", "request", r.ID, "credential", cc.CredentialID, "error", err)
		s.record(ctx, audit.Event{Actor: "user:" + userID, Action: "enroll.envelope", Object: "request:" + r.ID, Outcome: "failure:pdf",
			Detail: map[string]string{"credential": cc.CredentialID}})
		return nil, errs.Wrap(errs.Internal, "Internal error", err)
	}
	if err := s.mail.Send(ctx, envelopeMail(r.Email, env, pdf, false)); err != nil {
		s.log.Error("envelope not mailed", "request", r.ID, "error", err)
		return nil, errs.Wrap(errs.Unavailable, "The certificate was issued but the envelope could not be sent; contact support", err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + userID, Action: "enroll.sign_contract", Object: "request:" + r.ID, Outcome: "success",
		Detail: map[string]string{"credential": cc.CredentialID, "serial": cc.Serial, "envelope": number, "contract": s.cfg.ContractVersion}})
	return &Issued{CredentialID: cc.CredentialID, Serial: cc.Serial, EnvelopeNumber: number}, nil
}

// checkPassphrase checks the passphrase that encrypts an envelope.
func checkPassphrase(f fields, pass, confirm string) {
	switch n := utf8.RuneCountInString(pass); {
	case n == 0:
		f.set("passphrase", "required")
	case n < 8 || n > 128:
		f.set("passphrase", "passphrase_policy")
	}
	if confirm != pass {
		f.set("passphraseConfirm", "mismatch")
	}
}

// envelopeMail is the message carrying the encrypted envelope pdf of env:
// at issuance, or (replacement) with new codes for a lost one.
func envelopeMail(to string, env Envelope, pdf []byte, replacement bool) Mail {
	m := Mail{To: to, Subject: "Your signature envelope " + env.Number, AttachmentName: "envelope-" + env.Number + ".pdf", Attachment: pdf,
		Body: "Your certificate has been issued.\n\nThe attached PDF is your envelope with the PUK and the emergency code (ERC).\nOpen it with the passphrase you chose. Keep it safe.\n"}
	if replacement {
		m.Body = "As you asked, your credential has a new PUK and a new emergency code (ERC): the previous ones no longer work.\n\nThe attached PDF is your new envelope. Open it with the passphrase you chose. Keep it safe.\n"
	}
	if env.Italian {
		m.Subject = "La tua busta di firma " + env.Number
		m.Body = "Il certificato è stato emesso.\n\nIl PDF allegato è la busta con il PUK e il codice di emergenza (ERC).\nSi apre con la passphrase che hai scelto. Conservala con cura.\n"
		if replacement {
			m.Body = "Come hai chiesto, la tua credenziale ha un nuovo PUK e un nuovo codice di emergenza (ERC): i precedenti non valgono più.\n\nIl PDF allegato è la nuova busta. Si apre con la passphrase che hai scelto. Conservala con cura.\n"
		}
	}
	return m
}

// NewEnvelope gives the holder's credential a new PUK and ERC (the holder
// proves the PIN and the OTP: sam.ReplaceRecoveryCodes) and mails them in a
// new envelope encrypted with the passphrase given now. It returns the new
// envelope's number. The codes exist only in that envelope.
func (s *Service) NewEnvelope(ctx context.Context, userID, credentialID, pin, otpCode, passphrase, passphraseConfirm string) (string, error) {
	f := fields{}
	checkPassphrase(f, passphrase, passphraseConfirm)
	if err := f.err(); err != nil {
		return "", err
	}
	u, err := s.st.User(ctx, userID)
	if err != nil {
		return "", storeErr("user", err)
	}
	// A holder who registered in self-care has an account (address and
	// country); one the operator enrolled has the user's own address.
	to, italian := u.Email, u.FiscalCode != ""
	if a, err := s.st.Account(ctx, userID); err == nil {
		to, italian = a.Email, a.Country == "IT"
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", storeErr("account", err)
	}
	if to == "" {
		return "", errs.New(errs.Conflict, "", "There is no e-mail address to send the envelope to: ask the operator")
	}
	codes, err := s.sam.ReplaceRecoveryCodes(ctx, &sam.Principal{UserID: userID}, credentialID, strings.TrimSpace(pin), strings.TrimSpace(otpCode))
	if err != nil {
		return "", err
	}
	now := s.now()
	env := Envelope{Number: "E" + strings.ToUpper(randomHex(6)), IUT: codes.IUT, PUK: codes.PUK, ERC: codes.ERC,
		Holder: strings.TrimSpace(u.GivenName + " " + u.Surname), UserID: userID, Serial: codes.CertSerial,
		IssuedAt: now.UTC().Format("2006-01-02 15:04 UTC"), Italian: italian, PortalURL: s.cfg.PublicURL}
	pdf, err := EnvelopePDF(env, passphrase)
	if err != nil {
		// The new codes are set and exist nowhere else: asking again
		// (PIN + OTP) makes another pair.
		s.log.Error("new envelope not generated", "credential", credentialID, "error", err)
		return "", errs.Wrap(errs.Internal, "Internal error", err)
	}
	if err := s.mail.Send(ctx, envelopeMail(to, env, pdf, true)); err != nil {
		return "", errs.Wrap(errs.Unavailable, "The envelope could not be sent; ask for a new one later", err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + userID, Action: "enroll.new_envelope", Object: "credential:" + credentialID, Outcome: "success",
		Detail: map[string]string{"envelope": env.Number}})
	return env.Number, nil
}
