package signdoc

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sigillo/sigillo/cms"
	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/pades"
	"github.com/sigillo/sigillo/sam"
)

// DefaultMaxDocumentBytes bounds the documents of one request when
// Config.MaxDocumentBytes is 0 (config batch.max_document_bytes).
const DefaultMaxDocumentBytes = 200 << 20

// Signer is what signdoc needs from the signature activation module;
// *sam.Service implements it.
type Signer interface {
	Credential(ctx context.Context, p *sam.Principal, credentialID string) (*sam.CredentialInfo, error)
	SignDerived(ctx context.Context, p *sam.Principal, r sam.DerivedRequest) ([][]byte, error)
}

var _ Signer = (*sam.Service)(nil)

// Config wires the service. Timestamper is needed for B-T and above,
// Validation for B-LT and above and for the revocation part of
// ReturnValidationInfo; a request needing a missing one is refused (400)
// before anything is signed.
type Config struct {
	// MaxDocumentBytes bounds the decoded documents of one request (default
	// DefaultMaxDocumentBytes).
	MaxDocumentBytes int64
	// Timestamper: the in-process TSA (ca.Authority) or an external one
	// (cms/tsaclient).
	Timestamper cms.Timestamper
	// Validation gives OCSP responses and CRLs (ca.Authority in-process).
	Validation pades.ValidationSource
	// ExtraCertificates are offered to the DSS and validationInfo (e.g.
	// an external TSA's chain when its tokens do not carry it).
	ExtraCertificates []*x509.Certificate
	// Now is the clock for /M (nil: time.Now).
	Now func() time.Time
	// Log receives failures after signing (nil discards).
	Log *slog.Logger
}

// Service signs documents. It is safe for concurrent use.
type Service struct {
	signer Signer
	cfg    Config
}

// New returns the service.
func New(s Signer, cfg Config) (*Service, error) {
	if s == nil {
		return nil, errors.New("signdoc: Signer is required")
	}
	if cfg.MaxDocumentBytes <= 0 {
		cfg.MaxDocumentBytes = DefaultMaxDocumentBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{signer: s, cfg: cfg}, nil
}

// MaxDocumentBytes is the configured bound on a request's documents (the
// HTTP layer sizes its body limit from it).
func (s *Service) MaxDocumentBytes() int64 { return s.cfg.MaxDocumentBytes }

// Options are an entry's signature parameters.
type Options struct {
	// Format is FormatPAdES or FormatCAdES (see ParseFormat).
	Format string
	// Level is the conformance level (see ParseLevel).
	Level pades.Level
	// Envelope is the signed_envelope_property (see ParseEnvelope); empty
	// takes the format's default.
	Envelope string
	// Hash is the digest algorithm of the authorized value and of the
	// signature (hashAlgorithmOID or implied by signAlgo); 0 is SHA-256.
	Hash crypto.Hash
	// PSS selects RSASSA-PSS (salt = hash length).
	PSS bool
	// KeyType, when the client named a signAlgo, is the key family it
	// implies ("rsa" or "ec"); the credential's key must match.
	KeyType string
}

// Document is one documents[] entry.
type Document struct {
	Content []byte
	Options
}

// DigestSet is one documentDigests[] entry: one signature per hash.
type DigestSet struct {
	Hashes [][]byte
	Options
}

// Request is a signDoc call.
//
// SignDoc drops each Documents[i].Content (sets it to nil) once the
// prepared copy exists, so that a large batch is not held twice.
type Request struct {
	CredentialID, SAD    string
	Documents            []Document
	Digests              []DigestSet
	ReturnValidationInfo bool
}

// Result is what signDoc returns.
type Result struct {
	// Documents are the signed PDFs, in input order of the P documents.
	Documents [][]byte
	// Signatures are DER CMS SignedData (CAdES detached), in input order
	// of the C documents or of the digests.
	Signatures [][]byte
	// ValidationInfo is set when asked for.
	ValidationInfo *ValidationInfo
	// Failures is nil when every item was signed. Otherwise it has one
	// entry per item, in request order (documents, then each hash of each
	// documentDigests entry): nil for a signed item, the error for one
	// that failed alone, whose slot in Documents or Signatures is nil.
	// When every item fails, SignDoc returns an error instead.
	Failures []error
}

// failed records err for item i of n.
func (r *Result) failed(i, n int, err error) {
	if r.Failures == nil {
		r.Failures = make([]error, n)
	}
	r.Failures[i] = err
}

// ValidationInfo is CSC's validationInfo: DER OCSP responses, CRLs and
// certificates needed to validate the signatures (signer chain and TSA).
type ValidationInfo struct {
	OCSP, CRL, Certificates [][]byte
}

// item is one signature in flight.
type item struct {
	// failed: the item could not be prepared; it is neither authorized
	// against the SAD nor signed.
	failed     bool
	opts       Options
	pdf        *memFile        // P: the prepared file
	prep       *pades.Prepared // P
	attrs      *cms.SignedAttrs
	authorized []byte
	out        *[]byte
}

// SignDoc signs every document or digest of r with the credential, under
// the SAD, as the package documentation describes.
func (s *Service) SignDoc(ctx context.Context, p *sam.Principal, r Request) (*Result, error) {
	switch {
	case len(r.Documents) > 0 && len(r.Digests) > 0:
		return nil, errs.Invalidf("Only one of documents and documentDigests may be given")
	case len(r.Documents) == 0 && len(r.Digests) == 0:
		return nil, errs.Invalidf("Missing (or invalid type) array parameter documents or documentDigests")
	}
	if r.CredentialID == "" {
		return nil, errs.Invalidf("Missing (or invalid type) string parameter credentialID")
	}
	var total int64
	for i, d := range r.Documents {
		if len(d.Content) == 0 {
			return nil, errs.Invalidf("Invalid parameter document: documents[%d] is empty", i)
		}
		total += int64(len(d.Content))
		if total > s.cfg.MaxDocumentBytes {
			return nil, errs.Invalidf("Invalid parameter documents: more than %d bytes in total", s.cfg.MaxDocumentBytes)
		}
	}
	// Everything about the request that does not need the credential.
	authHash := crypto.Hash(0)
	checkOpts := func(o *Options, where string, docs bool) error {
		if o.Hash == 0 {
			o.Hash = crypto.SHA256
		}
		if _, err := cms.HashOID(o.Hash); err != nil {
			return errs.Invalidf("Invalid parameter hashAlgorithmOID")
		}
		if authHash == 0 {
			authHash = o.Hash
		} else if authHash != o.Hash {
			return errs.Invalidf("Invalid parameter hashAlgorithmOID: all entries of a request must use the same hash algorithm")
		}
		switch {
		case o.Format == FormatPAdES && !docs:
			return errs.Invalidf("Invalid parameter signature_format: %s: PAdES needs the document, not its digest", where)
		case o.Format != FormatPAdES && o.Format != FormatCAdES:
			return errs.Invalidf("Invalid parameter signature_format")
		case o.Level < pades.BB || o.Level > pades.BLTA:
			return errs.Invalidf("Invalid parameter conformance_level")
		case o.Format == FormatCAdES && o.Level > pades.BT:
			return errs.Invalidf("Invalid parameter conformance_level: %s: CAdES signatures are produced at B-B or B-T", where)
		case o.Level >= pades.BT && s.cfg.Timestamper == nil:
			return errs.Invalidf("Invalid parameter conformance_level: no time-stamp authority is configured")
		case o.Level >= pades.BLT && s.cfg.Validation == nil:
			return errs.Invalidf("Invalid parameter conformance_level: no validation data source is configured")
		}
		env, err := ParseEnvelope(o.Format, o.Envelope)
		if err != nil {
			return err
		}
		o.Envelope = env
		return nil
	}
	for i := range r.Documents {
		if err := checkOpts(&r.Documents[i].Options, fmt.Sprintf("documents[%d]", i), true); err != nil {
			return nil, err
		}
	}
	for i := range r.Digests {
		d := &r.Digests[i]
		if err := checkOpts(&d.Options, fmt.Sprintf("documentDigests[%d]", i), false); err != nil {
			return nil, err
		}
		if len(d.Hashes) == 0 {
			return nil, errs.Invalidf("Empty hash array")
		}
		for _, h := range d.Hashes {
			if len(h) != d.Hash.Size() {
				return nil, errs.Invalidf("Invalid digest value length")
			}
		}
	}

	ci, err := s.signer.Credential(ctx, p, r.CredentialID)
	if err != nil {
		return nil, err
	}
	chain, err := parseChain(ci.Certificates)
	if err != nil {
		return nil, err
	}
	scheme, signOpts, err := schemeFor(chain[0], r)
	if err != nil {
		return nil, err
	}

	// Output slots are allocated up front: items point into them.
	res := &Result{}
	nDocs, nSigs := 0, 0
	for _, d := range r.Documents {
		if d.Format == FormatPAdES {
			nDocs++
		} else {
			nSigs++
		}
	}
	for _, d := range r.Digests {
		nSigs += len(d.Hashes)
	}
	if nDocs > 0 {
		res.Documents = make([][]byte, nDocs)
	}
	if nSigs > 0 {
		res.Signatures = make([][]byte, nSigs)
	}
	nDocs, nSigs = 0, 0
	var items []*item
	nItems := len(r.Documents)
	for _, d := range r.Digests {
		nItems += len(d.Hashes)
	}
	for i := range r.Documents {
		d := &r.Documents[i]
		hh := d.Hash.New()
		hh.Write(d.Content)
		it := &item{opts: d.Options, authorized: hh.Sum(nil)}
		if d.Format == FormatPAdES {
			it.out = &res.Documents[nDocs]
			nDocs++
			it.pdf, it.prep, err = s.prepare(ctx, d.Content, chain, d.Options)
			d.Content = nil // the prepared file holds the bytes now
			if errs.KindOf(err) == errs.Invalid {
				// This document cannot be signed (not a PDF, locked...):
				// it fails alone, before the SAD is touched.
				res.failed(len(items), nItems, fmt.Errorf("documents[%d]: %w", i, err))
				it.failed = true
				items = append(items, it)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("documents[%d]: %w", i, err)
			}
			if it.attrs, err = cms.NewSignedAttributes(it.prep.Digest, it.prep.Hash, chain[0]); err != nil {
				return nil, errs.Wrap(errs.Internal, "Internal error", err)
			}
		} else {
			it.out = &res.Signatures[nSigs]
			nSigs++
			if it.attrs, err = cms.NewSignedAttributes(it.authorized, d.Hash, chain[0]); err != nil {
				return nil, errs.Wrap(errs.Internal, "Internal error", err)
			}
		}
		items = append(items, it)
	}
	for _, d := range r.Digests {
		for _, h := range d.Hashes {
			it := &item{opts: d.Options, authorized: h, out: &res.Signatures[nSigs]}
			nSigs++
			if it.attrs, err = cms.NewSignedAttributes(h, d.Hash, chain[0]); err != nil {
				return nil, errs.Wrap(errs.Internal, "Internal error", err)
			}
			items = append(items, it)
		}
	}
	// One SAD consumption for the items that can be signed, and one HSM
	// call per signature.
	dr := sam.DerivedRequest{CredentialID: r.CredentialID, SAD: r.SAD, AuthorizedHash: authHash, Opts: signOpts}
	var signing []*item
	var firstErr error
	for i, it := range items {
		if it.failed {
			firstErr = cmp.Or(firstErr, res.Failures[i])
			continue
		}
		signing = append(signing, it)
		dr.Items = append(dr.Items, sam.DerivedItem{Authorized: it.authorized, Digest: it.attrs.Digest()})
	}
	if len(signing) == 0 {
		return nil, firstErr
	}
	sigs, err := s.signer.SignDerived(ctx, p, dr)
	if err != nil {
		return nil, err
	}
	if len(sigs) != len(signing) {
		return nil, errs.New(errs.Internal, "", "signature count differs from item count")
	}

	delivered := 0
	for i, it := range items {
		if it.failed {
			continue
		}
		if err := s.finish(ctx, it, sigs[0], scheme, chain); err != nil {
			// Signed (the SAD budget is spent) but not deliverable, e.g.
			// the TSA is down: this item fails, the others stand.
			s.cfg.Log.Error("signDoc: signed but not delivered", "credential", r.CredentialID, "item", i, "error", err)
			err = afterSignErr(err)
			firstErr = cmp.Or(firstErr, err)
			res.failed(i, nItems, err)
			*it.out = nil
			it.pdf = nil
		} else {
			delivered++
		}
		sigs = sigs[1:]
	}
	if delivered == 0 {
		return nil, firstErr
	}
	if r.ReturnValidationInfo {
		if res.ValidationInfo, err = s.validationInfo(ctx, res, chain); err != nil {
			return nil, afterSignErr(err)
		}
	}
	return res, nil
}

// prepare lays out the signature placeholder of a PDF in memory.
func (s *Service) prepare(ctx context.Context, content []byte, chain []*x509.Certificate, o Options) (*memFile, *pades.Prepared, error) {
	po := pades.Options{Level: o.Level, Hash: o.Hash, PSS: o.PSS, Clock: s.cfg.Now}
	if o.Level >= pades.BT {
		po.Timestamper = s.cfg.Timestamper
	}
	if o.Envelope == EnvelopeCertification {
		po.DocMDP = 2
	}
	f := &memFile{}
	f.b = make([]byte, 0, len(content)+64<<10)
	prep, err := pades.Prepare(ctx, bytes.NewReader(content), int64(len(content)), f, chain, po)
	switch {
	case errors.Is(err, pades.ErrInvalidPDF):
		return nil, nil, errs.Wrap(errs.Invalid, "Invalid parameter document: not a PDF that can be signed (malformed, truncated or encrypted)", err)
	case errors.Is(err, pades.ErrNotAllowed):
		return nil, nil, errs.Wrap(errs.Invalid, "Invalid parameter signed_envelope_property: "+notAllowedReason(err), err)
	case err != nil:
		if _, ok := errs.As(err); ok {
			return nil, nil, err
		}
		return nil, nil, errs.Wrap(errs.Internal, "Internal error", err)
	}
	return f, prep, nil
}

func notAllowedReason(err error) string {
	msg := err.Error()
	if i := bytes.Index([]byte(msg), []byte("document: ")); i >= 0 {
		return msg[i+len("document: "):]
	}
	return "not allowed on this document"
}

// finish assembles the CMS (with its time-stamp), and for PDFs embeds it
// and adds the DSS and document time-stamp the level asks for.
func (s *Service) finish(ctx context.Context, it *item, sig []byte, scheme cms.Scheme, chain []*x509.Certificate) error {
	var unsigned []cms.Attribute
	if it.opts.Level >= pades.BT {
		attr, err := cms.SignatureTimestamp(ctx, s.cfg.Timestamper, sig, it.opts.Hash)
		if err != nil {
			return err
		}
		unsigned = append(unsigned, attr)
	}
	der, err := it.attrs.Assemble(sig, scheme, chain, unsigned)
	if err != nil {
		return err
	}
	if it.pdf == nil {
		*it.out = der
		return nil
	}
	if err := pades.Embed(it.pdf, it.prep, der); err != nil {
		return err
	}
	doc := it.pdf.b
	if it.opts.Level >= pades.BLT {
		var out bytes.Buffer
		out.Grow(len(doc) + 64<<10)
		if err := pades.AddDSS(ctx, bytes.NewReader(doc), int64(len(doc)), &out, s.cfg.Validation, s.cfg.ExtraCertificates); err != nil {
			return err
		}
		doc = out.Bytes()
	}
	if it.opts.Level >= pades.BLTA {
		var out bytes.Buffer
		out.Grow(len(doc) + 32<<10)
		if err := pades.AddDocTimeStamp(ctx, bytes.NewReader(doc), int64(len(doc)), &out, s.cfg.Timestamper, it.opts.Hash, 0); err != nil {
			return err
		}
		doc = out.Bytes()
	}
	it.pdf = nil
	*it.out = doc
	return nil
}

// afterSignErr classifies a failure that happened after the HSM signed:
// the TSA or the validation source is down (503), anything else is ours.
func afterSignErr(err error) error {
	switch {
	case errors.Is(err, cms.ErrTimestamp):
		return errs.Wrap(errs.Unavailable, "Timestamp authority unavailable", err)
	case errors.Is(err, pades.ErrValidationData):
		return errs.Wrap(errs.Unavailable, "Validation data unavailable", err)
	}
	if e, ok := errs.As(err); ok && (e.Kind == errs.Unavailable || e.Kind == errs.Internal) {
		return e
	}
	// Anything else (even a 4xx kind from a dependency) is our failure now:
	// the request was valid, the signature exists.
	return errs.Wrap(errs.Internal, "Internal error", err)
}

// parseChain parses the credential's chain, leaf first.
func parseChain(ders [][]byte) ([]*x509.Certificate, error) {
	if len(ders) == 0 {
		return nil, errs.New(errs.Internal, "", "credential has no certificate")
	}
	chain := make([]*x509.Certificate, len(ders))
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, errs.Wrap(errs.Internal, "Internal error", fmt.Errorf("credential certificate %d: %w", i, err))
		}
		chain[i] = c
	}
	return chain, nil
}

// schemeFor checks every entry's algorithm against the key and returns the
// one scheme and signer options the request uses (one SignDerived call
// has one set of options, so entries must agree).
func schemeFor(leaf *x509.Certificate, r Request) (cms.Scheme, crypto.SignerOpts, error) {
	var opts []Options
	for _, d := range r.Documents {
		opts = append(opts, d.Options)
	}
	for _, d := range r.Digests {
		opts = append(opts, d.Options)
	}
	keyType := ""
	switch leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		keyType = "rsa"
	case *ecdsa.PublicKey:
		keyType = "ec"
	}
	var scheme cms.Scheme
	for i, o := range opts {
		if o.KeyType != "" && o.KeyType != keyType {
			return 0, nil, errs.Invalidf("Invalid parameter signAlgo")
		}
		sc, err := cms.SchemeFor(leaf.PublicKey, o.PSS)
		if err != nil {
			return 0, nil, errs.Invalidf("Invalid parameter signAlgo")
		}
		if i > 0 && sc != scheme {
			return 0, nil, errs.Invalidf("Invalid parameter signAlgo: all entries of a request must use the same signature algorithm")
		}
		scheme = sc
	}
	return scheme, cms.SignerOpts(scheme, opts[0].Hash), nil
}

// validationInfo gathers the certificates of every signature and
// time-stamp produced, and revocation data for each one that is not
// self-signed.
func (s *Service) validationInfo(ctx context.Context, res *Result, chain []*x509.Certificate) (*ValidationInfo, error) {
	var pool []*x509.Certificate
	add := func(cs ...*x509.Certificate) {
	next:
		for _, c := range cs {
			for _, p := range pool {
				if p.Equal(c) {
					continue next
				}
			}
			pool = append(pool, c)
		}
	}
	add(chain...)
	addCMS := func(p *cms.Parsed) {
		add(p.Certificates...)
		if ts, err := p.SignatureTimestamp(); err == nil && ts != nil && ts.Token != nil {
			add(ts.Token.Certificates...)
		}
	}
	for _, doc := range res.Documents {
		if doc == nil { // an item that failed alone
			continue
		}
		infos, err := pades.Verify(bytes.NewReader(doc), int64(len(doc)))
		if err != nil {
			return nil, err
		}
		for _, si := range infos {
			if si.CMS != nil {
				add(si.CMS.Certificates...)
			}
			if si.Timestamp != nil && si.Timestamp.Token != nil {
				add(si.Timestamp.Token.Certificates...)
			}
		}
	}
	for _, der := range res.Signatures {
		if der == nil {
			continue
		}
		p, err := cms.Parse(der)
		if err != nil {
			return nil, err
		}
		addCMS(p)
	}
	add(s.cfg.ExtraCertificates...)
	vi := &ValidationInfo{}
	for _, c := range pool {
		vi.Certificates = append(vi.Certificates, c.Raw)
	}
	if s.cfg.Validation == nil {
		return vi, nil
	}
	seen := map[string]bool{}
	for _, c := range pool {
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			continue
		}
		var issuer *x509.Certificate
		for _, p := range pool {
			if bytes.Equal(c.RawIssuer, p.RawSubject) && c.CheckSignatureFrom(p) == nil {
				issuer = p
				break
			}
		}
		if issuer == nil {
			return nil, fmt.Errorf("%w: issuer of %q not available", pades.ErrValidationData, c.Subject)
		}
		o, crl, err := s.cfg.Validation.Revocation(ctx, c, issuer)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", pades.ErrValidationData, c.Subject, err)
		}
		if len(o) > 0 {
			vi.OCSP = append(vi.OCSP, o)
		}
		if len(crl) > 0 && !seen[string(crl)] {
			seen[string(crl)] = true
			vi.CRL = append(vi.CRL, crl)
		}
	}
	return vi, nil
}

// memFile is an in-memory pades.File: Prepare writes it, Embed patches it.
type memFile struct{ b []byte }

var _ pades.File = (*memFile)(nil)

// Write appends (Prepare's output).
func (m *memFile) Write(p []byte) (int, error) {
	m.b = append(m.b, p...)
	return len(p), nil
}

// ReadAt implements io.ReaderAt.
func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt implements io.WriterAt within the existing bytes (Embed only
// overwrites the placeholder).
func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, fmt.Errorf("signdoc: write at %d beyond %d bytes", off, len(m.b))
	}
	return copy(m.b[off:], p), nil
}

// Fallback is a pades.ValidationSource that asks each source in turn and
// returns the first answer. Production wires the in-process CA first (our
// own chain, no network) and pades/revfetch after it, for certificates
// issued elsewhere (an external TSA configured by URL).
type Fallback []pades.ValidationSource

var _ pades.ValidationSource = Fallback(nil)

// Revocation implements pades.ValidationSource.
func (f Fallback) Revocation(ctx context.Context, cert, issuer *x509.Certificate) (ocsp, crl []byte, err error) {
	var all []error
	for _, s := range f {
		o, c, err := s.Revocation(ctx, cert, issuer)
		if err == nil && (len(o) > 0 || len(c) > 0) {
			return o, c, nil
		}
		if err == nil {
			err = fmt.Errorf("no revocation data for %q", cert.Subject)
		}
		all = append(all, err)
	}
	if len(all) == 0 {
		return nil, nil, fmt.Errorf("%w: no validation source", pades.ErrValidationData)
	}
	return nil, nil, errors.Join(all...)
}
