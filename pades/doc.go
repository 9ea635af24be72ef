// Package pades signs PDF documents as PAdES baseline signatures (ETSI EN
// 319 142-1 B-B, B-T, B-LT, B-LTA) with keys it never sees: it takes a
// crypto.Signer (an HSM key behind sam) or splits the work in two calls
// (Prepare, then Embed) so the hash can be signed elsewhere (CSC signHash).
//
// Invariants:
//   - the input is never modified: every change is an incremental update
//     appended after the original bytes, so earlier signatures stay valid;
//   - the signature dictionary is /SubFilter /ETSI.CAdES.detached with /M,
//     and the CMS carries exactly the PAdES signed attributes (package cms);
//   - every existing AcroForm field, /DA and /DR survives;
//   - the /Contents reservation is computed from the certificates, the key
//     size and the time-stamp budget; if a CMS would not fit, the call
//     fails before anything is written or patched;
//   - every produced PDF is re-read and verified before it is returned
//     (ByteRange covers the file except /Contents, CMS verifies, attributes
//     are exactly the PAdES ones);
//   - inputs are streamed: a large PDF is read a few times, never held in
//     memory.
//
// PDF parsing uses github.com/digitorus/pdf; writing is ours.
package pades
