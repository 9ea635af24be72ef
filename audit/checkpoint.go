package audit

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// Checkpoint timestamps the current head: it asks the TSA for a token over
// the head's hash and stores (seq, hash, token). It returns the checkpoint;
// Seq 0 means the log is empty, and nothing is stored. When this process
// already checkpointed the same head, it returns without calling the TSA.
// Checkpoints are not themselves audit records, so a quiet log stays quiet.
func (l *Log) Checkpoint(ctx context.Context) (store.AuditCheckpoint, error) {
	if l.ts == nil {
		return store.AuditCheckpoint{}, errs.New(errs.Internal, "", "audit: no timestamper configured")
	}
	head, err := l.st.AuditHead(ctx)
	if err != nil {
		l.m.checkpoint("error")
		return store.AuditCheckpoint{}, errs.Wrap(errs.Unavailable, "audit log unavailable", fmt.Errorf("audit: checkpoint: %w", err))
	}
	if head.Seq == 0 || head.Seq == l.lastCheckpoint.Load() {
		l.m.checkpoint("unchanged")
		return store.AuditCheckpoint{Seq: head.Seq, Hash: head.Hash}, nil
	}
	token, err := l.ts.Timestamp(ctx, head.Hash, crypto.SHA256)
	if err != nil {
		l.m.checkpoint("error")
		return store.AuditCheckpoint{}, errs.Wrap(errs.Unavailable, "timestamp authority unavailable", fmt.Errorf("audit: checkpoint %d: %w", head.Seq, err))
	}
	// A token over the wrong hash would only be noticed at the next
	// Verify; refuse to store it.
	if err := checkToken(token, head.Hash, l.roots); err != nil {
		l.m.checkpoint("error")
		return store.AuditCheckpoint{}, errs.Wrap(errs.Internal, "bad timestamp token", fmt.Errorf("audit: checkpoint %d: %w", head.Seq, err))
	}
	c := store.AuditCheckpoint{Seq: head.Seq, Hash: head.Hash, CreatedAt: l.now().UTC(), Token: token}
	stored, err := l.st.InsertAuditCheckpoint(ctx, c)
	if err != nil {
		l.m.checkpoint("error")
		return store.AuditCheckpoint{}, errs.Wrap(errs.Unavailable, "audit log unavailable", fmt.Errorf("audit: checkpoint %d: %w", head.Seq, err))
	}
	l.lastCheckpoint.Store(head.Seq)
	if stored {
		l.m.checkpoint("stored")
	} else {
		l.m.checkpoint("unchanged") // another replica checkpointed this head first
	}
	return c, nil
}

// RunCheckpoints takes a checkpoint every interval until ctx ends; failures
// are logged and retried at the next tick. It returns nil when ctx ends and
// an error at once when checkpoints cannot work (no timestamper, bad
// interval).
func (l *Log) RunCheckpoints(ctx context.Context, every time.Duration) error {
	if l.ts == nil {
		return errors.New("audit: run checkpoints: no timestamper configured")
	}
	if every <= 0 {
		return fmt.Errorf("audit: run checkpoints: interval %v", every)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c, err := l.Checkpoint(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				l.log.Error("audit checkpoint failed", "err", err)
				continue
			}
			l.log.Debug("audit checkpoint", "seq", c.Seq)
		}
	}
}
