package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sigillo/sigillo/store"
)

func init() {
	register("audit/append_and_read", testAuditAppendAndRead)
	register("audit/concurrent_appends_never_fork", testAuditConcurrentAppends)
	register("audit/failed_append_leaves_nothing", testAuditAppendAllOrNothing)
	register("audit/rows_are_append_only", testAuditAppendOnly)
	register("audit/checkpoints", testAuditCheckpoints)
}

// chainBuild returns a build function that appends n records chained with
// a toy hash (the real one belongs to package audit): enough to see that
// every append starts from the true head.
func chainBuild(n int, at time.Time, actor string) func(store.AuditHead) ([]store.AuditRecord, error) {
	return func(head store.AuditHead) ([]store.AuditRecord, error) {
		prev := head.Hash
		if head.Seq == 0 {
			prev = make([]byte, 32)
		}
		out := make([]store.AuditRecord, n)
		for i := range out {
			seq := head.Seq + int64(i) + 1
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(seq))
			h := sha256.Sum256(append(append([]byte{}, prev...), b[:]...))
			out[i] = store.AuditRecord{Seq: seq, At: at, Actor: actor, Action: "test.append", Object: "obj",
				Outcome: "success", Detail: `{"k":"v"}`, PrevHash: prev, Hash: h[:]}
			prev = h[:]
		}
		return out, nil
	}
}

// readAll pages through the whole log.
func readAll(t *testing.T, s *store.Store) []store.AuditRecord {
	t.Helper()
	var all []store.AuditRecord
	var after int64
	for {
		page, err := s.AuditRecords(context.Background(), store.AuditQuery{AfterSeq: after, Limit: 7})
		if err != nil {
			t.Fatalf("AuditRecords: %v", err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
}

// checkChain fails unless recs are 1..n without gaps and each links to the
// previous one.
func checkChain(t *testing.T, recs []store.AuditRecord, n int) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
	prev := make([]byte, 32)
	for i, r := range recs {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d has seq %d (gap or duplicate)", i, r.Seq)
		}
		if !bytes.Equal(r.PrevHash, prev) {
			t.Fatalf("seq %d: prev hash does not link to seq %d (fork)", r.Seq, r.Seq-1)
		}
		prev = r.Hash
	}
}

func testAuditAppendAndRead(t *testing.T, s *store.Store) {
	ctx := context.Background()
	head, err := s.AuditHead(ctx)
	if err != nil || head.Seq != 0 || head.Hash != nil {
		t.Fatalf("empty head = %+v, %v", head, err)
	}
	t1 := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	t2 := t1.Add(time.Hour)
	if err := s.AppendAudit(ctx, chainBuild(2, t1, "user:a")); err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := s.AppendAudit(ctx, chainBuild(3, t2, "user:b")); err != nil {
		t.Fatalf("append: %v", err)
	}
	all := readAll(t, s)
	checkChain(t, all, 5)
	if !all[0].At.Equal(t1) || all[0].Actor != "user:a" || all[0].Detail != `{"k":"v"}` || all[4].Actor != "user:b" {
		t.Fatalf("stored values differ: %+v", all[0])
	}
	head, err = s.AuditHead(ctx)
	if err != nil || head.Seq != 5 || !bytes.Equal(head.Hash, all[4].Hash) {
		t.Fatalf("head = %+v, %v", head, err)
	}
	since, err := s.AuditRecords(ctx, store.AuditQuery{Since: t2})
	if err != nil || len(since) != 3 || since[0].Seq != 3 {
		t.Fatalf("records since t2: %d, %v", len(since), err)
	}
	first, err := s.FirstAuditSeqSince(ctx, t1.Add(time.Minute))
	if err != nil || first != 3 {
		t.Fatalf("FirstAuditSeqSince = %d, %v; want 3", first, err)
	}
	first, err = s.FirstAuditSeqSince(ctx, t2.Add(time.Minute))
	if err != nil || first != 0 {
		t.Fatalf("FirstAuditSeqSince after the end = %d, %v; want 0", first, err)
	}
}

func testAuditConcurrentAppends(t *testing.T, s *store.Store) {
	ctx := context.Background()
	const writers, appends = 8, 15
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < appends; i++ {
				if err := s.AppendAudit(ctx, chainBuild(1+i%3, time.Now(), "w")); err != nil {
					t.Errorf("writer %d append %d: %v", w, i, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	want := 0
	for i := 0; i < appends; i++ {
		want += writers * (1 + i%3)
	}
	checkChain(t, readAll(t, s), want)
}

func testAuditAppendAllOrNothing(t *testing.T, s *store.Store) {
	ctx := context.Background()
	if err := s.AppendAudit(ctx, chainBuild(1, time.Now(), "a")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	tests := []struct {
		name  string
		build func(store.AuditHead) ([]store.AuditRecord, error)
	}{
		{"build fails", func(store.AuditHead) ([]store.AuditRecord, error) { return nil, boom }},
		{"second row reuses a sequence", func(h store.AuditHead) ([]store.AuditRecord, error) {
			recs, _ := chainBuild(2, time.Now(), "b")(h)
			recs[1].Seq = recs[0].Seq
			return recs, nil
		}},
		{"row overwrites an existing sequence", func(h store.AuditHead) ([]store.AuditRecord, error) {
			recs, _ := chainBuild(1, time.Now(), "c")(store.AuditHead{})
			return recs, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.AppendAudit(ctx, tt.build); err == nil {
				t.Fatal("append succeeded")
			}
			all := readAll(t, s)
			checkChain(t, all, 1)
			if all[0].Actor != "a" {
				t.Fatalf("record 1 changed: %+v", all[0])
			}
		})
	}
}

func testAuditAppendOnly(t *testing.T, s *store.Store) {
	ctx := context.Background()
	if err := s.AppendAudit(ctx, chainBuild(2, time.Now(), "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.InsertAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 2, Hash: []byte{1}, CreatedAt: time.Now(), Token: []byte{2}}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"UPDATE audit_log SET actor = 'mallory' WHERE seq = 1",
		"DELETE FROM audit_log WHERE seq = 2",
		"UPDATE audit_checkpoints SET seq = 1",
		"DELETE FROM audit_checkpoints",
	} {
		if _, err := s.Exec(ctx, q); err == nil {
			t.Errorf("%s: succeeded on an append-only table", q)
		}
	}
	checkChain(t, readAll(t, s), 2)
}

func testAuditCheckpoints(t *testing.T, s *store.Store) {
	ctx := context.Background()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	c5 := store.AuditCheckpoint{Seq: 5, Hash: bytes.Repeat([]byte{5}, 32), CreatedAt: at, Token: []byte("token-5")}
	c2 := store.AuditCheckpoint{Seq: 2, Hash: bytes.Repeat([]byte{2}, 32), CreatedAt: at, Token: []byte("token-2")}
	for _, c := range []store.AuditCheckpoint{c5, c2} {
		if ok, err := s.InsertAuditCheckpoint(ctx, c); err != nil || !ok {
			t.Fatalf("insert checkpoint %d: %v, %v", c.Seq, ok, err)
		}
	}
	dup := c5
	dup.Token = []byte("other")
	if ok, err := s.InsertAuditCheckpoint(ctx, dup); err != nil || ok {
		t.Fatalf("duplicate checkpoint: inserted=%v, %v; want false, nil", ok, err)
	}
	got, err := s.AuditCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 5 || string(got[1].Token) != "token-5" ||
		!got[1].CreatedAt.Equal(at) || !bytes.Equal(got[0].Hash, c2.Hash) {
		t.Fatalf("checkpoints = %+v", got)
	}
}
