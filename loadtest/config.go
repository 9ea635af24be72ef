package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"
)

// Scenario names.
const (
	ScenarioSignHash      = "signhash"
	ScenarioAuthorizeSign = "authorize-sign"
	ScenarioSignDoc       = "signdoc"
)

// Config is one load test. Zero values take the documented defaults.
type Config struct {
	// Servers are the base URLs of the replicas (e.g. http://127.0.0.1:8080);
	// worker i talks to Servers[i%len(Servers)]. Provisioning uses the first.
	Servers []string
	// AdminToken is the operator API bearer token, for provisioning.
	AdminToken string
	// Scenario is signhash (default), authorize-sign or signdoc.
	Scenario string
	// Workers is the number of concurrent clients (default 2 × cores).
	Workers int
	// Duration bounds the run when Count is 0 (default 30s).
	Duration time.Duration
	// Count, when set, is the number of signatures to make; it replaces
	// Duration.
	Count int
	// Batch is the number of hashes (signhash, authorize-sign) or documents
	// (signdoc) per signing request (default 1).
	Batch int
	// KeyAlgo is the credentials' key: rsa-2048 (default), rsa-3072,
	// ecdsa-p256, ecdsa-p384.
	KeyAlgo string
	// VerifyRate is the fraction of returned signatures verified against
	// the certificate (default 0.01; negative disables verification).
	VerifyRate float64
	// Users is the authorize-sign user pool (default 15 per worker, at most
	// one per operation when Count is set). A TOTP code is single-use per
	// 30 s step, so each user signs at most once per step: too small a pool
	// makes workers wait, which the report shows as OTP wait.
	Users int
	// Multisign is the signatures one SAD allows for signhash and signdoc
	// (default 100000, sigillo's cap for automatic-signature credentials);
	// workers re-authorize when it runs out, each authorization costing
	// the server a PIN hash verification.
	Multisign int
	// PDFSize is the size of the generated PDF for signdoc (default 100 KiB).
	PDFSize int
	// Level is the PAdES level for signdoc: B-B (default) or B-T.
	Level string
	// MeasureRaw, when set, measures the token's raw signing rate after
	// provisioning, just before the run and again just after it (see
	// MeasureHSM); the ratio uses the mean of the two.
	MeasureRaw func(ctx context.Context, workers int, keyAlgo string) (*HSMResult, error)
	// HTTPClient overrides the client (default: one sized for Workers).
	HTTPClient *http.Client
	// Progress receives provisioning and live progress (nil: silent).
	Progress io.Writer
	// Interactive rewrites one progress line about twice a second
	// (a terminal); otherwise a line is printed every ProgressEvery.
	Interactive bool
	// ProgressEvery is the line interval when not Interactive (default 5s).
	ProgressEvery time.Duration
	// RSSEvery is how often the servers' /metrics are read during the run
	// (default 1s; negative disables).
	RSSEvery time.Duration
}

// withDefaults fills the zero values with the documented defaults.
func (c Config) withDefaults() Config {
	if c.Scenario == "" {
		c.Scenario = ScenarioSignHash
	}
	if c.Workers == 0 {
		c.Workers = 2 * runtime.NumCPU()
	}
	if c.Duration == 0 && c.Count == 0 {
		c.Duration = 30 * time.Second
	}
	if c.Batch == 0 {
		c.Batch = 1
	}
	if c.KeyAlgo == "" {
		c.KeyAlgo = "rsa-2048"
	}
	if c.VerifyRate == 0 {
		c.VerifyRate = 0.01
	}
	if c.Multisign == 0 {
		c.Multisign = 100000
	}
	if c.PDFSize == 0 {
		c.PDFSize = 100 << 10
	}
	if c.Level == "" {
		c.Level = "B-B"
	}
	if c.Users == 0 {
		c.Users = 15 * c.Workers
		if c.Count > 0 {
			c.Users = min(c.Users, (c.Count+c.Batch-1)/c.Batch)
		}
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 5 * time.Second
	}
	if c.RSSEvery == 0 {
		c.RSSEvery = time.Second
	}
	return c
}

// validate lists every problem at once.
func (c Config) validate() error {
	var problems []string
	add := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	if len(c.Servers) == 0 {
		add("no server given")
	}
	for _, s := range c.Servers {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("server %q is not an http(s) URL", s)
		}
	}
	if c.AdminToken == "" {
		add("no operator token (needed to provision users and credentials)")
	}
	switch c.Scenario {
	case ScenarioSignHash, ScenarioAuthorizeSign, ScenarioSignDoc:
	default:
		add("unknown scenario %q (signhash, authorize-sign, signdoc)", c.Scenario)
	}
	switch c.KeyAlgo {
	case "rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384":
	default:
		add("unknown key %q (rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384)", c.KeyAlgo)
	}
	if c.Workers < 1 {
		add("workers must be at least 1")
	}
	if c.Duration < 0 || c.Count < 0 {
		add("duration and count must not be negative")
	}
	if c.Batch < 1 {
		add("batch must be at least 1")
	}
	if c.Scenario != ScenarioAuthorizeSign && c.Batch > c.Multisign {
		add("batch %d exceeds multisign %d", c.Batch, c.Multisign)
	}
	if c.VerifyRate > 1 {
		add("verify rate %v is above 100%%", c.VerifyRate)
	}
	if c.Users < 1 {
		add("users must be at least 1")
	}
	if c.PDFSize < 1024 {
		add("pdf size must be at least 1 KiB")
	}
	if c.Level != "B-B" && c.Level != "B-T" {
		add("level %q: want B-B or B-T", c.Level)
	}
	if len(problems) > 0 {
		return errors.New("loadtest: " + strings.Join(problems, "; "))
	}
	return nil
}
