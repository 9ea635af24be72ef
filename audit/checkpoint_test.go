package audit_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/sigillo/sigillo/audit"
	"github.com/sigillo/sigillo/store"
	"github.com/sigillo/sigillo/store/storetest"
)

// testTSA is an RFC 3161 timestamp authority minted for one test: a root
// CA and a TSA certificate (critical timeStamping EKU) under it.
type testTSA struct {
	roots *x509.CertPool
	cert  *x509.Certificate
	key   crypto.Signer
	// asResponse returns a whole TimeStampResp instead of the token.
	asResponse bool
	// lie makes the TSA timestamp a different digest than asked.
	lie   bool
	calls atomic.Int32
}

func newTestTSA(t testing.TB) *testTSA {
	t.Helper()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sigillo test root"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	tsaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ekuTimeStamping, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	tsaTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "sigillo test TSA"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// RFC 3161 §2.3: the EKU extension must be critical.
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: ekuTimeStamping}},
	}
	tsaDER, err := x509.CreateCertificate(rand.Reader, tsaTmpl, root, tsaKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	tsaCert, _ := x509.ParseCertificate(tsaDER)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &testTSA{roots: pool, cert: tsaCert, key: tsaKey}
}

func (a *testTSA) Timestamp(_ context.Context, digest []byte, h crypto.Hash) ([]byte, error) {
	a.calls.Add(1)
	if a.lie {
		other := sha256.Sum256(digest)
		digest = other[:]
	}
	ts := timestamp.Timestamp{
		HashAlgorithm:     h,
		HashedMessage:     digest,
		Time:              time.Now(),
		Policy:            asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1},
		AddTSACertificate: true,
	}
	resp, err := ts.CreateResponseWithOpts(a.cert, a.key, crypto.SHA256)
	if err != nil || a.asResponse {
		return resp, err
	}
	parsed, err := timestamp.ParseResponse(resp)
	if err != nil {
		return nil, err
	}
	return parsed.RawToken, nil
}

func checkpoints(t *testing.T, st *store.Store) []store.AuditCheckpoint {
	t.Helper()
	cps, err := st.AuditCheckpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cps
}

func TestCheckpointTimestampsTheHead(t *testing.T) {
	for _, asResponse := range []bool{false, true} {
		name := map[bool]string{false: "TSA returns a token", true: "TSA returns a response"}[asResponse]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.NewSQLite(t)
			tsa := newTestTSA(t)
			tsa.asResponse = asResponse
			l := openLog(t, st, audit.WithTimestamper(tsa), audit.WithTSARoots(tsa.roots))

			if c, err := l.Checkpoint(ctx); err != nil || c.Seq != 0 || tsa.calls.Load() != 0 {
				t.Fatalf("checkpoint of an empty log: %+v, %v, %d TSA calls", c, err, tsa.calls.Load())
			}
			recordN(t, l, 5)
			c, err := l.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			head, _ := st.AuditHead(ctx)
			if c.Seq != 5 || !bytes.Equal(c.Hash, head.Hash) {
				t.Fatalf("checkpoint %d %x, head %d %x", c.Seq, c.Hash, head.Seq, head.Hash)
			}
			// The stored token is a real RFC 3161 token over the head hash.
			ts, err := timestamp.Parse(checkpoints(t, st)[0].Token)
			if err != nil {
				ts, err = timestamp.ParseResponse(checkpoints(t, st)[0].Token)
			}
			if err != nil || !bytes.Equal(ts.HashedMessage, head.Hash) {
				t.Fatalf("stored token: %v", err)
			}
			// An unchanged head costs no TSA call.
			if _, err := l.Checkpoint(ctx); err != nil || tsa.calls.Load() != 1 {
				t.Fatalf("second checkpoint: %v, %d TSA calls, want 1", err, tsa.calls.Load())
			}
			recordN(t, l, 3)
			if c, err := l.Checkpoint(ctx); err != nil || c.Seq != 8 {
				t.Fatalf("checkpoint after 3 more: %+v, %v", c, err)
			}
			res := mustVerify(t, l)
			if !res.Intact() || res.Checkpoints != 2 || res.Records != 8 {
				t.Fatalf("Verify = %+v, broken %v; want 8 records, 2 checkpoints, intact", res, res.Broken)
			}
		})
	}
}

func TestVerifyChecksCheckpoints(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, st *store.Store)
		roots   func(tsa *testTSA) *testTSA // whose roots Verify trusts
		seq     int64
		problem audit.Problem
	}{
		{"token from an untrusted TSA", nil, func(*testTSA) *testTSA { return newTestTSA(t) }, 5, audit.BadCheckpointToken},
		{"chain rewritten consistently after record 2", func(t *testing.T, st *store.Store) {
			prev := record(t, st, 2).Hash
			for seq := int64(3); seq <= 8; seq++ {
				r := record(t, st, seq)
				if seq == 3 {
					r.Outcome = "failure:rewritten"
				}
				r.PrevHash = prev
				r.Hash = audit.RecordHash(r)
				mustExec(t, st, "UPDATE audit_log SET outcome = ?, prev_hash = ?, hash = ? WHERE seq = ?", r.Outcome, r.PrevHash, r.Hash, seq)
				prev = r.Hash
			}
		}, nil, 5, audit.CheckpointMismatch},
		{"tail truncated below a checkpoint", func(t *testing.T, st *store.Store) {
			mustExec(t, st, "DELETE FROM audit_log WHERE seq > 5")
		}, nil, 6, audit.MissingSequence},
		{"token of another checkpoint", func(t *testing.T, st *store.Store) {
			mustExec(t, st, "UPDATE audit_checkpoints SET token = (SELECT token FROM audit_checkpoints WHERE seq = 5) WHERE seq = 8")
		}, nil, 8, audit.BadCheckpointToken},
		{"token garbled", func(t *testing.T, st *store.Store) {
			mustExec(t, st, "UPDATE audit_checkpoints SET token = ? WHERE seq = 5", []byte{0x30, 0x03, 1, 2, 3})
		}, nil, 5, audit.BadCheckpointToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.NewSQLite(t)
			tsa := newTestTSA(t)
			trusted := tsa
			if tt.roots != nil {
				trusted = tt.roots(tsa)
			}
			l := openLog(t, st, audit.WithTimestamper(tsa), audit.WithTSARoots(trusted.roots))
			recordN(t, l, 5)
			if _, err := l.Checkpoint(ctx); err != nil && tt.roots == nil {
				t.Fatal(err)
			}
			if tt.roots != nil {
				// Checkpoint refuses the untrusted token itself; store one
				// anyway, as a forger would, for Verify to catch.
				tok, _ := tsa.Timestamp(ctx, record(t, st, 5).Hash, crypto.SHA256)
				if _, err := st.InsertAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: 5, Hash: record(t, st, 5).Hash, CreatedAt: time.Now(), Token: tok}); err != nil {
					t.Fatal(err)
				}
			}
			recordN(t, l, 3)
			if tt.roots == nil {
				if _, err := l.Checkpoint(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if tt.tamper != nil {
				dropAppendOnly(t, st)
				tt.tamper(t, st)
			}
			res := mustVerify(t, l)
			if res.Broken == nil || res.Broken.Seq != tt.seq || res.Broken.Problem != tt.problem {
				t.Fatalf("Verify broke at %v, want sequence %d: %s", res.Broken, tt.seq, tt.problem)
			}
		})
	}
}

func TestCheckpointRefusesATokenOverAnotherHash(t *testing.T) {
	st := storetest.NewSQLite(t)
	tsa := newTestTSA(t)
	tsa.lie = true
	l := openLog(t, st, audit.WithTimestamper(tsa))
	recordN(t, l, 2)
	if _, err := l.Checkpoint(context.Background()); err == nil {
		t.Fatal("Checkpoint stored a token over the wrong hash")
	}
	if cps := checkpoints(t, st); len(cps) != 0 {
		t.Fatalf("%d checkpoints stored", len(cps))
	}
}

func TestRunCheckpointsTimestampsUntilCancelled(t *testing.T) {
	st := storetest.NewSQLite(t)
	tsa := newTestTSA(t)
	l := openLog(t, st, audit.WithTimestamper(tsa))
	recordN(t, l, 3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.RunCheckpoints(ctx, 5*time.Millisecond) }()
	deadline := time.Now().Add(20 * time.Second)
	for len(checkpoints(t, st)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint taken in 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunCheckpoints: %v", err)
	}
	if cps := checkpoints(t, st); cps[0].Seq != 3 {
		t.Fatalf("checkpoint at %d, want 3", cps[0].Seq)
	}
	if err := openLog(t, st).RunCheckpoints(context.Background(), time.Second); err == nil {
		t.Fatal("RunCheckpoints without a timestamper returned nil")
	}
}
