// Package csc is sigillo's Cloud Signature Consortium API: v2.0.0.2 under
// /csc/v2/ and v1.0.4.0 under /csc/v1/, served from one core.
//
// It exists to turn what real CSC clients send (with their quirks: hashes
// in Base64 or base64url, numbers as strings, aliases, unknown fields) into
// calls on the signature activation module (sam) and back, and to answer
// every client mistake with the CSC error body and a 4xx, never a 500.
//
// Invariants:
//   - Handlers decode, validate, call the Service, encode. Decoding and
//     validation are plain functions over the request bytes (no gin) so
//     they can be fuzzed; the two API versions differ only in field names
//     and response shapes, not in what is checked.
//   - Nothing is signed unless the signature algorithm the client named
//     fits the credential's key, the digests have the length of the hash
//     algorithm, and sam accepted the SAD.
//   - Another user's credential is indistinguishable from a missing one
//     (sam reports both as NotFound; httpx renders it as 400).
//
// Error codes: v1 keeps invalid_pin / invalid_otp for wrong factors in
// credentials/authorize. v2 answers invalid_authentication_data (the
// v2.0.0.2 name) with the same description ("The PIN is invalid", "The OTP
// is invalid"), so a person reading it still knows which factor was wrong.
package csc
