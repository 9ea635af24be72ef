package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/postgres"
	"github.com/sigillo/sigillo/store/sqlite"
	"github.com/sigillo/sigillo/store/storetest"
)

func openLog(t testing.TB, st audit.Store, opts ...audit.Option) *audit.Log {
	t.Helper()
	l, err := audit.Open(context.Background(), st, opts...)
	if err != nil {
		t.Fatalf("audit.Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func event(i int) audit.Event {
	outcomes := []string{"success", "failure:invalid_pin", "success", "failure:expired"}
	actions := []string{"signature.sign", "credential.authorize", "auth.login", "pin.blocked"}
	return audit.Event{
		Actor:   fmt.Sprintf("user:%d", i%7),
		Action:  actions[i%len(actions)],
		Object:  fmt.Sprintf("credential:%d", i),
		Outcome: outcomes[i%len(outcomes)],
		Detail:  map[string]string{"hash_algo": "2.16.840.1.101.3.4.2.1", "n": fmt.Sprint(i)},
	}
}

// recordN appends n events from one goroutine.
func recordN(t testing.TB, l *audit.Log, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := l.Record(context.Background(), event(i)); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
}

func mustVerify(t *testing.T, l *audit.Log) audit.VerifyResult {
	t.Helper()
	res, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res
}

func TestRecordHashFollowsTheDocumentedEncoding(t *testing.T) {
	r := store.AuditRecord{
		Seq: 42, At: time.Date(2026, 5, 6, 7, 8, 9, 123e6, time.UTC),
		Actor: "user:é", Action: "signature.sign", Object: "", Outcome: "success",
		Detail: `{"a":"<b>"}`, PrevHash: bytes.Repeat([]byte{0xab}, 32),
	}
	// An auditor's re-implementation, written from the package comment.
	var b bytes.Buffer
	b.WriteString("sigillo.audit.v1")
	binary.Write(&b, binary.BigEndian, uint64(42))
	binary.Write(&b, binary.BigEndian, r.At.UnixMilli())
	for _, f := range [][]byte{[]byte(r.Actor), []byte(r.Action), []byte(r.Object), []byte(r.Outcome), []byte(r.Detail), r.PrevHash} {
		binary.Write(&b, binary.BigEndian, uint32(len(f)))
		b.Write(f)
	}
	want := sha256.Sum256(b.Bytes())
	if got := audit.RecordHash(r); !bytes.Equal(got, want[:]) {
		t.Fatalf("RecordHash = %x, want %x", got, want)
	}
	// Moving a byte between adjacent fields changes the hash (no ambiguity).
	r2 := r
	r2.Actor = r.Actor + "s"
	r2.Action = strings.TrimPrefix(r.Action, "s")
	if bytes.Equal(audit.RecordHash(r2), want[:]) {
		t.Fatal("shifting a byte from action to actor kept the hash")
	}
}

func TestCanonicalDetail(t *testing.T) {
	tests := []struct {
		name   string
		detail map[string]string
		want   string
	}{
		{"nil is an empty object", nil, "{}"},
		{"keys are sorted", map[string]string{"z": "1", "a": "2", "m": "3"}, `{"a":"2","m":"3","z":"1"}`},
		{"no HTML escaping", map[string]string{"k": "<a&b>"}, `{"k":"<a&b>"}`},
		{"invalid UTF-8 is replaced", map[string]string{"k": "a\xffb"}, `{"k":"a\ufffdb"}`},
		{"NUL is replaced", map[string]string{"k": "a\x00b"}, "{\"k\":\"a\uFFFDb\"}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := audit.CanonicalDetail(tt.detail)
			var v map[string]string
			if err := json.Unmarshal([]byte(got), &v); err != nil {
				t.Fatalf("not JSON: %q", got)
			}
			want := tt.want
			if strings.Contains(want, `\ufffd`) {
				want = strings.ReplaceAll(want, `\ufffd`, "\uFFFD")
			}
			if got != want {
				t.Fatalf("CanonicalDetail = %q, want %q", got, want)
			}
		})
	}
}

func TestChainVerifiesAfterConcurrentMixedWorkload(t *testing.T) {
	st := storetest.NewSQLite(t)
	l := openLog(t, st)
	const goroutines, each = 16, 40
	ctx, cancel := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	// Readers run beside the writers: verify and export must not disturb
	// appends nor report a break on a chain that is growing.
	readers.Add(2)
	go func() {
		defer readers.Done()
		for ctx.Err() == nil {
			res, err := l.Verify(context.Background())
			if err != nil || !res.Intact() {
				t.Errorf("Verify during appends: %+v, %v", res.Broken, err)
				return
			}
		}
	}()
	go func() {
		defer readers.Done()
		for ctx.Err() == nil {
			if err := l.Export(context.Background(), time.Time{}, &bytes.Buffer{}); err != nil {
				t.Errorf("Export during appends: %v", err)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				e := event(i)
				e.Actor = fmt.Sprintf("worker:%d", g)
				if err := l.Record(context.Background(), e); err != nil {
					t.Errorf("worker %d Record %d: %v", g, i, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	cancel()
	readers.Wait()

	res := mustVerify(t, l)
	if !res.Intact() || res.Records != goroutines*each || res.HeadSeq != goroutines*each {
		t.Fatalf("Verify = %+v (broken %v), want %d intact records", res, res.Broken, goroutines*each)
	}
	// Every worker's records are all there.
	var out bytes.Buffer
	if err := l.Export(context.Background(), time.Time{}, &out); err != nil {
		t.Fatal(err)
	}
	perWorker := map[string]int{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r audit.ExportedRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		perWorker[r.Actor]++
	}
	for g := 0; g < goroutines; g++ {
		if n := perWorker[fmt.Sprintf("worker:%d", g)]; n != each {
			t.Errorf("worker %d has %d records, want %d", g, n, each)
		}
	}
}

func TestReplicasSharingADatabaseKeepOneChain(t *testing.T) {
	type replicas func(t *testing.T) (*store.Store, *store.Store)
	tests := []struct {
		name string
		open replicas
	}{
		{"sqlite", func(t *testing.T) (*store.Store, *store.Store) {
			path := filepath.Join(t.TempDir(), "shared.db")
			return openSQLite(t, path), openSQLite(t, path)
		}},
		{"postgres", func(t *testing.T) (*store.Store, *store.Store) {
			url := storetest.PostgresURL(t)
			return openPostgres(t, url), openPostgres(t, url)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.open(t)
			logs := []*audit.Log{openLog(t, a), openLog(t, b)}
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					recordN(t, logs[g%2], 25)
				}(g)
			}
			wg.Wait()
			for i, l := range logs {
				res := mustVerify(t, l)
				if !res.Intact() || res.Records != 200 {
					t.Fatalf("replica %d: Verify = %d records, broken %v; want 200 intact", i, res.Records, res.Broken)
				}
			}
		})
	}
}

func openSQLite(t *testing.T, path string) *store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T, url string) *store.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dropAppendOnly removes the schema's guards, as an attacker with write
// access to the database file would.
func dropAppendOnly(t *testing.T, st *store.Store) {
	t.Helper()
	for _, q := range []string{"DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete",
		"DROP TRIGGER audit_checkpoints_no_update", "DROP TRIGGER audit_checkpoints_no_delete"} {
		if _, err := st.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func record(t *testing.T, st *store.Store, seq int64) store.AuditRecord {
	t.Helper()
	recs, err := st.AuditRecords(context.Background(), store.AuditQuery{AfterSeq: seq - 1, Limit: 1})
	if err != nil || len(recs) != 1 || recs[0].Seq != seq {
		t.Fatalf("read record %d: %v", seq, err)
	}
	return recs[0]
}

func TestVerifyFindsTheFirstTamperedRecord(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, st *store.Store)
		seq     int64
		problem audit.Problem
	}{
		{"actor edited", func(t *testing.T, st *store.Store) {
			mustExec(t, st, "UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 7")
		}, 7, audit.HashMismatch},
		{"outcome edited", func(t *testing.T, st *store.Store) {
			mustExec(t, st, "UPDATE audit_log SET outcome = 'success' WHERE seq = 4")
		}, 4, audit.HashMismatch},
		{"time edited", func(t *testing.T, st *store.Store) {
			mustExec(t, st, "UPDATE audit_log SET at = at + 1 WHERE seq = 1")
		}, 1, audit.HashMismatch},
		{"hash flipped", func(t *testing.T, st *store.Store) {
			mustExec(t, st, "UPDATE audit_log SET hash = ? WHERE seq = 9", bytes.Repeat([]byte{1}, 32))
		}, 9, audit.HashMismatch},
		{"row deleted", func(t *testing.T, st *store.Store) {
			mustExec(t, st, "DELETE FROM audit_log WHERE seq = 5")
		}, 5, audit.MissingSequence},
		{"first row deleted", func(t *testing.T, st *store.Store) {
			mustExec(t, st, "DELETE FROM audit_log WHERE seq = 1")
		}, 1, audit.MissingSequence},
		{"edited and re-hashed to match", func(t *testing.T, st *store.Store) {
			r := record(t, st, 6)
			r.Actor = "user:mallory"
			mustExec(t, st, "UPDATE audit_log SET actor = ?, hash = ? WHERE seq = 6", r.Actor, audit.RecordHash(r))
		}, 7, audit.PrevHashMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := storetest.NewSQLite(t)
			l := openLog(t, st)
			recordN(t, l, 12)
			if res := mustVerify(t, l); !res.Intact() {
				t.Fatalf("fresh chain broken: %v", res.Broken)
			}
			dropAppendOnly(t, st)
			tt.tamper(t, st)
			res := mustVerify(t, l)
			if res.Broken == nil {
				t.Fatal("Verify found the tampered chain intact")
			}
			if res.Broken.Seq != tt.seq || res.Broken.Problem != tt.problem {
				t.Fatalf("Verify broke at %v, want sequence %d: %s", res.Broken, tt.seq, tt.problem)
			}
			if res.Records != tt.seq-1 {
				t.Fatalf("Verify checked %d records before the break, want %d", res.Records, tt.seq-1)
			}
		})
	}
}

func mustExec(t *testing.T, st *store.Store, q string, args ...any) {
	t.Helper()
	if _, err := st.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func countRows(t *testing.T, st *store.Store) int {
	t.Helper()
	var n int
	if err := st.QueryRow(context.Background(), "SELECT COUNT(*) FROM audit_log").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// readOnly makes audit_log refuse inserts with a trigger that raises, and
// returns the statement that lifts it.
func readOnly(t *testing.T, st *store.Store) (lift string) {
	t.Helper()
	if st.Dialect() == store.Postgres {
		mustExec(t, st, `CREATE FUNCTION audit_test_read_only() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'read-only'; END $$;
			CREATE TRIGGER audit_log_read_only BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_test_read_only()`)
		return "DROP TRIGGER audit_log_read_only ON audit_log"
	}
	mustExec(t, st, "CREATE TRIGGER audit_log_read_only BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'read-only'); END")
	return "DROP TRIGGER audit_log_read_only"
}

func TestRecordFailsClosed(t *testing.T) {
	// Each backend gives two stores on one database: the log's, which the
	// test breaks, and an observer's that counts what was appended.
	backends := []struct {
		name string
		open func(t *testing.T) (*store.Store, *store.Store)
	}{
		{"sqlite", func(t *testing.T) (*store.Store, *store.Store) {
			path := filepath.Join(t.TempDir(), "sigillo.db")
			return openSQLite(t, path), openSQLite(t, path)
		}},
		{"postgres", func(t *testing.T) (*store.Store, *store.Store) {
			url := storetest.PostgresURL(t)
			return openPostgres(t, url), openPostgres(t, url)
		}},
	}
	failures := []struct {
		name string
		// fail breaks the log; it returns a repair func when the log should
		// recover afterwards.
		fail func(t *testing.T, st *store.Store, l *audit.Log) (repair func())
	}{
		{"table refuses inserts", func(t *testing.T, st *store.Store, _ *audit.Log) func() {
			lift := readOnly(t, st)
			return func() { mustExec(t, st, lift) }
		}},
		{"database closed", func(t *testing.T, st *store.Store, _ *audit.Log) func() {
			st.Close()
			return nil
		}},
		{"log closed", func(t *testing.T, _ *store.Store, l *audit.Log) func() {
			l.Close()
			return nil
		}},
	}
	for _, b := range backends {
		for _, f := range failures {
			t.Run(b.name+"/"+f.name, func(t *testing.T) {
				st, observer := b.open(t)
				reg := prometheus.NewRegistry()
				l := openLog(t, st, audit.WithRegisterer(reg))
				recordN(t, l, 3)
				repair := f.fail(t, st, l)
				err := l.Record(context.Background(), event(99))
				if err == nil {
					t.Fatal("Record succeeded on a log that cannot be written")
				}
				if errs.KindOf(err) != errs.Unavailable {
					t.Fatalf("Record error kind %v (%v), want Unavailable", errs.KindOf(err), err)
				}
				if got := counterValue(t, reg, "sigillo_audit_record_failures_total"); got != 1 {
					t.Errorf("failures metric = %v, want 1", got)
				}
				if n := countRows(t, observer); n != 3 {
					t.Fatalf("%d rows after the failed Record, want 3", n)
				}
				if repair == nil {
					return
				}
				repair()
				recordN(t, l, 1)
				if res := mustVerify(t, l); !res.Intact() || res.Records != 4 {
					t.Fatalf("after repair: %d records, broken %v", res.Records, res.Broken)
				}
			})
		}
	}
}

// counterValue reads a counter without labels from reg (0 when absent).
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

func TestRecordCountsRecordsByOutcome(t *testing.T) {
	st := storetest.NewSQLite(t)
	reg := prometheus.NewRegistry()
	l := openLog(t, st, audit.WithRegisterer(reg))
	recordN(t, l, 8) // outcomes cycle success, failure:.., success, failure:..
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	var observed uint64
	for _, mf := range mfs {
		switch mf.GetName() {
		case "sigillo_audit_records_total":
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		case "sigillo_audit_append_duration_seconds":
			observed = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if len(got) != 2 || got["success"] != 4 || got["failure"] != 4 {
		t.Fatalf("sigillo_audit_records_total = %v, want success 4, failure 4", got)
	}
	if observed != 8 {
		t.Fatalf("append latency observed %d times, want 8", observed)
	}
}

func TestRecordRejectsAnEventWithoutAction(t *testing.T) {
	st := storetest.NewSQLite(t)
	l := openLog(t, st)
	if err := l.Record(context.Background(), audit.Event{Actor: "admin"}); err == nil {
		t.Fatal("Record accepted an event without an action")
	}
	if n := countRows(t, st); n != 0 {
		t.Fatalf("%d rows appended", n)
	}
}

func TestRecordStoresTextPostgresCanHold(t *testing.T) {
	st := storetest.NewSQLite(t)
	l := openLog(t, st)
	if err := l.Record(context.Background(), audit.Event{Actor: "ip:\x00\xff", Action: "auth.login", Outcome: "failure:bad"}); err != nil {
		t.Fatal(err)
	}
	if r := record(t, st, 1); r.Actor != "ip:\uFFFD\uFFFD" {
		t.Fatalf("stored actor %q", r.Actor)
	}
	if res := mustVerify(t, l); !res.Intact() {
		t.Fatal(res.Broken)
	}
}

func TestExportWritesVerifiableJSONLinesSince(t *testing.T) {
	st := storetest.NewSQLite(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l := openLog(t, st, audit.WithClock(clock))
	for i := 0; i < 6; i++ {
		mu.Lock()
		now = now.Add(time.Hour)
		mu.Unlock()
		if err := l.Record(context.Background(), event(i)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		since    time.Time
		firstSeq int64
		lines    int
	}{
		{"everything", time.Time{}, 1, 6},
		{"since a record's own time", time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC), 3, 4},
		{"since between records", time.Date(2026, 1, 1, 4, 30, 0, 0, time.UTC), 5, 2},
		{"since after the last", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := l.Export(context.Background(), tt.since, &out); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(&out)
			n := 0
			for sc.Scan() {
				var e audit.ExportedRecord
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatalf("line %d: %v", n, err)
				}
				if n == 0 && e.Seq != tt.firstSeq {
					t.Fatalf("first exported seq %d, want %d", e.Seq, tt.firstSeq)
				}
				// An auditor recomputes the hash from the line alone.
				at, err := time.Parse(time.RFC3339Nano, e.Time)
				if err != nil {
					t.Fatal(err)
				}
				prev, _ := hex.DecodeString(e.PrevHash)
				h := audit.RecordHash(store.AuditRecord{Seq: e.Seq, At: at, Actor: e.Actor, Action: e.Action,
					Object: e.Object, Outcome: e.Outcome, Detail: e.Detail, PrevHash: prev})
				if hex.EncodeToString(h) != e.Hash {
					t.Fatalf("seq %d: exported hash %s, recomputed %x", e.Seq, e.Hash, h)
				}
				n++
			}
			if n != tt.lines {
				t.Fatalf("%d lines, want %d", n, tt.lines)
			}
		})
	}
}

func TestOpenFailsWhenTheStoreIsDown(t *testing.T) {
	st := storetest.NewSQLite(t)
	st.Close()
	_, err := audit.Open(context.Background(), st)
	if errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("Open on a closed store: %v, want Unavailable", err)
	}
}

func TestRecordHonoursACancelledContext(t *testing.T) {
	st := storetest.NewSQLite(t)
	l := openLog(t, st)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := l.Record(ctx, event(1))
	if !errors.Is(err, context.Canceled) || errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("Record with a cancelled context: %v", err)
	}
}

// BenchmarkRecordParallel measures audited throughput with many concurrent
// callers, which is what group commit is for:
//
//	go test -run '^$' -bench BenchmarkRecord -benchtime 3s ./audit
//
// sqlite is the store as sqlite.Open configures it (WAL, synchronous=NORMAL);
// sqlite-sync-full reopens the same database with synchronous=FULL (every
// commit fsynced) to show what power-loss durability costs; postgres runs
// when SIGILLO_TEST_POSTGRES_URL is set.
func BenchmarkRecordParallel(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) audit.Store
	}{
		{"sqlite", func(b *testing.B) audit.Store { return storetest.NewSQLite(b) }},
		{"sqlite-sync-full", func(b *testing.B) audit.Store {
			path := filepath.Join(b.TempDir(), "full.db")
			s, err := sqlite.Open(context.Background(), path) // creates and migrates
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			return store.New(db, store.SQLite)
		}},
		{"postgres", func(b *testing.B) audit.Store { return storetest.NewPostgres(b) }},
	}
	for _, sc := range stores {
		b.Run(sc.name, func(b *testing.B) {
			l := openLog(b, sc.open(b))
			b.SetParallelism(32) // many concurrent signers per core, as under load
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if err := l.Record(context.Background(), event(i)); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkRecordSerial(b *testing.B) {
	st := storetest.NewSQLite(b)
	l := openLog(b, st)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.Record(context.Background(), event(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkVerify measures how fast Verify walks a chain (records/s), which
// bounds how long `sigillo audit verify` takes on a large log.
func BenchmarkVerify(b *testing.B) {
	st := storetest.NewSQLite(b)
	l := openLog(b, st)
	const n = 20000
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() { defer wg.Done(); recordN(b, l, n/50) }()
	}
	wg.Wait()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := l.Verify(context.Background())
		if err != nil || !res.Intact() || res.Records != n {
			b.Fatalf("Verify: %+v, %v", res, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func historyRows(t *testing.T, st *store.Store, credentialID string) []store.HistoryEntry {
	t.Helper()
	hs, err := st.History(context.Background(), credentialID, 100)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func TestRecordCommitsItsRowsWithIt(t *testing.T) {
	st := storetest.NewSQLite(t)
	l := openLog(t, st)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	with := func(id string) store.AuditExtras {
		return store.AuditExtras{
			History:    []store.HistoryEntry{{ID: id, At: at, UserID: "u", CredentialID: "c1", Action: "sign", HashAlgo: "SHA-256", Count: 1, Outcome: "success"}},
			Signatures: []store.SignatureRecord{{ID: id, At: at, CredentialID: "c1", UserID: "u", Format: "hash", HashAlgo: "SHA-256", Count: 1, Outcome: "success"}},
		}
	}
	e := event(0)
	e.With = with("h1")
	if err := l.Record(ctx, e); err != nil {
		t.Fatal(err)
	}
	if hs := historyRows(t, st, "c1"); len(hs) != 1 || hs[0].ID != "h1" {
		t.Fatalf("history after Record = %+v, want the row h1", hs)
	}
	if recs, n, err := st.SignatureLog(ctx, "c1", store.LogFilter{}); err != nil || n != 1 || recs[0].ID != "h1" {
		t.Fatalf("signature log after Record = %+v, %d, %v", recs, n, err)
	}

	// A row that cannot be written (its id is taken) takes the record
	// down with it, and the record's batch-mates are refused too: all or
	// nothing, never a record without its rows.
	before := mustVerify(t, l).Records
	e.With = with("h1")
	if err := l.Record(ctx, e); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("Record with a duplicate history row: %v, want Unavailable", err)
	}
	if got := mustVerify(t, l).Records; got != before {
		t.Fatalf("records after a failed Record: %d, want %d", got, before)
	}
	if hs := historyRows(t, st, "c1"); len(hs) != 1 {
		t.Fatalf("history after a failed Record has %d rows, want 1", len(hs))
	}
}

func TestConcurrentRecordsKeepTheirRows(t *testing.T) {
	st := storetest.NewSQLite(t)
	l := openLog(t, st, audit.WithMaxBatch(7))
	const goroutines, each = 12, 30
	at := time.Now().UTC()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				e := event(i)
				e.With = store.AuditExtras{History: []store.HistoryEntry{{ID: fmt.Sprintf("h-%d-%d", g, i), At: at,
					UserID: "u", CredentialID: fmt.Sprint("c", g), Action: "sign", HashAlgo: "SHA-256", Count: 1, Outcome: "success"}}}
				if err := l.Record(context.Background(), e); err != nil {
					t.Errorf("worker %d Record %d: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if res := mustVerify(t, l); !res.Intact() || res.Records != goroutines*each {
		t.Fatalf("Verify = %+v, want %d intact records", res, goroutines*each)
	}
	for g := range goroutines {
		if hs := historyRows(t, st, fmt.Sprint("c", g)); len(hs) != each {
			t.Errorf("worker %d: %d history rows, want %d", g, len(hs), each)
		}
	}
}

func TestCloseWaitsForQueuedRecordsAndRefusesNewOnes(t *testing.T) {
	st := storetest.NewSQLite(t)
	l, err := audit.Open(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok, refused sync.Map
	for i := range 40 {
		wg.Go(func() {
			if err := l.Record(context.Background(), event(i)); err != nil {
				refused.Store(i, err)
				return
			}
			ok.Store(i, true)
		})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Close returned: every record accepted before it is in the store.
	accepted := 0
	ok.Range(func(_, _ any) bool { accepted++; return true })
	head, err := st.AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	n := 0
	ok.Range(func(_, _ any) bool { n++; return true })
	if int(head.Seq) < accepted || int(head.Seq) != n {
		t.Fatalf("head %d after Close; %d calls had succeeded by then, %d in all", head.Seq, accepted, n)
	}
	if err := l.Record(context.Background(), event(99)); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("Record after Close: %v, want Unavailable", err)
	}
}

// panicStore panics in its first append, as a bug in the store would.
type panicStore struct {
	*store.Store
	panicked atomic.Bool
}

func (p *panicStore) AppendAuditWith(ctx context.Context, x store.AuditExtras, build func(store.AuditHead) ([]store.AuditRecord, error)) error {
	if p.panicked.CompareAndSwap(false, true) {
		panic("store bug")
	}
	return p.Store.AppendAuditWith(ctx, x, build)
}

// A panic while a caller leads a batch reaches that caller (the HTTP
// server recovers it) and does not wedge the log: later records commit.
func TestPanicInACommitDoesNotWedgeTheLog(t *testing.T) {
	st := &panicStore{Store: storetest.NewSQLite(t)}
	l := openLog(t, st)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not reach the leading caller")
			}
		}()
		_ = l.Record(context.Background(), event(1))
	}()
	done := make(chan error, 1)
	go func() { done <- l.Record(context.Background(), event(2)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Record after a panicked commit did not return")
	}
	if res := mustVerify(t, l); !res.Intact() || res.Records != 1 {
		t.Fatalf("Verify = %+v, want 1 intact record", res)
	}
}

// gateStore holds every append until release is closed.
type gateStore struct {
	*store.Store
	entered chan struct{}
	release chan struct{}
}

func (g *gateStore) AppendAuditWith(ctx context.Context, x store.AuditExtras, build func(store.AuditHead) ([]store.AuditRecord, error)) error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.release
	return g.Store.AppendAuditWith(ctx, x, build)
}

// A caller queued behind a slow commit may give up when its context ends
// (a client gone, a deadline): it gets Unavailable at once, its record is
// not written, and the callers around it are not disturbed.
func TestQueuedCallerCanGiveUp(t *testing.T) {
	st := &gateStore{Store: storetest.NewSQLite(t), entered: make(chan struct{}, 1), release: make(chan struct{})}
	l := openLog(t, st)
	leader := make(chan error, 1)
	go func() { leader <- l.Record(context.Background(), event(1)) }()
	<-st.entered // the leader is inside its commit

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- l.Record(ctx, event(2)) }()
	after := make(chan error, 1)
	time.Sleep(20 * time.Millisecond) // queue event 2 before event 3
	go func() { after <- l.Record(context.Background(), event(3)) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-gaveUp:
		if errs.KindOf(err) != errs.Unavailable || !errors.Is(err, context.Canceled) {
			t.Fatalf("the caller that gave up: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a queued caller could not give up while the commit was stuck")
	}
	close(st.release)
	for _, ch := range []chan error{leader, after} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	res := mustVerify(t, l)
	if !res.Intact() || res.Records != 2 {
		t.Fatalf("Verify = %+v, want the 2 records of the callers that stayed", res)
	}
}
