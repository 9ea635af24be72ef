package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash"
	"strings"
	"time"

	"github.com/sigillo/sigillo/store"
)

// hashDomain opens every record's hash input so that the encoding can
// change later (v2) without a v1 hash ever meaning something else.
const hashDomain = "sigillo.audit.v1"

// GenesisHash is the prev hash of record 1: 32 zero bytes.
var GenesisHash = make([]byte, sha256.Size)

// RecordHash returns the SHA-256 hash of r over the encoding documented in
// the package comment. It ignores r.Hash; Verify compares the two.
func RecordHash(r store.AuditRecord) []byte {
	h := sha256.New()
	h.Write([]byte(hashDomain))
	writeU64(h, uint64(r.Seq))
	writeU64(h, uint64(millis(r.At)))
	for _, s := range []string{r.Actor, r.Action, r.Object, r.Outcome, r.Detail} {
		writeBytes(h, []byte(s))
	}
	writeBytes(h, r.PrevHash)
	return h.Sum(nil)
}

// millis is the stored form of a time (store.Millis): the zero time is 0,
// so a record read back hashes as it was written.
func millis(t time.Time) int64 { return store.Millis(t) }

func writeU64(h hash.Hash, v uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	h.Write(b[:])
}

func writeBytes(h hash.Hash, p []byte) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(len(p)))
	h.Write(b[:])
	h.Write(p)
}

// CanonicalDetail encodes detail as the canonical JSON object stored and
// hashed with a record: sorted keys, no whitespace, no HTML escaping.
func CanonicalDetail(detail map[string]string) string {
	if len(detail) == 0 {
		return "{}"
	}
	clean := make(map[string]string, len(detail))
	for k, v := range detail {
		clean[cleanText(k)] = cleanText(v)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	// A map[string]string always encodes (map keys are sorted by
	// encoding/json); an error here would be a bug in the standard library.
	if err := enc.Encode(clean); err != nil {
		panic("audit: encode detail: " + err.Error())
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// cleanText makes s storable in both backends' TEXT columns: valid UTF-8,
// no NUL. Replacing rather than refusing keeps the event in the log.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}
