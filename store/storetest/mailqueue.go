package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sigillo/sigillo/store"
)

func init() {
	register("mailqueue/claim_send_retry_give_up", testMailQueue)
	register("mailqueue/concurrent_claims", testMailQueueConcurrent)
}

// testMailQueue: a queued message is claimed once while leased, comes
// back after a failure only when due, loses its content once sent or given
// up, and the depth counts only what is left to deliver.
func testMailQueue(t *testing.T, s *store.Store) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_800_000_000_000)
	att := []byte("%PDF-1.7 encrypted envelope")
	for i, m := range []store.QueuedMail{
		{ID: "m1", To: "a@example.test", Subject: "first", Body: "link", CreatedAt: t0},
		{ID: "m2", To: "b@example.test", Subject: "envelope", Body: "see attached", AttachmentName: "busta.pdf", Attachment: att, CreatedAt: t0.Add(time.Second)},
	} {
		if err := s.EnqueueMail(ctx, m); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}
	if n, err := s.MailQueueDepth(ctx); err != nil || n != 2 {
		t.Fatalf("depth %d, %v", n, err)
	}
	now := t0.Add(2 * time.Second)
	m, err := s.ClaimMail(ctx, now, time.Minute)
	if err != nil || m.ID != "m1" || m.To != "a@example.test" || m.Body != "link" || m.Attempts != 0 {
		t.Fatalf("first claim: %+v, %v", m, err)
	}
	m2, err := s.ClaimMail(ctx, now, time.Minute)
	if err != nil || m2.ID != "m2" || !bytes.Equal(m2.Attachment, att) || m2.AttachmentName != "busta.pdf" {
		t.Fatalf("second claim: %+v, %v", m2, err)
	}
	if _, err := s.ClaimMail(ctx, now, time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim while both are leased: %v", err)
	}
	// m1 fails: not due before next; m2 is delivered.
	if err := s.MailFailed(ctx, "m1", "421 try later", now.Add(time.Minute), false, now); err != nil {
		t.Fatal(err)
	}
	if err := s.MailSent(ctx, "m2", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimMail(ctx, now.Add(30*time.Second), time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim before the retry is due: %v", err)
	}
	if n, _ := s.MailQueueDepth(ctx); n != 1 {
		t.Fatalf("depth after one delivery: %d", n)
	}
	m, err = s.ClaimMail(ctx, now.Add(time.Minute), time.Minute)
	if err != nil || m.ID != "m1" || m.Attempts != 1 {
		t.Fatalf("retry: %+v, %v", m, err)
	}
	// A lease that runs out gives the message to another claimer.
	later := now.Add(3 * time.Minute)
	m, err = s.ClaimMail(ctx, later, time.Minute)
	if err != nil || m.ID != "m1" {
		t.Fatalf("claim after the lease ran out: %+v, %v", m, err)
	}
	if err := s.MailFailed(ctx, "m1", "550 no such user", later, true, later); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimMail(ctx, later.Add(time.Hour), time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a given-up message was claimed again: %v", err)
	}
	if n, _ := s.MailQueueDepth(ctx); n != 0 {
		t.Fatalf("depth at the end: %d", n)
	}
	failed, err := s.MailQueueEntries(ctx, "failed", 10)
	if err != nil || len(failed) != 1 || failed[0].ID != "m1" || failed[0].LastError != "550 no such user" || failed[0].Attempts != 2 ||
		!failed[0].FailedAt.Equal(later) {
		t.Fatalf("failed entries: %+v, %v", failed, err)
	}
	sent, err := s.MailQueueEntries(ctx, "sent", 10)
	if err != nil || len(sent) != 1 || sent[0].ID != "m2" || sent[0].AttachmentName != "busta.pdf" || !sent[0].SentAt.Equal(now) {
		t.Fatalf("sent entries: %+v, %v", sent, err)
	}
	if pending, err := s.MailQueueEntries(ctx, "pending", 10); err != nil || len(pending) != 0 {
		t.Fatalf("pending entries: %+v, %v", pending, err)
	}
	var body string
	var attLen int
	for _, id := range []string{"m1", "m2"} {
		if err := s.QueryRow(ctx, `SELECT body, COALESCE(LENGTH(attachment), 0) FROM mail_queue WHERE id = ?`, id).Scan(&body, &attLen); err != nil {
			t.Fatal(err)
		}
		if body != "" || attLen != 0 {
			t.Errorf("%s keeps its content after delivery or giving up: body %q, attachment %d bytes", id, body, attLen)
		}
	}
}

// testMailQueueConcurrent: replicas claiming at once get each message
// exactly once.
func testMailQueueConcurrent(t *testing.T, s *store.Store) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_800_000_000_000)
	const n = 40
	for i := range n {
		if err := s.EnqueueMail(ctx, store.QueuedMail{ID: fmt.Sprintf("c%02d", i), To: "x@example.test", Subject: "s", Body: "b",
			CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				m, err := s.ClaimMail(ctx, t0.Add(time.Second), time.Minute)
				if errors.Is(err, store.ErrNotFound) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[m.ID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d messages claimed, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s claimed %d times", id, k)
		}
	}
}
