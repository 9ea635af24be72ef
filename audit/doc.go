// Package audit keeps the append-only, hash-chained record of every
// security-relevant event: who did what to which object, and how it ended.
// Records never contain a PIN, OTP, SAD, password or document.
//
// # Why a chain
//
// The log lives in the ordinary database, so anyone who can write to the
// database could rewrite history. Each record therefore carries the hash of
// the record before it: changing, inserting or deleting a record breaks
// every link after it, and Verify names the first broken one. Periodic
// checkpoints put the head's hash under an RFC 3161 timestamp from our TSA,
// so that even rewriting the whole tail consistently is caught at the last
// checkpoint, and truncating the log below a checkpoint is too.
//
// # Invariants
//
//   - Sequences run 1, 2, 3... with no gap and no duplicate; seq is the
//     table's primary key.
//   - Appends read the head and insert seq+1 in one transaction under a
//     lock (PostgreSQL: pg_advisory_xact_lock; SQLite: the IMMEDIATE
//     transaction's write lock), so concurrent writers, in one process or
//     in several replicas, never fork the chain.
//   - Record returns only once its record is committed; if it cannot be,
//     it returns an error of kind errs.Unavailable and the caller must not
//     go on with the action (fail closed: no audit record, no signature).
//   - Rows are never updated or deleted (the schema's triggers refuse it).
//
// # Record hash (for auditors re-implementing Verify)
//
// A record is (seq, time, actor, action, object, outcome, detail,
// prev_hash), exactly as stored in the audit_log table (and as printed by
// Export). Its hash is
//
//	hash = SHA-256( "sigillo.audit.v1"   the 16 ASCII bytes, no length
//	              || u64(seq)
//	              || i64(time)           Unix milliseconds, UTC (0 for no time)
//	              || str(actor)
//	              || str(action)
//	              || str(object)
//	              || str(outcome)
//	              || str(detail)
//	              || str(prev_hash) )
//
// where u64 and i64 are 8-byte big-endian (i64 two's complement), and
// str(x) is the 4-byte big-endian length of x in bytes followed by the
// bytes of x (UTF-8 for text, raw bytes for prev_hash). The length
// prefixes make the encoding unambiguous: no two different records encode
// to the same bytes. prev_hash is 32 zero bytes for record 1 (genesis) and
// the previous record's hash otherwise.
//
// detail is the JSON object of Event.Detail in canonical form: keys sorted
// by byte order, no whitespace, strings escaped as Go's encoding/json does
// without HTML escaping; "{}" when empty. The hash covers the stored detail
// bytes verbatim, so a verifier never needs to re-encode JSON.
//
// Export writes the same fields as JSON lines: time as RFC 3339 UTC with
// milliseconds, detail as the stored JSON text (a string), prev_hash and
// hash in hex; each line therefore suffices to recompute its hash.
//
// Text fields are stored as valid UTF-8 without NUL: Record replaces
// invalid bytes and NUL with U+FFFD before hashing, because PostgreSQL TEXT
// cannot hold them and an event must not be lost to a stray byte.
//
// # Checkpoints
//
// A checkpoint is (seq, hash, token): token is an RFC 3161 TimeStampToken
// (a full TimeStampResp is accepted too) whose messageImprint is SHA-256
// with hashedMessage = the hash of record seq. Verify checks that the chain
// at seq has that hash and that the token's imprint matches it; when given
// the TSA's roots (WithTSARoots) it also checks the token's signature and
// that the signer chains to them with the timeStamping extended key usage.
package audit
