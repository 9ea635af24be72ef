// Package cms builds and inspects the CMS SignedData (RFC 5652) that sigillo
// places in PAdES signatures and returns as CAdES detached signatures.
//
// It exists because no Go library signs through an opaque crypto.Signer with
// exactly the signed attributes ETSI EN 319 122-1 / 319 142-1 baseline
// profiles require. The invariants it keeps:
//
//   - the content is always detached (id-data, no eContent);
//   - signed attributes are exactly content-type, message-digest and ESS
//     signing-certificate-v2, never signing-time (the claimed time lives in
//     the PDF /M entry or comes from a time-stamp);
//   - signing is two steps (NewSignedAttributes → Digest → Assemble) so the
//     hash to sign can leave the process (CSC signHash, SCAL2 binding), and
//     the one-step helper SignDetached calls the signer exactly once;
//   - Assemble refuses a signature that does not verify against the signer
//     certificate, so a wrong key or a raw ECDSA encoding never produces a
//     broken signature.
//
// Inspection (Parse, Parsed.Verify) is used by the PAdES self-check and by
// tests; it only handles SignedData with a single SignerInfo.
package cms
