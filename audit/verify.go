package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/digitorus/pkcs7"
	"github.com/digitorus/timestamp"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// Problem names what is wrong at a broken link.
type Problem string

const (
	// HashMismatch: the record's stored hash is not the hash of its
	// contents (the record was edited).
	HashMismatch Problem = "hash mismatch"
	// PrevHashMismatch: the record's prev hash is not the previous record's
	// hash (the previous record was edited and re-hashed, or replaced).
	PrevHashMismatch Problem = "prev-hash mismatch"
	// MissingSequence: the sequence is absent (a record was deleted, or
	// the log was truncated below a checkpoint).
	MissingSequence Problem = "missing sequence"
	// CheckpointMismatch: a checkpoint's hash differs from the chain's
	// hash at that sequence (the chain was rewritten consistently).
	CheckpointMismatch Problem = "checkpoint mismatch"
	// BadCheckpointToken: a checkpoint's timestamp token does not parse,
	// does not cover the checkpoint's hash, or is not signed by a trusted TSA.
	BadCheckpointToken Problem = "bad checkpoint token"
)

// Break is the first broken link Verify found.
type Break struct {
	Seq     int64
	Problem Problem
	Detail  string
}

// String renders the break for operators: "sequence 7: hash mismatch (...)".
func (b Break) String() string {
	return fmt.Sprintf("sequence %d: %s (%s)", b.Seq, b.Problem, b.Detail)
}

// VerifyResult is the outcome of walking the chain.
type VerifyResult struct {
	// Records is how many records were checked before the walk ended.
	Records int64
	// HeadSeq and HeadHash are the last record checked (0 and nil when the
	// log is empty).
	HeadSeq  int64
	HeadHash []byte
	// Checkpoints is how many checkpoints were checked against the chain.
	Checkpoints int
	// Broken is the first broken link, nil when the chain is intact.
	Broken *Break
}

// Intact reports whether Verify found no broken link.
func (r VerifyResult) Intact() bool { return r.Broken == nil }

// verifyPage is how many records Verify reads per query: short reads keep
// no long transaction open on a log that is being appended to.
const verifyPage = 1000

// Verify walks the whole chain from record 1 and reports the first broken
// link in the result; an error means the log could not be read at all
// (kind errs.Unavailable). Records appended while Verify runs are checked
// as well when they arrive before the walk ends.
func (l *Log) Verify(ctx context.Context) (VerifyResult, error) {
	// Checkpoints are read before the chain: every checkpoint then refers
	// to a record the walk must meet, so one beyond the end is truncation.
	cps, err := l.st.AuditCheckpoints(ctx)
	if err != nil {
		return VerifyResult{}, errs.Wrap(errs.Unavailable, "audit log unavailable", fmt.Errorf("audit: verify: %w", err))
	}
	bySeq := make(map[int64]store.AuditCheckpoint, len(cps))
	for _, c := range cps {
		bySeq[c.Seq] = c
	}
	var res VerifyResult
	prev := GenesisHash
	for {
		page, err := l.st.AuditRecords(ctx, store.AuditQuery{AfterSeq: res.HeadSeq, Limit: verifyPage})
		if err != nil {
			return res, errs.Wrap(errs.Unavailable, "audit log unavailable", fmt.Errorf("audit: verify after %d: %w", res.HeadSeq, err))
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if b := l.checkRecord(r, res.HeadSeq+1, prev, bySeq); b != nil {
				res.Broken = b
				return res, nil
			}
			if _, ok := bySeq[r.Seq]; ok {
				res.Checkpoints++
			}
			res.Records++
			res.HeadSeq, res.HeadHash, prev = r.Seq, r.Hash, r.Hash
		}
	}
	for _, c := range cps {
		if c.Seq > res.HeadSeq {
			res.Broken = &Break{Seq: res.HeadSeq + 1, Problem: MissingSequence,
				Detail: fmt.Sprintf("the log ends at %d but a checkpoint of %s vouches for sequence %d: truncated",
					res.HeadSeq, c.CreatedAt.Format("2006-01-02T15:04:05Z07:00"), c.Seq)}
			return res, nil
		}
	}
	return res, nil
}

// checkRecord returns the first problem with r, which should be record
// want linked to prev, or nil.
func (l *Log) checkRecord(r store.AuditRecord, want int64, prev []byte, cps map[int64]store.AuditCheckpoint) *Break {
	if r.Seq != want {
		return &Break{Seq: want, Problem: MissingSequence, Detail: fmt.Sprintf("the next stored record is %d", r.Seq)}
	}
	if !bytes.Equal(r.PrevHash, prev) {
		return &Break{Seq: r.Seq, Problem: PrevHashMismatch,
			Detail: fmt.Sprintf("prev hash %s, record %d has hash %s", short(r.PrevHash), r.Seq-1, short(prev))}
	}
	if h := RecordHash(r); !bytes.Equal(h, r.Hash) {
		return &Break{Seq: r.Seq, Problem: HashMismatch,
			Detail: fmt.Sprintf("stored %s, contents hash to %s", short(r.Hash), short(h))}
	}
	c, ok := cps[r.Seq]
	if !ok {
		return nil
	}
	if !bytes.Equal(c.Hash, r.Hash) {
		return &Break{Seq: r.Seq, Problem: CheckpointMismatch,
			Detail: fmt.Sprintf("checkpoint of %s says %s, chain has %s",
				c.CreatedAt.Format("2006-01-02T15:04:05Z07:00"), short(c.Hash), short(r.Hash))}
	}
	if err := checkToken(c.Token, c.Hash, l.roots); err != nil {
		return &Break{Seq: r.Seq, Problem: BadCheckpointToken, Detail: err.Error()}
	}
	return nil
}

// checkToken checks that token is an RFC 3161 token over digest (SHA-256)
// and, with roots, that a TSA chaining to them signed it.
func checkToken(token, digest []byte, roots *x509.CertPool) error {
	ts, err := parseToken(token)
	if err != nil {
		return err
	}
	if ts.HashAlgorithm != crypto.SHA256 || !bytes.Equal(ts.HashedMessage, digest) {
		return fmt.Errorf("token covers %v %s, not SHA-256 %s", ts.HashAlgorithm, short(ts.HashedMessage), short(digest))
	}
	if roots == nil {
		return nil
	}
	p7, err := pkcs7.Parse(ts.RawToken)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	inter := x509.NewCertPool()
	for _, c := range p7.Certificates {
		inter.AddCert(c)
	}
	err = p7.VerifyWithOpts(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
		CurrentTime:   ts.Time,
	})
	if err != nil {
		return fmt.Errorf("token signature: %w", err)
	}
	return nil
}

// parseToken accepts a TimeStampToken or a whole TimeStampResp.
func parseToken(token []byte) (*timestamp.Timestamp, error) {
	if len(token) == 0 {
		return nil, errors.New("empty token")
	}
	ts, err := timestamp.Parse(token)
	if err == nil {
		return ts, nil
	}
	if ts, rerr := timestamp.ParseResponse(token); rerr == nil {
		return ts, nil
	}
	return nil, fmt.Errorf("token: %w", err)
}

// short abbreviates a hash for messages.
func short(h []byte) string {
	s := hex.EncodeToString(h)
	if len(s) > 16 {
		return s[:16] + "…"
	}
	if s == "" {
		return "(none)"
	}
	return s
}
