// Package config is sigillo's one typed configuration: an optional YAML
// file, overridden by SIGILLO_* environment variables, then validated with
// every problem listed at once. Operators and tests rely on the variables
// working with no file at all.
//
// Every key has an environment variable derived from its path:
// pkcs11.max_sessions is SIGILLO_PKCS11_MAX_SESSIONS. A secret key (type
// Secret) may instead be given as a file: pkcs11.pin_file /
// SIGILLO_PKCS11_PIN_FILE.
package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sigillo/sigillo/ratelimit"
)

// Config is the whole configuration tree.
type Config struct {
	// Mode is "dev" (embedded defaults: generated admin token, private
	// SoftHSM2 token, dev SMS outbox) or "production" (all set explicitly).
	Mode string `yaml:"mode"`
	// Listen is the HTTP listen address.
	Listen string `yaml:"listen"`
	// PublicURL is the base URL written into certificates and links.
	PublicURL string `yaml:"public_url"`
	// DataDir holds the dev defaults (SQLite database, SoftHSM2 token).
	DataDir string `yaml:"data_dir"`
	// Database is a SQLite path, sqlite://PATH, or a postgres:// URL.
	Database string `yaml:"database"`
	// DatabaseMaxConns bounds PostgreSQL connections per replica.
	DatabaseMaxConns int `yaml:"database_max_conns"`
	// AdminToken is the operator API's bearer token.
	AdminToken Secret `yaml:"admin_token"`
	// TrustedProxies is a comma-separated list of proxy addresses/CIDRs
	// whose X-Forwarded-For is believed (per-IP rate limits depend on it);
	// empty: none, the peer address is the client.
	TrustedProxies string `yaml:"trusted_proxies"`
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`

	PKCS11 PKCS11 `yaml:"pkcs11"`
	TLS    TLS    `yaml:"tls"`
	Log    Log    `yaml:"log"`
	CA     CA     `yaml:"ca"`
	Auth   Auth   `yaml:"auth"`
	OTP    OTP    `yaml:"otp"`
	Email  Email  `yaml:"email"`
	Batch  Batch  `yaml:"batch"`
	Async  Async  `yaml:"async"`

	Overload  Overload  `yaml:"overload"`
	RateLimit RateLimit `yaml:"ratelimit"`
}

// PKCS11 locates the HSM.
type PKCS11 struct {
	// Module is the PKCS#11 library (default: SoftHSM2 found on the machine).
	Module string `yaml:"module"`
	// Token is the token label.
	Token string `yaml:"token"`
	// PIN is the user PIN of the token.
	PIN Secret `yaml:"pin"`
	// MaxSessions sizes the session pool.
	MaxSessions int `yaml:"max_sessions"`
}

// TLS enables HTTPS when both files are set.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Log selects the log format and level.
type Log struct {
	// Format is "json", "text" or "auto" (JSON when stderr is not a terminal).
	Format string `yaml:"format"`
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
}

// CA configures the built-in certification authority.
type CA struct {
	// Validity of end-entity certificates.
	Validity Duration `yaml:"validity"`
	// CRLValidity is a CRL's lifetime; it is regenerated at half of it.
	CRLValidity Duration `yaml:"crl_validity"`
	// KeyAlgo of CA keys created on first start.
	KeyAlgo string `yaml:"key_algo"`
	// TSAPolicyOID is the timestamp policy written into tokens.
	TSAPolicyOID string `yaml:"tsa_policy_oid"`
	// Organization and Country of the CA subjects.
	Organization string `yaml:"organization"`
	Country      string `yaml:"country"`
}

// Auth configures tokens, SAD and PIN handling.
type Auth struct {
	// TokenTTL is the access-token lifetime.
	TokenTTL Duration `yaml:"token_ttl"`
	// RefreshTTL is the refresh-token lifetime (rememberMe).
	RefreshTTL Duration `yaml:"refresh_ttl"`
	// SADTTL is the SAD lifetime: short on purpose.
	SADTTL Duration `yaml:"sad_ttl"`
	// PINMaxTries wrong PINs in a row block the PIN.
	PINMaxTries int `yaml:"pin_max_tries"`
	// SecretKey (32 bytes, base64 or hex) encrypts OTP seeds at rest.
	// Dev mode generates one into the data directory.
	SecretKey Secret `yaml:"secret_key"`
}

// OTP configures one-time passwords.
type OTP struct {
	Digits int      `yaml:"digits"`
	Period Duration `yaml:"period"`
	// SMSTTL is how long an SMS code stays valid.
	SMSTTL Duration `yaml:"sms_ttl"`
	// SMSSender is "outbox" (dev: stored, readable via the admin API) or "webhook".
	SMSSender string `yaml:"sms_sender"`
	// WebhookURL receives a POST per SMS when SMSSender is "webhook".
	WebhookURL string `yaml:"webhook_url"`
}

// Email configures outgoing e-mail: address verification links and the
// encrypted envelope with PUK and ERC.
type Email struct {
	// Sender is "outbox" (dev: stored, listed by GET /admin/v1/emails) or
	// "smtp".
	Sender string `yaml:"sender"`
	// SMTPURL is the submission server when Sender is "smtp":
	// smtps://user@host:465 (TLS), smtp://user@host:587 (STARTTLS,
	// required), or smtp://127.0.0.1:25?tls=none for a relay on loopback.
	SMTPURL string `yaml:"smtp_url"`
	// SMTPPassword authenticates the URL's user (AUTH PLAIN, over TLS only).
	SMTPPassword Secret `yaml:"smtp_password"`
	// From is the sender address, e.g. "sigillo <noreply@example.com>".
	From string `yaml:"from"`
	// MaxAge: with smtp, mail waits in the store's queue and is retried
	// (backoff up to 30 min) for this long before it is given up.
	MaxAge Duration `yaml:"max_age"`
}

// Batch bounds batch signing.
type Batch struct {
	// MaxHashes per signHash call.
	MaxHashes int `yaml:"max_hashes"`
	// MaxDocumentBytes is the total size of documents in one signDoc call.
	MaxDocumentBytes int64 `yaml:"max_document_bytes"`
	// IdempotencyTTL is how long an Idempotency-Key's answer is kept.
	IdempotencyTTL Duration `yaml:"idempotency_ttl"`
}

// Overload bounds the signing routes (signHash, signDoc, authorize) of
// one replica: at most MaxInFlight run, MaxQueue wait up to QueueTimeout,
// the rest get 503 + Retry-After at once (server/overload.go).
type Overload struct {
	MaxInFlight  int      `yaml:"max_in_flight"`
	MaxQueue     int      `yaml:"max_queue"`
	QueueTimeout Duration `yaml:"queue_timeout"`
}

// RateLimit overrides ratelimit.DefaultRules: "LIMIT/WINDOW" (e.g. 30/5m)
// or "off"; empty keeps the default.
type RateLimit struct {
	LoginUser     string `yaml:"login_user"`
	LoginIP       string `yaml:"login_ip"`
	AuthorizeCred string `yaml:"authorize_cred"`
	AuthorizeIP   string `yaml:"authorize_ip"`
	OTPCred       string `yaml:"otp_cred"`
	OTPUser       string `yaml:"otp_user"`
	OTPIP         string `yaml:"otp_ip"`
}

// Rules maps the settings to ratelimit rule names (ratelimit.ParseRules).
func (r RateLimit) Rules() map[string]string {
	return map[string]string{
		"login:user": r.LoginUser, "login:ip": r.LoginIP, "authorize:cred": r.AuthorizeCred, "authorize:ip": r.AuthorizeIP,
		"otp:cred": r.OTPCred, "otp:user": r.OTPUser, "otp:ip": r.OTPIP,
	}
}

// Async configures asynchronous signing (CSC operationMode "A").
type Async struct {
	// Workers is how many jobs one replica runs at once.
	Workers int `yaml:"workers"`
	// ValidityPeriod is how long results are kept when the client does not
	// say; MaxValidityPeriod bounds what it may ask.
	ValidityPeriod    Duration `yaml:"validity_period"`
	MaxValidityPeriod Duration `yaml:"max_validity_period"`
	// Lease is how long a replica holds a job it works on without renewing
	// it: after a crash, the delay before another replica resumes the job.
	Lease Duration `yaml:"lease"`
	// CallbackTimeout bounds one POST to a response_uri; CallbackAttempts
	// bounds the tries.
	CallbackTimeout  Duration `yaml:"callback_timeout"`
	CallbackAttempts int      `yaml:"callback_attempts"`
	// CallbackHosts, when set, is a comma-separated list of the hosts a
	// response_uri may name: "hooks.example.com", or "*.example.com" for
	// its subdomains. Empty: any host (still subject to the next key).
	CallbackHosts string `yaml:"callback_hosts"`
	// CallbackPrivateNetworks lets notifications reach loopback, private,
	// link-local and other non-public addresses (checked after DNS). Off
	// by default in production: a response_uri is chosen by the API client.
	// Always on in dev mode.
	CallbackPrivateNetworks bool `yaml:"callback_private_networks"`
}

// Hosts parses CallbackHosts: lower-cased DNS names or IP addresses, each
// optionally "*."-prefixed.
func (a Async) Hosts() ([]string, error) {
	var out []string
	for _, h := range strings.Split(a.CallbackHosts, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue
		}
		name := strings.TrimPrefix(h, "*.")
		if name == "" || strings.ContainsAny(name, "*/:@ []") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
			return nil, fmt.Errorf("%q is not a host name or *.domain pattern", h)
		}
		out = append(out, h)
	}
	return out, nil
}

// Default returns the embedded defaults.
func Default() *Config {
	return &Config{
		Mode:             "dev",
		Listen:           "127.0.0.1:8080",
		DataDir:          "./var",
		DatabaseMaxConns: 20,
		ShutdownTimeout:  Duration(15 * time.Second),
		PKCS11:           PKCS11{MaxSessions: 16},
		Log:              Log{Format: "auto", Level: "info"},
		CA: CA{
			Validity:     Duration(3 * 365 * 24 * time.Hour),
			CRLValidity:  Duration(24 * time.Hour),
			KeyAlgo:      "ecdsa-p384",
			TSAPolicyOID: "1.3.6.1.4.1.64200.1.3.1",
			Organization: "sigillo",
			Country:      "IT",
		},
		Auth: Auth{
			TokenTTL:    Duration(time.Hour),
			RefreshTTL:  Duration(30 * 24 * time.Hour),
			SADTTL:      Duration(5 * time.Minute),
			PINMaxTries: 3,
		},
		OTP:   OTP{Digits: 6, Period: Duration(30 * time.Second), SMSTTL: Duration(60 * time.Second), SMSSender: "outbox"},
		Email: Email{Sender: "outbox", From: "sigillo <noreply@localhost>", MaxAge: Duration(72 * time.Hour)},
		Batch: Batch{MaxHashes: 1000, MaxDocumentBytes: 200 << 20, IdempotencyTTL: Duration(24 * time.Hour)},
		Async: Async{Workers: 2, Lease: Duration(15 * time.Second), ValidityPeriod: Duration(time.Hour), MaxValidityPeriod: Duration(24 * time.Hour),
			CallbackTimeout: Duration(10 * time.Second), CallbackAttempts: 5},
		Overload: Overload{MaxInFlight: 32, MaxQueue: 128, QueueTimeout: Duration(2 * time.Second)},
	}
}

// Problem is one thing wrong with the configuration.
type Problem struct {
	Key string // the YAML path, e.g. pkcs11.module
	Msg string
}

// Error lists every problem found.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s: %s", p.Key, p.Msg)
	}
	return b.String()
}

// Load reads the optional YAML file at path (empty: none), applies the
// environment, resolves secret files, fills derived defaults and validates.
// A returned *Error lists every problem.
func Load(path string, environ []string) (*Config, error) {
	c := Default()
	var probs []Problem
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, &Error{[]Problem{{"--config", err.Error()}}}
		}
		probs = append(probs, c.applyYAML(data)...)
	}
	probs = append(probs, c.applyEnv(environ)...)
	probs = append(probs, c.resolve()...)
	probs = append(probs, c.validate()...)
	if len(probs) > 0 {
		return nil, &Error{probs}
	}
	return c, nil
}

// applyYAML applies the file: every leaf is set through the same path as
// its environment variable, and every unknown key is reported with its
// full path (not only the first, as a strict decoder would).
func (c *Config) applyYAML(data []byte) []Problem {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return []Problem{{"--config", "not valid YAML: " + err.Error()}}
	}
	if len(root.Content) == 0 {
		return nil
	}
	byPath := map[string]field{}
	for _, f := range c.fields() {
		byPath[f.path] = f
	}
	var probs []Problem
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			probs = append(probs, Problem{strings.TrimSuffix(prefix, "."), fmt.Sprintf("line %d: expected a mapping", n.Line)})
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			path := prefix + key
			if val.Kind == yaml.MappingNode {
				walk(val, path+".")
				continue
			}
			if val.Kind != yaml.ScalarNode {
				probs = append(probs, Problem{path, fmt.Sprintf("line %d: expected a single value", val.Line)})
				continue
			}
			if f, ok := byPath[strings.TrimSuffix(path, "_file")]; ok && strings.HasSuffix(path, "_file") {
				if s, isSecret := f.v.Addr().Interface().(*Secret); isSecret {
					s.File = val.Value
					continue
				}
			}
			f, ok := byPath[path]
			if !ok {
				probs = append(probs, Problem{path, fmt.Sprintf("line %d: unknown key", n.Content[i].Line)})
				continue
			}
			if s, isSecret := f.v.Addr().Interface().(*Secret); isSecret {
				s.Value = val.Value
				continue
			}
			if err := setString(f.v, val.Value); err != nil {
				probs = append(probs, Problem{path, fmt.Sprintf("line %d: %v", val.Line, err)})
			}
		}
	}
	walk(root.Content[0], "")
	return probs
}

// field is one leaf of the tree with its YAML path and env name.
type field struct {
	path string
	env  string
	v    reflect.Value
}

func (c *Config) fields() []field {
	var out []field
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			p := prefix + name
			fv := v.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Secret{}) {
				walk(fv, p+".")
				continue
			}
			out = append(out, field{path: p, env: "SIGILLO_" + strings.ToUpper(strings.ReplaceAll(p, ".", "_")), v: fv})
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return out
}

// applyEnv sets fields from SIGILLO_* variables; unknown SIGILLO_*
// variables are problems (a typo must not silently fall back to a default).
// SIGILLO_TEST_* variables belong to the test suite and are ignored.
func (c *Config) applyEnv(environ []string) []Problem {
	byEnv := map[string]field{}
	for _, f := range c.fields() {
		byEnv[f.env] = f
		if f.v.Type() == reflect.TypeOf(Secret{}) {
			byEnv[f.env+"_FILE"] = f
		}
	}
	var probs []Problem
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "SIGILLO_") || strings.HasPrefix(k, "SIGILLO_TEST_") {
			continue
		}
		f, ok := byEnv[k]
		if !ok {
			probs = append(probs, Problem{k, "unknown environment variable"})
			continue
		}
		if s, isSecret := f.v.Addr().Interface().(*Secret); isSecret {
			if strings.HasSuffix(k, "_FILE") {
				s.File = v
			} else {
				s.Value = v
			}
			continue
		}
		if err := setString(f.v, v); err != nil {
			probs = append(probs, Problem{k, err.Error()})
		}
	}
	return probs
}

func setString(v reflect.Value, s string) error {
	switch p := v.Addr().Interface().(type) {
	case *Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration (like 30s, 5m): %q", s)
		}
		*p = Duration(d)
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		v.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", s)
		}
		v.SetBool(b)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// resolve reads secret files and derives defaults that depend on others.
func (c *Config) resolve() []Problem {
	var probs []Problem
	for _, f := range c.fields() {
		s, ok := f.v.Addr().Interface().(*Secret)
		if !ok || s.File == "" {
			continue
		}
		if s.Value != "" {
			probs = append(probs, Problem{f.path, "set both as a value and as a file"})
			continue
		}
		data, err := os.ReadFile(s.File)
		if err != nil {
			probs = append(probs, Problem{f.path + "_file", err.Error()})
			continue
		}
		s.Value = strings.TrimRight(string(data), "\r\n")
	}
	if c.Database == "" {
		c.Database = strings.TrimRight(c.DataDir, "/") + "/sigillo.db"
	}
	if c.PublicURL == "" {
		scheme := "http"
		if c.TLS.Cert != "" {
			scheme = "https"
		}
		host := c.Listen
		if h, p, err := net.SplitHostPort(c.Listen); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
			host = net.JoinHostPort("localhost", p)
		}
		c.PublicURL = scheme + "://" + host
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return probs
}

func (c *Config) validate() []Problem {
	var probs []Problem
	add := func(key, format string, args ...any) {
		probs = append(probs, Problem{key, fmt.Sprintf(format, args...)})
	}
	if c.Mode != "dev" && c.Mode != "production" {
		add("mode", "must be dev or production, not %q", c.Mode)
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen", "not host:port: %v", err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		add("listen", "bad port %q", port)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("public_url", "must be an absolute http(s) URL, not %q", c.PublicURL)
	}
	if DatabaseKind(c.Database) == "postgres" {
		if u, err := url.Parse(c.Database); err != nil || u.Host == "" {
			add("database", "not a valid postgres:// URL")
		}
	} else if strings.Contains(c.Database, "://") && !strings.HasPrefix(c.Database, "sqlite://") {
		add("database", "unknown scheme in %q (want a path, sqlite://PATH or postgres://...)", c.Database)
	}
	for _, p := range strings.Split(c.TrustedProxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				add("trusted_proxies", "%q is neither an IP address nor a CIDR", p)
			}
		}
	}
	if c.DatabaseMaxConns < 1 {
		add("database_max_conns", "must be at least 1")
	}
	if c.PKCS11.Module != "" {
		if st, err := os.Stat(c.PKCS11.Module); err != nil {
			add("pkcs11.module", "cannot use module file: %v", err)
		} else if st.IsDir() {
			add("pkcs11.module", "%s is a directory", c.PKCS11.Module)
		}
	}
	if c.Mode == "production" {
		if c.PKCS11.Module == "" {
			add("pkcs11.module", "required in production")
		}
		if c.PKCS11.Token == "" {
			add("pkcs11.token", "required in production")
		}
		if c.PKCS11.PIN.Value == "" {
			add("pkcs11.pin", "required in production")
		}
		if len(c.AdminToken.Value) < 16 {
			add("admin_token", "required in production (at least 16 characters)")
		}
		if c.Auth.SecretKey.Value == "" {
			add("auth.secret_key", "required in production")
		}
	}
	if c.PKCS11.MaxSessions < 1 || c.PKCS11.MaxSessions > 1024 {
		add("pkcs11.max_sessions", "must be between 1 and 1024")
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		add("tls", "cert and key must be set together")
	}
	for _, f := range []string{c.TLS.Cert, c.TLS.Key} {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				add("tls", "%v", err)
			}
		}
	}
	switch c.Log.Format {
	case "json", "text", "auto":
	default:
		add("log.format", "must be json, text or auto")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "must be debug, info, warn or error")
	}
	switch c.CA.KeyAlgo {
	case "rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384":
	default:
		add("ca.key_algo", "unknown key algorithm %q", c.CA.KeyAlgo)
	}
	if !validOID(c.CA.TSAPolicyOID) {
		add("ca.tsa_policy_oid", "not a dotted OID: %q", c.CA.TSAPolicyOID)
	}
	if len(c.CA.Country) != 2 {
		add("ca.country", "must be an ISO 3166 two-letter code")
	}
	positive := map[string]Duration{
		"shutdown_timeout": c.ShutdownTimeout, "ca.validity": c.CA.Validity, "ca.crl_validity": c.CA.CRLValidity,
		"auth.token_ttl": c.Auth.TokenTTL, "auth.refresh_ttl": c.Auth.RefreshTTL, "auth.sad_ttl": c.Auth.SADTTL,
		"otp.period": c.OTP.Period, "otp.sms_ttl": c.OTP.SMSTTL,
		"batch.idempotency_ttl": c.Batch.IdempotencyTTL, "async.validity_period": c.Async.ValidityPeriod,
		"async.max_validity_period": c.Async.MaxValidityPeriod, "async.lease": c.Async.Lease, "async.callback_timeout": c.Async.CallbackTimeout,
	}
	keys := make([]string, 0, len(positive))
	for k := range positive {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if positive[k] <= 0 {
			add(k, "must be a positive duration")
		}
	}
	if c.Auth.SADTTL > Duration(time.Hour) {
		add("auth.sad_ttl", "at most 1h (CSC's upper bound)")
	}
	if c.Auth.PINMaxTries < 1 || c.Auth.PINMaxTries > 10 {
		add("auth.pin_max_tries", "must be between 1 and 10")
	}
	if c.OTP.Digits != 6 && c.OTP.Digits != 8 {
		add("otp.digits", "must be 6 or 8")
	}
	switch c.OTP.SMSSender {
	case "outbox":
		if c.Mode == "production" {
			add("otp.sms_sender", "the dev outbox is not for production; use webhook")
		}
	case "webhook":
		if u, err := url.Parse(c.OTP.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("otp.webhook_url", "must be an absolute http(s) URL when otp.sms_sender is webhook")
		}
	default:
		add("otp.sms_sender", "must be outbox or webhook")
	}
	switch c.Email.Sender {
	case "outbox":
		if c.Mode == "production" {
			add("email.sender", "the dev outbox is not for production; use smtp")
		}
	case "smtp":
		if u, err := url.Parse(c.Email.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			add("email.smtp_url", "must be smtp://host:port or smtps://host:port when email.sender is smtp")
		}
	default:
		add("email.sender", "must be outbox or smtp")
	}
	if c.Email.MaxAge.D() < time.Minute {
		add("email.max_age", "must be at least 1m")
	}
	if _, err := mail.ParseAddress(c.Email.From); err != nil {
		add("email.from", "must be an e-mail address, e.g. \"sigillo <noreply@example.com>\"")
	}
	if c.Overload.MaxInFlight < 1 {
		add("overload.max_in_flight", "must be at least 1")
	}
	if c.Overload.MaxQueue < 0 {
		add("overload.max_queue", "must be 0 or more")
	}
	if c.Overload.QueueTimeout <= 0 {
		add("overload.queue_timeout", "must be a positive duration")
	}
	if _, err := ratelimit.ParseRules(c.RateLimit.Rules()); err != nil {
		add("ratelimit", "%v", err)
	}
	if c.Async.Workers < 1 || c.Async.Workers > 64 {
		add("async.workers", "must be between 1 and 64")
	}
	if c.Async.CallbackAttempts < 1 || c.Async.CallbackAttempts > 20 {
		add("async.callback_attempts", "must be between 1 and 20")
	}
	if _, err := c.Async.Hosts(); err != nil {
		add("async.callback_hosts", "%v", err)
	}
	if c.Async.ValidityPeriod > c.Async.MaxValidityPeriod {
		add("async.validity_period", "longer than async.max_validity_period")
	}
	if c.Batch.MaxHashes < 1 {
		add("batch.max_hashes", "must be at least 1")
	}
	if c.Batch.MaxDocumentBytes < 1 {
		add("batch.max_document_bytes", "must be at least 1")
	}
	return probs
}

func validOID(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return false
		}
	}
	return true
}

// DatabaseKind returns "postgres" or "sqlite" for a database setting.
func DatabaseKind(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return "postgres"
	}
	return "sqlite"
}

// Redacted returns the effective configuration as YAML with secrets
// replaced, for `sigillo check-config`.
func (c *Config) Redacted() string {
	cp := *c
	for _, f := range cp.fields() {
		if s, ok := f.v.Addr().Interface().(*Secret); ok && s.Value != "" {
			s.Value = "<redacted>"
		}
	}
	if DatabaseKind(cp.Database) == "postgres" {
		if u, err := url.Parse(cp.Database); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "redacted")
				cp.Database = u.String()
			}
		}
	}
	out, _ := yaml.Marshal(&cp)
	return string(out)
}

// Secret is a sensitive string: settable directly or from a file
// (KEY_file), never printed.
type Secret struct {
	Value string
	File  string
}

// String never reveals the value.
func (s Secret) String() string {
	if s.Value == "" {
		return ""
	}
	return "<redacted>"
}

// UnmarshalYAML reads a plain scalar.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error { return n.Decode(&s.Value) }

// MarshalYAML writes the (possibly redacted) value.
func (s Secret) MarshalYAML() (any, error) { return s.Value, nil }

// Duration is a time.Duration written like "30s" or "5m" in YAML.
type Duration time.Duration

// D returns the standard duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses "30s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: not a duration (like 30s, 5m): %q", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes "30s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }
