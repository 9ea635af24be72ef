// Package jobs runs asynchronous signing jobs (CSC v2 operationMode "A")
// from the store, so that any replica can accept, run, resume and answer
// for a job, and a restart — even kill -9 — loses no accepted work.
//
// # Life of a job
//
// Submit validates the request and asks sam to accept it (sam.AcceptJob):
// one store transaction consumes the SAD budget for every item, moves the
// credential's usage counters and stores the job with one pending item per
// hash or document (documents are kept until the job expires). The client
// gets the job id (responseID) at once.
//
// Run, on every replica, claims jobs with a lease (store.ClaimJob: one
// conditional UPDATE decides between replicas) and signs their pending
// items in chunks through sam.SignJobItems, in parallel on the HSM session
// pool. Each chunk's signatures, and their signature-log rows, are stored
// in one transaction that moves each item pending -> done only if it was
// still pending (store.CompleteJobItems). When no item is pending the job
// is finished (store.FinishJob): failed items give their budget back to
// the SAD and to the counters, and response_uri, if any, gets a POST.
//
// # Why nothing is spent twice
//
//   - The budget is taken once, at acceptance, for exactly the job's items,
//     in the transaction that creates them: a job exists if and only if its
//     budget was taken, and no later step consumes the SAD again.
//   - Signing for a job needs no SAD; sam allows it only for pending items
//     of a running job. A signature is stored in the same UPDATE that marks
//     its item done, so an item is either pending (no signature returned)
//     or done (exactly one signature returned).
//   - After a crash between the HSM signature and that UPDATE, the item is
//     still pending: the next owner signs it again. The lost signature was
//     never returned and costs no budget (the item's budget was taken once
//     at acceptance); two racing owners (a lease that expired under a slow
//     one) can both sign an item, but only the first UPDATE stores it.
//   - Items that cannot be signed (a malformed PDF, a revoked certificate)
//     end failed with their error; FinishJob, run once per job by the same
//     conditional UPDATE pattern, returns exactly their budget. So the SAD
//     budget used by a job always equals the signatures it returns.
//
// Results are read from the store (Poll), from any replica, until the
// job's validity period ends; then the job, its documents and results are
// purged. A job still unfinished then (no replica could complete it) gives
// the budget of its unsigned items back first, so the rule above holds
// for it too; one whose lease is live is purged once the lease lapses.
package jobs

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/signdoc"
	"github.com/sigillo/sigillo/store"
)

// Signer is what jobs needs from the signature activation module;
// *sam.Service implements it.
type Signer interface {
	AcceptJob(ctx context.Context, p *sam.Principal, r sam.JobRequest) error
	SignJobItems(ctx context.Context, jobID string, items []sam.JobDigest, opts crypto.SignerOpts) ([]sam.JobSignature, error)
	Credential(ctx context.Context, p *sam.Principal, credentialID string) (*sam.CredentialInfo, error)
}

var _ Signer = (*sam.Service)(nil)

// Store is the job persistence; *store.Store implements it.
type Store interface {
	Job(ctx context.Context, id string) (*store.Job, error)
	ClaimJob(ctx context.Context, owner string, now time.Time, lease time.Duration) (*store.Job, error)
	RenewJobLease(ctx context.Context, id, owner string, until time.Time) (bool, error)
	ReleaseJob(ctx context.Context, id, owner string) error
	PendingJobItems(ctx context.Context, jobID string, limit int) ([]store.JobItem, error)
	JobItems(ctx context.Context, jobID string) ([]store.JobItem, error)
	CompleteJobItems(ctx context.Context, jobID string, results []store.JobItemResult) (int, error)
	FinishJob(ctx context.Context, id string, now time.Time) (bool, int, error)
	JobNotified(ctx context.Context, id string, final bool) error
	PurgeJobs(ctx context.Context, now time.Time) (int, error)
	PurgeIdempotency(ctx context.Context, now time.Time) (int, error)
}

var _ Store = (*store.Store)(nil)

// Config tunes the runner. Zero values take the defaults in brackets.
type Config struct {
	// Workers is how many jobs one replica runs at once [2].
	Workers int
	// HashChunk is how many hashes are signed (and stored) per step [500].
	HashChunk int
	// DocChunk is how many documents are signed per step [16], on
	// DocParallelism goroutines [4].
	DocChunk, DocParallelism int
	// DefaultValidity and MaxValidity bound validity_period: how long a
	// job's results are kept [1h, 24h].
	DefaultValidity, MaxValidity time.Duration
	// Lease is how long a claimed job stays with its replica without a
	// renewal [15s]: after a crash, the delay before another replica (or
	// the restarted one) resumes it.
	Lease time.Duration
	// Poll is how often idle workers look for jobs [1s].
	Poll time.Duration
	// CallbackTimeout bounds one POST to response_uri [10s];
	// CallbackAttempts bounds the tries [5], CallbackBackoff is the first
	// wait between tries, doubled each time [1s].
	CallbackTimeout  time.Duration
	CallbackAttempts int
	CallbackBackoff  time.Duration
	// CheckCallback, when set, vets a response_uri at submission (e.g. an
	// allow-list against SSRF); an error refuses the request.
	CheckCallback func(*url.URL) error
	// Docs configures the document signer of signDoc jobs (time-stamp
	// authority, validation data, size bound).
	Docs signdoc.Config
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Workers, 2)
	def(&c.HashChunk, 500)
	def(&c.DocChunk, 16)
	def(&c.DocParallelism, 4)
	def(&c.CallbackAttempts, 5)
	defD(&c.DefaultValidity, time.Hour)
	defD(&c.MaxValidity, 24*time.Hour)
	defD(&c.Lease, 15*time.Second)
	defD(&c.Poll, time.Second)
	defD(&c.CallbackTimeout, 10*time.Second)
	defD(&c.CallbackBackoff, time.Second)
	if c.DefaultValidity > c.MaxValidity {
		c.DefaultValidity = c.MaxValidity
	}
	if c.Docs.MaxDocumentBytes <= 0 {
		c.Docs.MaxDocumentBytes = signdoc.DefaultMaxDocumentBytes
	}
	return c
}

// Deps are the runner's collaborators.
type Deps struct {
	Store  Store
	Signer Signer
	Log    *slog.Logger
	// Metrics receives the job counters (nil: none).
	Metrics prometheus.Registerer
	Now     func() time.Time
	// Notify delivers response_uri notifications (package callbackhttp);
	// nil refuses requests that carry a response_uri.
	Notify Notifier
}

// Notifier POSTs a notification body to a response_uri; each call is
// bounded by ctx (Config.CallbackTimeout).
type Notifier interface {
	Notify(ctx context.Context, uri string, body []byte) error
}

// Runner accepts and runs jobs. It is safe for concurrent use.
type Runner struct {
	cfg    Config
	st     Store
	signer Signer
	log    *slog.Logger
	now    func() time.Time
	poster Notifier
	met    *metrics
	owner  string
	kick   chan struct{}
}

// New checks the dependencies and returns a runner; call Run to work.
func New(cfg Config, d Deps) (*Runner, error) {
	if d.Store == nil || d.Signer == nil {
		return nil, errors.New("jobs: Store and Signer are required")
	}
	cfg = cfg.withDefaults()
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	met, err := newMetrics(d.Metrics)
	if err != nil {
		return nil, err
	}
	return &Runner{cfg: cfg, st: d.Store, signer: d.Signer, log: d.Log, now: d.Now, poster: d.Notify, met: met,
		owner: "r-" + randomHex(8), kick: make(chan struct{}, 1)}, nil
}

// MaxDocumentBytes bounds the documents of one signDoc job.
func (r *Runner) MaxDocumentBytes() int64 { return r.cfg.Docs.MaxDocumentBytes }

// Async are the asynchronous-mode parameters of a request.
type Async struct {
	// ValidityPeriod is how long results are kept (0: the default).
	ValidityPeriod time.Duration
	// ResponseURI, when set, gets a POST {"responseID": id} when done.
	ResponseURI string
}

// HashJob is an asynchronous signHash.
type HashJob struct {
	CredentialID, SAD string
	Hashes            [][]byte
	// Opts is a crypto.Hash (PKCS#1 v1.5, ECDSA) or *rsa.PSSOptions.
	Opts crypto.SignerOpts
	Async
}

// DocJob is an asynchronous signDoc: one item per document or digest.
type DocJob struct {
	Request signdoc.Request
	// Names optionally name Request.Documents for the signature log.
	Names []string
	Async
}

// Job kinds.
const (
	KindHash = "hash"
	KindDoc  = "doc"
)

// Errors of the asynchronous mode (CSC v2 names).
var (
	ErrValidity      = errs.Invalidf("Invalid parameter validity_period")
	ErrValidityRange = errs.Invalidf("Out of bounds parameter validity_period")
	ErrResponseURI   = errs.Invalidf("Invalid parameter response_uri")
	ErrUnknownJob    = errs.New(errs.NotFound, "", "Invalid parameter requestID")
)

func (r *Runner) expiry(a Async) (time.Time, error) {
	v := a.ValidityPeriod
	switch {
	case v < 0:
		return time.Time{}, ErrValidity
	case v == 0:
		v = r.cfg.DefaultValidity
	case v > r.cfg.MaxValidity:
		return time.Time{}, ErrValidityRange
	}
	if a.ResponseURI != "" {
		if r.poster == nil {
			return time.Time{}, errs.Invalidf("Invalid parameter response_uri: notifications are not enabled")
		}
		u, err := url.Parse(a.ResponseURI)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(a.ResponseURI) > 2048 || u.User != nil {
			return time.Time{}, ErrResponseURI
		}
		if r.cfg.CheckCallback != nil {
			if err := r.cfg.CheckCallback(u); err != nil {
				return time.Time{}, errs.Wrap(errs.Invalid, "Invalid parameter response_uri: not allowed", err)
			}
		}
	}
	return r.now().Add(v), nil
}

// SubmitHashes accepts an asynchronous signHash and returns its id.
func (r *Runner) SubmitHashes(ctx context.Context, p *sam.Principal, h HashJob) (string, error) {
	exp, err := r.expiry(h.Async)
	if err != nil {
		return "", err
	}
	if h.Opts == nil {
		return "", errs.Invalidf("Invalid parameter signAlgo")
	}
	opts, err := encodeOpts(h.Opts)
	if err != nil {
		return "", err
	}
	id := "job-" + randomHex(16)
	items := make([]store.JobItem, len(h.Hashes))
	for i, d := range h.Hashes {
		items[i] = store.JobItem{Index: i, Input: d}
	}
	err = r.signer.AcceptJob(ctx, p, sam.JobRequest{CredentialID: h.CredentialID, SAD: h.SAD, AuthorizedHash: h.Opts.HashFunc(),
		Authorized: h.Hashes, Opts: h.Opts, Items: items,
		Job: store.Job{ID: id, Kind: KindHash, SignOpts: opts, ResponseURI: h.ResponseURI, ExpiresAt: exp}})
	if err != nil {
		return "", err
	}
	r.met.jobs.WithLabelValues("accepted").Inc()
	r.wake()
	return id, nil
}

// docParams is what a doc item stores besides its input.
type docParams struct {
	Options signdoc.Options `json:"options"`
	// Digest: the input is a hash (documentDigests), not a document.
	Digest bool `json:"digest,omitempty"`
}

// SubmitDocuments accepts an asynchronous signDoc and returns its id. The
// checks that need the documents (PDF structure, levels) run per item
// later: a bad document fails alone.
func (r *Runner) SubmitDocuments(ctx context.Context, p *sam.Principal, d DocJob) (string, error) {
	exp, err := r.expiry(d.Async)
	if err != nil {
		return "", err
	}
	req := d.Request
	switch {
	case len(req.Documents) > 0 && len(req.Digests) > 0:
		return "", errs.Invalidf("Only one of documents and documentDigests may be given")
	case len(req.Documents) == 0 && len(req.Digests) == 0:
		return "", errs.Invalidf("Missing (or invalid type) array parameter documents or documentDigests")
	case req.ReturnValidationInfo:
		return "", errs.Invalidf("Invalid parameter returnValidationInfo: not available with operationMode A")
	}
	authHash := crypto.Hash(0)
	var items []store.JobItem
	var authorized [][]byte
	var total int64
	add := func(o signdoc.Options, input, auth []byte, name string, digest bool) error {
		if o.Hash == 0 {
			o.Hash = crypto.SHA256
		}
		if authHash == 0 {
			authHash = o.Hash
		} else if o.Hash != authHash {
			return errs.Invalidf("Invalid parameter hashAlgorithmOID: all entries of a request must use the same hash algorithm")
		}
		if auth == nil {
			if !o.Hash.Available() {
				return errs.Invalidf("Invalid parameter hashAlgorithmOID")
			}
			hh := o.Hash.New()
			hh.Write(input)
			auth = hh.Sum(nil)
		}
		params, err := json.Marshal(docParams{Options: o, Digest: digest})
		if err != nil {
			return errs.Wrap(errs.Internal, "Internal error", err)
		}
		items = append(items, store.JobItem{Index: len(items), Input: input, Name: name, Params: params})
		authorized = append(authorized, auth)
		return nil
	}
	for i, doc := range req.Documents {
		if len(doc.Content) == 0 {
			return "", errs.Invalidf("Invalid parameter document: documents[%d] is empty", i)
		}
		if total += int64(len(doc.Content)); total > r.cfg.Docs.MaxDocumentBytes {
			return "", errs.Invalidf("Invalid parameter documents: more than %d bytes in total", r.cfg.Docs.MaxDocumentBytes)
		}
		name := ""
		if i < len(d.Names) {
			name = d.Names[i]
		}
		if err := add(doc.Options, doc.Content, nil, name, false); err != nil {
			return "", err
		}
	}
	for _, ds := range req.Digests {
		for _, h := range ds.Hashes {
			if err := add(ds.Options, h, h, "", true); err != nil {
				return "", err
			}
		}
	}
	id := "job-" + randomHex(16)
	// The signature algorithm follows the key; PSS when asked.
	var opts crypto.SignerOpts = authHash
	if len(items) > 0 {
		var first docParams
		_ = json.Unmarshal(items[0].Params, &first)
		if first.Options.PSS {
			opts = pssOpts(authHash)
		}
	}
	enc, err := encodeOpts(opts)
	if err != nil {
		return "", err
	}
	err = r.signer.AcceptJob(ctx, p, sam.JobRequest{CredentialID: req.CredentialID, SAD: req.SAD, AuthorizedHash: authHash,
		Authorized: authorized, Opts: opts, Items: items,
		Job: store.Job{ID: id, Kind: KindDoc, SignOpts: enc, ResponseURI: d.ResponseURI, ExpiresAt: exp}})
	if err != nil {
		return "", err
	}
	r.met.jobs.WithLabelValues("accepted").Inc()
	r.wake()
	return id, nil
}

// ItemResult is one item of a finished job.
type ItemResult struct {
	// Signature is the raw signature (hash jobs), the signed PDF or the
	// CMS (doc jobs); nil when the item failed.
	Signature []byte
	// Document reports that Signature is a whole signed document (PAdES:
	// CSC DocumentWithSignature) rather than a signature object.
	Document bool
	// Error is set for a failed item (the CSC error code and text).
	Error, Description string
}

// Status is what polling a job returns.
type Status struct {
	ID, Kind string
	// Pending reports the job is still running; Done and Failed count
	// finished items out of Total.
	Pending             bool
	Done, Failed, Total int
	// Items are the results in input order, once the job is finished.
	Items []ItemResult
}

// Poll returns the job's state and, once finished, its results. A job of
// another principal, an unknown or an expired one are all ErrUnknownJob.
func (r *Runner) Poll(ctx context.Context, p *sam.Principal, id string) (*Status, error) {
	if p == nil || id == "" {
		return nil, ErrUnknownJob
	}
	j, err := r.st.Job(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownJob
	}
	if err != nil {
		return nil, storeErr("poll", err)
	}
	mine := (p.UserID != "" && j.UserID == p.UserID) || (p.Domain != "" && j.Domain == p.Domain)
	if !mine || !r.now().Before(j.ExpiresAt) {
		return nil, ErrUnknownJob
	}
	st := &Status{ID: j.ID, Kind: j.Kind, Done: j.Done, Failed: j.Failed, Total: j.Total}
	if j.Status == store.JobRunning {
		st.Pending = true
		return st, nil
	}
	items, err := r.st.JobItems(ctx, id)
	if err != nil {
		return nil, storeErr("poll", err)
	}
	st.Items = make([]ItemResult, len(items))
	for i, it := range items {
		res := ItemResult{}
		if j.Kind == KindDoc {
			var dp docParams
			if err := json.Unmarshal(it.Params, &dp); err == nil {
				res.Document = dp.Options.Format == signdoc.FormatPAdES
			}
		}
		if it.State == store.ItemDone {
			res.Signature = it.Result
		} else {
			res.Error, res.Description = it.ErrorCode, it.ErrorMsg
		}
		st.Items[i] = res
	}
	return st, nil
}

func (r *Runner) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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
