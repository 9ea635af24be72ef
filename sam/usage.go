package sam

// Usage counters, limits and the per-signature log, for the operator API
// and the self-care portal. The counters move in the transaction that
// consumes the SAD (store.ConsumeSADCounted), once per signing call; the
// log gets one row per call listing what was signed (never the document),
// written with the call's audit record.

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// usageStore is the persistence of counters and the signature log;
// *store.Store has it. A Store without it signs without counting.
type usageStore interface {
	ConsumeSADCounted(ctx context.Context, u store.SADUse) error
	RefundUsage(ctx context.Context, credentialID string, n int, consumedAt time.Time) error
	SetUsageLimit(ctx context.Context, credentialID string, max int64, now time.Time) error
	CredentialUsage(ctx context.Context, credentialID string, from, to time.Time) (*store.Usage, error)
	AddSignatureRecords(ctx context.Context, recs []store.SignatureRecord) error
	SignatureLog(ctx context.Context, credentialID string, f store.LogFilter) ([]store.SignatureRecord, int, error)
	SignatureLogCounts(ctx context.Context, credentialID string, since time.Time) (recent, total int64, err error)
}

var _ usageStore = (*store.Store)(nil)

func (s *Service) usageStore() (usageStore, error) {
	us, ok := s.st.(usageStore)
	if !ok {
		return nil, errs.Wrap(errs.Internal, "Internal error", errors.New("sam: Store keeps no usage counters"))
	}
	return us, nil
}

// signatureRecord is the signature log row of a signed batch: one row
// listing every digest the holder authorized (for signDoc, format
// "derived", the documents' digests, not the signed attributes). It is
// written with the call's audit record.
func (s *Service) signatureRecord(p *Principal, c *store.Credential, format string, h crypto.Hash, digests [][]byte) store.SignatureRecord {
	rec := store.SignatureRecord{ID: s.seqID("s-"), At: s.now(), CredentialID: c.ID, UserID: c.UserID, Client: client(p),
		Format: format, HashAlgo: algoName(h), Count: len(digests), Digests: digests, Outcome: "success"}
	if len(digests) == 1 {
		rec.Document, rec.Digests = hex.EncodeToString(digests[0]), nil
	}
	return rec
}

// failureRecord is the signature log row of n signatures refused together.
func (s *Service) failureRecord(p *Principal, c *store.Credential, h crypto.Hash, n int, outcome, jobID string) store.SignatureRecord {
	return store.SignatureRecord{ID: s.seqID("s-"), At: s.now(), CredentialID: c.ID, UserID: c.UserID,
		Client: client(p), Format: "hash", HashAlgo: algoName(h), Count: n, Outcome: outcome, JobID: jobID}
}

// UsageView is a credential's counters.
type UsageView struct {
	CredentialID string
	Total        int64
	// Limit is the maximum total (0: none); Remaining is Limit - Total
	// (0 without a limit).
	Limit, Remaining int64
	Today            int64
	// Days are the last 30 UTC days with signatures, oldest first.
	Days []store.DayCount
}

func (s *Service) usageOf(ctx context.Context, id string) (*UsageView, error) {
	us, err := s.usageStore()
	if err != nil {
		return nil, err
	}
	now := s.now()
	u, err := us.CredentialUsage(ctx, id, now.AddDate(0, 0, -29), now)
	if err != nil {
		return nil, storeErr("usage", err)
	}
	v := &UsageView{CredentialID: id, Total: u.Total, Limit: u.Limit, Days: u.Days}
	if u.Limit > 0 {
		v.Remaining = max(u.Limit-u.Total, 0)
	}
	today := store.UsageDay(now)
	for _, d := range u.Days {
		if store.UsageDay(d.Day) == today {
			v.Today = d.Count
		}
	}
	return v, nil
}

// adminCredential loads any credential for the operator.
func (s *Service) adminCredential(ctx context.Context, id string) (*store.Credential, error) {
	c, err := s.st.Credential(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.New(errs.NotFound, "", "Unknown credential")
	}
	if err != nil {
		return nil, storeErr("credential", err)
	}
	return c, nil
}

// AdminUsage returns any credential's counters (operator API).
func (s *Service) AdminUsage(ctx context.Context, credentialID string) (*UsageView, error) {
	c, err := s.adminCredential(ctx, credentialID)
	if err != nil {
		return nil, err
	}
	return s.usageOf(ctx, c.ID)
}

// Usage returns the caller's credential's counters (self-care portal).
func (s *Service) Usage(ctx context.Context, p *Principal, credentialID string) (*UsageView, error) {
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return nil, err
	}
	return s.usageOf(ctx, c.ID)
}

// SetUsageLimit sets (max > 0) or removes (max 0) a credential's
// signature limit (operator API). Signing calls that would pass it get a
// 400 "Signature limit reached for this credential".
func (s *Service) SetUsageLimit(ctx context.Context, credentialID string, max int64) (*UsageView, error) {
	if max < 0 {
		return nil, errs.Invalidf("Invalid parameter maxSignatures (0 removes the limit)")
	}
	c, err := s.adminCredential(ctx, credentialID)
	if err != nil {
		return nil, err
	}
	us, err := s.usageStore()
	if err != nil {
		return nil, err
	}
	if err := us.SetUsageLimit(ctx, c.ID, max, s.now()); err != nil {
		return nil, storeErr("set limit", err)
	}
	s.record(ctx, auditLimit(c.ID, max))
	return s.usageOf(ctx, c.ID)
}

// HistoryFilter selects signature history: From (inclusive) and To
// (exclusive) when set, Page (from 0) of Size rows (1..1000, default 100).
type HistoryFilter struct {
	From, To   time.Time
	Page, Size int
}

// SignatureHistory is a page of a credential's signature log, newest
// first, with the counts the portal shows.
type SignatureHistory struct {
	Entries []store.SignatureRecord
	// Matching is how many rows the filter matches in all.
	Matching int
	// More reports whether later pages exist.
	More bool
	// Last7Days and Total count successful signatures (not rows).
	Last7Days, Total int64
}

func (s *Service) historyOf(ctx context.Context, id string, f HistoryFilter) (*SignatureHistory, error) {
	if f.Size == 0 {
		f.Size = 100
	}
	if f.Size < 1 || f.Size > 1000 {
		return nil, errs.Invalidf("Invalid parameter size (1..1000)")
	}
	if f.Page < 0 || f.Page > 1000000 {
		return nil, errs.Invalidf("Invalid parameter page")
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return nil, errs.Invalidf("Invalid parameters from/to: to must be after from")
	}
	us, err := s.usageStore()
	if err != nil {
		return nil, err
	}
	rows, n, err := us.SignatureLog(ctx, id, store.LogFilter{From: f.From, To: f.To, Offset: f.Page * f.Size, Limit: f.Size})
	if err != nil {
		return nil, storeErr("history", err)
	}
	recent, total, err := us.SignatureLogCounts(ctx, id, s.now().Add(-7*24*time.Hour))
	if err != nil {
		return nil, storeErr("history", err)
	}
	return &SignatureHistory{Entries: rows, Matching: n, More: (f.Page+1)*f.Size < n, Last7Days: recent, Total: total}, nil
}

// History returns the caller's credential's signature history (self-care
// portal).
func (s *Service) History(ctx context.Context, p *Principal, credentialID string, f HistoryFilter) (*SignatureHistory, error) {
	c, err := s.loadOwned(ctx, p, credentialID)
	if err != nil {
		return nil, err
	}
	return s.historyOf(ctx, c.ID, f)
}

// AdminHistory returns any credential's signature history (operator API).
func (s *Service) AdminHistory(ctx context.Context, credentialID string, f HistoryFilter) (*SignatureHistory, error) {
	c, err := s.adminCredential(ctx, credentialID)
	if err != nil {
		return nil, err
	}
	return s.historyOf(ctx, c.ID, f)
}

func auditLimit(id string, max int64) audit.Event {
	return audit.Event{Actor: "admin", Action: "admin.credential.limit", Object: "credential:" + id, Outcome: "success",
		Detail: map[string]string{"maxSignatures": strconv.FormatInt(max, 10)}}
}
