package sam

// Automatic signature: integrations that sign batches unattended with a
// credential named by domain + alias (SCAL 1, PIN only, large multisign).
//
// Addressing. A principal is domain-scoped when it is bound to a domain
// (Principal.Domain: the hook for an OAuth client-credentials grant bound
// to a domain, not built yet) or when it is a user (HTTP Basic) who holds
// automatic-signature credentials. CredentialsByAlias resolves an alias
// only inside the principal's reach: the domain it is bound to, or the
// user's own credentials. A credential of another domain is never found,
// exactly like a missing one.
//
// Batches. Signing runs on a bounded group of goroutines (Config.
// SignParallelism, sized like the HSM session pool): the HSM signs in
// parallel, results keep the input order.
//
// Jobs. An asynchronous job's whole SAD budget (and the credential's
// counters) is taken when the job is accepted, in the transaction that
// stores the job and its items (store.AcceptJob). Signing for a job
// (SignJobItems) needs no SAD: it is allowed only for items of a running
// job that are still pending, and each item becomes "done" (with its
// signature) at most once, so an item signed twice after a crash costs
// no second budget and only one signature is ever returned.

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// DefaultAutomaticMultisign is the multisign of an automatic-signature
// credential (domain + alias) created without one, and the cap for such
// credentials when it is above Config.MaxMultisign.
const DefaultAutomaticMultisign = 100000

// DefaultSignParallelism is used when Config.SignParallelism is 0.
const DefaultSignParallelism = 16

// ErrNotDomainScoped answers credentials/list with a userID from a
// principal that may not name users (CSC §11.4).
var ErrNotDomainScoped = errs.Invalidf("userID parameter MUST be null")

// errUnknownAlias is an alias outside the principal's reach (or missing).
var errUnknownAlias = errs.New(errs.NotFound, "", "Invalid parameter userID")

// maxMultisign is the multisign cap for a new credential.
func (s *Service) maxMultisign(nc NewCredential) int {
	if nc.Domain != "" && nc.Alias != "" {
		return max(s.cfg.MaxMultisign, DefaultAutomaticMultisign)
	}
	return s.cfg.MaxMultisign
}

// defaultMultisign is the multisign of a new credential that names none.
func defaultMultisign(nc NewCredential) int {
	if nc.Domain != "" && nc.Alias != "" {
		return DefaultAutomaticMultisign
	}
	return 1
}

// owns reports whether the principal may use the credential: its own, or
// (domain-bound principal) one of its domain.
func owns(p *Principal, c *store.Credential) bool {
	if p.UserID != "" && c.UserID == p.UserID {
		return true
	}
	return p.Domain != "" && c.Domain == p.Domain
}

// client names the caller in the signature log.
func client(p *Principal) string {
	switch {
	case p.ClientID != "":
		return "client:" + p.ClientID
	case p.Domain != "" && p.UserID == "":
		return "domain:" + p.Domain
	}
	return "user:" + p.UserID
}

// aliasStore is what alias resolution needs beyond Store.
type aliasStore interface {
	CredentialByAlias(ctx context.Context, domain, alias string) (*store.Credential, error)
}

// CredentialsByAlias returns the credential(s) registered under alias in
// the principal's reach (see the file comment). A principal that is not
// domain-scoped gets ErrNotDomainScoped; an alias out of reach gets
// NotFound "Invalid parameter userID".
func (s *Service) CredentialsByAlias(ctx context.Context, p *Principal, alias string) ([]CredentialInfo, error) {
	if p == nil || (p.UserID == "" && p.Domain == "") {
		return nil, ErrInvalidToken
	}
	if alias == "" {
		return nil, errs.Invalidf("Invalid parameter userID")
	}
	var found []store.Credential
	if p.Domain != "" {
		as, ok := s.st.(aliasStore)
		if !ok {
			return nil, errs.Wrap(errs.Internal, "Internal error", errors.New("sam: Store cannot look up aliases"))
		}
		c, err := as.CredentialByAlias(ctx, p.Domain, alias)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errUnknownAlias
		}
		if err != nil {
			return nil, storeErr("credential by alias", err)
		}
		found = append(found, *c)
	} else {
		cs, err := s.st.CredentialsByUser(ctx, p.UserID)
		if err != nil {
			return nil, storeErr("list credentials", err)
		}
		scoped := false
		for _, c := range cs {
			if c.Domain == "" {
				continue
			}
			scoped = true
			if c.Alias == alias {
				found = append(found, c)
			}
		}
		if !scoped {
			return nil, ErrNotDomainScoped
		}
		if len(found) == 0 {
			return nil, errUnknownAlias
		}
	}
	out := make([]CredentialInfo, 0, len(found))
	for i := range found {
		ci, err := s.info(ctx, &found[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *ci)
	}
	return out, nil
}

func (s *Service) parallelism() int {
	if s.cfg.SignParallelism > 0 {
		return s.cfg.SignParallelism
	}
	return DefaultSignParallelism
}

// signEach signs every digest on min(len, parallelism) goroutines and
// returns the signatures in input order with a per-digest error. After
// the first HSM error the remaining digests are not tried (they get the
// same error): the token is likely gone.
func (s *Service) signEach(ctx context.Context, id string, signer crypto.Signer, digests [][]byte, opts crypto.SignerOpts) ([][]byte, []error) {
	n := len(digests)
	sigs := make([][]byte, n)
	errl := make([]error, n)
	var next atomic.Int64
	var stop atomic.Pointer[error]
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			if e := stop.Load(); e != nil {
				errl[i] = *e
				continue
			}
			if err := ctx.Err(); err != nil {
				errl[i] = err
				continue
			}
			sig, err := signer.Sign(rand.Reader, digests[i], opts)
			if err != nil {
				err = errs.Wrap(errs.Unavailable, "HSM unavailable", fmt.Errorf("sign with %s: %w", id, err))
				stop.CompareAndSwap(nil, &err)
				errl[i] = err
				continue
			}
			sigs[i] = sig
		}
	}
	workers := min(n, s.parallelism())
	if workers <= 1 {
		work()
	} else {
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				work()
			}()
		}
		wg.Wait()
	}
	if stop.Load() != nil {
		s.signers.Delete(id)
	}
	return sigs, errl
}

// signAll is signEach for a batch that succeeds or fails as a whole; on
// failure the credential's counters get the batch back (no signature of
// it is returned).
func (s *Service) signAll(ctx context.Context, c *store.Credential, signer crypto.Signer, digests [][]byte, opts crypto.SignerOpts) ([][]byte, error) {
	sigs, errl := s.signEach(ctx, c.ID, signer, digests, opts)
	for _, err := range errl {
		if err != nil {
			if us, ok := s.st.(usageStore); ok {
				if rerr := us.RefundUsage(context.WithoutCancel(ctx), c.ID, len(digests), s.now()); rerr != nil {
					s.log.Error("usage refund", "credential", c.ID, "error", rerr)
				}
			}
			if _, ok := errs.As(err); !ok {
				err = errs.Wrap(errs.Unavailable, "HSM unavailable", err)
			}
			return nil, err
		}
	}
	return sigs, nil
}

// consumeCounted consumes len(authorized) signatures from the SAD and,
// when the store keeps usage counters, from the credential's counters in
// the same transaction. The error is already in sam's vocabulary.
func (s *Service) consumeCounted(ctx context.Context, p *Principal, c *store.Credential, sad, hashAlgo string, authorized [][]byte) error {
	us, ok := s.st.(usageStore)
	if !ok {
		if err := s.st.ConsumeSAD(ctx, tokenHash(sad), p.UserID, c.ID, hashAlgo, authorized, s.now()); err != nil {
			return sadErr(err)
		}
		return nil
	}
	err := us.ConsumeSADCounted(ctx, store.SADUse{SADHash: tokenHash(sad), UserID: p.UserID, CredentialID: c.ID,
		HashAlgo: hashAlgo, Authorized: authorized, Now: s.now()})
	return consumeErr(err)
}

// consumeErr maps a failed counted consumption.
func consumeErr(err error) error {
	if err == nil {
		return nil
	}
	var le *store.UsageLimitError
	if errors.As(err, &le) {
		return limitError(le)
	}
	return sadErr(err)
}

// limitError is the 400 a client gets when the credential's limit stops it.
func limitError(le *store.UsageLimitError) error {
	return &errs.Error{Kind: errs.Invalid, Code: "invalid_request", Err: le,
		Msg: fmt.Sprintf("Signature limit reached for this credential: %d of %d signatures used, %d more asked", le.Total, le.Limit, le.Wanted)}
}

// JobRequest asks sam to accept an asynchronous signing job: the whole
// budget (len(Items) signatures) is taken from the SAD and the counters
// when the job is stored.
type JobRequest struct {
	CredentialID, SAD string
	// AuthorizedHash is the algorithm of Authorized (a bound SAD must
	// match it); Authorized[i] is what item i consumes from the SAD: the
	// hash itself, or the document's digest.
	AuthorizedHash crypto.Hash
	Authorized     [][]byte
	// Opts are the signature options (PSS needs an RSA key).
	Opts crypto.SignerOpts
	// Job carries ID, Kind, SignOpts, Params, ResponseURI and ExpiresAt;
	// sam fills the owner, credential, SAD hash, total and creation time.
	Job   store.Job
	Items []store.JobItem
}

// jobStore is the persistence of asynchronous jobs; *store.Store has it.
type jobStore interface {
	AcceptJob(ctx context.Context, u store.SADUse, j store.Job, items []store.JobItem) error
	Job(ctx context.Context, id string) (*store.Job, error)
	PendingJobIndexes(ctx context.Context, jobID string, idx []int) (map[int]bool, error)
}

var _ jobStore = (*store.Store)(nil)

// AcceptJob checks the credential as SignHash does, then stores the job,
// consuming its whole budget atomically.
func (s *Service) AcceptJob(ctx context.Context, p *Principal, r JobRequest) error {
	js, ok := s.st.(jobStore)
	if !ok {
		return errs.Wrap(errs.Internal, "Internal error", errors.New("sam: Store cannot keep jobs"))
	}
	if r.Opts == nil {
		return errs.Invalidf("Invalid parameter signAlgo")
	}
	if !allowedHash(r.AuthorizedHash) || !allowedHash(r.Opts.HashFunc()) {
		return ErrHashAlgo
	}
	n := len(r.Items)
	if n == 0 || len(r.Authorized) != n {
		return ErrEmptyHashes
	}
	for _, d := range r.Authorized {
		if len(d) != r.AuthorizedHash.Size() {
			return ErrDigestLength
		}
	}
	if r.SAD == "" {
		return errs.Invalidf("Missing (or invalid type) string parameter SAD")
	}
	c, err := s.loadOwned(ctx, p, r.CredentialID)
	if err != nil {
		return err
	}
	fail := func(reason string, err error) error {
		outcome := "failure:" + reason
		s.record(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "signature.job.accept", Object: "credential:" + c.ID,
			Outcome: outcome, Detail: map[string]string{"count": strconv.Itoa(n)}, With: store.AuditExtras{
				History:    []store.HistoryEntry{s.historyEntry(c, "job", r.AuthorizedHash, n, outcome)},
				Signatures: []store.SignatureRecord{s.failureRecord(p, c, r.AuthorizedHash, n, outcome, r.Job.ID)},
			}})
		return err
	}
	cert, err := s.usable(ctx, c)
	if err != nil {
		return fail("not_usable", err)
	}
	if err := optsFitKey(r.Opts, cert.PublicKey); err != nil {
		return fail("bad_request", err)
	}
	j := r.Job
	now := s.now()
	j.UserID, j.ClientID, j.Domain, j.CredentialID = p.UserID, p.ClientID, p.Domain, c.ID
	j.SADHash, j.Total, j.CreatedAt = tokenHash(r.SAD), n, now
	// Before the job exists, so that a failed audit leaves no job.
	if err := s.recordStrict(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "signature.job.accept", Object: "credential:" + c.ID,
		Outcome: "success", Detail: map[string]string{"job": j.ID, "kind": j.Kind, "count": strconv.Itoa(n)}}); err != nil {
		return err
	}
	err = js.AcceptJob(ctx, store.SADUse{SADHash: j.SADHash, UserID: p.UserID, CredentialID: c.ID,
		HashAlgo: r.AuthorizedHash.String(), Authorized: r.Authorized, Now: now}, j, r.Items)
	s.met.sadUsed(c, n, err)
	if err != nil {
		return fail("sad", consumeErr(err))
	}
	s.history(ctx, c, "job", r.AuthorizedHash, n, "success")
	return nil
}

// JobDigest is one pending job item to sign: Digest is what the HSM signs;
// Document names what the log shows (a name, or "" for the hex digest).
type JobDigest struct {
	Index         int
	Digest        []byte
	Document      string
	Format, Level string
}

// JobSignature is the outcome of one JobDigest: a signature, or Err. The
// Record, for a signature, is to be written to the signature log in the
// transaction that stores the signature (store.CompleteJobItems).
type JobSignature struct {
	Index     int
	Signature []byte
	Err       error
	Record    *store.SignatureRecord
}

// SignJobItems signs pending items of a running job, in parallel. The
// credential is checked again (owner, key enabled, activated, certificate
// valid): a credential suspended while the job runs stops it (the error
// is returned for the whole call). Items that are not pending get an
// error each and are not signed.
func (s *Service) SignJobItems(ctx context.Context, jobID string, items []JobDigest, opts crypto.SignerOpts) ([]JobSignature, error) {
	js, ok := s.st.(jobStore)
	if !ok {
		return nil, errs.Wrap(errs.Internal, "Internal error", errors.New("sam: Store cannot keep jobs"))
	}
	if opts == nil || !allowedHash(opts.HashFunc()) {
		return nil, ErrHashAlgo
	}
	j, err := js.Job(ctx, jobID)
	if err != nil {
		return nil, storeErr("job", err)
	}
	if j.Status != store.JobRunning {
		return nil, errs.New(errs.Conflict, "", "The job is finished")
	}
	p := &Principal{UserID: j.UserID, ClientID: j.ClientID, Domain: j.Domain}
	c, err := s.loadOwned(ctx, p, j.CredentialID)
	if err != nil {
		return nil, err
	}
	cert, err := s.usable(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := optsFitKey(opts, cert.PublicKey); err != nil {
		return nil, err
	}
	idx := make([]int, len(items))
	for i, it := range items {
		idx[i] = it.Index
	}
	pending, err := js.PendingJobIndexes(ctx, jobID, idx)
	if err != nil {
		return nil, storeErr("job items", err)
	}
	out := make([]JobSignature, len(items))
	var todo []int
	var digests [][]byte
	hf := opts.HashFunc()
	for i, it := range items {
		out[i].Index = it.Index
		switch {
		case !pending[it.Index]:
			out[i].Err = errs.New(errs.Conflict, "", "The item is not pending")
		case len(it.Digest) != hf.Size():
			out[i].Err = ErrDigestLength
		default:
			todo = append(todo, i)
			digests = append(digests, it.Digest)
		}
	}
	if len(todo) == 0 {
		return out, nil
	}
	signer, err := s.signer(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	sigs, errl := s.signEach(ctx, c.ID, signer, digests, opts)
	signed, failed := 0, 0
	now := s.now()
	for k, i := range todo {
		if errl[k] != nil {
			out[i].Err = errl[k]
			failed++
			continue
		}
		signed++
		doc := items[i].Document
		if doc == "" {
			doc = hex.EncodeToString(items[i].Digest)
		}
		format := items[i].Format
		if format == "" {
			format = "hash"
		}
		out[i].Signature = sigs[k]
		out[i].Record = &store.SignatureRecord{ID: s.seqID("s-"), At: now, CredentialID: c.ID, UserID: c.UserID, Client: client(p),
			Document: doc, Format: format, Level: items[i].Level, HashAlgo: hf.String(), Count: 1, Outcome: "success", JobID: jobID}
	}
	outcome := "success"
	if failed > 0 {
		outcome = "failure:hsm"
	}
	// Fail closed: without the audit record no signature of this call is
	// returned (the items stay pending and are retried).
	if err := s.recordStrict(ctx, audit.Event{Actor: "user:" + p.UserID, Action: "signature.sign", Object: "credential:" + c.ID,
		Outcome: outcome, Detail: map[string]string{"hashAlgo": hf.String(), "count": strconv.Itoa(signed), "failed": strconv.Itoa(failed),
			"mode": "job", "job": jobID}}); err != nil {
		return nil, err
	}
	s.met.signed.WithLabelValues("success").Add(float64(signed))
	if failed > 0 {
		s.met.signed.WithLabelValues("hsm").Add(float64(failed))
	}
	return out, nil
}
