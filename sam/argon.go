package sam

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are argon2id cost parameters. They are encoded in each
// hash, so changing them affects new hashes only.
type Argon2Params struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// Argon2Default costs about 50 ms per hash on one core (BenchmarkArgon2Default;
// measured on the 2-core dev box: see the report of issue 4). It follows
// the RFC 9106 / OWASP shape for argon2id with one lane: m=32 MiB, t=3,
// p=1. One lane keeps the cost predictable when many authorizations run
// at once (lanes compete for the same cores anyway); HashConcurrency
// bounds memory to HashConcurrency × 32 MiB.
var Argon2Default = Argon2Params{Time: 3, Memory: 32 * 1024, Threads: 1}

// validate checks the parameters, including upper bounds so that a
// corrupted stored hash cannot make a verification take gigabytes.
func (p Argon2Params) validate() error {
	if p.Time < 1 || p.Time > 16 || p.Threads < 1 || p.Threads > 16 || p.Memory < 8*uint32(p.Threads) || p.Memory > 1<<20 {
		return fmt.Errorf("sam: bad argon2 parameters %+v", p)
	}
	return nil
}

var b64 = base64.RawStdEncoding

// hashSecret returns the PHC string of an argon2id hash of secret with a
// fresh 16-byte salt.
func hashSecret(p Argon2Params, secret string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := argon2.IDKey([]byte(secret), salt, p.Time, p.Memory, p.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

var errBadHash = errors.New("sam: malformed argon2id hash")

// verifySecret reports whether secret matches the PHC string, comparing
// in constant time.
func verifySecret(encoded, secret string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, errBadHash
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || p.validate() != nil {
		return false, errBadHash
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(secret), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
