// Package hsm is sigillo's key manager over a PKCS#11 token (a real HSM, or
// SoftHSM2 in development and tests).
//
// It exists so that the rest of sigillo never sees PKCS#11: other packages
// get a crypto.Signer for a key id and sign digests with it. Only this
// package imports crypto11 and miekg/pkcs11.
//
// Invariants:
//   - Keys are generated inside the token and never leave it: private keys
//     are CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE, and may
//     only sign (no decrypt, unwrap or derive).
//   - A key is addressed by a stable id (CKA_ID = CKA_LABEL = the id bytes),
//     never by an object or session handle: handles die with the library's
//     state, ids do not.
//   - Signers are cached per id; the cache holds the object handle together
//     with the connection generation it belongs to, so a reconnect makes every
//     cached signer re-resolve its key by id on its next use.
//   - When the token goes away (library finalized, session handles invalid,
//     network HSM down) the Manager drops its crypto11 context, re-opens the
//     library and logs in again, once for all concurrent callers, and retries
//     the failed operation once. While the token stays away every call fails
//     fast with ErrUnavailable; the process never needs a restart.
//
// PKCS#11 libraries are process-wide singletons (C_Initialize/C_Finalize act
// on the whole process), and crypto11 shares one library handle per module
// path between its contexts. This package therefore keeps one record per
// module path (see module.go) that serialises opening, closing and
// re-initialising the library across all Managers of the process.
package hsm
