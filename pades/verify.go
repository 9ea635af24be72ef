package pades

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/digitorus/pdf"

	"github.com/sigillo/sigillo/cms"
)

// SignatureInfo describes one signature or document time-stamp found in a
// PDF and the result of checking it.
type SignatureInfo struct {
	Field     string
	Type      string // "Sig" or "DocTimeStamp"
	SubFilter string
	ByteRange [4]int64
	// CoversWholeFile: the ByteRange ends at the end of the file (true for
	// the last signature of a file without later updates).
	CoversWholeFile bool
	// SigningTime is /M (claimed, not trusted).
	SigningTime time.Time
	// CMS is the parsed /Contents (the time-stamp token for a
	// DocTimeStamp).
	CMS *cms.Parsed
	// Timestamp is the signature-time-stamp (B-T) of a signature, or the
	// token of a DocTimeStamp; nil if absent.
	Timestamp *cms.TimestampInfo
	// Err is nil when the ByteRange, the digest and the signature (or
	// token) check out. It says nothing about trust in the certificates.
	Err error
}

// Verify finds every signature field of the PDF and checks each signature
// cryptographically: ByteRange well formed (starts at 0, the gap is exactly
// the /Contents hex string), CMS signature and message digest (PAdES /
// PKCS#7 detached), or time-stamp imprint (document time-stamps). It
// returns an error only if the PDF cannot be read.
func Verify(in io.ReaderAt, size int64) ([]SignatureInfo, error) {
	d, err := openDocument(in, size)
	if err != nil {
		return nil, err
	}
	_, sigs, err := d.fields()
	if err != nil {
		return nil, err
	}
	var out []SignatureInfo
	for _, s := range sigs {
		if s.v.Kind() != pdf.Dict {
			continue
		}
		out = append(out, d.checkSignature(s))
	}
	return out, nil
}

func (d *document) checkSignature(s sigField) (si SignatureInfo) {
	defer func() {
		if r := recover(); r != nil {
			si.Err = fmt.Errorf("%w: %v", ErrInvalidPDF, r)
		}
	}()
	v := s.v
	si = SignatureInfo{Field: s.name, Type: v.Key("Type").Name(), SubFilter: v.Key("SubFilter").Name()}
	if si.Type == "" {
		si.Type = "Sig"
	}
	if m := v.Key("M").Text(); m != "" {
		si.SigningTime, _ = parsePDFDate(m)
	}
	br := v.Key("ByteRange")
	if br.Len() != 4 {
		si.Err = errors.New("ByteRange is not four integers")
		return si
	}
	for i := range si.ByteRange {
		si.ByteRange[i] = br.Index(i).Int64()
	}
	b := si.ByteRange
	if b[0] != 0 || b[1] <= 0 || b[2] <= b[1]+1 || b[3] < 0 || b[2]+b[3] > d.size {
		si.Err = fmt.Errorf("ByteRange %v does not fit a %d-byte file", b, d.size)
		return si
	}
	si.CoversWholeFile = b[2]+b[3] == d.size
	gap := make([]byte, b[2]-b[1])
	if _, err := d.ra.ReadAt(gap, b[1]); err != nil {
		si.Err = fmt.Errorf("read /Contents: %w", err)
		return si
	}
	if gap[0] != '<' || gap[len(gap)-1] != '>' {
		si.Err = errors.New("ByteRange gap is not exactly the /Contents hex string")
		return si
	}
	der := make([]byte, hex.DecodedLen(len(gap)-2))
	if _, err := hex.Decode(der, gap[1:len(gap)-1]); err != nil {
		si.Err = fmt.Errorf("/Contents is not hex: %w", err)
		return si
	}
	if !bytes.Equal(bytes.TrimRight(der, "\x00"), bytes.TrimRight([]byte(v.Key("Contents").RawString()), "\x00")) {
		si.Err = errors.New("ByteRange gap is not this dictionary's /Contents")
		return si
	}
	p, err := cms.Parse(der)
	if err != nil {
		si.Err = err
		return si
	}
	si.CMS = p
	digest := func(h interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}) ([]byte, error) {
		if _, err := io.Copy(h, io.NewSectionReader(d.ra, b[0], b[1])); err != nil {
			return nil, err
		}
		if _, err := io.Copy(h, io.NewSectionReader(d.ra, b[2], b[3])); err != nil {
			return nil, err
		}
		return h.Sum(nil), nil
	}
	if si.Type == "DocTimeStamp" || si.SubFilter == "ETSI.RFC3161" {
		ti, err := cms.ParseTimestampToken(der)
		if err != nil {
			si.Err = err
			return si
		}
		si.Timestamp = ti
		got, err := digest(ti.Hash.New())
		if err != nil {
			si.Err = err
			return si
		}
		if !bytes.Equal(got, ti.HashedMessage) {
			si.Err = fmt.Errorf("%w: document time-stamp imprint does not match the ByteRange", cms.ErrDigestMismatch)
		}
		return si
	}
	got, err := digest(p.Hash.New())
	if err != nil {
		si.Err = err
		return si
	}
	if si.Err = p.Verify(got); si.Err != nil {
		return si
	}
	if _, ok := p.UnsignedAttr(cms.OIDAttrSignatureTST); ok {
		si.Timestamp, si.Err = p.SignatureTimestamp()
	}
	return si
}

func parsePDFDate(s string) (time.Time, error) {
	if len(s) >= 2 && s[:2] == "D:" {
		s = s[2:]
	}
	if len(s) < 14 {
		return time.Time{}, fmt.Errorf("short date %q", s)
	}
	t, err := time.Parse("20060102150405", s[:14])
	if err != nil {
		return time.Time{}, err
	}
	rest := s[14:]
	if len(rest) >= 6 && (rest[0] == '+' || rest[0] == '-') {
		var hh, mm int
		fmt.Sscanf(rest[1:3], "%d", &hh)
		fmt.Sscanf(rest[4:6], "%d", &mm)
		off := time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute
		if rest[0] == '+' {
			off = -off
		}
		t = t.Add(off)
	}
	return t.UTC(), nil
}
