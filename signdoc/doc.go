// Package signdoc signs whole documents on the server: the domain behind
// CSC v2 signatures/signDoc. The client sends PDFs (or digests) and gets
// back signed PDFs (or CAdES detached signatures); the key never leaves
// the HSM and is reached only through sam.
//
// It exists because the hash the HSM signs (the digest of the CMS signed
// attributes) is not what the holder can see and approve (the document).
// The holder authorizes the document digest; this package derives the
// signed-attributes digest from it and asks sam to consume the SAD by the
// authorized value while signing the derived one (sam.SignDerived).
//
// # Semantics
//
// A request carries exactly one of Documents (CSC documents[]) or Digests
// (CSC documentDigests[]); both or neither is 400.
//
//   - Documents with format "P" (PAdES): each PDF is signed as an approval
//     ("Revision") or certification ("Certification": DocMDP P=2, only on
//     a document without signatures, otherwise 400) signature, at the
//     entry's level: B-B (default), B-T (signature time-stamp from the
//     configured Timestamper), B-LT (plus a DSS with the chain's
//     certificates and revocation data from the ValidationSource) or B-LTA
//     (plus a document time-stamp covering the DSS). The signed PDFs come
//     back in input order (DocumentWithSignature[]).
//   - Documents with format "C" and Digests (format "C"): CAdES detached
//     signatures (DER CMS SignedData without content) over the document's
//     digest or each given hash, at B-B or B-T, in input order
//     (SignatureObject[]). signed_envelope_property must be Detached (the
//     default here): Attached/Parallel are 400 "Invalid parameter
//     signed_envelope_property". B-LT/B-LTA for CAdES are 400: the
//     validation data can be asked for with ReturnValidationInfo instead.
//   - Formats X and J, signed_props (extra signed attributes we would not
//     honour) and levels we do not know are 400.
//   - The envelope property default for P is Revision (approval), not the
//     Certification that CSC v2 names as default: a certification locks
//     the document for later signers, which a batch client rarely means.
//
// # What the SAD binds
//
// For a document the authorized value is H(original document bytes) with
// the entry's hash algorithm (hashAlgorithmOID, SHA-256 by default); for a
// digest entry it is the given hash. Every entry of one request must use
// the same hash algorithm (a SAD is bound to one). A SCAL 2 SAD must have
// been authorized for exactly these values, a SCAL 1 SAD just counts one
// signature per document or digest. A mismatch is 400 invalid_request
// "Hash is not authorized by the SAD", the answer signatures/signHash
// gives (CSC v2.0.0.2 drafts also mention 403 invalid_hash for signDoc;
// we keep one answer for one condition across the API).
//
// # Order of work
//
// Everything that can be refused is checked before the SAD is touched:
// Base64, sizes (Config.MaxDocumentBytes in total), levels, envelope
// properties and the signature algorithm against the key refuse the whole
// request; PDF parsing and placeholder layout (pades.Prepare) are per
// document: a document that cannot be signed (malformed, encrypted, locked
// against the requested envelope) fails alone, its slot stays empty and
// Result.Failures says why, and it spends no SAD budget (a SCAL 2 SAD
// keeps its hash). Then one sam.SignDerived call signs the other items
// (one HSM call per signature), and only then come time-stamps, DSS and
// document time-stamps. A failure there (a TSA down) fails that item: it
// was signed, so its budget is spent, as with any signature whose result
// is lost. When every item fails, SignDoc returns the first error instead
// of a Result.
//
// Documents are held in memory (they arrived in a JSON body): the total is
// bounded by MaxDocumentBytes and each prepared PDF replaces its input.
package signdoc
