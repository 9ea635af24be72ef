// Package mailqueue delivers outgoing e-mail durably. Send stores the
// message in the store's queue, in the step that produces it, so that a
// registration or a certificate issuance never fails (nor loses the
// envelope with the PUK and ERC, which exist nowhere else) because the
// SMTP server is down. Run, on every replica, delivers queued messages
// through the next Mailer, one replica per message (a lease in the
// store), retrying with exponential backoff until the message is
// delivered or too old; a delivered or abandoned message loses its
// content.
package mailqueue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/enroll"
	"github.com/sigillo/sigillo/store"
)

// Store is the queue's persistence; *store.Store implements it.
type Store interface {
	EnqueueMail(ctx context.Context, m store.QueuedMail) error
	ClaimMail(ctx context.Context, now time.Time, lease time.Duration) (*store.QueuedMail, error)
	MailSent(ctx context.Context, id string, now time.Time) error
	MailFailed(ctx context.Context, id, reason string, next time.Time, giveUp bool, now time.Time) error
	MailQueueDepth(ctx context.Context) (int, error)
}

// Config tunes delivery. Zero values take the defaults.
type Config struct {
	// Poll is how often an idle replica looks for due messages (2 s).
	Poll time.Duration
	// Lease bounds one delivery attempt; after it another replica may
	// take the message (2 min).
	Lease time.Duration
	// MinBackoff and MaxBackoff bound the wait before a retry, which
	// doubles with each failure (10 s, 30 min).
	MinBackoff, MaxBackoff time.Duration
	// MaxAge gives up a message not delivered within it (72 h).
	MaxAge time.Duration
}

// Queue is an enroll.Mailer that queues, and the worker that delivers.
type Queue struct {
	st      Store
	next    enroll.Mailer
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	wake    chan struct{}
	results *prometheus.CounterVec
	reg     prometheus.Registerer
}

var _ enroll.Mailer = (*Queue)(nil)

// Option configures a Queue.
type Option func(*Queue)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(q *Queue) { q.log = l } }

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(q *Queue) { q.now = now } }

// WithRegisterer registers the queue's metrics on reg.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(q *Queue) { q.reg = reg }
}

// New returns a queue that delivers through next.
func New(st Store, next enroll.Mailer, cfg Config, opts ...Option) (*Queue, error) {
	if st == nil || next == nil {
		return nil, errors.New("mailqueue: a store and a mailer are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Poll, 2*time.Second)
	def(&cfg.Lease, 2*time.Minute)
	def(&cfg.MinBackoff, 10*time.Second)
	def(&cfg.MaxBackoff, 30*time.Minute)
	def(&cfg.MaxAge, 72*time.Hour)
	q := &Queue{st: st, next: next, cfg: cfg, log: slog.New(slog.DiscardHandler), now: time.Now, wake: make(chan struct{}, 1),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sigillo_mail_deliveries_total",
			Help: "Outgoing e-mail delivery attempts by outcome: sent, retry (failed, tried again later), given_up (failed for longer than the queue's max age)."},
			[]string{"outcome"})}
	for _, o := range opts {
		o(q)
	}
	if q.reg != nil {
		depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sigillo_mail_queue_depth",
			Help: "Outgoing e-mail waiting for delivery, read from the store at scrape time (shared by all replicas: aggregate with max)."},
			func() float64 {
				n, err := st.MailQueueDepth(context.Background())
				if err != nil {
					return -1
				}
				return float64(n)
			})
		for _, c := range []prometheus.Collector{q.results, depth} {
			if err := q.reg.Register(c); err != nil {
				return nil, fmt.Errorf("mailqueue: metrics: %w", err)
			}
		}
	}
	for _, o := range []string{"sent", "retry", "given_up"} {
		q.results.WithLabelValues(o)
	}
	return q, nil
}

// Send queues m; it is delivered by Run, on this or another replica.
func (q *Queue) Send(ctx context.Context, m enroll.Mail) error {
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	err := q.st.EnqueueMail(ctx, store.QueuedMail{ID: hex.EncodeToString(id), To: m.To, Subject: m.Subject, Body: m.Body,
		AttachmentName: m.AttachmentName, Attachment: m.Attachment, CreatedAt: q.now()})
	if err != nil {
		return fmt.Errorf("mailqueue: %w", err)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run delivers queued messages until ctx ends.
func (q *Queue) Run(ctx context.Context) {
	t := time.NewTicker(q.cfg.Poll)
	defer t.Stop()
	for {
		q.Drain(ctx)
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-t.C:
		}
	}
}

// Drain delivers every message that is due now, one after another.
func (q *Queue) Drain(ctx context.Context) {
	for ctx.Err() == nil {
		m, err := q.st.ClaimMail(ctx, q.now(), q.cfg.Lease)
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err != nil {
			q.log.Warn("mail queue: claim", "error", err)
			return
		}
		q.deliver(ctx, m)
	}
}

func (q *Queue) deliver(ctx context.Context, m *store.QueuedMail) {
	sctx, cancel := context.WithTimeout(ctx, q.cfg.Lease)
	err := q.next.Send(sctx, enroll.Mail{To: m.To, Subject: m.Subject, Body: m.Body, AttachmentName: m.AttachmentName, Attachment: m.Attachment})
	cancel()
	now := q.now()
	// The outcome is written even if ctx ended meanwhile (shutdown): a
	// delivered message must not be sent again by another replica.
	wctx := context.WithoutCancel(ctx)
	if err == nil {
		if err := q.st.MailSent(wctx, m.ID, now); err != nil {
			q.log.Error("mail queue: delivered but not marked (it may be sent twice)", "mail", m.ID, "error", err)
		}
		q.results.WithLabelValues("sent").Inc()
		return
	}
	giveUp := now.Sub(m.CreatedAt) >= q.cfg.MaxAge
	next := now.Add(q.backoff(m.Attempts))
	if err := q.st.MailFailed(wctx, m.ID, err.Error(), next, giveUp, now); err != nil {
		q.log.Error("mail queue: failure not recorded", "mail", m.ID, "error", err)
	}
	if giveUp {
		q.results.WithLabelValues("given_up").Inc()
		q.log.Error("mail queue: gave up", "mail", m.ID, "to", m.To, "subject", m.Subject, "attempts", m.Attempts+1, "error", err)
		return
	}
	q.results.WithLabelValues("retry").Inc()
	q.log.Warn("mail queue: delivery failed, will retry", "mail", m.ID, "to", m.To, "attempts", m.Attempts+1, "next", next, "error", err)
}

// backoff is the wait after the attempts-th failure (0-based).
func (q *Queue) backoff(attempts int) time.Duration {
	d := q.cfg.MinBackoff
	for range attempts {
		if d >= q.cfg.MaxBackoff/2 {
			return q.cfg.MaxBackoff
		}
		d *= 2
	}
	return min(d, q.cfg.MaxBackoff)
}
