package sam

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/otp"
	"github.com/sigillo/sigillo/store"
)

// NewUser is what an operator enrolls.
type NewUser struct {
	Username, Password string
	Email, Phone       string
	GivenName, Surname string
	FiscalCode         string
	// Temporary marks the password as one the user must change at first
	// login (Login then answers ErrPasswordChange).
	Temporary bool
}

// NewCredential is what an operator asks to create for a user.
type NewCredential struct {
	UserID string
	// PIN (8 digits) makes the credential active at once. Without it,
	// Activation must be "puk": the credential is "issued, not activated"
	// and signs nothing until the holder activates it.
	PIN        string
	Activation string
	// KeyAlgo is "rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256" or "ecdsa-p384".
	KeyAlgo string
	// OTP is "totp", "sms" or "none".
	OTP string
	// SCAL is 1 or 2 (0 means 1). Multisign defaults to 1.
	SCAL, Multisign int
	// Domain and Alias (both or neither) name an automatic-signature credential.
	Domain, Alias string
	Description   string
	// Actor is who asks, for the audit record: "admin" (the default) for
	// the operator API, "user:<id>" when the holder enrolls themself.
	Actor string
}

// CreatedCredential is shown to the operator once: the PUK and ERC are
// never stored in clear and cannot be retrieved again.
type CreatedCredential struct {
	CredentialID string
	PUK, ERC     string
	IUT          string
	// OTPSecret (base32) and OTPURI (otpauth://) are set for TOTP.
	OTPSecret, OTPURI string
	// Certificates are DER, leaf first.
	Certificates [][]byte
	Serial       string
	Activated    bool
}

// UserView is a user as the operator API shows it (no secrets).
type UserView struct {
	UserID, Email, Phone, GivenName, Surname, FiscalCode, Status string
	PasswordChangedAt                                            time.Time
	MustChangePassword                                           bool
	CreatedAt                                                    time.Time
}

var (
	reUsername = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$`)
	rePhone    = regexp.MustCompile(`^\+?[0-9]{6,15}$`)
	reEmail    = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	reFiscal   = regexp.MustCompile(`^[A-Z0-9]{11,16}$`)
	rePIN      = regexp.MustCompile(`^[0-9]{8}$`)
	reDomain   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	reAlias    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$`)
)

// Key algorithms a credential may have.
var keyAlgos = map[string]bool{"rsa-2048": true, "rsa-3072": true, "rsa-4096": true, "ecdsa-p256": true, "ecdsa-p384": true}

func invalidList(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return errs.Invalidf("%s", strings.Join(problems, "; "))
}

// CreateUser enrolls a user; every invalid field is listed in one error.
// A taken username is errs.Conflict.
func (s *Service) CreateUser(ctx context.Context, u NewUser) (string, error) {
	var problems []string
	if !reUsername.MatchString(u.Username) {
		problems = append(problems, "Invalid parameter username (3-64 of A-Z a-z 0-9 . _ @ -)")
	}
	if v := PasswordViolations(u.Password); len(v) > 0 {
		problems = append(problems, "Password does not meet the policy: "+strings.Join(v, ", "))
	}
	if !reEmail.MatchString(u.Email) {
		problems = append(problems, "Invalid parameter email")
	}
	phone := strings.NewReplacer(" ", "", "-", "").Replace(u.Phone)
	if !rePhone.MatchString(phone) {
		problems = append(problems, "Invalid parameter phone")
	}
	if strings.TrimSpace(u.GivenName) == "" {
		problems = append(problems, "Missing parameter givenName")
	}
	if strings.TrimSpace(u.Surname) == "" {
		problems = append(problems, "Missing parameter surname")
	}
	fiscal := strings.ToUpper(strings.TrimSpace(u.FiscalCode))
	if fiscal != "" && !reFiscal.MatchString(fiscal) {
		problems = append(problems, "Invalid parameter fiscalCode")
	}
	if err := invalidList(problems); err != nil {
		return "", err
	}
	h, err := s.hash(ctx, u.Password)
	if err != nil {
		return "", err
	}
	now := s.now()
	err = s.st.CreateUser(ctx, store.User{
		ID: u.Username, PasswordHash: h, Email: u.Email, Phone: phone, GivenName: strings.TrimSpace(u.GivenName),
		Surname: strings.TrimSpace(u.Surname), FiscalCode: fiscal, Status: "active", PasswordChangedAt: now,
		MustChangePassword: u.Temporary, CreatedAt: now,
	})
	if errors.Is(err, store.ErrConflict) {
		return "", errs.New(errs.Conflict, "", "Username already taken")
	}
	if err != nil {
		return "", storeErr("create user", err)
	}
	s.record(ctx, audit.Event{Actor: "admin", Action: "admin.user.create", Object: "user:" + u.Username, Outcome: "success"})
	return u.Username, nil
}

// User returns a user for the operator API (no secrets).
func (s *Service) User(ctx context.Context, id string) (*UserView, error) {
	u, err := s.st.User(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.New(errs.NotFound, "", "Unknown user")
	}
	if err != nil {
		return nil, storeErr("user", err)
	}
	return &UserView{UserID: u.ID, Email: u.Email, Phone: u.Phone, GivenName: u.GivenName, Surname: u.Surname,
		FiscalCode: u.FiscalCode, Status: u.Status, PasswordChangedAt: u.PasswordChangedAt,
		MustChangePassword: u.MustChangePassword, CreatedAt: u.CreatedAt}, nil
}

// ChangePassword replaces a user's password after checking the old one
// and the policy (the self-care portal calls it; it clears a temporary
// password).
func (s *Service) ChangePassword(ctx context.Context, username, oldPassword, newPassword string) error {
	u, err := s.st.User(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return ErrAuthentication
	}
	if err != nil {
		return storeErr("change password", err)
	}
	ok, err := s.verify(ctx, u.PasswordHash, oldPassword)
	if err != nil {
		return err
	}
	if !ok {
		s.record(ctx, audit.Event{Actor: "user:" + u.ID, Action: "auth.password_change", Object: "user:" + u.ID, Outcome: "failure:bad_password"})
		return ErrAuthentication
	}
	if err := CheckPassword(newPassword); err != nil {
		return err
	}
	if newPassword == oldPassword {
		return errs.Invalidf("The new password must differ from the old one")
	}
	h, err := s.hash(ctx, newPassword)
	if err != nil {
		return err
	}
	if err := s.st.SetPassword(ctx, u.ID, h, false, s.now()); err != nil {
		return storeErr("change password", err)
	}
	s.record(ctx, audit.Event{Actor: "user:" + u.ID, Action: "auth.password_change", Object: "user:" + u.ID, Outcome: "success"})
	return nil
}

// CreateCredential generates the key in the HSM, has the CA certify it
// and stores the credential with hashed PIN, PUK and ERC, all in one call.
func (s *Service) CreateCredential(ctx context.Context, nc NewCredential) (*CreatedCredential, error) {
	if nc.SCAL == 0 {
		nc.SCAL = 1
	}
	if nc.Multisign == 0 {
		nc.Multisign = defaultMultisign(nc)
	}
	var problems []string
	if nc.UserID == "" {
		problems = append(problems, "Missing parameter userID")
	}
	activated := true
	switch {
	case nc.PIN != "" && (nc.Activation == "" || nc.Activation == "pin"):
		if !rePIN.MatchString(nc.PIN) {
			problems = append(problems, "Invalid parameter pin (8 digits)")
		}
	case nc.PIN == "" && nc.Activation == "puk":
		activated = false
	default:
		problems = append(problems, `Give either pin (8 digits) or "activation":"puk" without pin`)
	}
	if !keyAlgos[nc.KeyAlgo] {
		problems = append(problems, "Invalid parameter keyAlgo (rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384)")
	}
	switch nc.OTP {
	case "totp", "sms", "none":
	default:
		problems = append(problems, "Invalid parameter otp (totp, sms, none)")
	}
	if nc.SCAL != 1 && nc.SCAL != 2 {
		problems = append(problems, "Invalid parameter scal (1 or 2)")
	}
	if nc.Multisign < 1 || nc.Multisign > s.maxMultisign(nc) {
		problems = append(problems, fmt.Sprintf("Invalid parameter multisign (1..%d)", s.maxMultisign(nc)))
	}
	if (nc.Domain == "") != (nc.Alias == "") {
		problems = append(problems, "Give both domain and alias, or neither")
	} else if nc.Domain != "" && (!reDomain.MatchString(nc.Domain) || !reAlias.MatchString(nc.Alias)) {
		problems = append(problems, "Invalid parameter domain or alias")
	}
	if len(nc.Description) > 255 {
		problems = append(problems, "Invalid parameter description (at most 255 characters)")
	}
	actor := nc.Actor
	if actor == "" {
		actor = "admin"
	}
	if actor != "admin" && (!strings.HasPrefix(actor, "user:") || actor != "user:"+nc.UserID) {
		problems = append(problems, `Invalid actor ("admin" or "user:<userID>")`)
	}
	if err := invalidList(problems); err != nil {
		return nil, err
	}
	u, err := s.st.User(ctx, nc.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.New(errs.NotFound, "", "Unknown user")
	}
	if err != nil {
		return nil, storeErr("create credential", err)
	}
	if nc.OTP == "sms" && u.Phone == "" {
		return nil, errs.Invalidf("The user has no phone number for SMS OTP")
	}
	holder, err := s.holderOf(ctx, u)
	if err != nil {
		return nil, err
	}

	id := randomID("c-")
	out := &CreatedCredential{CredentialID: id, Activated: activated}
	var pukHash, ercHash string
	if out.PUK, out.ERC, pukHash, ercHash, err = s.newRecoveryCodes(ctx); err != nil {
		return nil, err
	}
	if out.IUT, err = randomCode(10); err != nil {
		return nil, errs.Wrap(errs.Internal, "Internal error", err)
	}
	rec := store.Credential{
		ID: id, UserID: u.ID, Description: nc.Description, KeyAlgo: nc.KeyAlgo, IUT: out.IUT, OTPType: nc.OTP,
		SCAL: nc.SCAL, Multisign: nc.Multisign, Domain: nc.Domain, Alias: nc.Alias, KeyStatus: KeyEnabled,
		Activated: activated, PUKHash: pukHash, ERCHash: ercHash,
	}
	if activated {
		if rec.PINHash, err = s.hash(ctx, nc.PIN); err != nil {
			return nil, err
		}
	}
	if nc.OTP == "totp" {
		if out.OTPSecret, out.OTPURI, err = s.totp.Generate(u.ID); err != nil {
			return nil, errs.Wrap(errs.Internal, "Internal error", err)
		}
		if rec.TOTPSecret, err = otp.Seal(s.cfg.OTPKey, []byte(out.OTPSecret), []byte(id)); err != nil {
			return nil, errs.Wrap(errs.Internal, "Internal error", err)
		}
	}

	pub, err := s.keys.GenerateKey(ctx, id, nc.KeyAlgo)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, "HSM unavailable", fmt.Errorf("generate key %s: %w", id, err))
	}
	// From here on a failure must not leave the key (or the certificate)
	// behind: nothing refers to them but this call.
	serial, chain, err := s.issuer.Issue(ctx, pub, holder, id)
	if err != nil {
		s.discard(ctx, id, "", actor)
		if _, ok := errs.As(err); ok {
			return nil, err
		}
		return nil, errs.Wrap(errs.Unavailable, "CA unavailable", fmt.Errorf("issue certificate for %s: %w", id, err))
	}
	if len(chain) == 0 {
		s.discard(ctx, id, serial, actor)
		return nil, errs.Wrap(errs.Internal, "Internal error", fmt.Errorf("CA returned no certificate for %s", id))
	}
	if err := samePublicKey(pub, chain[0]); err != nil {
		s.discard(ctx, id, serial, actor)
		return nil, errs.Wrap(errs.Internal, "Internal error", err)
	}
	rec.CertSerial, rec.CertChain, out.Serial, out.Certificates = serial, chain, serial, chain
	rec.CreatedAt = s.now()
	if err := s.st.CreateCredential(ctx, rec); err != nil {
		s.discard(ctx, id, serial, actor)
		if errors.Is(err, store.ErrConflict) {
			return nil, errs.New(errs.Conflict, "", "domain and alias already in use")
		}
		return nil, storeErr("create credential", err)
	}
	s.record(ctx, audit.Event{Actor: actor, Action: "admin.credential.create", Object: "credential:" + id, Outcome: "success",
		Detail: map[string]string{"user": u.ID, "keyAlgo": nc.KeyAlgo, "otp": nc.OTP, "serial": serial, "country": holder.Country}})
	return out, nil
}

// holderChecker is implemented by an Issuer that can tell, before a key
// is generated, whether it would certify the holder (e.g. a qualified CA
// needs a fiscal code or another identifier).
type holderChecker interface {
	CheckHolder(h Holder) error
}

// accountStore gives the country the holder registered with in the
// self-care portal; *store.Store has it.
type accountStore interface {
	Account(ctx context.Context, userID string) (*store.Account, error)
}

var _ accountStore = (*store.Store)(nil)

var reCountry = regexp.MustCompile(`^[A-Z]{2}$`)

// holderOf is what the certificate will say about u, checked before the
// HSM key exists so that a holder the CA would refuse costs no key: the
// country is the one the holder registered with, else cfg.Country.
func (s *Service) holderOf(ctx context.Context, u *store.User) (Holder, error) {
	h := Holder{GivenName: strings.TrimSpace(u.GivenName), Surname: strings.TrimSpace(u.Surname), FiscalCode: u.FiscalCode,
		Email: u.Email, Country: s.cfg.Country}
	if as, ok := s.st.(accountStore); ok {
		a, err := as.Account(ctx, u.ID)
		switch {
		case err == nil:
			if c := strings.ToUpper(strings.TrimSpace(a.Country)); reCountry.MatchString(c) {
				h.Country = c
			}
		case !errors.Is(err, store.ErrNotFound):
			return h, storeErr("holder account", err)
		}
	}
	var problems []string
	if h.GivenName == "" || h.Surname == "" {
		problems = append(problems, "the user has no given name or surname")
	}
	if len(h.GivenName)+1+len(h.Surname) > 64 {
		problems = append(problems, "given name and surname longer than 64 characters")
	}
	if !reCountry.MatchString(h.Country) {
		problems = append(problems, fmt.Sprintf("country %q is not an ISO 3166 two-letter code", h.Country))
	}
	if len(h.FiscalCode) > 56 {
		problems = append(problems, "fiscal code too long")
	}
	if hc, ok := s.issuer.(holderChecker); ok {
		if err := hc.CheckHolder(h); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return h, errs.Invalidf("The certificate cannot be issued for this user: %s", strings.Join(problems, "; "))
	}
	return h, nil
}

// discard destroys the key of a credential that will not exist (and, when
// the CA already certified it, revokes the certificate), so that a failed
// CreateCredential leaves nothing usable behind. It runs even if the
// caller's context is cancelled.
func (s *Service) discard(ctx context.Context, id, serial, actor string) {
	ctx = context.WithoutCancel(ctx)
	outcome := "success"
	if err := s.keys.DestroyKey(ctx, id); err != nil {
		outcome = "failure:hsm"
		s.log.Error("HSM key of a failed credential not destroyed: orphaned", "credential", id, "error", err)
	}
	if serial != "" {
		if l, ok := s.issuer.(CertLifecycle); ok {
			if err := l.Revoke(ctx, serial, "cessationOfOperation", actor); err != nil {
				s.log.Error("certificate of a failed credential not revoked", "credential", id, "serial", serial, "error", err)
			}
		} else {
			s.log.Error("certificate of a failed credential left valid (issuer cannot revoke)", "credential", id, "serial", serial)
		}
	}
	s.record(ctx, audit.Event{Actor: actor, Action: "admin.credential.discard", Object: "credential:" + id, Outcome: outcome,
		Detail: map[string]string{"serial": serial}})
}

// samePublicKey checks that the CA certified the key we generated.
func samePublicKey(pub crypto.PublicKey, leafDER []byte) error {
	leaf, err := parseCert(leafDER)
	if err != nil {
		return err
	}
	eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(leaf.PublicKey) {
		return errors.New("issued certificate does not match the generated key")
	}
	return nil
}

// AdminCredential describes any credential for the operator (no secrets).
func (s *Service) AdminCredential(ctx context.Context, id string) (*CredentialInfo, error) {
	c, err := s.st.Credential(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.New(errs.NotFound, "", "Unknown credential")
	}
	if err != nil {
		return nil, storeErr("credential", err)
	}
	return s.info(ctx, c)
}

// SetKeyEnabled enables or disables a credential's key (operator action).
func (s *Service) SetKeyEnabled(ctx context.Context, id string, enabled bool) error {
	status := KeyDisabled
	if enabled {
		status = KeyEnabled
	}
	err := s.st.SetKeyStatus(ctx, id, status)
	if errors.Is(err, store.ErrNotFound) {
		return errs.New(errs.NotFound, "", "Unknown credential")
	}
	if err != nil {
		return storeErr("set key status", err)
	}
	s.record(ctx, audit.Event{Actor: "admin", Action: "admin.credential." + strings.TrimSuffix(status, "d"), Object: "credential:" + id, Outcome: "success"})
	return nil
}

// newRecoveryCodes makes a PUK (8 digits) and an ERC (12 characters) and
// their slow hashes: the codes are shown once, only the hashes are kept.
func (s *Service) newRecoveryCodes(ctx context.Context) (puk, erc, pukHash, ercHash string, err error) {
	if puk, err = randomDigits(8); err != nil {
		return "", "", "", "", errs.Wrap(errs.Internal, "Internal error", err)
	}
	if erc, err = randomCode(12); err != nil {
		return "", "", "", "", errs.Wrap(errs.Internal, "Internal error", err)
	}
	if pukHash, err = s.hash(ctx, puk); err != nil {
		return "", "", "", "", err
	}
	if ercHash, err = s.hash(ctx, erc); err != nil {
		return "", "", "", "", err
	}
	return puk, erc, pukHash, ercHash, nil
}
