package csc

import (
	"sync"
	"time"
)

// keyFacts is what signHash needs to know about a credential's key to
// match signAlgo against it.
type keyFacts struct {
	algo string
	bits int
	at   time.Time
}

// keyCache remembers key facts per (user, credential) so that signHash
// does not ask sam for the whole credential (certificate status included)
// on every call; sam still checks ownership, state and the SAD on each
// signature. Entries come only from a successful Credential call by the
// same user, so the cache cannot reveal another user's credential. A key
// never changes algorithm under a credential ID; the TTL bounds the damage
// if an operator ever re-creates one.
type keyCache struct {
	mu  sync.Mutex
	m   map[string]keyFacts
	now func() time.Time
}

const (
	keyCacheTTL = 5 * time.Minute
	keyCacheMax = 10000
)

func newKeyCache(now func() time.Time) *keyCache {
	return &keyCache{m: map[string]keyFacts{}, now: now}
}

func cacheKey(userID, credentialID string) string { return userID + "\x00" + credentialID }

func (k *keyCache) get(userID, credentialID string) (keyFacts, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	f, ok := k.m[cacheKey(userID, credentialID)]
	if !ok || k.now().Sub(f.at) > keyCacheTTL {
		return keyFacts{}, false
	}
	return f, true
}

func (k *keyCache) put(userID, credentialID, algo string, bits int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.m) >= keyCacheMax {
		// Crude but bounded: forget everything rather than track ages.
		k.m = map[string]keyFacts{}
	}
	k.m[cacheKey(userID, credentialID)] = keyFacts{algo: algo, bits: bits, at: k.now()}
}
