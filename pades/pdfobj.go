package pades

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/digitorus/pdf"
)

// ref is an indirect object reference.
type ref struct {
	num uint32
	gen uint16
}

func (r ref) String() string { return fmt.Sprintf("%d %d R", r.num, r.gen) }

// refOf returns the reference of a resolved value (the object it was read
// from). digitorus/pdf keeps it unexported, behind GetPtr.
func refOf(v pdf.Value) ref {
	p := v.GetPtr()
	return ref{num: p.GetID(), gen: p.GetGen()}
}

// rawRef reports whether a raw (unresolved) value is an indirect reference.
// digitorus/pdf represents references with an unexported struct
// {id uint32; gen uint16}; reflection reads it without depending on the
// name.
func rawRef(x any) (ref, bool) { return rawRefV(reflect.ValueOf(x)) }

func rawRefV(rv reflect.Value) (ref, bool) {
	for rv.Kind() == reflect.Interface && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct || rv.NumField() != 2 ||
		rv.Field(0).Kind() != reflect.Uint32 || rv.Field(1).Kind() != reflect.Uint16 {
		return ref{}, false
	}
	return ref{num: uint32(rv.Field(0).Uint()), gen: uint16(rv.Field(1).Uint())}, true
}

// rawEntries returns the unresolved entries of a dictionary (or stream
// header) value, serialized, keyed by name without the slash.
func rawEntries(v pdf.Value) (map[string]string, error) {
	rv := reflect.ValueOf(v.RawData())
	if rv.Kind() == reflect.Struct { // stream: its header dict is the first map field
		for i := 0; i < rv.NumField(); i++ {
			if rv.Field(i).Kind() == reflect.Map {
				rv = rv.Field(i)
				break
			}
		}
	}
	if rv.Kind() != reflect.Map {
		return nil, fmt.Errorf("%w: expected a dictionary, found %v", ErrInvalidPDF, v.Kind())
	}
	out := make(map[string]string, rv.Len())
	it := rv.MapRange()
	for it.Next() {
		s, err := serializeRaw(it.Value())
		if err != nil {
			return nil, err
		}
		out[it.Key().String()] = s
	}
	return out, nil
}

// rawEntry returns the unresolved value of key in dictionary v.
func rawEntry(v pdf.Value, key string) (reflect.Value, bool) {
	rv := reflect.ValueOf(v.RawData())
	if rv.Kind() != reflect.Map {
		return reflect.Value{}, false
	}
	for _, k := range rv.MapKeys() {
		if k.String() == key {
			e := rv.MapIndex(k)
			for e.Kind() == reflect.Interface && !e.IsNil() {
				e = e.Elem()
			}
			return e, true
		}
	}
	return reflect.Value{}, false
}

// rawArrayItems serializes the unresolved elements of an array value.
func rawArrayItems(v pdf.Value) ([]string, error) {
	rv := reflect.ValueOf(v.RawData())
	if rv.Kind() != reflect.Slice {
		return nil, fmt.Errorf("%w: expected an array, found %v", ErrInvalidPDF, v.Kind())
	}
	out := make([]string, rv.Len())
	for i := range out {
		s, err := serializeRaw(rv.Index(i))
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// serializeRaw writes an unresolved digitorus/pdf object in PDF syntax.
func serializeRaw(rv reflect.Value) (string, error) {
	for rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return "null", nil
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Invalid:
		return "null", nil
	case reflect.Bool:
		return strconv.FormatBool(rv.Bool()), nil
	case reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), nil
	case reflect.Float64:
		return formatReal(rv.Float()), nil
	case reflect.String:
		if rv.Type().Name() == "name" {
			return pdfName(rv.String()), nil
		}
		if rv.Type().Name() == "keyword" {
			return "", fmt.Errorf("%w: unexpected keyword %q", ErrInvalidPDF, rv.String())
		}
		return "<" + hex.EncodeToString([]byte(rv.String())) + ">", nil
	case reflect.Map:
		keys := make([]string, 0, rv.Len())
		vals := map[string]string{}
		it := rv.MapRange()
		for it.Next() {
			s, err := serializeRaw(it.Value())
			if err != nil {
				return "", err
			}
			keys = append(keys, it.Key().String())
			vals[it.Key().String()] = s
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("<<")
		for _, k := range keys {
			b.WriteString(pdfName(k))
			b.WriteByte(' ')
			b.WriteString(vals[k])
		}
		b.WriteString(">>")
		return b.String(), nil
	case reflect.Slice:
		parts := make([]string, rv.Len())
		for i := range parts {
			s, err := serializeRaw(rv.Index(i))
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return "[" + strings.Join(parts, " ") + "]", nil
	case reflect.Struct:
		if r, ok := rawRefV(rv); ok {
			return r.String(), nil
		}
	}
	return "", fmt.Errorf("%w: cannot re-serialize %v", ErrInvalidPDF, rv.Type())
}

func formatReal(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	return s
}

// pdfName writes a name object, escaping delimiters and non-regular bytes.
func pdfName(n string) string {
	var b strings.Builder
	b.WriteByte('/')
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c < 0x21 || c > 0x7e || strings.IndexByte("#()<>[]{}/%", c) >= 0 {
			fmt.Fprintf(&b, "#%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// pdfText encodes a text string: PDFDocEncoding-compatible ASCII as is,
// anything else as UTF-16BE with a byte order mark, both in hex form.
func pdfText(s string) string {
	ascii := true
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			ascii = false
			break
		}
	}
	if ascii {
		return "<" + hex.EncodeToString([]byte(s)) + ">"
	}
	u := utf16.Encode([]rune(s))
	b := []byte{0xfe, 0xff}
	for _, c := range u {
		b = append(b, byte(c>>8), byte(c))
	}
	return "<" + hex.EncodeToString(b) + ">"
}

// pdfDate formats a PDF date string (ISO 32000 §7.9.4) in UTC.
func pdfDate(t time.Time) string {
	return "(D:" + t.UTC().Format("20060102150405") + "+00'00')"
}

// dict is an ordered dictionary being written.
type dict struct {
	keys []string
	vals map[string]string
}

func newDict() *dict { return &dict{vals: map[string]string{}} }

// dictFrom copies raw entries, sorted for stable output.
func dictFrom(entries map[string]string) *dict {
	d := newDict()
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d.set(k, entries[k])
	}
	return d
}

func (d *dict) set(k, v string) *dict {
	if _, ok := d.vals[k]; !ok {
		d.keys = append(d.keys, k)
	}
	d.vals[k] = v
	return d
}

func (d *dict) del(k string) {
	if _, ok := d.vals[k]; !ok {
		return
	}
	delete(d.vals, k)
	for i, kk := range d.keys {
		if kk == k {
			d.keys = append(d.keys[:i], d.keys[i+1:]...)
			break
		}
	}
}

func (d *dict) String() string {
	var b bytes.Buffer
	b.WriteString("<<")
	for _, k := range d.keys {
		b.WriteString(pdfName(k))
		b.WriteByte(' ')
		b.WriteString(d.vals[k])
	}
	b.WriteString(">>")
	return b.String()
}

// entry resolves key in dictionary v and refuses what an update would
// silently lose: a reference to an object the cross-reference data does
// not reach (for example objects only listed in a hybrid file's /XRefStm,
// which digitorus/pdf does not read), or a value of another kind than
// want. A missing key gives a Null value and no error.
func entry(v pdf.Value, key string, want pdf.ValueKind) (pdf.Value, error) {
	raw, ok := rawEntry(v, key)
	if !ok || !raw.IsValid() {
		return pdf.Value{}, nil
	}
	val := v.Key(key)
	if val.Kind() == pdf.Null {
		if r, isRef := rawRefV(raw); isRef {
			return pdf.Value{}, fmt.Errorf("%w: /%s points to object %d %d, which cannot be read", ErrInvalidPDF, key, r.num, r.gen)
		}
		return pdf.Value{}, nil // an explicit null
	}
	if val.Kind() != want {
		return pdf.Value{}, fmt.Errorf("%w: /%s is a %v, not a %v", ErrInvalidPDF, key, kindName(val.Kind()), kindName(want))
	}
	return val, nil
}

func kindName(k pdf.ValueKind) string {
	switch k {
	case pdf.Dict:
		return "dictionary"
	case pdf.Array:
		return "array"
	case pdf.Stream:
		return "stream"
	case pdf.Null:
		return "null"
	}
	return fmt.Sprintf("kind %d", int(k))
}
