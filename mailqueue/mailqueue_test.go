package mailqueue

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sigillo/sigillo/enroll"
	"github.com/sigillo/sigillo/enroll/smtpmail"
	"github.com/sigillo/sigillo/internal/smtptest"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/storetest"
)

// count reads a counter.
func count(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// relay returns an SMTP sender to a loopback relay on port (up or not).
func relay(t *testing.T, port int) enroll.Mailer {
	t.Helper()
	s, err := smtpmail.New(smtpmail.Config{URL: "smtp://127.0.0.1:" + strconv.Itoa(port) + "?tls=none", From: "noreply@sigillo.test",
		Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newQueue(t *testing.T, st *store.Store, next enroll.Mailer, c *clock, reg prometheus.Registerer) *Queue {
	t.Helper()
	q, err := New(st, next, Config{MinBackoff: 10 * time.Second, MaxBackoff: time.Minute, MaxAge: time.Hour},
		WithClock(c.now), WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

var envelope = enroll.Mail{To: "maria.rossi@example.test", Subject: "Your signature envelope E1", Body: "See the attachment.\n",
	AttachmentName: "envelope-E1.pdf", Attachment: bytes.Repeat([]byte("%PDF encrypted "), 400)}

// TestDeliversWhenTheServerComesBack: with the SMTP server down, Send
// still succeeds (the mail is queued); delivery fails and is retried only
// when due; once the server is up the mail arrives intact, and the queue
// is empty.
func TestDeliversWhenTheServerComesBack(t *testing.T) {
	st := storetest.NewSQLite(t)
	port := smtptest.FreePort(t)
	c := &clock{t: time.Now()}
	reg := prometheus.NewRegistry()
	q := newQueue(t, st, relay(t, port), c, reg)
	ctx := context.Background()
	if err := q.Send(ctx, envelope); err != nil {
		t.Fatalf("send with the server down: %v", err)
	}
	q.Drain(ctx)
	if got := count(q.results.WithLabelValues("retry")); got != 1 {
		t.Fatalf("retries after the first attempt: %v", got)
	}
	q.Drain(ctx) // not due yet
	if got := count(q.results.WithLabelValues("retry")); got != 1 {
		t.Fatalf("a retry before it was due: %v retries", got)
	}
	if n, _ := st.MailQueueDepth(ctx); n != 1 {
		t.Fatalf("depth %d", n)
	}

	srv := smtptest.StartAt(t, port, smtptest.Plain, "")
	c.add(10 * time.Second)
	q.Drain(ctx)
	if got := count(q.results.WithLabelValues("sent")); got != 1 {
		t.Fatalf("sent: %v", got)
	}
	msgs := srv.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages at the server", len(msgs))
	}
	_, params, err := mime.ParseMediaType(msgs[0].Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msgs[0].Body, params["boundary"])
	if _, err := mr.NextPart(); err != nil {
		t.Fatal(err)
	}
	att, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(att)
	got, err := base64.StdEncoding.DecodeString(string(bytes.ReplaceAll(raw, []byte("\r\n"), nil)))
	if err != nil || att.FileName() != envelope.AttachmentName || !bytes.Equal(got, envelope.Attachment) {
		t.Errorf("attachment %q: %d bytes back, %d sent, %v", att.FileName(), len(got), len(envelope.Attachment), err)
	}
	if n, _ := st.MailQueueDepth(ctx); n != 0 {
		t.Fatalf("depth after delivery: %d", n)
	}
	if got := count(q.results.WithLabelValues("sent")) + count(q.results.WithLabelValues("retry")); got != 2 {
		t.Fatalf("attempts counted: %v", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, mf := range mfs {
		names[mf.GetName()] = len(mf.GetMetric())
	}
	if names["sigillo_mail_deliveries_total"] != 3 || names["sigillo_mail_queue_depth"] != 1 {
		t.Fatalf("metrics registered: %v", names)
	}
}

// TestReplicasDeliverEachMailOnce: two queues on one store (two replicas)
// draining at the same time deliver every mail exactly once.
func TestReplicasDeliverEachMailOnce(t *testing.T) {
	st := storetest.NewSQLite(t)
	srv := smtptest.Start(t, smtptest.Plain, "")
	c := &clock{t: time.Now()}
	a := newQueue(t, st, relay(t, srv.Port), c, nil)
	b := newQueue(t, st, relay(t, srv.Port), c, nil)
	ctx := context.Background()
	const n = 20
	for i := range n {
		if err := a.Send(ctx, enroll.Mail{To: fmt.Sprintf("u%02d@example.test", i), Subject: "Confirm your e-mail address", Body: "link"}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { a.Drain(ctx) })
	wg.Go(func() { b.Drain(ctx) })
	wg.Wait()
	msgs := srv.Messages(t)
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.Header.Get("To")]++
	}
	if len(msgs) != n || len(seen) != n {
		t.Fatalf("%d messages for %d recipients, want %d each once", len(msgs), len(seen), n)
	}
	if sent := count(a.results.WithLabelValues("sent")) + count(b.results.WithLabelValues("sent")); sent != n {
		t.Fatalf("sent counted %v", sent)
	}
}

// TestGivesUpAfterMaxAge: a mail that could not be delivered for longer
// than MaxAge is abandoned: counted, out of the queue, content cleared.
func TestGivesUpAfterMaxAge(t *testing.T) {
	st := storetest.NewSQLite(t)
	c := &clock{t: time.Now()}
	q := newQueue(t, st, relay(t, smtptest.FreePort(t)), c, nil)
	ctx := context.Background()
	if err := q.Send(ctx, envelope); err != nil {
		t.Fatal(err)
	}
	q.Drain(ctx)
	c.add(2 * time.Hour)
	q.Drain(ctx)
	if got := count(q.results.WithLabelValues("given_up")); got != 1 {
		t.Fatalf("given up: %v", got)
	}
	if n, _ := st.MailQueueDepth(ctx); n != 0 {
		t.Fatalf("depth %d", n)
	}
	var body string
	var attLen int
	if err := st.QueryRow(ctx, `SELECT body, COALESCE(LENGTH(attachment), 0) FROM mail_queue`).Scan(&body, &attLen); err != nil {
		t.Fatal(err)
	}
	if body != "" || attLen != 0 {
		t.Fatalf("an abandoned mail keeps its content: %q, %d bytes", body, attLen)
	}
}

// TestBackoff doubles from MinBackoff and stops at MaxBackoff.
func TestBackoff(t *testing.T) {
	q := &Queue{cfg: Config{MinBackoff: 10 * time.Second, MaxBackoff: 30 * time.Minute}}
	for attempts, want := range map[int]time.Duration{0: 10 * time.Second, 1: 20 * time.Second, 5: 320 * time.Second,
		7: 1280 * time.Second, 8: 30 * time.Minute, 60: 30 * time.Minute} {
		if got := q.backoff(attempts); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempts, got, want)
		}
	}
}
