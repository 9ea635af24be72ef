package pades

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/digitorus/pdf"
)

// update accumulates one incremental update (ISO 32000 §7.5.6): new or
// replaced objects, then a cross-reference section of the same kind as
// the document's last one, chained with /Prev.
type update struct {
	d       *document
	base    int64 // file offset of buf[0]
	buf     bytes.Buffer
	offsets map[uint32]xrefEntry
	next    uint32
}

type xrefEntry struct {
	off int64
	gen uint16
}

func (d *document) newUpdate() *update {
	u := &update{d: d, base: d.size, offsets: map[uint32]xrefEntry{}, next: d.nextObj}
	if d.needsEOL {
		u.buf.WriteByte('\n')
	}
	return u
}

// alloc reserves a new object number.
func (u *update) alloc() ref {
	r := ref{num: u.next}
	u.next++
	return r
}

// pos is the file offset of the next byte written.
func (u *update) pos() int64 { return u.base + int64(u.buf.Len()) }

// object writes "num gen obj body endobj".
func (u *update) object(r ref, body string) {
	u.offsets[r.num] = xrefEntry{off: u.pos(), gen: r.gen}
	fmt.Fprintf(&u.buf, "%d %d obj\n%s\nendobj\n", r.num, r.gen, body)
}

// stream writes a stream object with raw (unfiltered) data.
func (u *update) stream(r ref, hdr *dict, data []byte) {
	hdr.set("Length", strconv.Itoa(len(data)))
	u.offsets[r.num] = xrefEntry{off: u.pos(), gen: r.gen}
	fmt.Fprintf(&u.buf, "%d %d obj\n%s\nstream\n", r.num, r.gen, hdr)
	u.buf.Write(data)
	u.buf.WriteString("\nendstream\nendobj\n")
}

// finish appends the cross-reference section and trailer and returns the
// update bytes.
func (u *update) finish() ([]byte, error) {
	tr := u.d.r.Trailer()
	trailer := newDict()
	trailer.set("Root", u.d.rootRef.String())
	for _, k := range []string{"Info", "ID"} {
		if e, ok := rawEntry(tr, k); ok {
			s, err := serializeRaw(e)
			if err != nil {
				return nil, err
			}
			trailer.set(k, s)
		}
	}
	trailer.set("Prev", strconv.FormatInt(u.d.startxref, 10))
	if u.d.xrefStream {
		u.xrefStream(trailer)
	} else {
		u.xrefTable(trailer)
	}
	return u.buf.Bytes(), nil
}

// sections groups object numbers into contiguous runs.
func (u *update) sections() [][]uint32 {
	nums := make([]uint32, 0, len(u.offsets))
	for n := range u.offsets {
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	var out [][]uint32
	for i, n := range nums {
		if i == 0 || n != nums[i-1]+1 {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], n)
	}
	return out
}

func (u *update) xrefTable(trailer *dict) {
	start := u.pos()
	u.buf.WriteString("xref\n")
	for _, sec := range u.sections() {
		fmt.Fprintf(&u.buf, "%d %d\n", sec[0], len(sec))
		for _, n := range sec {
			e := u.offsets[n]
			fmt.Fprintf(&u.buf, "%010d %05d n\r\n", e.off, e.gen)
		}
	}
	trailer.set("Size", strconv.FormatUint(uint64(u.next), 10))
	fmt.Fprintf(&u.buf, "trailer\n%s\nstartxref\n%d\n%%%%EOF\n", trailer, start)
}

func (u *update) xrefStream(trailer *dict) {
	self := u.alloc()
	start := u.pos()
	u.offsets[self.num] = xrefEntry{off: start}
	w := 4
	if start > 1<<32-1 {
		w = 8
	}
	var data bytes.Buffer
	var index []string
	for _, sec := range u.sections() {
		index = append(index, strconv.FormatUint(uint64(sec[0]), 10), strconv.Itoa(len(sec)))
		for _, n := range sec {
			e := u.offsets[n]
			data.WriteByte(1)
			for i := w - 1; i >= 0; i-- {
				data.WriteByte(byte(e.off >> (8 * i)))
			}
			data.WriteByte(byte(e.gen >> 8))
			data.WriteByte(byte(e.gen))
		}
	}
	hdr := newDict()
	hdr.set("Type", "/XRef")
	hdr.set("Size", strconv.FormatUint(uint64(u.next), 10))
	hdr.set("W", fmt.Sprintf("[1 %d 2]", w))
	hdr.set("Index", "["+strings.Join(index, " ")+"]")
	for _, k := range trailer.keys {
		hdr.set(k, trailer.vals[k])
	}
	hdr.set("Length", strconv.Itoa(data.Len()))
	fmt.Fprintf(&u.buf, "%d 0 obj\n%s\nstream\n", self.num, hdr)
	u.buf.Write(data.Bytes())
	fmt.Fprintf(&u.buf, "\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n", start)
}

// catalog returns the catalog's entries, ready to be modified and written
// back with writeCatalog.
func (u *update) catalog() (*dict, error) {
	e, err := rawEntries(u.d.root)
	if err != nil {
		return nil, err
	}
	return dictFrom(e), nil
}

func (u *update) writeCatalog(c *dict) { u.object(u.d.rootRef, c.String()) }

// addESIC declares the ETSI PAdES extension (ISO 32000-1 §7.12) in the
// catalog of a PDF older than 2.0, keeping other extensions.
func (u *update) addESIC(c *dict) (err error) {
	defer guard(&err)
	if strings.HasPrefix(u.d.version, "2.") {
		return nil
	}
	esic := "<</BaseVersion /1.7 /ExtensionLevel 2>>"
	ext, err := entry(u.d.root, "Extensions", pdf.Dict)
	if err != nil {
		return err
	}
	switch ext.Kind() {
	case pdf.Null:
		c.set("Extensions", "<</ESIC "+esic+">>")
	case pdf.Dict:
		if ext.Key("ESIC").Kind() != pdf.Null {
			return nil
		}
		if raw, _ := rawEntry(u.d.root, "Extensions"); raw.IsValid() {
			if _, isRef := rawRefV(raw); isRef {
				return nil // leave an indirect extensions dictionary alone
			}
		}
		entries, err := rawEntries(ext)
		if err != nil {
			return err
		}
		d := dictFrom(entries)
		d.set("ESIC", esic)
		c.set("Extensions", d.String())
	}
	return nil
}
