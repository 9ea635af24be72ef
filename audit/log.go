package audit

import (
	"cmp"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
)

// Store is what the audit log needs from persistence; *store.Store
// satisfies it.
type Store interface {
	AppendAuditWith(ctx context.Context, extras store.AuditExtras, build func(head store.AuditHead) ([]store.AuditRecord, error)) error
	AuditHead(ctx context.Context) (store.AuditHead, error)
	AuditRecords(ctx context.Context, q store.AuditQuery) ([]store.AuditRecord, error)
	FirstAuditSeqSince(ctx context.Context, since time.Time) (int64, error)
	InsertAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) (bool, error)
	AuditCheckpoints(ctx context.Context) ([]store.AuditCheckpoint, error)
}

var _ Store = (*store.Store)(nil)

// Domain packages depend on the log only through this method.
var _ interface {
	Record(ctx context.Context, e Event) error
} = (*Log)(nil)

// Timestamper obtains an RFC 3161 timestamp token over digest (computed
// with h) from our TSA; the CA package provides it.
type Timestamper interface {
	Timestamp(ctx context.Context, digest []byte, h crypto.Hash) ([]byte, error)
}

// Option configures a Log.
type Option func(*Log)

// WithClock sets the clock that stamps records (nil: time.Now).
func WithClock(now func() time.Time) Option { return func(l *Log) { l.now = now } }

// WithLogger sets where append and checkpoint failures are logged (nil:
// discarded).
func WithLogger(log *slog.Logger) Option { return func(l *Log) { l.log = log } }

// WithRegisterer registers the log's metrics on reg (nil: no metrics).
func WithRegisterer(reg prometheus.Registerer) Option { return func(l *Log) { l.reg = reg } }

// WithTimestamper sets the TSA used by Checkpoint.
func WithTimestamper(ts Timestamper) Option { return func(l *Log) { l.ts = ts } }

// WithTSARoots makes Verify check each checkpoint token's signature against
// these roots (timeStamping EKU). Without it Verify checks the token's
// imprint and, when the token carries certificates, that its signature is
// consistent with them, but not who the TSA is.
func WithTSARoots(roots *x509.CertPool) Option { return func(l *Log) { l.roots = roots } }

// WithMaxBatch bounds how many records one transaction commits (default
// 512). Larger batches raise throughput under load and the latency of the
// unlucky last caller of a batch.
func WithMaxBatch(n int) Option {
	return func(l *Log) {
		if n > 0 {
			l.maxBatch = n
		}
	}
}

// WithWriteTimeout bounds one append transaction (default 10s); when it
// expires every caller in the batch gets errs.Unavailable.
func WithWriteTimeout(d time.Duration) Option {
	return func(l *Log) {
		if d > 0 {
			l.writeTimeout = d
		}
	}
}

// Log is the audit log. Record may be called from many goroutines and
// concurrent calls share one transaction (group commit), which is what
// lets signatures be audited at thousands per second on SQLite. There is
// no writer goroutine: the first caller in the queue commits the batch
// for everyone queued behind it, then hands the turn to the next caller
// (as LevelDB's writers do), so a lone caller commits its own record
// without waking any other goroutine.
type Log struct {
	st           Store
	now          func() time.Time
	log          *slog.Logger
	reg          prometheus.Registerer
	ts           Timestamper
	roots        *x509.CertPool
	maxBatch     int
	writeTimeout time.Duration
	m            *metrics

	mu      sync.Mutex // guards closed, queue and leading
	closed  bool
	queue   []*request // waiting callers in arrival order; queue[0] leads
	leading sync.WaitGroup

	lastCheckpoint atomic.Int64 // seq of this process's last checkpoint
}

// request is one Record call waiting for its batch to commit.
type request struct {
	ctx   context.Context
	rec   store.AuditRecord // fields filled in; Seq, At and hashes by the leader
	with  store.AuditExtras
	start time.Time
	// wake (buffered) tells a queued caller that its record was committed
	// or failed (done, err) or that it now leads.
	wake chan struct{}
	// taken: the record is in a batch being written (guarded by Log.mu,
	// like done).
	taken, done bool
	err         error
}

// Open returns a Log over st. It reads the head once
// so that a store that cannot be reached fails start-up, not the first
// signature.
func Open(ctx context.Context, st Store, opts ...Option) (*Log, error) {
	l := &Log{st: st, maxBatch: 512, writeTimeout: 10 * time.Second}
	for _, o := range opts {
		o(l)
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(l.reg)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l.m = m
	if _, err := st.AuditHead(ctx); err != nil {
		return nil, errs.Wrap(errs.Unavailable, "audit log unavailable", fmt.Errorf("audit: open: %w", err))
	}
	return l, nil
}

// Close stops accepting records and waits until those already accepted
// are committed or failed. It does not close the store.
func (l *Log) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.leading.Wait()
	return nil
}

// Record appends e to the log and returns once it is committed. An error
// means the event is not (known to be) in the log; it wraps errs.Unavailable
// when the log cannot be written, and the caller must then refuse the
// action it was about to take (fail closed).
func (l *Log) Record(ctx context.Context, e Event) error {
	if e.Action == "" {
		return errs.New(errs.Internal, "", "audit event without an action")
	}
	r := &request{
		ctx: ctx,
		rec: store.AuditRecord{
			Actor:   cleanText(e.Actor),
			Action:  cleanText(e.Action),
			Object:  cleanText(e.Object),
			Outcome: cleanText(e.Outcome),
			Detail:  CanonicalDetail(e.Detail),
		},
		with:  e.With,
		start: time.Now(),
		wake:  make(chan struct{}, 1),
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.m.failed()
		return errs.Wrap(errs.Unavailable, "audit log unavailable", errors.New("audit: log closed"))
	}
	l.queue = append(l.queue, r)
	lead := len(l.queue) == 1
	if lead {
		l.leading.Add(1)
	}
	l.mu.Unlock()
	if !lead {
		select {
		case <-r.wake:
		case <-ctx.Done():
			if l.leave(r) {
				l.m.failed()
				return errs.Wrap(errs.Unavailable, "audit log unavailable", fmt.Errorf("audit: record %s: %w", e.Action, ctx.Err()))
			}
			// Too late to leave: the record is in a batch being written,
			// or this caller was just handed the lead.
			<-r.wake
		}
		l.mu.Lock()
		done := r.done
		l.mu.Unlock()
		if done {
			return r.err
		}
	}
	l.leadBatch()
	return r.err
}

// leave takes a waiting caller whose context ended out of the queue, if
// its record is not in a batch already and it was not handed the lead
// (then it must lead: the callers behind it wait for it).
func (l *Log) leave(r *request) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.taken || (len(l.queue) > 0 && l.queue[0] == r) {
		return false
	}
	for i, q := range l.queue {
		if q == r {
			l.queue = append(l.queue[:i], l.queue[i+1:]...)
			return true
		}
	}
	return false
}

// leadBatch is run by the caller at the head of the queue: it commits up
// to maxBatch queued records (its own first), reports to each, and hands
// the lead to the next caller in the queue, if any.
func (l *Log) leadBatch() {
	l.mu.Lock()
	batch := append([]*request(nil), l.queue[:min(len(l.queue), l.maxBatch)]...)
	for _, r := range batch {
		r.taken = true
	}
	l.mu.Unlock()
	// The lead is handed on even if the commit panics (the leader is a
	// request goroutine whose panic the HTTP server recovers): otherwise
	// every later Record would wait forever.
	defer func() {
		if p := recover(); p != nil {
			var werr error = errs.Wrap(errs.Unavailable, "audit log unavailable", fmt.Errorf("audit: append panicked: %v", p))
			for _, r := range batch {
				r.err = cmp.Or(r.err, werr)
			}
			l.handOff(batch)
			panic(p)
		}
	}()
	l.commit(batch)
	l.handOff(batch)
}

// handOff reports to the callers of batch and gives the lead to the next
// queued caller, if any.
func (l *Log) handOff(batch []*request) {
	l.mu.Lock()
	l.queue = l.queue[len(batch):]
	for _, r := range batch {
		r.done = true
		r.wake <- struct{}{}
	}
	if len(l.queue) > 0 {
		l.queue[0].wake <- struct{}{}
	} else {
		l.queue = nil
		l.leading.Done()
	}
	l.mu.Unlock()
}

// commit appends the live requests of batch and reports to each caller.
func (l *Log) commit(batch []*request) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			// The caller gave up on its action: the record is not written.
			l.m.failed()
			r.err = errs.Wrap(errs.Unavailable, "audit log unavailable", fmt.Errorf("audit: record %s: %w", r.rec.Action, err))
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.writeTimeout)
	defer cancel()
	var recs []store.AuditRecord
	var extras store.AuditExtras
	for _, r := range live {
		extras.Add(r.with)
	}
	err := l.st.AppendAuditWith(ctx, extras, func(head store.AuditHead) ([]store.AuditRecord, error) {
		// Stamped under the append lock, so time follows sequence within a
		// process; across replicas it follows their clocks.
		at := time.UnixMilli(l.now().UnixMilli()).UTC()
		prev := head.Hash
		if head.Seq == 0 {
			prev = GenesisHash
		}
		recs = recs[:0]
		for i, r := range live {
			rec := r.rec
			rec.Seq = head.Seq + int64(i) + 1
			rec.At = at
			rec.PrevHash = prev
			rec.Hash = RecordHash(rec)
			prev = rec.Hash
			recs = append(recs, rec)
		}
		return recs, nil
	})
	l.m.batch(len(live))
	if err != nil {
		l.log.Error("audit append failed: refusing the audited actions", "records", len(live), "err", err)
		werr := errs.Wrap(errs.Unavailable, "audit log unavailable", fmt.Errorf("audit: append: %w", err))
		for _, r := range live {
			l.m.failed()
			r.err = werr
		}
		return
	}
	for _, r := range live {
		l.m.appended(r.rec.Outcome, time.Since(r.start))
	}
}
