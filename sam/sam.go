// Package sam is sigillo's signature activation module: the only code path
// that can reach a credential's signing key. It decides who may sign what.
//
// Invariants it keeps:
//   - a signature needs a SAD issued by Authorize after the PIN (and the OTP
//     the credential requires) was verified; the SAD is bound to user,
//     credential, hash algorithm, count and (when given) the exact multiset
//     of hashes, and is consumed atomically in the store, so no replica can
//     sign more than was authorized;
//   - security counters (PIN tries, TOTP steps, SAD budget) change only
//     through one conditional UPDATE each, never read-modify-write in Go;
//   - secrets (passwords, PIN, PUK, ERC) are kept only as argon2id hashes,
//     tokens and SADs only as SHA-256 hashes, TOTP seeds only encrypted;
//   - key state and certificate status are checked on every authorize and
//     every sign; another user's credential is indistinguishable from a
//     missing one;
//   - every authorize and sign is audited; a signature whose audit record
//     cannot be written is not returned (fail closed).
package sam

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/otp"
)

// Keys is the part of the HSM key manager sam needs: one key per
// credential, named by the credential id.
type Keys interface {
	GenerateKey(ctx context.Context, id, algo string) (crypto.PublicKey, error)
	Signer(ctx context.Context, id string) (crypto.Signer, error)
	// DestroyKey deletes a key that will never be used (its credential
	// could not be created), so that no orphan stays in the HSM.
	DestroyKey(ctx context.Context, id string) error
}

// Issuer is the adapter to the issuing CA (written by the lead).
type Issuer interface {
	// Issue certifies pub for the holder and returns the certificate's
	// serial (hex) and the chain, leaf first, DER.
	Issue(ctx context.Context, pub crypto.PublicKey, h Holder, credentialID string) (serial string, chainDER [][]byte, err error)
	// CertStatus returns "valid", "suspended", "revoked" or "expired".
	CertStatus(ctx context.Context, serial string) (string, error)
}

// Holder is the certificate subject's identity, taken from the user.
type Holder struct {
	GivenName, Surname, FiscalCode, Email, Country string
}

// Auditor records security-relevant events (package audit implements it).
type Auditor interface {
	Record(ctx context.Context, e audit.Event) error
}

// Config tunes the service. Zero values take the documented defaults.
type Config struct {
	// SADTTL is the lifetime of a SAD (default 5 minutes).
	SADTTL time.Duration
	// TokenTTL is the lifetime of an access token (default 1 hour);
	// RefreshTTL of a refresh token (default 7 days).
	TokenTTL, RefreshTTL time.Duration
	// PINMaxTries is how many wrong PINs in a row block the PIN (default 3).
	// PUKMaxTries likewise for the PUK (default 3).
	PINMaxTries, PUKMaxTries int
	// OTPMaxTries is how many wrong OTPs in a row (after a right PIN)
	// block the OTP (default 10): without it a known PIN would allow
	// guessing TOTP codes.
	OTPMaxTries int
	// OTP tunes TOTP and SMS codes.
	OTP otp.Config
	// OTPKey is the 32-byte AES-256 key that encrypts TOTP seeds at rest.
	OTPKey []byte
	// Argon2 are the password/PIN hashing parameters (default Argon2Default).
	Argon2 Argon2Params
	// HashConcurrency bounds concurrent argon2 computations, i.e. memory
	// (default 2 × GOMAXPROCS).
	HashConcurrency int
	// PasswordMaxAge is how long a password stays valid (default 180 days).
	PasswordMaxAge time.Duration
	// Country is the holder's country in issued certificates (default "IT").
	Country string
	// MaxMultisign caps a credential's multisign (default 1000; automatic
	// credentials may go up to DefaultAutomaticMultisign).
	MaxMultisign int
	// SignParallelism bounds the concurrent HSM signatures of one batch
	// (default DefaultSignParallelism; set it to the HSM session pool size).
	SignParallelism int
}

func (c Config) withDefaults() Config {
	if c.SADTTL == 0 {
		c.SADTTL = 5 * time.Minute
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = time.Hour
	}
	if c.RefreshTTL == 0 {
		c.RefreshTTL = 7 * 24 * time.Hour
	}
	if c.PINMaxTries == 0 {
		c.PINMaxTries = 3
	}
	if c.OTPMaxTries == 0 {
		c.OTPMaxTries = 10
	}
	if c.PUKMaxTries == 0 {
		c.PUKMaxTries = 3
	}
	c.OTP = c.OTP.WithDefaults()
	if c.Argon2 == (Argon2Params{}) {
		c.Argon2 = Argon2Default
	}
	if c.HashConcurrency == 0 {
		c.HashConcurrency = 2 * runtime.GOMAXPROCS(0)
	}
	if c.PasswordMaxAge == 0 {
		c.PasswordMaxAge = 180 * 24 * time.Hour
	}
	if c.Country == "" {
		c.Country = "IT"
	}
	if c.MaxMultisign == 0 {
		c.MaxMultisign = 1000
	}
	return c
}

// Deps are the service's collaborators.
type Deps struct {
	Store   Store
	Keys    Keys
	Issuer  Issuer
	Audit   Auditor
	SMS     otp.Sender
	Now     func() time.Time
	Log     *slog.Logger
	Metrics prometheus.Registerer
	// Limiter bounds login, authorize and OTP attempts (nil: ratelimit's
	// default rules over Store; see sam/ratelimit.go).
	Limiter Limiter
}

// Service is the signature activation module. It is safe for concurrent use.
type Service struct {
	cfg     Config
	st      Store
	keys    Keys
	issuer  Issuer
	audit   Auditor
	sms     otp.Sender
	now     func() time.Time
	log     *slog.Logger
	met     *metrics
	hashSem chan struct{}
	totp    *otp.TOTP
	smsOTP  *otp.SMS
	limiter Limiter

	seq     atomic.Int64 // last seqID value
	signers sync.Map     // credential id → crypto.Signer
	leaves  sync.Map     // certificate serial → *x509.Certificate
}

// New checks the configuration and dependencies and returns the service.
func New(cfg Config, d Deps) (*Service, error) {
	cfg = cfg.withDefaults()
	var problems []error
	if d.Store == nil {
		problems = append(problems, errors.New("sam: Store is required"))
	}
	if d.Keys == nil {
		problems = append(problems, errors.New("sam: Keys is required"))
	}
	if d.Issuer == nil {
		problems = append(problems, errors.New("sam: Issuer is required"))
	}
	if d.Audit == nil {
		problems = append(problems, errors.New("sam: Audit is required"))
	}
	if len(cfg.OTPKey) != 32 {
		problems = append(problems, fmt.Errorf("sam: OTPKey must be 32 bytes, got %d", len(cfg.OTPKey)))
	}
	if err := cfg.Argon2.validate(); err != nil {
		problems = append(problems, err)
	}
	if cfg.SADTTL < 0 || cfg.TokenTTL < 0 || cfg.RefreshTTL < 0 {
		problems = append(problems, errors.New("sam: TTLs must be positive"))
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
	met, err := newMetrics(d.Metrics)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, st: d.Store, keys: d.Keys, issuer: d.Issuer, audit: d.Audit, sms: d.SMS,
		now: d.Now, log: d.Log, met: met,
		hashSem: make(chan struct{}, cfg.HashConcurrency),
	}
	s.totp = otp.NewTOTP(cfg.OTP, d.Store, d.Now)
	s.smsOTP = otp.NewSMS(cfg.OTP, d.Store, d.SMS, d.Now)
	if s.limiter, err = limiterFor(d); err != nil {
		return nil, err
	}
	return s, nil
}

// Principal is an authenticated caller of the CSC API.
type Principal struct {
	UserID string
	// ClientID is the OAuth client, when the token came from OAuth (later).
	ClientID string
	// Domain is set for automatic-signature integrations (later).
	Domain string
	// TokenID identifies the access token (its hash), for revocation.
	TokenID string
	// Scope is the OAuth scope of the token ("" for auth/login tokens,
	// ScopeService or ScopeCredential). A credential-scope principal
	// reaches only CredentialID, and SAD is its token, which is a SAD
	// bound to what the holder consented to (sam/oauth.go).
	Scope, CredentialID, SAD string
}

// Tokens are what a successful login or refresh returns.
type Tokens struct {
	AccessToken, RefreshToken string
	// ExpiresIn is the access token lifetime in seconds.
	ExpiresIn int
}

// CredentialInfo describes a credential to its owner; it holds no secret.
type CredentialInfo struct {
	ID, Description string
	// KeyStatus is "enabled" or "disabled".
	KeyStatus string
	// KeyAlgo is "rsa-2048", "rsa-3072", "ecdsa-p256"...
	KeyAlgo  string
	KeyLen   int
	CurveOID string
	// CertStatus is "valid", "expired", "revoked" or "suspended".
	CertStatus string
	// Certificates are DER, leaf first.
	Certificates [][]byte
	Cert         *x509.Certificate
	SCAL         int
	Multisign    int
	// OTPType is "totp", "sms" or "none".
	OTPType    string
	Activated  bool
	PINBlocked bool
	OTPBlocked bool
	// Domain and Alias identify an automatic-signature credential.
	Domain, Alias string
	// UserID is the owner.
	UserID string
	// SignatureQualifier is the kind of signature the certificate makes
	// (ca.QualifierQES, ...), CSC's signatureQualifier.
	SignatureQualifier string
}

// AuthorizeRequest asks for a SAD. Hashes are raw digests of HashAlgo;
// they are required for SCAL 2 credentials.
type AuthorizeRequest struct {
	CredentialID  string
	NumSignatures int
	Hashes        [][]byte
	HashAlgo      crypto.Hash
	PIN, OTP      string
	Description   string
}

// SAD is signature activation data: an opaque value and its lifetime.
type SAD struct {
	Value     string
	ExpiresIn int
}

// SignRequest asks for raw signatures of Hashes with a SAD.
type SignRequest struct {
	CredentialID, SAD string
	Hashes            [][]byte
	// Opts is a crypto.Hash for PKCS#1 v1.5 and ECDSA, *rsa.PSSOptions for PSS.
	Opts crypto.SignerOpts
}
