package jobs

import (
	"context"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/sam"
	"github.com/sigillo/sigillo/signdoc"
	"github.com/sigillo/sigillo/store"
)

// maxStuckSteps is how many steps in a row may make no progress (HSM,
// store or TSA unavailable) before the job's remaining items fail.
const maxStuckSteps = 8

// Run works until ctx ends: Config.Workers goroutines claim and run jobs
// (resuming those a dead replica left), and expired jobs and idempotency
// keys are purged every minute. Start it once per replica.
func (r *Runner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(ctx)
		}()
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	r.purge(ctx)
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			r.purge(ctx)
		}
	}
}

func (r *Runner) purge(ctx context.Context) {
	if n, err := r.st.PurgeJobs(ctx, r.now()); err != nil {
		r.log.Warn("purge expired jobs", "error", err)
	} else if n > 0 {
		r.log.Info("purged expired jobs", "jobs", n)
	}
	if _, err := r.st.PurgeIdempotency(ctx, r.now()); err != nil {
		r.log.Warn("purge idempotency keys", "error", err)
	}
}

func (r *Runner) worker(ctx context.Context) {
	for ctx.Err() == nil {
		j, err := r.st.ClaimJob(ctx, r.owner, r.now(), r.cfg.Lease)
		if err == nil {
			r.process(ctx, j)
			continue
		}
		if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			r.log.Warn("claim job", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-time.After(r.cfg.Poll):
		}
	}
}

// process runs one claimed job while holding its lease.
func (r *Runner) process(parent context.Context, j *store.Job) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(r.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				ok, err := r.st.RenewJobLease(ctx, j.ID, r.owner, r.now().Add(r.cfg.Lease))
				if err == nil && !ok {
					r.log.Warn("job lease lost", "job", j.ID)
					cancel()
					return
				}
			}
		}
	}()
	defer func() {
		cancel()
		<-renewed
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer rcancel()
		if err := r.st.ReleaseJob(rctx, j.ID, r.owner); err != nil {
			r.log.Warn("release job", "job", j.ID, "error", err)
		}
	}()
	log := r.log.With("job", j.ID, "credential", j.CredentialID, "kind", j.Kind)
	if j.Status == store.JobRunning {
		if err := r.runItems(ctx, j); err != nil {
			if ctx.Err() == nil {
				log.Warn("job interrupted", "error", err)
			}
			return
		}
		finished, failed, err := r.st.FinishJob(ctx, j.ID, r.now())
		if err != nil {
			log.Warn("finish job", "error", err)
			return
		}
		if finished {
			r.met.jobs.WithLabelValues("finished").Inc()
			log.Info("job finished", "items", j.Total, "failed", failed)
		}
		if j, err = r.st.Job(ctx, j.ID); err != nil {
			log.Warn("reload job", "error", err)
			return
		}
	}
	if j.Status == store.JobNotify {
		r.notify(ctx, j)
	}
}

// runItems signs the job's pending items chunk by chunk until none is left.
func (r *Runner) runItems(ctx context.Context, j *store.Job) error {
	opts, err := decodeOpts(j.SignOpts)
	if err != nil {
		return r.failAll(ctx, j, errs.Wrap(errs.Internal, "Internal error", err))
	}
	chunk := r.cfg.HashChunk
	if j.Kind == KindDoc {
		chunk = r.cfg.DocChunk
	}
	stuck := 0
	var last error
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		items, err := r.st.PendingJobItems(ctx, j.ID, chunk)
		if err != nil {
			last = err
		} else if len(items) == 0 {
			return nil
		} else {
			var results []store.JobItemResult
			if j.Kind == KindDoc {
				results, err = r.signDocs(ctx, j, items)
			} else {
				results, err = r.signHashes(ctx, j, items, opts)
			}
			if err != nil && !transient(err) {
				// The credential cannot sign any more (disabled, revoked,
				// gone): every remaining item fails with this reason.
				return r.failAll(ctx, j, err)
			}
			if err != nil {
				last = err
			}
			if len(results) > 0 {
				n, cerr := r.st.CompleteJobItems(ctx, j.ID, results)
				if cerr != nil {
					last = cerr
				} else {
					r.countItems(results)
					if n > 0 {
						stuck = 0
						continue
					}
				}
			}
		}
		if stuck++; stuck >= maxStuckSteps {
			return r.failAll(ctx, j, errs.Wrap(errs.Unavailable, "The service is temporarily unavailable", last))
		}
		r.log.Warn("job step made no progress; retrying", "job", j.ID, "attempt", stuck, "error", last)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(1<<min(stuck, 5)) * 500 * time.Millisecond):
		}
	}
}

func (r *Runner) countItems(results []store.JobItemResult) {
	for _, res := range results {
		if res.Result != nil {
			r.met.items.WithLabelValues("signed").Inc()
		} else {
			r.met.items.WithLabelValues("failed").Inc()
		}
	}
}

// transient reports an error worth retrying: the HSM, the store, the TSA
// or the audit log is unavailable.
func transient(err error) bool {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	k := errs.KindOf(err)
	return k == errs.Unavailable || k == errs.RateLimited
}

// itemError is how a failed item is stored: the CSC code and text.
func itemError(err error) (code, msg string) {
	if e, ok := errs.As(err); ok {
		code = e.Code
		if code == "" {
			switch e.Kind {
			case errs.Unavailable:
				code = "temporarily_unavailable"
			case errs.Internal:
				code = "server_error"
			default:
				code = "invalid_request"
			}
		}
		return code, e.Msg
	}
	return "server_error", "Internal error"
}

// failed is the result of an item that will not be signed, with its row
// in the signature log.
func (r *Runner) failed(j *store.Job, it store.JobItem, err error) store.JobItemResult {
	code, msg := itemError(err)
	rec := &store.SignatureRecord{ID: "s-" + randomHex(12), At: r.now(), CredentialID: j.CredentialID, UserID: j.UserID,
		Client: client(j), Count: 1, Outcome: "failure:" + code, JobID: j.ID, Format: "hash", Document: it.Name}
	if j.Kind == KindHash {
		rec.Document = hex.EncodeToString(it.Input)
	} else {
		var dp docParams
		if json.Unmarshal(it.Params, &dp) == nil {
			rec.Format, rec.Level = dp.Options.Format, signdoc.LevelName(dp.Options.Level)
			rec.HashAlgo = dp.Options.Hash.String()
			if rec.Document == "" && dp.Options.Hash.Available() {
				h := dp.Options.Hash.New()
				h.Write(it.Input)
				rec.Document = hex.EncodeToString(h.Sum(nil))
			}
		}
	}
	return store.JobItemResult{Index: it.Index, ErrorCode: code, ErrorMsg: msg, Record: rec}
}

// client names the job's caller in the signature log, as sam does.
func client(j *store.Job) string {
	switch {
	case j.ClientID != "":
		return "client:" + j.ClientID
	case j.Domain != "" && j.UserID == "":
		return "domain:" + j.Domain
	}
	return "user:" + j.UserID
}

// failAll marks every pending item failed with err.
func (r *Runner) failAll(ctx context.Context, j *store.Job, err error) error {
	r.log.Warn("job items fail", "job", j.ID, "error", err)
	for {
		items, perr := r.st.PendingJobItems(ctx, j.ID, 1000)
		if perr != nil {
			return perr
		}
		if len(items) == 0 {
			return nil
		}
		results := make([]store.JobItemResult, len(items))
		for i, it := range items {
			results[i] = r.failed(j, it, err)
		}
		if _, cerr := r.st.CompleteJobItems(ctx, j.ID, results); cerr != nil {
			return cerr
		}
		r.countItems(results)
	}
}

func (r *Runner) signHashes(ctx context.Context, j *store.Job, items []store.JobItem, opts crypto.SignerOpts) ([]store.JobItemResult, error) {
	digests := make([]sam.JobDigest, len(items))
	for i, it := range items {
		digests[i] = sam.JobDigest{Index: it.Index, Digest: it.Input}
	}
	sigs, err := r.signer.SignJobItems(ctx, j.ID, digests, opts)
	if err != nil {
		return nil, err
	}
	var results []store.JobItemResult
	var retry error
	for k, s := range sigs {
		switch {
		case s.Err == nil:
			results = append(results, store.JobItemResult{Index: s.Index, Result: s.Signature, Record: s.Record})
		case transient(s.Err):
			retry = s.Err // stays pending
		case errs.KindOf(s.Err) == errs.Conflict:
			// finished by someone else meanwhile
		default:
			results = append(results, r.failed(j, items[k], s.Err))
		}
	}
	return results, retry
}

// signDocs signs a chunk of documents with signdoc, one document per call
// so that each succeeds or fails alone, DocParallelism at a time.
func (r *Runner) signDocs(ctx context.Context, j *store.Job, items []store.JobItem) ([]store.JobItemResult, error) {
	p := &sam.Principal{UserID: j.UserID, ClientID: j.ClientID, Domain: j.Domain}
	out := make([]*store.JobItemResult, len(items))
	errl := make([]error, len(items))
	sem := make(chan struct{}, r.cfg.DocParallelism)
	var wg sync.WaitGroup
	for i := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errl[i] = r.signDoc(ctx, p, j, items[i])
		}()
	}
	wg.Wait()
	var results []store.JobItemResult
	var retry error
	for i, res := range out {
		err := errl[i]
		switch {
		case err == nil && res != nil:
			results = append(results, *res)
		case err == nil:
		case errs.KindOf(err) == errs.Conflict:
		case transient(err):
			retry = err
		default:
			results = append(results, r.failed(j, items[i], err))
		}
	}
	return results, retry
}

func (r *Runner) signDoc(ctx context.Context, p *sam.Principal, j *store.Job, it store.JobItem) (*store.JobItemResult, error) {
	var dp docParams
	if err := json.Unmarshal(it.Params, &dp); err != nil {
		return nil, errs.Wrap(errs.Internal, "Internal error", fmt.Errorf("item %d params: %w", it.Index, err))
	}
	a := &itemSigner{r: r, jobID: j.ID, item: it, opts: dp.Options}
	svc, err := signdoc.New(a, r.cfg.Docs)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, "Internal error", err)
	}
	req := signdoc.Request{CredentialID: j.CredentialID, SAD: "job:" + j.ID}
	if dp.Digest {
		req.Digests = []signdoc.DigestSet{{Hashes: [][]byte{it.Input}, Options: dp.Options}}
	} else {
		req.Documents = []signdoc.Document{{Content: it.Input, Options: dp.Options}}
	}
	res, err := svc.SignDoc(ctx, p, req)
	if err != nil {
		return nil, err
	}
	var sig []byte
	switch {
	case len(res.Documents) == 1:
		sig = res.Documents[0]
	case len(res.Signatures) == 1:
		sig = res.Signatures[0]
	default:
		return nil, errs.New(errs.Internal, "", "signDoc returned no result")
	}
	return &store.JobItemResult{Index: it.Index, Result: sig, Record: a.rec}, nil
}

// itemSigner is the sam side of one document of a job, as signdoc sees
// it: SignDerived signs the item through sam.SignJobItems (no SAD: the
// job's budget was taken at acceptance).
type itemSigner struct {
	r     *Runner
	jobID string
	item  store.JobItem
	opts  signdoc.Options
	rec   *store.SignatureRecord
}

var _ signdoc.Signer = (*itemSigner)(nil)

func (a *itemSigner) Credential(ctx context.Context, p *sam.Principal, credentialID string) (*sam.CredentialInfo, error) {
	return a.r.signer.Credential(ctx, p, credentialID)
}

func (a *itemSigner) SignDerived(ctx context.Context, _ *sam.Principal, dr sam.DerivedRequest) ([][]byte, error) {
	if len(dr.Items) != 1 {
		return nil, errs.New(errs.Internal, "", "one item per document expected")
	}
	name := a.item.Name
	if name == "" {
		name = hex.EncodeToString(dr.Items[0].Authorized)
	}
	sigs, err := a.r.signer.SignJobItems(ctx, a.jobID, []sam.JobDigest{{Index: a.item.Index, Digest: dr.Items[0].Digest,
		Document: name, Format: a.opts.Format, Level: signdoc.LevelName(a.opts.Level)}}, dr.Opts)
	if err != nil {
		return nil, err
	}
	if len(sigs) != 1 {
		return nil, errs.New(errs.Internal, "", "signature count differs from item count")
	}
	if sigs[0].Err != nil {
		return nil, sigs[0].Err
	}
	a.rec = sigs[0].Record
	return [][]byte{sigs[0].Signature}, nil
}

// notification is the body POSTed to response_uri. CSC leaves it open;
// the client then calls signatures/signPolling with the id.
type notification struct {
	ResponseID string `json:"responseID"`
	Status     string `json:"status"`
}

// notify tells response_uri that the job is done: bounded attempts with
// exponential backoff, each bounded by CallbackTimeout. At least once: a
// crash between the POST and its record sends it again.
func (r *Runner) notify(ctx context.Context, j *store.Job) {
	body, _ := json.Marshal(notification{ResponseID: j.ID, Status: "done"})
	wait := r.cfg.CallbackBackoff
	for attempt := j.NotifyTries; attempt < r.cfg.CallbackAttempts; attempt++ {
		last := attempt == r.cfg.CallbackAttempts-1
		err := r.post(ctx, j.ResponseURI, body)
		if err == nil {
			r.met.jobs.WithLabelValues("notified").Inc()
			if nerr := r.st.JobNotified(ctx, j.ID, true); nerr != nil {
				r.log.Warn("record notification", "job", j.ID, "error", nerr)
			}
			return
		}
		r.log.Warn("response_uri notification failed", "job", j.ID, "attempt", attempt+1, "error", err)
		if nerr := r.st.JobNotified(ctx, j.ID, last); nerr != nil {
			r.log.Warn("record notification", "job", j.ID, "error", nerr)
		}
		if last {
			r.met.jobs.WithLabelValues("notify_failed").Inc()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
	// Attempts were used up before a restart: give up.
	if err := r.st.JobNotified(ctx, j.ID, true); err != nil {
		r.log.Warn("record notification", "job", j.ID, "error", err)
	}
}

func (r *Runner) post(ctx context.Context, uri string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CallbackTimeout)
	defer cancel()
	return r.poster.Notify(ctx, uri, body)
}
