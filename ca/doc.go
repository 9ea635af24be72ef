// Package ca is sigillo's certificate authority: a root and an issuing CA
// whose keys live in the HSM, the end-entity certificates it issues for
// credential keys, their lifecycle (suspend, reactivate, revoke, renew),
// CRLs, an RFC 6960 OCSP responder with a delegated signing certificate and
// an RFC 3161 time-stamping unit.
//
// It exists so that the signing path (sam, pades) can ask one place "may
// this certificate sign now?" and get an answer that every replica agrees
// on. The invariants it keeps:
//
//   - every key that signs for the CA is an HSM key reached through a
//     crypto.Signer (Keys); the package never sees key material and
//     imports neither net/http nor the hsm package;
//   - Open refuses to start when a CA signer's public key differs from the
//     public key in the stored certificate;
//   - a certificate's status is read from the store on every question,
//     never cached in memory, and changes with one conditional UPDATE
//     (valid ⇄ suspended, valid/suspended → revoked, which is final);
//   - every to-be-signed certificate and CRL is first signed with a
//     throwaway in-memory key and parsed back and checked; the HSM signs
//     only when that succeeds, and the HSM result must carry the very same
//     TBS bytes and verify against the issuer;
//   - every lifecycle change is audited and followed by a fresh CRL.
package ca
