package server

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/sigillo/sigillo/admin"
	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/ca"
	"github.com/sigillo/sigillo/cahttp"
	"github.com/sigillo/sigillo/csc"
	"github.com/sigillo/sigillo/enroll"
	"github.com/sigillo/sigillo/enroll/smtpmail"
	"github.com/sigillo/sigillo/internal/httpx"
	"github.com/sigillo/sigillo/jobs"
	"github.com/sigillo/sigillo/jobs/callbackhttp"
	"github.com/sigillo/sigillo/mailqueue"
	"github.com/sigillo/sigillo/oauth"
	"github.com/sigillo/sigillo/otp"
	"github.com/sigillo/sigillo/otp/smshttp"
	"github.com/sigillo/sigillo/pades/revfetch"
	"github.com/sigillo/sigillo/portal"
	"github.com/sigillo/sigillo/ratelimit"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/signdoc"
)

// mount builds the domain services and mounts their HTTP layers.
func (a *App) mount(ctx context.Context) error {
	cfg := a.Config
	log, err := audit.Open(ctx, a.Store, audit.WithLogger(a.Log), audit.WithRegisterer(a.Registry))
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	a.Audit = log
	a.closers = append(a.closers, log.Close)
	if err := log.Record(ctx, audit.Event{Actor: "system", Action: "config.loaded", Object: "replica", Outcome: "success",
		Detail: map[string]string{"mode": cfg.Mode, "database": a.Store.Dialect().String(), "public_url": cfg.PublicURL}}); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}

	authority, err := ca.Open(ctx, ca.Config{
		PublicURL:    cfg.PublicURL,
		Validity:     cfg.CA.Validity.D(),
		CRLValidity:  cfg.CA.CRLValidity.D(),
		TSAPolicyOID: cfg.CA.TSAPolicyOID,
		KeyAlgo:      cfg.CA.KeyAlgo,
		Organization: cfg.CA.Organization,
		Country:      cfg.CA.Country,
	}, a.HSM, a.Store, ca.WithAudit(log), ca.WithLogger(a.Log), ca.WithRegisterer(a.Registry))
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	a.CA = authority
	a.background(authority.Run)
	a.background(func(ctx context.Context) { _ = log.RunCheckpoints(ctx, 10*time.Minute) })

	key, err := secretKey(cfg.Auth.SecretKey.Value)
	if err != nil {
		return fmt.Errorf("auth.secret_key: %w", err)
	}
	var sms otp.Sender
	if cfg.OTP.SMSSender == "webhook" {
		sms = smshttp.New(cfg.OTP.WebhookURL, "")
	} else {
		sms = otp.NewOutbox(a.Store, nil)
	}
	var mailer enroll.Mailer = enroll.OutboxMailer{St: a.Store}
	var mailQueue admin.MailQueue // listed for operators when mail is queued
	if cfg.Email.Sender == "smtp" {
		smtp, err := smtpmail.New(smtpmail.Config{URL: cfg.Email.SMTPURL, Password: cfg.Email.SMTPPassword.Value, From: cfg.Email.From})
		if err != nil {
			return fmt.Errorf("email: %w", err)
		}
		// Mail goes through the store's queue: an SMTP outage delays it
		// but never fails (or loses) a registration or an envelope.
		q, err := mailqueue.New(a.Store, smtp, mailqueue.Config{MaxAge: cfg.Email.MaxAge.D()},
			mailqueue.WithLogger(a.Log), mailqueue.WithRegisterer(a.Registry))
		if err != nil {
			return fmt.Errorf("email: %w", err)
		}
		a.background(q.Run)
		mailer = q
		mailQueue = a.Store
	}
	iss := caIssuer{ca: authority, qualified: true}
	rules, err := ratelimit.ParseRules(cfg.RateLimit.Rules())
	if err != nil {
		return fmt.Errorf("ratelimit: %w", err)
	}
	limiter, err := ratelimit.New(a.Store, rules, ratelimit.WithLogger(a.Log), ratelimit.WithRegisterer(a.Registry))
	if err != nil {
		return err
	}
	a.background(func(ctx context.Context) { limiter.Run(ctx, 10*time.Minute) })
	svc, err := sam.New(sam.Config{
		SADTTL:      cfg.Auth.SADTTL.D(),
		TokenTTL:    cfg.Auth.TokenTTL.D(),
		RefreshTTL:  cfg.Auth.RefreshTTL.D(),
		PINMaxTries: cfg.Auth.PINMaxTries,
		OTP:         otp.Config{Digits: cfg.OTP.Digits, Period: cfg.OTP.Period.D(), SMSTTL: cfg.OTP.SMSTTL.D()},
		OTPKey:      key,
		Country:     cfg.CA.Country,
		// One signing goroutine per HSM session a batch can use.
		SignParallelism: cfg.PKCS11.MaxSessions,
	}, sam.Deps{
		Store: a.Store, Keys: a.HSM, Issuer: iss, Audit: log,
		SMS: sms, Log: a.Log, Metrics: a.Registry, Limiter: limiter,
	})
	if err != nil {
		return fmt.Errorf("sam: %w", err)
	}
	a.SAM = svc

	docsCfg := signdoc.Config{
		MaxDocumentBytes: cfg.Batch.MaxDocumentBytes,
		Timestamper:      authority,
		// Our chain's revocation data in-process; others' (an external
		// TSA's) fetched by URL.
		Validation: signdoc.Fallback{authority, &revfetch.Fetcher{}},
		Log:        a.Log,
	}
	docs, err := signdoc.New(svc, docsCfg)
	if err != nil {
		return fmt.Errorf("signdoc: %w", err)
	}
	hosts, err := cfg.Async.Hosts()
	if err != nil {
		return fmt.Errorf("async.callback_hosts: %w", err)
	}
	callbacks := callbackhttp.Policy{Hosts: hosts, Private: cfg.Async.CallbackPrivateNetworks || cfg.Mode == "dev"}
	runner, err := jobs.New(jobs.Config{
		Workers: cfg.Async.Workers, Lease: cfg.Async.Lease.D(), DefaultValidity: cfg.Async.ValidityPeriod.D(), MaxValidity: cfg.Async.MaxValidityPeriod.D(),
		CallbackTimeout: cfg.Async.CallbackTimeout.D(), CallbackAttempts: cfg.Async.CallbackAttempts,
		CheckCallback: callbacks.CheckURL,
		Docs:          docsCfg,
	}, jobs.Deps{Store: a.Store, Signer: svc, Log: a.Log, Metrics: a.Registry, Notify: callbackhttp.New(cfg.Async.CallbackTimeout.D(), callbacks)})
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	a.background(runner.Run)
	csc.New(svc, csc.Options{
		Log: a.Log, Registerer: a.Registry, TSA: authority, MaxHashes: cfg.Batch.MaxHashes, Region: cfg.CA.Country,
		SignDoc: docs, OAuth2URL: cfg.PublicURL + oauth.Base,
		Async: runner, Idempotency: a.Store, IdempotencyTTL: cfg.Batch.IdempotencyTTL.D(),
	}).Register(a.engine)
	oa, err := oauth.New(oauth.Config{SecureCookies: strings.HasPrefix(cfg.PublicURL, "https://")},
		oauth.Deps{SAM: svc, Requests: a.Store, Log: a.Log})
	if err != nil {
		return fmt.Errorf("oauth: %w", err)
	}
	oa.Register(a.engine)
	caRoutes := cahttp.New(authority, a.Log)
	caRoutes.Register(a.engine)

	enr, err := enroll.New(enroll.Config{PublicURL: cfg.PublicURL}, enroll.Deps{Store: a.Store, SAM: svc, Status: iss,
		Mailer: mailer, SMS: sms, Audit: log, Log: a.Log})
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	pt, err := portal.New(portal.Config{SecureCookies: strings.HasPrefix(cfg.PublicURL, "https://")},
		portal.Deps{SAM: svc, Enroll: enr, Sessions: a.Store, Log: a.Log})
	if err != nil {
		return fmt.Errorf("portal: %w", err)
	}
	pt.Register(a.engine)

	adminGroup := a.engine.Group("/admin/v1", httpx.RequireToken(cfg.AdminToken.Value))
	admin.New(svc, a.Store, a.Log).Register(adminGroup)
	var emails admin.Emails // the dev outbox's list, only when it is the mailer
	if cfg.Email.Sender == "outbox" {
		emails = a.Store
	}
	admin.RegisterIdentifications(adminGroup, enr, emails, a.Log)
	admin.RegisterMailQueue(adminGroup, mailQueue, a.Log)
	admin.RegisterClients(adminGroup, svc, a.Log)
	admin.NewUsage(svc, a.Log).Register(adminGroup)
	caRoutes.RegisterAdmin(adminGroup)
	return nil
}

// secretKey decodes the 32-byte key given as hex or base64.
func secretKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	return nil, fmt.Errorf("want 32 bytes as hex or base64")
}
