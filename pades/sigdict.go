package pades

import (
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/digitorus/pdf"
)

// sigKind is the kind of signature dictionary an update adds.
type sigKind int

const (
	kindSignature    sigKind = iota // /Type /Sig, ETSI.CAdES.detached
	kindDocTimeStamp                // /Type /DocTimeStamp, ETSI.RFC3161
)

// sigSpec says what signature dictionary and field to add.
type sigSpec struct {
	kind        sigKind
	capacity    int // DER bytes /Contents can hold
	signingTime time.Time
	info        Info
	fieldName   string
	docMDP      int // 0: approval; 1..3: certification with this P
	appearance  *Appearance
	signerName  string // for the visible appearance text
}

// Appearance makes the signature visible: a box on a page with the
// signer's name, the signing time and the reason.
type Appearance struct {
	// Page is 1-based (default 1).
	Page int
	// Rect is the box in default user space: lower-left x, y, upper-right
	// x, y (points).
	Rect [4]float64
}

// Info is the optional descriptive text of a signature dictionary.
type Info struct {
	Name, Reason, Location, ContactInfo string
}

// layout is an incremental update holding a signature dictionary whose
// /Contents is still a placeholder of zeros.
type layout struct {
	upd           []byte
	base          int64 // file offset of upd[0] (size of the input)
	contentsStart int   // index in upd of '<'
	contentsEnd   int   // index in upd just after '>'
	byteRange     [4]int64
	capacity      int
	field         string
}

// end is the size of the file once the update is appended.
func (l *layout) end() int64 { return l.base + int64(len(l.upd)) }

const byteRangeWidth = 4*20 + 5

// addSignature lays out the update that adds a signature (or document
// time-stamp) field, widget, dictionary, and the AcroForm and catalog that
// reach them.
func (d *document) addSignature(spec sigSpec) (l *layout, err error) {
	names, sigs, err := d.fields()
	if err != nil {
		return nil, err
	}
	if spec.kind == kindSignature {
		mdp, err := d.docMDP()
		if err != nil {
			return nil, err
		}
		if mdp == 1 {
			return nil, fmt.Errorf("%w: the document is certified with DocMDP P=1 (no changes allowed)", ErrNotAllowed)
		}
		if spec.docMDP != 0 {
			if spec.docMDP < 1 || spec.docMDP > 3 {
				return nil, fmt.Errorf("pades: DocMDP permission %d is not 1, 2 or 3", spec.docMDP)
			}
			for _, s := range sigs {
				if s.v.Kind() != pdf.Null {
					return nil, fmt.Errorf("%w: certification requires an unsigned document (field %q is signed)", ErrNotAllowed, s.name)
				}
			}
			if mdp != 0 {
				return nil, fmt.Errorf("%w: the document is already certified", ErrNotAllowed)
			}
		}
	}
	field := spec.fieldName
	if field == "" {
		prefix := "Signature"
		if spec.kind == kindDocTimeStamp {
			prefix = "DocTimeStamp"
		}
		for i := 1; ; i++ {
			field = prefix + strconv.Itoa(i)
			if !names[field] {
				break
			}
		}
	} else if names[field] {
		return nil, fmt.Errorf("%w: a field named %q already exists", ErrNotAllowed, field)
	}
	pageNo := 1
	if spec.appearance != nil && spec.appearance.Page > 0 {
		pageNo = spec.appearance.Page
	}
	page, err := d.page(pageNo)
	if err != nil {
		return nil, err
	}
	defer guard(&err)

	u := d.newUpdate()
	sigRef, widgetRef := u.alloc(), u.alloc()

	// Signature dictionary. /Contents goes last so that the placeholder is
	// easy to find and nothing after it depends on its size.
	sd := newDict()
	if spec.kind == kindDocTimeStamp {
		sd.set("Type", "/DocTimeStamp").set("Filter", "/Adobe.PPKLite").set("SubFilter", "/ETSI.RFC3161")
	} else {
		sd.set("Type", "/Sig").set("Filter", "/Adobe.PPKLite").set("SubFilter", "/ETSI.CAdES.detached")
		sd.set("M", pdfDate(spec.signingTime))
		for _, kv := range [][2]string{{"Name", spec.info.Name}, {"Reason", spec.info.Reason},
			{"Location", spec.info.Location}, {"ContactInfo", spec.info.ContactInfo}} {
			if kv[1] != "" {
				sd.set(kv[0], pdfText(kv[1]))
			}
		}
		if spec.docMDP != 0 {
			sd.set("Reference", fmt.Sprintf("[<</Type /SigRef /TransformMethod /DocMDP /TransformParams <</Type /TransformParams /P %d /V /1.2>>>>]", spec.docMDP))
		}
	}
	sd.set("ByteRange", "["+strings.Repeat(" ", byteRangeWidth)+"]")
	sd.set("Contents", "<"+strings.Repeat("0", 2*spec.capacity)+">")
	body := sd.String()
	objStart := u.buf.Len()
	u.object(sigRef, body)
	header := len(fmt.Sprintf("%d %d obj\n", sigRef.num, sigRef.gen))
	brAt := objStart + header + strings.Index(body, "/ByteRange [") + len("/ByteRange ")
	cAt := objStart + header + strings.Index(body, "/Contents <") + len("/Contents ")

	// Field merged with its widget annotation; invisible (zero rectangle),
	// print + locked flags.
	w := newDict()
	w.set("Type", "/Annot").set("Subtype", "/Widget").set("FT", "/Sig").set("T", pdfText(field)).
		set("V", sigRef.String()).set("F", "132").set("Rect", "[0 0 0 0]").set("P", refOf(page).String())
	if a := spec.appearance; a != nil {
		r := a.Rect
		if r[2] <= r[0] || r[3] <= r[1] {
			return nil, fmt.Errorf("pades: appearance rectangle %v is empty", r)
		}
		apRef := u.alloc()
		w.set("Rect", fmt.Sprintf("[%s %s %s %s]", formatReal(r[0]), formatReal(r[1]), formatReal(r[2]), formatReal(r[3])))
		w.set("AP", "<</N "+apRef.String()+">>")
		u.object(widgetRef, w.String())
		hdr, content := appearanceStream(r[2]-r[0], r[3]-r[1], spec)
		u.stream(apRef, hdr, content)
	} else {
		u.object(widgetRef, w.String())
	}

	// Page /Annots.
	annots, err := entry(page, "Annots", pdf.Array)
	if err != nil {
		return nil, err
	}
	if raw, ok := rawEntry(page, "Annots"); ok && annots.Kind() == pdf.Array {
		if ar, isRef := rawRefV(raw); isRef {
			items, err := rawArrayItems(annots)
			if err != nil {
				return nil, err
			}
			u.object(ar, "["+strings.Join(append(items, widgetRef.String()), " ")+"]")
		} else {
			pe, err := rawEntries(page)
			if err != nil {
				return nil, err
			}
			items, err := rawArrayItems(annots)
			if err != nil {
				return nil, err
			}
			pd := dictFrom(pe)
			pd.set("Annots", "["+strings.Join(append(items, widgetRef.String()), " ")+"]")
			u.object(refOf(page), pd.String())
		}
	} else {
		pe, err := rawEntries(page)
		if err != nil {
			return nil, err
		}
		pd := dictFrom(pe)
		pd.set("Annots", "["+widgetRef.String()+"]")
		u.object(refOf(page), pd.String())
	}

	// AcroForm: every existing entry (Fields, DA, DR, NeedAppearances…)
	// kept, the new field appended, SigFlags 3 (SignaturesExist|AppendOnly).
	cat, err := u.catalog()
	if err != nil {
		return nil, err
	}
	af, err := entry(d.root, "AcroForm", pdf.Dict)
	if err != nil {
		return nil, err
	}
	afFields, err := entry(af, "Fields", pdf.Array)
	if err != nil {
		return nil, err
	}
	afd := newDict()
	afRef := ref{}
	rawAF, hasAF := rawEntry(d.root, "AcroForm")
	if hasAF && af.Kind() == pdf.Dict {
		entries, err := rawEntries(af)
		if err != nil {
			return nil, err
		}
		afd = dictFrom(entries)
		if r, isRef := rawRefV(rawAF); isRef {
			afRef = r
		}
	}
	var fields []string
	if afFields.Kind() == pdf.Array {
		if fields, err = rawArrayItems(afFields); err != nil {
			return nil, err
		}
	}
	afd.set("Fields", "["+strings.Join(append(fields, widgetRef.String()), " ")+"]")
	afd.set("SigFlags", "3")
	if afRef.num == 0 {
		afRef = u.alloc()
		cat.set("AcroForm", afRef.String())
	}
	u.object(afRef, afd.String())

	if spec.kind == kindSignature {
		if err := u.addESIC(cat); err != nil {
			return nil, err
		}
		if spec.docMDP != 0 {
			cat.set("Perms", "<</DocMDP "+sigRef.String()+">>")
		}
	}
	u.writeCatalog(cat)
	upd, err := u.finish()
	if err != nil {
		return nil, err
	}
	l = &layout{upd: upd, base: d.size, contentsStart: cAt, contentsEnd: cAt + 2*spec.capacity + 2, capacity: spec.capacity, field: field}
	if upd[l.contentsStart] != '<' || upd[l.contentsEnd-1] != '>' {
		return nil, fmt.Errorf("pades: internal error: /Contents placeholder not where expected")
	}
	l.byteRange = [4]int64{0, l.base + int64(l.contentsStart), l.base + int64(l.contentsEnd), l.end() - (l.base + int64(l.contentsEnd))}
	br := fmt.Sprintf("[%d %d %d %d", l.byteRange[0], l.byteRange[1], l.byteRange[2], l.byteRange[3])
	if len(br) > byteRangeWidth+1 {
		return nil, fmt.Errorf("pades: internal error: ByteRange too wide")
	}
	copy(upd[brAt:], br+strings.Repeat(" ", byteRangeWidth+1-len(br)))
	return l, nil
}

// hashRange feeds the bytes the ByteRange covers to h: the input in full,
// then the update without its /Contents.
func (l *layout) hashRange(h hash.Hash, in io.ReaderAt) error {
	if _, err := io.Copy(h, io.NewSectionReader(in, 0, l.base)); err != nil {
		return fmt.Errorf("pades: read input: %w", err)
	}
	h.Write(l.upd[:l.contentsStart])
	h.Write(l.upd[l.contentsEnd:])
	return nil
}

// embed writes der, hex-encoded, into the placeholder.
func (l *layout) embed(der []byte) error {
	if len(der) > l.capacity {
		return fmt.Errorf("%w: %d bytes, %d reserved", ErrContentsTooSmall, len(der), l.capacity)
	}
	hex.Encode(l.upd[l.contentsStart+1:], der)
	return nil
}

// appearanceStream draws the visible signature box: light background,
// border, and up to three lines of Helvetica text sized to fit.
func appearanceStream(w, h float64, spec sigSpec) (*dict, []byte) {
	lines := []string{"Digitally signed by " + firstNonEmpty(spec.info.Name, spec.signerName),
		"Date: " + spec.signingTime.UTC().Format("2006-01-02 15:04:05 UTC")}
	if spec.info.Reason != "" {
		lines = append(lines, "Reason: "+spec.info.Reason)
	}
	longest := 1
	for _, l := range lines {
		if len(l) > longest {
			longest = len(l)
		}
	}
	fs := h / (float64(len(lines))*1.25 + 0.5)
	if byWidth := (w - 8) / (0.5 * float64(longest)); byWidth < fs { // Helvetica averages ~0.5 em
		fs = byWidth
	}
	if fs > 12 {
		fs = 12
	}
	if fs < 1 {
		fs = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, "q 0.95 0.95 0.95 rg 0 0 %s %s re f Q\n", formatReal(w), formatReal(h))
	fmt.Fprintf(&b, "q 0.2 0.2 0.6 RG 1 w 0.5 0.5 %s %s re S Q\n", formatReal(w-1), formatReal(h-1))
	fmt.Fprintf(&b, "BT /Helv %.2f Tf 0 g %.2f TL 4 %.2f Td\n", fs, fs*1.2, h-fs*1.1-2)
	for i, l := range lines {
		if i > 0 {
			b.WriteString("T* ")
		}
		b.WriteString(pdfLiteral(l))
		b.WriteString(" Tj\n")
	}
	b.WriteString("ET\n")
	hdr := newDict()
	hdr.set("Type", "/XObject").set("Subtype", "/Form").
		set("BBox", fmt.Sprintf("[0 0 %s %s]", formatReal(w), formatReal(h))).
		set("Resources", "<</Font <</Helv <</Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding>>>>>>")
	return hdr, []byte(b.String())
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// pdfLiteral writes a literal string for a WinAnsi-encoded simple font:
// Latin-1 characters as their byte, anything else as '?'.
func pdfLiteral(s string) string {
	var b strings.Builder
	b.WriteByte('(')
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r >= 0xa0 && r <= 0xff:
			fmt.Fprintf(&b, "\\%03o", r)
		default:
			b.WriteByte('?')
		}
	}
	b.WriteByte(')')
	return b.String()
}
