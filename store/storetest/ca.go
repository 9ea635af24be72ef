package storetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sigillo/sigillo/store"
)

func init() {
	register("ca/authorities", testCAAuthorities)
	register("ca/certificates", testCACertificates)
	register("ca/transitions_race", testCATransitionsRace)
	register("ca/renewal_supersedes_atomically", testCARenewal)
	register("ca/crl_numbers", testCACRLNumbers)
}

func caCert(serial, owner string, now time.Time) store.CertRecord {
	return store.CertRecord{Serial: serial, Issuer: "issuing", Owner: owner, Subject: "CN=" + owner,
		DER: []byte{0x30, 0x03, 0x02, 0x01, 0x01}, Status: "valid", NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(24 * time.Hour), CreatedAt: now, UpdatedAt: now}
}

func testCAAuthorities(t *testing.T, s *store.Store) {
	ctx := context.Background()
	if _, err := s.CA(ctx, "root"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing CA: %v", err)
	}
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	e := store.CAEntry{Role: "root", KeyID: "k1", CertDER: []byte{1, 2, 3}, CreatedAt: now}
	if err := s.PutCA(ctx, e, false); err != nil {
		t.Fatal(err)
	}
	// A second bootstrapping replica does not overwrite the first.
	if err := s.PutCA(ctx, store.CAEntry{Role: "root", KeyID: "k2", CertDER: []byte{9}, CreatedAt: now}, false); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second PutCA without replace: %v", err)
	}
	got, err := s.CA(ctx, "root")
	if err != nil || got.KeyID != "k1" || !bytes.Equal(got.CertDER, []byte{1, 2, 3}) || !got.CreatedAt.Equal(now) {
		t.Fatalf("CA = %+v, %v", got, err)
	}
	if err := s.PutCA(ctx, store.CAEntry{Role: "root", KeyID: "k3", CertDER: []byte{7}, CreatedAt: now}, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.CA(ctx, "root"); got.KeyID != "k3" {
		t.Fatalf("replace: %+v", got)
	}
}

func testCACertificates(t *testing.T, s *store.Store) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	if _, err := s.Cert(ctx, "abc"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing cert: %v", err)
	}
	a, b, c := caCert("0a", "cred-1", now), caCert("0b", "cred-1", now.Add(time.Second)), caCert("0c", "cred-2", now)
	c.NotAfter = now.Add(-time.Minute) // expired: never on a CRL
	for _, r := range []store.CertRecord{a, b, c} {
		if err := s.InsertCert(ctx, r, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.InsertCert(ctx, a, ""); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate serial: %v", err)
	}
	got, err := s.Cert(ctx, "0a")
	if err != nil || got.Owner != "cred-1" || got.Status != "valid" || !bytes.Equal(got.DER, a.DER) ||
		!got.NotAfter.Equal(a.NotAfter) || !got.RevokedAt.IsZero() {
		t.Fatalf("Cert = %+v, %v", got, err)
	}
	owned, err := s.CertsByOwner(ctx, "cred-1")
	if err != nil || len(owned) != 2 || owned[0].Serial != "0b" {
		t.Fatalf("CertsByOwner: %+v, %v", owned, err)
	}
	at := now.Add(time.Minute)
	cur, err := s.ChangeCert(ctx, "0a", store.CertChange{From: []string{"valid"}, Status: "suspended", Reason: "certificateHold", RevokedAt: at, At: at})
	if err != nil || cur.Status != "suspended" || !cur.RevokedAt.Equal(at) {
		t.Fatalf("suspend: %+v, %v", cur, err)
	}
	// Not from an allowed state: conflict, and the current state comes back.
	cur, err = s.ChangeCert(ctx, "0a", store.CertChange{From: []string{"valid"}, Status: "suspended", Reason: "certificateHold", At: at})
	if !errors.Is(err, store.ErrConflict) || cur.Status != "suspended" {
		t.Fatalf("suspend twice: %+v, %v", cur, err)
	}
	if _, err := s.ChangeCert(ctx, "ff", store.CertChange{From: []string{"valid"}, Status: "revoked", At: at}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown serial: %v", err)
	}
	if _, err := s.ChangeCert(ctx, "0c", store.CertChange{From: []string{"valid"}, Status: "revoked", Reason: "keyCompromise", RevokedAt: at, At: at}); err != nil {
		t.Fatal(err)
	}
	list, err := s.RevokedCerts(ctx, "issuing", now)
	if err != nil || len(list) != 1 || list[0].Serial != "0a" || list[0].Reason != "certificateHold" {
		t.Fatalf("RevokedCerts (expired one excluded): %+v, %v", list, err)
	}
	if list, _ := s.RevokedCerts(ctx, "root", now); len(list) != 0 {
		t.Fatalf("other issuer's list: %+v", list)
	}
}

// Two operators racing on one certificate: exactly one transition wins.
func testCATransitionsRace(t *testing.T, s *store.Store) {
	ctx := context.Background()
	now := time.Now()
	if err := s.InsertCert(ctx, caCert("1a", "cred", now), ""); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.ChangeCert(ctx, "1a", store.CertChange{From: []string{"valid", "suspended"}, Status: "revoked", Reason: "keyCompromise", RevokedAt: now, At: now})
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, store.ErrConflict) {
				t.Errorf("racing revoke: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d revocations won, want exactly 1", wins)
	}
}

func testCARenewal(t *testing.T, s *store.Store) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	if err := s.InsertCert(ctx, caCert("2a", "cred", now), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertCert(ctx, caCert("2b", "cred", now), "2a"); err != nil {
		t.Fatal(err)
	}
	old, _ := s.Cert(ctx, "2a")
	if old.Status != "revoked" || old.Reason != "superseded" || old.SupersededBy != "2b" {
		t.Fatalf("superseded: %+v", old)
	}
	// Renewing a revoked certificate stores nothing.
	if err := s.InsertCert(ctx, caCert("2c", "cred", now), "2a"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("renew revoked: %v", err)
	}
	if _, err := s.Cert(ctx, "2c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("failed renewal left a certificate: %v", err)
	}
}

func testCACRLNumbers(t *testing.T, s *store.Store) {
	ctx := context.Background()
	if _, err := s.CRL(ctx, "issuing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no CRL yet: %v", err)
	}
	// Concurrent replicas never get the same number.
	var wg sync.WaitGroup
	nums := make([]int64, 10)
	for i := range nums {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			n, err := s.NextCRLNumber(ctx, "issuing")
			if err != nil {
				t.Errorf("NextCRLNumber: %v", err)
			}
			nums[i] = n
		}(i)
	}
	wg.Wait()
	seen := map[int64]bool{}
	for _, n := range nums {
		if n < 1 || n > 10 || seen[n] {
			t.Fatalf("CRL numbers %v: want 1..10 once each", nums)
		}
		seen[n] = true
	}
	if _, err := s.CRL(ctx, "issuing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("numbers handed out but no CRL stored: %v", err)
	}
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	ok, err := s.PutCRL(ctx, store.CRLRecord{Issuer: "issuing", Number: 7, DER: []byte{7}, ThisUpdate: now, NextUpdate: now.Add(time.Hour)})
	if err != nil || !ok {
		t.Fatalf("PutCRL 7: %v %v", ok, err)
	}
	// A slower replica's older CRL does not replace the newer one.
	if ok, err := s.PutCRL(ctx, store.CRLRecord{Issuer: "issuing", Number: 5, DER: []byte{5}, ThisUpdate: now, NextUpdate: now}); err != nil || ok {
		t.Fatalf("PutCRL 5 after 7: %v %v", ok, err)
	}
	got, err := s.CRL(ctx, "issuing")
	if err != nil || got.Number != 7 || !bytes.Equal(got.DER, []byte{7}) || !got.NextUpdate.Equal(now.Add(time.Hour)) {
		t.Fatalf("CRL = %+v, %v", got, err)
	}
	if n, _ := s.NextCRLNumber(ctx, "issuing"); n != 11 {
		t.Fatalf("next number %d, want 11", n)
	}
}
