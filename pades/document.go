package pades

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/digitorus/pdf"
)

// document is a parsed input PDF plus what an incremental update needs.
type document struct {
	ra         io.ReaderAt
	size       int64
	r          *pdf.Reader
	xrefStream bool   // the last cross-reference section is a stream
	startxref  int64  // offset of the last cross-reference section
	nextObj    uint32 // first free object number (trailer /Size)
	root       pdf.Value
	rootRef    ref
	version    string
	needsEOL   bool // the file does not end with an end-of-line
}

// guard turns a panic of the PDF reader (it reports most errors that way)
// into an ErrInvalidPDF error.
func guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", ErrInvalidPDF, r)
	}
}

// openDocument parses the trailer, catalog and cross-reference data of the
// PDF in ra and refuses what we must not update.
func openDocument(ra io.ReaderAt, size int64) (d *document, err error) {
	defer guard(&err)
	if size < 32 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrInvalidPDF, size)
	}
	head := make([]byte, 8)
	if _, err := ra.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("%w: read header: %v", ErrInvalidPDF, err)
	}
	if !bytes.HasPrefix(head, []byte("%PDF-")) {
		return nil, fmt.Errorf("%w: no %%PDF- header", ErrInvalidPDF)
	}
	r, err := pdf.NewReader(ra, size)
	if err != nil {
		if strings.Contains(err.Error(), "encrypt") || strings.Contains(err.Error(), "password") {
			return nil, fmt.Errorf("%w: encrypted PDFs are not supported: %v", ErrInvalidPDF, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidPDF, err)
	}
	tr := r.Trailer()
	if tr.Key("Encrypt").Kind() != pdf.Null {
		return nil, fmt.Errorf("%w: encrypted PDFs are not supported", ErrInvalidPDF)
	}
	if _, ok := rawEntry(tr, "Encrypt"); ok {
		return nil, fmt.Errorf("%w: encrypted PDFs are not supported", ErrInvalidPDF)
	}
	d = &document{ra: ra, size: size, r: r, xrefStream: r.XrefInformation.Type == "stream",
		startxref: r.XrefInformation.StartPos, version: r.PDFVersion}
	n := tr.Key("Size").Int64()
	if n <= 0 || n > 1<<23 {
		return nil, fmt.Errorf("%w: trailer /Size %d", ErrInvalidPDF, n)
	}
	d.nextObj = uint32(n)
	d.root = tr.Key("Root")
	if d.root.Kind() != pdf.Dict {
		return nil, fmt.Errorf("%w: no document catalog", ErrInvalidPDF)
	}
	d.rootRef = refOf(d.root)
	if d.rootRef.num == 0 {
		return nil, fmt.Errorf("%w: catalog is not an indirect object", ErrInvalidPDF)
	}
	if d.root.Key("Pages").Kind() != pdf.Dict {
		return nil, fmt.Errorf("%w: no page tree", ErrInvalidPDF)
	}
	// Resolve every cross-reference entry's object header cheaply? No: that
	// would read the whole file. Check the objects we are about to rewrite
	// instead, and that the last bytes parse (done by NewReader).
	last := make([]byte, 1)
	if _, err := ra.ReadAt(last, size-1); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPDF, err)
	}
	d.needsEOL = last[0] != '\n' && last[0] != '\r'
	return d, nil
}

// page returns the n-th page (1-based) of the page tree.
func (d *document) page(n int) (p pdf.Value, err error) {
	defer guard(&err)
	if n < 1 {
		n = 1
	}
	node := d.root.Key("Pages")
	seen := 0
	for depth := 0; depth < 64; depth++ {
		kids := node.Key("Kids")
		if kids.Kind() != pdf.Array {
			return pdf.Value{}, fmt.Errorf("%w: page tree node without /Kids", ErrInvalidPDF)
		}
		found := false
		for i := 0; i < kids.Len(); i++ {
			k := kids.Index(i)
			if k.Key("Type").Name() == "Page" || k.Key("Kids").Kind() == pdf.Null {
				seen++
				if seen == n {
					if refOf(k).num == 0 {
						return pdf.Value{}, fmt.Errorf("%w: page is not an indirect object", ErrInvalidPDF)
					}
					return k, nil
				}
				continue
			}
			cnt := int(k.Key("Count").Int64())
			if seen+cnt >= n {
				node, found = k, true
				break
			}
			seen += cnt
		}
		if !found {
			return pdf.Value{}, fmt.Errorf("%w: page %d not found", ErrInvalidPDF, n)
		}
	}
	return pdf.Value{}, fmt.Errorf("%w: page tree too deep", ErrInvalidPDF)
}

// sigField is a signature field found in the AcroForm.
type sigField struct {
	name string
	v    pdf.Value // the signature dictionary (/V), Null if unsigned
}

// fields walks the AcroForm field tree and returns every terminal field's
// full name plus the signature fields.
func (d *document) fields() (names map[string]bool, sigs []sigField, err error) {
	defer guard(&err)
	names = map[string]bool{}
	af, err := entry(d.root, "AcroForm", pdf.Dict)
	if err != nil {
		return nil, nil, err
	}
	fs, err := entry(af, "Fields", pdf.Array)
	if err != nil {
		return nil, nil, err
	}
	var walk func(v pdf.Value, prefix string, depth int)
	walk = func(v pdf.Value, prefix string, depth int) {
		if depth > 32 {
			panic(errors.New("field tree too deep"))
		}
		name := prefix
		if t := v.Key("T").Text(); t != "" {
			if name != "" {
				name += "."
			}
			name += t
		}
		kids := v.Key("Kids")
		if kids.Kind() == pdf.Array && kids.Len() > 0 && kids.Index(0).Key("T").Kind() != pdf.Null {
			for i := 0; i < kids.Len(); i++ {
				walk(kids.Index(i), name, depth+1)
			}
			return
		}
		names[name] = true
		if v.Key("FT").Name() == "Sig" {
			sigs = append(sigs, sigField{name: name, v: v.Key("V")})
		}
	}
	for i := 0; i < fs.Len(); i++ {
		walk(fs.Index(i), "", 0)
	}
	return names, sigs, nil
}

// docMDP returns the P value of an existing certification signature, 0 if
// the document is not certified.
func (d *document) docMDP() (p int64, err error) {
	defer guard(&err)
	sig := d.root.Key("Perms").Key("DocMDP")
	if sig.Kind() == pdf.Null {
		return 0, nil
	}
	refs := sig.Key("Reference")
	for i := 0; i < refs.Len(); i++ {
		r := refs.Index(i)
		if r.Key("TransformMethod").Name() == "DocMDP" {
			p := r.Key("TransformParams").Key("P").Int64()
			if p == 0 {
				p = 2
			}
			return p, nil
		}
	}
	return 2, nil
}
