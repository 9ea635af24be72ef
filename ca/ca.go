package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/store"
)

// Roles of the CA's own certificates, as stored.
const (
	RoleRoot    = "root"
	RoleIssuing = "issuing"
	RoleOCSP    = "ocsp"
	RoleTSA     = "tsa"
)

// Default values for Config fields left empty.
const (
	DefaultValidity     = 3 * 365 * 24 * time.Hour
	DefaultCRLValidity  = 24 * time.Hour
	DefaultOCSPValidity = time.Hour
	// DefaultKeyAlgo, for the root and issuing CA keys, is ECDSA P-384:
	// ~192-bit security, right for a 20-year root (ETSI TS 119 312 and
	// SOG-IS accept it), small certificates and CRLs, and it signs rarely
	// (issuance, CRLs), so its cost in SoftHSM2 (~2 ms a signature, see
	// docs/BENCHMARKS.md) does not matter. "rsa-3072" remains available for
	// relying parties that only accept RSA chains.
	DefaultKeyAlgo = "ecdsa-p384"
	// DefaultServiceKeyAlgo, for the OCSP responder and TSA keys, is ECDSA
	// P-256: they sign on every OCSP request and every time-stamp, their
	// certificates are short-lived and re-issued, and P-256 signs ~20 times
	// faster than P-384 and than RSA-3072 in SoftHSM2.
	DefaultServiceKeyAlgo = "ecdsa-p256"
	// DefaultTSAPolicyOID is ETSI EN 319 421's best-practices time-stamp
	// policy (BTSP).
	DefaultTSAPolicyOID = "0.4.0.2023.1.1"
)

// Config is what an operator sets about the CA.
type Config struct {
	// PublicURL is the base URL relying parties reach the service at; the
	// AIA (OCSP, caIssuers) and CRL distribution point URLs live under it.
	PublicURL string
	// Validity of end-entity certificates (default 3 years).
	Validity time.Duration
	// CRLValidity is the distance between a CRL's thisUpdate and nextUpdate
	// (default 24h); CRLs are regenerated at least every CRLValidity/2.
	CRLValidity time.Duration
	// OCSPValidity is the nextUpdate distance of OCSP responses (default 1h).
	OCSPValidity time.Duration
	// TSAPolicyOID is the dotted time-stamp policy (default ETSI BTSP).
	TSAPolicyOID string
	// PolicyOIDs are extra certificate policies (dotted) put in every
	// end-entity certificate next to the ETSI QCP-n-qscd / NCP policy.
	PolicyOIDs []string
	// KeyAlgo is the HSM key type of the root and issuing CA keys
	// ("ecdsa-p384" default, "ecdsa-p256", "rsa-3072", ...).
	KeyAlgo string
	// ServiceKeyAlgo is the HSM key type of the OCSP responder and TSA keys,
	// which sign on every request (default "ecdsa-p256").
	ServiceKeyAlgo string
	// Organization and Country go into the CA certificates' subjects.
	Organization, Country string
}

func (c Config) withDefaults() Config {
	if c.Validity == 0 {
		c.Validity = DefaultValidity
	}
	if c.CRLValidity == 0 {
		c.CRLValidity = DefaultCRLValidity
	}
	if c.OCSPValidity == 0 {
		c.OCSPValidity = DefaultOCSPValidity
	}
	if c.TSAPolicyOID == "" {
		c.TSAPolicyOID = DefaultTSAPolicyOID
	}
	if c.KeyAlgo == "" {
		c.KeyAlgo = DefaultKeyAlgo
	}
	if c.ServiceKeyAlgo == "" {
		c.ServiceKeyAlgo = DefaultServiceKeyAlgo
	}
	if c.Organization == "" {
		c.Organization = "sigillo"
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return c
}

// validate lists every problem at once.
func (c Config) validate() error {
	var probs []string
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		probs = append(probs, fmt.Sprintf("public URL %q must be an absolute http(s) URL", c.PublicURL))
	}
	if c.Validity < time.Hour {
		probs = append(probs, fmt.Sprintf("validity %s is too short", c.Validity))
	}
	if c.CRLValidity < time.Minute {
		probs = append(probs, fmt.Sprintf("CRL validity %s is too short", c.CRLValidity))
	}
	if c.OCSPValidity < time.Minute {
		probs = append(probs, fmt.Sprintf("OCSP validity %s is too short", c.OCSPValidity))
	}
	if _, err := parseOID(c.TSAPolicyOID); err != nil {
		probs = append(probs, fmt.Sprintf("TSA policy OID: %v", err))
	}
	for _, p := range c.PolicyOIDs {
		if _, err := parseOID(p); err != nil {
			probs = append(probs, fmt.Sprintf("certificate policy OID: %v", err))
		}
	}
	for _, algo := range []string{c.KeyAlgo, c.ServiceKeyAlgo} {
		switch algo {
		case "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096":
		default:
			probs = append(probs, fmt.Sprintf("unsupported CA key algorithm %q", algo))
		}
	}
	if len(c.Country) != 2 {
		probs = append(probs, fmt.Sprintf("country %q must be an ISO 3166 two-letter code", c.Country))
	}
	if len(probs) > 0 {
		return fmt.Errorf("ca config: %s", strings.Join(probs, "; "))
	}
	return nil
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q is not a dotted OID", s)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != p {
			return nil, fmt.Errorf("%q is not a dotted OID", s)
		}
		oid[i] = n
	}
	return oid, nil
}

// Keys is the HSM as the CA sees it: keys are generated inside it, used
// only through a crypto.Signer, and destroyed when a new one goes unused.
type Keys interface {
	GenerateKey(ctx context.Context, id, algo string) (crypto.PublicKey, error)
	Signer(ctx context.Context, id string) (crypto.Signer, error)
	DestroyKey(ctx context.Context, id string) error
}

// Store is the persistence the CA needs; *store.Store satisfies it.
type Store interface {
	CA(ctx context.Context, role string) (store.CAEntry, error)
	PutCA(ctx context.Context, e store.CAEntry, replace bool) error
	InsertCert(ctx context.Context, r store.CertRecord, supersedes string) error
	Cert(ctx context.Context, serial string) (store.CertRecord, error)
	CertsByOwner(ctx context.Context, owner string) ([]store.CertRecord, error)
	ChangeCert(ctx context.Context, serial string, c store.CertChange) (store.CertRecord, error)
	RevokedCerts(ctx context.Context, issuer string, now time.Time) ([]store.CertRecord, error)
	NextCRLNumber(ctx context.Context, issuer string) (int64, error)
	PutCRL(ctx context.Context, c store.CRLRecord) (bool, error)
	CRL(ctx context.Context, issuer string) (store.CRLRecord, error)
}

// Auditor records security-relevant events (the audit package's log).
type Auditor interface {
	Record(ctx context.Context, e audit.Event) error
}

// Option configures an Authority.
type Option func(*Authority)

// WithAudit sets the audit log; Open fails without one.
func WithAudit(a Auditor) Option { return func(x *Authority) { x.audit = a } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(x *Authority) { x.log = l } }

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(x *Authority) { x.now = now } }

// WithRegisterer registers the CA's metrics.
func WithRegisterer(r prometheus.Registerer) Option { return func(x *Authority) { x.reg = r } }

// Authority is the running CA. It is safe for concurrent use; all mutable
// state lives in the store.
type Authority struct {
	cfg   Config
	keys  Keys
	st    Store
	audit Auditor
	log   *slog.Logger
	now   func() time.Time
	reg   prometheus.Registerer
	met   *metrics

	root, issuing, ocsp, tsa *signerCert
	tsaPolicy                asn1.ObjectIdentifier
	policies                 []asn1.ObjectIdentifier

	lintMu   sync.Mutex
	lintKeys map[string]crypto.Signer
	crlMu    sync.Mutex // serialises lazy CRL regeneration
}

// Open loads the CA hierarchy from the store, creating on first start the
// root, issuing, OCSP-responder and TSA keys in the HSM and their
// certificates. It refuses to start when a stored certificate does not
// match its HSM key or does not chain to its issuer.
func Open(ctx context.Context, cfg Config, keys Keys, st Store, opts ...Option) (*Authority, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Authority{cfg: cfg, keys: keys, st: st, lintKeys: map[string]crypto.Signer{}}
	for _, o := range opts {
		o(a)
	}
	if a.audit == nil {
		return nil, errors.New("ca: no audit log (use ca.WithAudit)")
	}
	if keys == nil || st == nil {
		return nil, errors.New("ca: keys and store are required")
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	var err error
	if a.met, err = newMetrics(a.reg); err != nil {
		return nil, err
	}
	a.tsaPolicy, _ = parseOID(cfg.TSAPolicyOID)
	for _, p := range cfg.PolicyOIDs {
		oid, _ := parseOID(p)
		a.policies = append(a.policies, oid)
	}
	if a.root, err = a.loadOrCreate(ctx, RoleRoot, nil); err != nil {
		return nil, err
	}
	if a.issuing, err = a.loadOrCreate(ctx, RoleIssuing, a.root); err != nil {
		return nil, err
	}
	if a.ocsp, err = a.loadOrCreate(ctx, RoleOCSP, a.issuing); err != nil {
		return nil, err
	}
	if a.tsa, err = a.loadOrCreate(ctx, RoleTSA, a.issuing); err != nil {
		return nil, err
	}
	for _, role := range []string{RoleRoot, RoleIssuing} {
		if _, err := a.CRL(ctx, role); err != nil {
			return nil, fmt.Errorf("ca: initial %s CRL: %w", role, err)
		}
	}
	return a, nil
}

// newKeyID names a new HSM key. The random suffix keeps two replicas that
// bootstrap at the same moment from colliding in the HSM; the store
// decides which one wins.
func newKeyID(role string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "sigillo-ca-" + role + "-" + hex.EncodeToString(b[:])
}

// Run regenerates the CRLs whenever they reach half their validity, until
// ctx ends. Serving a CRL also regenerates a stale one, so Run is what
// keeps CRLs fresh when nobody fetches them.
func (a *Authority) Run(ctx context.Context) {
	t := time.NewTicker(a.cfg.CRLValidity / 8)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, role := range []string{RoleRoot, RoleIssuing} {
				if _, err := a.CRL(ctx, role); err != nil {
					a.log.Error("ca: CRL refresh failed", "issuer", role, "error", err)
				}
			}
		}
	}
}

func (a *Authority) record(ctx context.Context, actor, action, object, outcome string, detail map[string]string) error {
	if actor == "" {
		actor = "system"
	}
	err := a.audit.Record(ctx, audit.Event{Actor: actor, Action: action, Object: object, Outcome: outcome, Detail: detail})
	if err != nil {
		a.log.Error("ca: audit record failed", "action", action, "object", object, "error", err)
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}
