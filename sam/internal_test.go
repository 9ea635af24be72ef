package sam

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestArgon2HashesAreSaltedAndVerify(t *testing.T) {
	p := Argon2Params{Time: 1, Memory: 256, Threads: 1}
	for _, secret := range []string{"12345678", "Corr3ct-Horse", "ABCDEFGHJKMN"} {
		h1, err := hashSecret(p, secret)
		if err != nil {
			t.Fatal(err)
		}
		h2, _ := hashSecret(p, secret)
		if h1 == h2 {
			t.Errorf("two hashes of %q are equal: no salt", secret)
		}
		if strings.Contains(h1, secret) || h1 == secret {
			t.Errorf("hash %q contains the secret", h1)
		}
		if !strings.HasPrefix(h1, "$argon2id$v=19$m=256,t=1,p=1$") {
			t.Errorf("hash %q is not a PHC argon2id string", h1)
		}
		for _, h := range []string{h1, h2} {
			if ok, err := verifySecret(h, secret); !ok || err != nil {
				t.Errorf("verify(%q) = %v, %v; want true", secret, ok, err)
			}
			if ok, _ := verifySecret(h, secret+"x"); ok {
				t.Errorf("verify accepted a wrong secret for %q", secret)
			}
		}
	}
}

func TestArgon2RejectsMalformedHashes(t *testing.T) {
	for _, h := range []string{"", "12345678", "$argon2i$v=19$m=256,t=1,p=1$c2FsdA$aGFzaA", "$argon2id$v=19$m=0,t=0,p=0$c2FsdA$aGFzaA", "$argon2id$v=19$m=256,t=1,p=1$!!$aGFzaA"} {
		if ok, err := verifySecret(h, "x"); ok || err == nil {
			t.Errorf("verifySecret(%q) = %v, %v; want error", h, ok, err)
		}
	}
}

func BenchmarkArgon2Default(b *testing.B) {
	h, err := hashSecret(Argon2Default, "12345678")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if ok, _ := verifySecret(h, "12345678"); !ok {
			b.Fatal("verify failed")
		}
	}
}

func TestMetricsSharedBetweenServicesOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if a.pinLocked != b.pinLocked || a.authorize != b.authorize || a.signed != b.signed {
		t.Fatal("the second service got its own, unregistered collectors")
	}
}

// FuzzVerifySecret feeds arbitrary stored hashes to the PHC decoder: it
// must never panic, and must accept only well-formed argon2id strings
// with sane parameters (so a corrupted row cannot make us burn memory).
func FuzzVerifySecret(f *testing.F) {
	good, _ := hashSecret(Argon2Params{Time: 1, Memory: 64, Threads: 1}, "12345678")
	f.Add(good, "12345678")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "x")
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdA$aGFzaA", "x")
	f.Fuzz(func(t *testing.T, encoded, secret string) {
		var p Argon2Params
		parts := strings.Split(encoded, "$")
		if len(parts) == 6 {
			if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err == nil && (p.Memory > 1<<16 || p.Time > 4) {
				t.Skip("expensive parameters: rejected by the bound below, not worth running")
			}
		}
		_, _ = verifySecret(encoded, secret)
	})
}

// History and signature-log rows written in the same millisecond are
// ordered by id: seqID must sort (as a string) in the order it was called,
// also when called concurrently, and never repeat.
func TestSeqIDSortsInCallOrder(t *testing.T) {
	s := &Service{}
	prev := s.seqID("h-")
	for i := 0; i < 10000; i++ {
		id := s.seqID("h-")
		if id <= prev || len(id) != len(prev) {
			t.Fatalf("id %d: %q after %q", i, id, prev)
		}
		prev = id
	}
	// A clock that went back keeps the sequence growing.
	s.seq.Store(1 << 62)
	if id := s.seqID("h-"); id <= prev {
		t.Fatalf("after a large seq: %q <= %q", id, prev)
	}
	seen := make(chan string, 4000)
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 1000; i++ {
				seen <- s.seqID("s-")
			}
			done <- struct{}{}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	close(seen)
	uniq := map[string]bool{}
	for id := range seen {
		if uniq[id[:18]] {
			t.Fatalf("sequence part of %q repeated", id)
		}
		uniq[id[:18]] = true
	}
}
