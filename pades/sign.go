package pades

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"time"

	"github.com/sigillo/sigillo/cms"
)

// Level is a PAdES baseline level.
type Level int

// PAdES baseline levels (ETSI EN 319 142-1).
const (
	// BB: signature only.
	BB Level = iota
	// BT: plus a signature-time-stamp in the CMS (needs a Timestamper).
	BT
	// BLT: plus a DSS with certificates and revocation data (needs a
	// ValidationSource).
	BLT
	// BLTA: plus a document time-stamp covering the DSS.
	BLTA
)

// String returns the ETSI name, e.g. "B-LT".
func (l Level) String() string {
	switch l {
	case BB:
		return "B-B"
	case BT:
		return "B-T"
	case BLT:
		return "B-LT"
	case BLTA:
		return "B-LTA"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// DefaultTimestampReserve is the /Contents budget, in bytes, for one RFC
// 3161 token (token + TSA certificates).
const DefaultTimestampReserve = 16 * 1024

// Options configures a signature. The zero value is an invisible B-B
// approval signature with SHA-256 and the time from time.Now.
type Options struct {
	// Level to produce (Sign only; Prepare/Embed produce B-B or B-T, see
	// AddDSS and AddDocTimeStamp for the rest).
	Level Level
	// Hash is the digest algorithm (SHA-256 by default; SHA-384/512).
	Hash crypto.Hash
	// PSS selects RSASSA-PSS for RSA keys.
	PSS bool
	// Info goes into /Name, /Reason, /Location, /ContactInfo when set.
	Info Info
	// FieldName of the new signature field ("Signature<n>" by default).
	FieldName string
	// Appearance, if set, makes the signature visible (approval or
	// certification); invisible by default.
	Appearance *Appearance
	// DocMDP, if 1, 2 or 3, makes a certification signature with that
	// permission; the document must not be signed yet. 0: approval.
	DocMDP int
	// Clock gives the signing time written in /M (time.Now if nil).
	Clock func() time.Time
	// Timestamper is required for B-T and above (signature time-stamp and
	// document time-stamp).
	Timestamper cms.Timestamper
	// TimestampReserve overrides DefaultTimestampReserve.
	TimestampReserve int
	// Validation is required for B-LT and above.
	Validation ValidationSource
	// ExtraCertificates are offered to the DSS chain building (for
	// example the TSA's issuing CAs if its tokens do not carry them).
	ExtraCertificates []*x509.Certificate
}

func (o *Options) hash() crypto.Hash {
	if o.Hash == 0 {
		return crypto.SHA256
	}
	return o.Hash
}

func (o *Options) now() time.Time {
	if o.Clock != nil {
		return o.Clock()
	}
	return time.Now()
}

func (o *Options) tsReserve() int {
	if o.TimestampReserve > 0 {
		return o.TimestampReserve
	}
	return DefaultTimestampReserve
}

// contentsCapacity bounds the DER size of our CMS: the certificates, the
// signature, the signed attributes (which repeat the issuer name), the
// fixed structure, and the time-stamp budget, plus a margin.
func contentsCapacity(chain []*x509.Certificate, withTimestamp bool, reserve int) (int, error) {
	sigSize, err := cms.MaxSignatureSize(chain[0].PublicKey)
	if err != nil {
		return 0, err
	}
	n := 1024 + sigSize + 2*len(chain[0].RawIssuer)
	for _, c := range chain {
		n += len(c.Raw) + 8
	}
	if withTimestamp {
		n += reserve
	}
	return (n + 2047) / 1024 * 1024, nil
}

// Prepared is the result of Prepare: what a signer needs to produce the
// CMS and what Embed needs to place it. It holds offsets only, no document
// bytes, and can be serialized (e.g. as JSON) between the two calls.
type Prepared struct {
	// Hash and Digest: the digest of the ByteRange bytes, which goes into
	// the CMS message-digest attribute (cms.NewSignedAttributes).
	Hash   crypto.Hash
	Digest []byte
	// ByteRange as written in the signature dictionary.
	ByteRange [4]int64
	// InputSize is the size of the original PDF; Size the size of the
	// prepared file.
	InputSize, Size int64
	// Capacity is the largest DER CMS /Contents can hold.
	Capacity int
	// Field is the name of the new signature field.
	Field string
	// SigningTime is the /M value.
	SigningTime time.Time
}

// Prepare appends to the PDF in (size bytes) an incremental update with a
// signature field whose /Contents is a zero placeholder, writes the whole
// prepared file to out (streaming) and returns the ByteRange digest. chain
// is the signer certificate followed by its chain; it sizes the
// placeholder, which also budgets a time-stamp if opts.Timestamper is set
// or opts.Level ≥ BT. Nothing is written if the input is refused.
func Prepare(ctx context.Context, in io.ReaderAt, size int64, out io.Writer, chain []*x509.Certificate, opts Options) (*Prepared, error) {
	l, p, err := prepare(ctx, in, size, chain, opts)
	if err != nil {
		return nil, err
	}
	if err := writeAll(ctx, out, in, l.base, l.upd); err != nil {
		return nil, err
	}
	return p, nil
}

func prepare(ctx context.Context, in io.ReaderAt, size int64, chain []*x509.Certificate, opts Options) (*layout, *Prepared, error) {
	if len(chain) == 0 {
		return nil, nil, fmt.Errorf("pades: no signer certificate")
	}
	h := opts.hash()
	if _, err := cms.HashOID(h); err != nil {
		return nil, nil, err
	}
	capacity, err := contentsCapacity(chain, opts.Timestamper != nil || opts.Level >= BT, opts.tsReserve())
	if err != nil {
		return nil, nil, err
	}
	d, err := openDocument(in, size)
	if err != nil {
		return nil, nil, err
	}
	now := opts.now()
	l, err := d.addSignature(sigSpec{kind: kindSignature, capacity: capacity, signingTime: now, info: opts.Info,
		fieldName: opts.FieldName, docMDP: opts.DocMDP, appearance: opts.Appearance, signerName: chain[0].Subject.CommonName})
	if err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	hh := h.New()
	if err := l.hashRange(hh, in); err != nil {
		return nil, nil, err
	}
	return l, &Prepared{Hash: h, Digest: hh.Sum(nil), ByteRange: l.byteRange, InputSize: size, Size: l.end(), Capacity: capacity,
		Field: l.field, SigningTime: now.UTC().Truncate(time.Second)}, nil
}

// File is what Embed patches: an *os.File opened read-write satisfies it.
type File interface {
	io.ReaderAt
	io.WriterAt
}

// Embed writes the DER CMS into the /Contents placeholder of a file made
// by Prepare, in place, then re-verifies the signature. If the CMS does not
// fit, or the result does not verify (wrong digest, wrong key, not the
// PAdES attributes), the placeholder is left (or put back) as it was and an
// error is returned: the file never stays half-signed.
func Embed(f File, p *Prepared, der []byte) error {
	if len(der) > p.Capacity {
		return fmt.Errorf("%w: %d bytes, %d reserved", ErrContentsTooSmall, len(der), p.Capacity)
	}
	gap := make([]byte, p.ByteRange[2]-p.ByteRange[1])
	if _, err := f.ReadAt(gap, p.ByteRange[1]); err != nil {
		return fmt.Errorf("pades: read placeholder: %w", err)
	}
	if gap[0] != '<' || gap[len(gap)-1] != '>' || len(bytes.Trim(gap[1:len(gap)-1], "0")) != 0 {
		return fmt.Errorf("%w: /Contents at %d is not an empty placeholder", ErrNotAllowed, p.ByteRange[1])
	}
	hexed := make([]byte, len(gap)-2)
	copy(hexed, gap[1:len(gap)-1])
	encodeHex(hexed, der)
	if _, err := f.WriteAt(hexed, p.ByteRange[1]+1); err != nil {
		return fmt.Errorf("pades: write /Contents: %w", err)
	}
	if err := selfCheck(f, p.Size, []string{p.Field}, p.InputSize); err != nil {
		f.WriteAt(gap[1:len(gap)-1], p.ByteRange[1]+1) // put the placeholder back
		return err
	}
	return nil
}

// Sign produces a PAdES signature at opts.Level in one call: prepare,
// build the CMS with signer (called exactly once), embed, then the DSS and
// document time-stamp updates for B-LT/B-LTA, a self-check of the result,
// and only then writes the signed PDF to out. chain is the signer
// certificate followed by its chain.
func Sign(ctx context.Context, in io.ReaderAt, size int64, out io.Writer, signer crypto.Signer, chain []*x509.Certificate, opts Options) error {
	if opts.Level >= BT && opts.Timestamper == nil {
		return fmt.Errorf("pades: %v needs a Timestamper", opts.Level)
	}
	if opts.Level >= BLT && opts.Validation == nil {
		return fmt.Errorf("pades: %v needs a ValidationSource", opts.Level)
	}
	l, p, err := prepare(ctx, in, size, chain, opts)
	if err != nil {
		return err
	}
	copts := cms.SignOptions{PSS: opts.PSS}
	if opts.Level >= BT {
		copts.Timestamper = opts.Timestamper
	}
	der, err := cms.SignDetached(ctx, signer, p.Digest, p.Hash, chain, copts)
	if err != nil {
		return fmt.Errorf("pades: %w", err)
	}
	if err := l.embed(der); err != nil {
		return err
	}
	doc := &composite{base: in, baseSize: size, tail: l.upd}
	if err := selfCheck(doc, doc.size(), []string{l.field}, size); err != nil {
		return err
	}
	if opts.Level >= BLT {
		upd, err := dssUpdate(ctx, doc, doc.size(), opts.Validation, opts.ExtraCertificates)
		if err != nil {
			return err
		}
		doc.tail = append(doc.tail, upd...)
	}
	if opts.Level >= BLTA {
		upd, field, err := docTimeStampUpdate(ctx, doc, doc.size(), opts.Timestamper, opts.hash(), opts.tsReserve())
		if err != nil {
			return err
		}
		doc.tail = append(doc.tail, upd...)
		if err := selfCheck(doc, doc.size(), []string{field}, size); err != nil {
			return err
		}
	}
	return writeAll(ctx, out, in, size, doc.tail)
}

// writeAll streams the input then the update bytes to out.
func writeAll(ctx context.Context, out io.Writer, in io.ReaderAt, size int64, tail []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := io.Copy(out, io.NewSectionReader(in, 0, size)); err != nil {
		return fmt.Errorf("pades: write: %w", err)
	}
	if _, err := out.Write(tail); err != nil {
		return fmt.Errorf("pades: write: %w", err)
	}
	return nil
}

// selfCheck re-reads the PDF and verifies the named new signatures: valid
// CMS or token, the last one covering the whole file, PAdES attributes
// exactly, and (for signatures created after origSize) the ETSI SubFilter.
func selfCheck(in io.ReaderAt, size int64, fields []string, origSize int64) error {
	infos, err := Verify(in, size)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSelfCheck, err)
	}
	for _, name := range fields {
		var found *SignatureInfo
		for i := range infos {
			if infos[i].Field == name {
				found = &infos[i]
			}
		}
		switch {
		case found == nil:
			return fmt.Errorf("%w: signature field %q not found", ErrSelfCheck, name)
		case found.Err != nil:
			return fmt.Errorf("%w: %s: %w", ErrSelfCheck, name, found.Err)
		case found.ByteRange[1] < origSize:
			return fmt.Errorf("%w: %s: /Contents is not in the new update", ErrSelfCheck, name)
		case !found.CoversWholeFile:
			return fmt.Errorf("%w: %s: ByteRange does not cover the whole file", ErrSelfCheck, name)
		case found.Type == "Sig" && found.SubFilter != "ETSI.CAdES.detached":
			return fmt.Errorf("%w: %s: SubFilter %s", ErrSelfCheck, name, found.SubFilter)
		case found.Type == "Sig":
			if err := found.CMS.CheckPAdESBaseline(); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrSelfCheck, name, err)
			}
		}
	}
	return nil
}

func encodeHex(dst, src []byte) {
	const digits = "0123456789abcdef"
	for i, b := range src {
		dst[2*i] = digits[b>>4]
		dst[2*i+1] = digits[b&0x0f]
	}
}

// composite is the input followed by in-memory updates, read as one file,
// so that later steps (DSS, document time-stamp, self-check) see exactly
// the bytes that will be written without holding the input in memory.
type composite struct {
	base     io.ReaderAt
	baseSize int64
	tail     []byte
}

func (c *composite) size() int64 { return c.baseSize + int64(len(c.tail)) }

// ReadAt implements io.ReaderAt.
func (c *composite) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < c.baseSize {
		want := p
		if int64(len(want)) > c.baseSize-off {
			want = want[:c.baseSize-off]
		}
		m, err := c.base.ReadAt(want, off)
		n += m
		if m < len(want) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		off += int64(m)
	}
	if n == len(p) {
		return n, nil
	}
	t := off - c.baseSize
	if t >= int64(len(c.tail)) {
		return n, io.EOF
	}
	m := copy(p[n:], c.tail[t:])
	n += m
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
