package audit

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// ExportedRecord is one line of Export: every field the record hash covers,
// as stored, so an auditor can recompute hashes from the export alone.
// Detail is the stored JSON text, not a nested object, because the hash is
// over those exact bytes.
type ExportedRecord struct {
	Seq      int64  `json:"seq"`
	Time     string `json:"time"` // RFC 3339, UTC, milliseconds
	Actor    string `json:"actor"`
	Action   string `json:"action"`
	Object   string `json:"object"`
	Outcome  string `json:"outcome"`
	Detail   string `json:"detail"`
	PrevHash string `json:"prev_hash"` // hex
	Hash     string `json:"hash"`      // hex
}

// TimeFormat is how exported times are written: UTC with milliseconds,
// the precision that is stored and hashed.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Export writes the records whose time is at or after since (all when
// since is zero), in sequence order, as JSON lines.
func (l *Log) Export(ctx context.Context, since time.Time, w io.Writer) error {
	var after int64
	if !since.IsZero() {
		first, err := l.st.FirstAuditSeqSince(ctx, since)
		if err != nil {
			return errs.Wrap(errs.Unavailable, "audit log unavailable", fmt.Errorf("audit: export: %w", err))
		}
		if first == 0 {
			return nil
		}
		after = first - 1
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for {
		page, err := l.st.AuditRecords(ctx, store.AuditQuery{AfterSeq: after, Since: since, Limit: verifyPage})
		if err != nil {
			return errs.Wrap(errs.Unavailable, "audit log unavailable", fmt.Errorf("audit: export after %d: %w", after, err))
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if err := enc.Encode(exported(r)); err != nil {
				return fmt.Errorf("audit: export: %w", err)
			}
		}
		after = page[len(page)-1].Seq
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}

func exported(r store.AuditRecord) ExportedRecord {
	return ExportedRecord{
		Seq:      r.Seq,
		Time:     r.At.UTC().Format(TimeFormat),
		Actor:    r.Actor,
		Action:   r.Action,
		Object:   r.Object,
		Outcome:  r.Outcome,
		Detail:   r.Detail,
		PrevHash: hex.EncodeToString(r.PrevHash),
		Hash:     hex.EncodeToString(r.Hash),
	}
}
