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
	register("jobs/usage_counted_with_sad", testUsageCountedWithSAD)
	register("jobs/usage_limit_concurrent", testUsageLimitConcurrent)
	register("jobs/accept_all_or_nothing", testJobAcceptAllOrNothing)
	register("jobs/items_finish_once_and_refund", testJobItemsFinishOnce)
	register("jobs/claim_one_owner", testJobClaimOneOwner)
	register("jobs/purge_expired", testJobPurge)
	register("jobs/signature_log_paging", testSignatureLogPaging)
	register("jobs/idempotency_keys", testIdempotencyKeys)
}

func putUnboundSAD(t *testing.T, s *store.Store, hash, user, cred string, n int) {
	t.Helper()
	if err := s.PutSAD(context.Background(), store.SADRecord{Hash: hash, UserID: user, CredentialID: cred, Remaining: n,
		ExpiresAt: t0.Add(72 * time.Hour), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
}

func sadRemaining(t *testing.T, s *store.Store, hash string) int {
	t.Helper()
	var n int
	if err := s.QueryRow(context.Background(), `SELECT remaining FROM sads WHERE hash = ?`, hash).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func digests(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 16)
	}
	return out
}

func testUsageCountedWithSAD(t *testing.T, s *store.Store) {
	ctx := context.Background()
	seedCredential(t, s, "alice", "c1")
	putUnboundSAD(t, s, "sad1", "alice", "c1", 10)
	use := store.SADUse{SADHash: "sad1", UserID: "alice", CredentialID: "c1", HashAlgo: "SHA-256", Authorized: digests(4), Now: t0}
	if err := s.ConsumeSADCounted(ctx, use); err != nil {
		t.Fatal(err)
	}
	next := use
	next.Now = t0.Add(24 * time.Hour)
	if err := s.ConsumeSADCounted(ctx, next); err != nil {
		t.Fatal(err)
	}
	// A SAD refusal moves no counter.
	over := use
	over.Authorized = digests(3)
	if err := s.ConsumeSADCounted(ctx, over); !errors.Is(err, store.ErrSADExhausted) {
		t.Fatalf("over budget: %v", err)
	}
	u, err := s.CredentialUsage(ctx, "c1", t0.Add(-48*time.Hour), t0.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if u.Total != 8 || u.Limit != 0 || len(u.Days) != 2 || u.Days[0].Count != 4 || u.Days[1].Count != 4 ||
		!u.Days[0].Day.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("usage %+v", u)
	}
	if got := sadRemaining(t, s, "sad1"); got != 2 {
		t.Fatalf("SAD remaining %d, want 2", got)
	}
	// The limit refuses a batch that would pass it, and neither the SAD
	// nor the counters move.
	if err := s.SetUsageLimit(ctx, "c1", 9, t0); err != nil {
		t.Fatal(err)
	}
	two := use
	two.Authorized = digests(2)
	var le *store.UsageLimitError
	if err := s.ConsumeSADCounted(ctx, two); !errors.As(err, &le) || !errors.Is(err, store.ErrUsageLimit) || le.Limit != 9 || le.Total != 8 {
		t.Fatalf("limit: %v", err)
	}
	if got := sadRemaining(t, s, "sad1"); got != 2 {
		t.Fatalf("SAD moved on a refused batch: %d", got)
	}
	if err := s.RefundUsage(ctx, "c1", 3, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.ConsumeSADCounted(ctx, two); err != nil {
		t.Fatalf("after refund: %v", err)
	}
	u, _ = s.CredentialUsage(ctx, "c1", t0, t0)
	if u.Total != 7 || u.Limit != 9 || len(u.Days) != 1 || u.Days[0].Count != 3 {
		t.Fatalf("usage after refund %+v", u)
	}
}

func testUsageLimitConcurrent(t *testing.T, s *store.Store) {
	ctx := context.Background()
	seedCredential(t, s, "alice", "c1")
	putUnboundSAD(t, s, "sad1", "alice", "c1", 1000)
	if err := s.SetUsageLimit(ctx, "c1", 25, t0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, limited := 0, 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.ConsumeSADCounted(ctx, store.SADUse{SADHash: "sad1", UserID: "alice", CredentialID: "c1", HashAlgo: "SHA-256",
				Authorized: digests(2), Now: t0})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrUsageLimit):
				limited++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 12 || limited != 8 {
		t.Fatalf("ok %d limited %d, want 12 and 8", ok, limited)
	}
	if got := sadRemaining(t, s, "sad1"); got != 1000-24 {
		t.Fatalf("SAD remaining %d", got)
	}
}

func newJob(id string, n int) (store.Job, []store.JobItem) {
	j := store.Job{ID: id, UserID: "alice", CredentialID: "c1", Kind: "hash", SADHash: "sad1", SignOpts: "SHA-256",
		Total: n, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	items := make([]store.JobItem, n)
	for i, d := range digests(n) {
		items[i] = store.JobItem{Index: i, Input: d, Name: fmt.Sprintf("doc-%d", i)}
	}
	return j, items
}

func testJobAcceptAllOrNothing(t *testing.T, s *store.Store) {
	ctx := context.Background()
	seedCredential(t, s, "alice", "c1")
	putUnboundSAD(t, s, "sad1", "alice", "c1", 5)
	j, items := newJob("j1", 6)
	use := store.SADUse{SADHash: "sad1", UserID: "alice", CredentialID: "c1", HashAlgo: "SHA-256", Authorized: digests(6), Now: t0}
	if err := s.AcceptJob(ctx, use, j, items); !errors.Is(err, store.ErrSADExhausted) {
		t.Fatalf("over budget: %v", err)
	}
	if _, err := s.Job(ctx, "j1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("job stored without budget: %v", err)
	}
	j, items = newJob("j1", 5)
	use.Authorized = digests(5)
	if err := s.AcceptJob(ctx, use, j, items); err != nil {
		t.Fatal(err)
	}
	got, err := s.Job(ctx, "j1")
	if err != nil || got.Status != store.JobRunning || got.Total != 5 || got.Done != 0 || got.CredentialID != "c1" {
		t.Fatalf("job %+v, %v", got, err)
	}
	if sadRemaining(t, s, "sad1") != 0 {
		t.Fatal("budget not consumed")
	}
	u, _ := s.CredentialUsage(ctx, "c1", t0, t0)
	if u.Total != 5 {
		t.Fatalf("usage %+v", u)
	}
}

func testJobItemsFinishOnce(t *testing.T, s *store.Store) {
	ctx := context.Background()
	seedCredential(t, s, "alice", "c1")
	putUnboundSAD(t, s, "sad1", "alice", "c1", 4)
	j, items := newJob("j1", 4)
	if err := s.AcceptJob(ctx, store.SADUse{SADHash: "sad1", UserID: "alice", CredentialID: "c1", HashAlgo: "SHA-256",
		Authorized: digests(4), Now: t0}, j, items); err != nil {
		t.Fatal(err)
	}
	rec := func(i int) *store.SignatureRecord {
		return &store.SignatureRecord{ID: fmt.Sprintf("r%d-%d", i, time.Now().UnixNano()), At: t0, CredentialID: "c1", UserID: "alice",
			Count: 1, Outcome: "success", JobID: "j1"}
	}
	results := []store.JobItemResult{{Index: 0, Result: []byte("s0"), Record: rec(0)}, {Index: 1, Result: []byte("s1"), Record: rec(1)},
		{Index: 2, ErrorCode: "invalid_request", ErrorMsg: "bad PDF"}}
	if n, err := s.CompleteJobItems(ctx, "j1", results); err != nil || n != 3 {
		t.Fatalf("complete: %d, %v", n, err)
	}
	// A duplicate worker finishing the same items changes and logs nothing.
	dup := []store.JobItemResult{{Index: 0, Result: []byte("other"), Record: rec(0)}}
	if n, err := s.CompleteJobItems(ctx, "j1", dup); err != nil || n != 0 {
		t.Fatalf("duplicate: %d, %v", n, err)
	}
	if fin, _, err := s.FinishJob(ctx, "j1", t0); err != nil || fin {
		t.Fatalf("finished with a pending item: %v %v", fin, err)
	}
	pend, err := s.PendingJobItems(ctx, "j1", 10)
	if err != nil || len(pend) != 1 || pend[0].Index != 3 || !bytes.Equal(pend[0].Input, digests(4)[3]) {
		t.Fatalf("pending %+v, %v", pend, err)
	}
	if idx, err := s.PendingJobIndexes(ctx, "j1", []int{0, 3, 9}); err != nil || len(idx) != 1 || !idx[3] {
		t.Fatalf("pending indexes %v, %v", idx, err)
	}
	if _, err := s.CompleteJobItems(ctx, "j1", []store.JobItemResult{{Index: 3, Result: []byte("s3"), Record: rec(3)}}); err != nil {
		t.Fatal(err)
	}
	fin, failed, err := s.FinishJob(ctx, "j1", t0.Add(time.Minute))
	if err != nil || !fin || failed != 1 {
		t.Fatalf("finish: %v %d %v", fin, failed, err)
	}
	if fin, _, _ := s.FinishJob(ctx, "j1", t0.Add(time.Minute)); fin {
		t.Fatal("finished twice")
	}
	// The failed item's budget went back to the SAD and the counters.
	if got := sadRemaining(t, s, "sad1"); got != 1 {
		t.Fatalf("SAD remaining %d, want 1", got)
	}
	u, _ := s.CredentialUsage(ctx, "c1", t0, t0)
	if u.Total != 3 || u.Days[0].Count != 3 {
		t.Fatalf("usage %+v", u)
	}
	all, err := s.JobItems(ctx, "j1")
	if err != nil || len(all) != 4 || string(all[0].Result) != "s0" || all[2].State != store.ItemFailed || all[2].ErrorMsg != "bad PDF" {
		t.Fatalf("items %+v, %v", all, err)
	}
	// Finished items no longer carry their input (for signDoc, the PDF).
	for _, it := range all {
		if len(it.Input) != 0 {
			t.Fatalf("item %d (%s) keeps %d bytes of input", it.Index, it.State, len(it.Input))
		}
	}
	got, _ := s.Job(ctx, "j1")
	if got.Status != store.JobDone || got.Done != 3 || got.Failed != 1 {
		t.Fatalf("job %+v", got)
	}
	_, total, err := s.SignatureLogCounts(ctx, "c1", t0)
	if err != nil || total != 3 {
		t.Fatalf("logged %d signatures, want 3 (%v)", total, err)
	}
}

func testJobClaimOneOwner(t *testing.T, s *store.Store) {
	ctx := context.Background()
	seedCredential(t, s, "alice", "c1")
	putUnboundSAD(t, s, "sad1", "alice", "c1", 2)
	j, items := newJob("j1", 2)
	j.ResponseURI = "http://127.0.0.1:1/cb"
	if err := s.AcceptJob(ctx, store.SADUse{SADHash: "sad1", UserID: "alice", CredentialID: "c1", HashAlgo: "SHA-256",
		Authorized: digests(2), Now: t0}, j, items); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.ClaimJob(ctx, fmt.Sprintf("owner-%d", i), t0, 10*time.Second)
			if err == nil && got.ID == "j1" {
				mu.Lock()
				winners++
				mu.Unlock()
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if winners != 1 {
		t.Fatalf("%d owners claimed the job", winners)
	}
	// Once the lease ends (the owner died) another replica takes it over.
	got, err := s.ClaimJob(ctx, "late", t0.Add(11*time.Second), 10*time.Second)
	if err != nil || got.LeaseOwner != "late" {
		t.Fatalf("take over: %+v, %v", got, err)
	}
	if ok, err := s.RenewJobLease(ctx, "j1", "owner-0", t0.Add(time.Minute)); err != nil || ok {
		t.Fatalf("a former owner renewed: %v %v", ok, err)
	}
	// A finished job with a response_uri is still claimable (to notify).
	if _, err := s.CompleteJobItems(ctx, "j1", []store.JobItemResult{{Index: 0, Result: []byte{1}}, {Index: 1, Result: []byte{2}}}); err != nil {
		t.Fatal(err)
	}
	if fin, _, err := s.FinishJob(ctx, "j1", t0); err != nil || !fin {
		t.Fatal(fin, err)
	}
	if err := s.ReleaseJob(ctx, "j1", "late"); err != nil {
		t.Fatal(err)
	}
	got, err = s.ClaimJob(ctx, "n", t0.Add(12*time.Second), time.Second)
	if err != nil || got.Status != store.JobNotify {
		t.Fatalf("notify claim %+v %v", got, err)
	}
	if err := s.JobNotified(ctx, "j1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimJob(ctx, "n2", t0.Add(time.Minute), time.Second); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("done job claimed: %v", err)
	}
}

func testJobPurge(t *testing.T, s *store.Store) {
	ctx := context.Background()
	seedCredential(t, s, "alice", "c1")
	putUnboundSAD(t, s, "sad1", "alice", "c1", 3)
	j, items := newJob("j1", 3)
	if err := s.AcceptJob(ctx, store.SADUse{SADHash: "sad1", UserID: "alice", CredentialID: "c1", HashAlgo: "SHA-256",
		Authorized: digests(3), Now: t0}, j, items); err != nil {
		t.Fatal(err)
	}
	// One item signed, one failed, one never reached: the job is still
	// running when its validity period ends.
	if _, err := s.CompleteJobItems(ctx, "j1", []store.JobItemResult{
		{Index: 0, Result: []byte("s0"), Record: &store.SignatureRecord{ID: "purge-r0", At: t0, CredentialID: "c1", UserID: "alice", Count: 1, Outcome: "success", JobID: "j1"}},
		{Index: 1, ErrorCode: "invalid_request", ErrorMsg: "bad PDF"}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeJobs(ctx, t0.Add(59*time.Minute)); err != nil || n != 0 {
		t.Fatalf("purged early: %d %v", n, err)
	}
	// A replica holding the lease past the expiry keeps the job until the
	// lease lapses.
	if _, err := s.ClaimJob(ctx, "worker", t0.Add(59*time.Minute+30*time.Second), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeJobs(ctx, t0.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("purged under a live lease: %d %v", n, err)
	}
	if n, err := s.PurgeJobs(ctx, t0.Add(time.Hour+time.Minute)); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if items, err := s.JobItems(ctx, "j1"); err != nil || len(items) != 0 {
		t.Fatalf("items left: %d %v", len(items), err)
	}
	// The two unsigned items went back to the SAD and the counters: they
	// now count the one signature made.
	if got := sadRemaining(t, s, "sad1"); got != 2 {
		t.Fatalf("SAD remaining %d, want 2", got)
	}
	if u, err := s.CredentialUsage(ctx, "c1", t0, t0); err != nil || u.Total != 1 || len(u.Days) != 1 || u.Days[0].Count != 1 {
		t.Fatalf("usage %+v, %v; want 1", u, err)
	}
	// A finished job is purged without a second refund.
	putUnboundSAD(t, s, "sad2", "alice", "c1", 1)
	j2, items2 := newJob("j2", 1)
	j2.SADHash = "sad2"
	if err := s.AcceptJob(ctx, store.SADUse{SADHash: "sad2", UserID: "alice", CredentialID: "c1", HashAlgo: "SHA-256",
		Authorized: digests(1), Now: t0}, j2, items2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteJobItems(ctx, "j2", []store.JobItemResult{{Index: 0, ErrorCode: "invalid_request", ErrorMsg: "bad"}}); err != nil {
		t.Fatal(err)
	}
	if fin, failed, err := s.FinishJob(ctx, "j2", t0); err != nil || !fin || failed != 1 {
		t.Fatalf("finish j2: %v %d %v", fin, failed, err)
	}
	if n, err := s.PurgeJobs(ctx, t0.Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("purge j2: %d %v", n, err)
	}
	if got := sadRemaining(t, s, "sad2"); got != 1 {
		t.Fatalf("sad2 remaining %d, want 1 (refunded once)", got)
	}
}

func testSignatureLogPaging(t *testing.T, s *store.Store) {
	ctx := context.Background()
	var recs []store.SignatureRecord
	for i := 0; i < 450; i++ { // more than one INSERT chunk
		outcome := "success"
		if i%50 == 0 {
			outcome = "failure:hsm"
		}
		recs = append(recs, store.SignatureRecord{ID: fmt.Sprintf("r%04d", i), At: t0.Add(time.Duration(i) * time.Minute),
			CredentialID: "c1", UserID: "alice", Client: "user:alice", Document: fmt.Sprintf("%064x", i), Format: "hash",
			HashAlgo: "SHA-256", Count: 1, Outcome: outcome})
	}
	if err := s.AddSignatureRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	page, total, err := s.SignatureLog(ctx, "c1", store.LogFilter{From: t0.Add(100 * time.Minute), To: t0.Add(200 * time.Minute), Offset: 10, Limit: 20})
	if err != nil || total != 100 || len(page) != 20 || page[0].ID != "r0189" || page[19].ID != "r0170" || page[0].Document != fmt.Sprintf("%064x", 189) {
		t.Fatalf("page: total %d len %d first %+v, %v", total, len(page), page, err)
	}
	recent, all, err := s.SignatureLogCounts(ctx, "c1", t0.Add(400*time.Minute))
	if err != nil || all != 441 || recent != 49 {
		t.Fatalf("counts %d %d %v", recent, all, err)
	}
	// A batch row keeps every digest, in order, and counts as many.
	batch := digests(7)
	if err := s.AddSignatureRecords(ctx, []store.SignatureRecord{{ID: "batch", At: t0.Add(24 * time.Hour), CredentialID: "c1",
		UserID: "alice", Format: "hash", HashAlgo: "SHA-256", Count: 7, Digests: batch, Outcome: "success"}}); err != nil {
		t.Fatal(err)
	}
	page, _, err = s.SignatureLog(ctx, "c1", store.LogFilter{Limit: 1})
	if err != nil || len(page) != 1 || page[0].Count != 7 || len(page[0].Digests) != 7 || !bytes.Equal(page[0].Digests[6], batch[6]) {
		t.Fatalf("batch row %+v, %v", page, err)
	}
	if _, all, _ = s.SignatureLogCounts(ctx, "c1", t0); all != 448 {
		t.Fatalf("total %d after a batch of 7", all)
	}
}

func testIdempotencyKeys(t *testing.T, s *store.Store) {
	ctx := context.Background()
	r := store.IdempotencyRecord{UserID: "alice", Key: "k1", Route: "signHash", BodyHash: "h1", ExpiresAt: t0.Add(time.Hour), CreatedAt: t0}
	if e, err := s.BeginIdempotent(ctx, r); err != nil || e != nil {
		t.Fatalf("begin: %+v %v", e, err)
	}
	// In progress: the second caller sees status 0.
	if e, err := s.BeginIdempotent(ctx, r); err != nil || e == nil || e.Status != 0 || e.BodyHash != "h1" {
		t.Fatalf("in progress: %+v %v", e, err)
	}
	// Another user's same key is another key.
	bob := r
	bob.UserID = "bob"
	if e, err := s.BeginIdempotent(ctx, bob); err != nil || e != nil {
		t.Fatalf("bob: %+v %v", e, err)
	}
	if err := s.FinishIdempotent(ctx, "alice", "k1", 200, []byte(`{"signatures":[]}`)); err != nil {
		t.Fatal(err)
	}
	e, err := s.BeginIdempotent(ctx, r)
	if err != nil || e == nil || e.Status != 200 || string(e.Response) != `{"signatures":[]}` {
		t.Fatalf("stored: %+v %v", e, err)
	}
	// Abandoned keys (5xx) can be retried.
	if err := s.AbandonIdempotent(ctx, "bob", "k1"); err != nil {
		t.Fatal(err)
	}
	if e, err := s.BeginIdempotent(ctx, bob); err != nil || e != nil {
		t.Fatalf("after abandon: %+v %v", e, err)
	}
	// Expired keys are forgotten.
	late := r
	late.CreatedAt, late.ExpiresAt, late.BodyHash = t0.Add(2*time.Hour), t0.Add(3*time.Hour), "h2"
	if e, err := s.BeginIdempotent(ctx, late); err != nil || e != nil {
		t.Fatalf("expired key reused: %+v %v", e, err)
	}
	if n, err := s.PurgeIdempotency(ctx, t0.Add(4*time.Hour)); err != nil || n != 2 {
		t.Fatalf("purge: %d %v", n, err)
	}
}
