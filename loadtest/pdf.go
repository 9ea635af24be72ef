package loadtest

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"go.mozilla.org/pkcs7"
)

// MinimalPDF returns a valid one-page PDF 1.7 of exactly size bytes (at
// least 1 KiB): a text line, then comment lines in the page's content
// stream to reach the size. Comments are legal content-stream syntax, so
// viewers and validators see a normal page, and the signer must hash every
// byte.
func MinimalPDF(size int) ([]byte, error) {
	if size < 1024 {
		return nil, fmt.Errorf("minimal PDF: size %d below 1024 bytes", size)
	}
	build := func(filler int) []byte {
		var content bytes.Buffer
		content.WriteString("BT /F1 24 Tf 72 760 Td (sigillo load test) Tj ET\n")
		line := "% sigillo load-test filler: this line pads the content stream to the requested size.\n"
		for filler > 0 {
			if filler >= len(line) {
				content.WriteString(line)
				filler -= len(line)
				continue
			}
			if filler >= 2 {
				content.WriteString("%" + string(bytes.Repeat([]byte("x"), filler-2)) + "\n")
			} else {
				content.WriteString("\n")
			}
			filler = 0
		}
		var b bytes.Buffer
		var offs []int
		obj := func(body string) {
			offs = append(offs, b.Len())
			fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offs), body)
		}
		b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
		obj("<< /Type /Catalog /Pages 2 0 R >>")
		obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
		obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>")
		obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
		obj(fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", content.Len(), content.Bytes()))
		xref := b.Len()
		fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offs)+1)
		for _, o := range offs {
			fmt.Fprintf(&b, "%010d 00000 n \n", o)
		}
		fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref)
		return b.Bytes()
	}
	// The /Length digits grow with the filler; converge in a few rounds.
	filler := 0
	for range 8 {
		n := len(build(filler))
		if n == size {
			return build(filler), nil
		}
		filler += size - n
		if filler < 0 {
			return nil, fmt.Errorf("minimal PDF: size %d too small", size)
		}
	}
	return nil, fmt.Errorf("minimal PDF: could not reach exactly %d bytes", size)
}

var byteRangeRE = regexp.MustCompile(`^/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]`)

// oidTimeStampToken is id-aa-signatureTimeStampToken (RFC 3161 in CMS).
var oidTimeStampToken = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}

// VerifySignedPDF checks a PAdES result independently of sigillo's PDF
// code: signed must be an incremental update of orig, its last signature's
// /ByteRange must cover the whole file but the /Contents hole, and the CMS
// there must verify over those bytes with cert as its signer. With
// wantTimestamp (B-T) the signer must carry a signature time-stamp token.
func VerifySignedPDF(orig, signed []byte, cert *x509.Certificate, wantTimestamp bool) error {
	if !bytes.HasPrefix(signed, orig) {
		return errors.New("signed PDF is not an incremental update of the original")
	}
	// The last signature is near the end: look there, not through the
	// whole document with a regular expression.
	at := bytes.LastIndex(signed, []byte("/ByteRange"))
	if at < 0 {
		return errors.New("no /ByteRange in the signed PDF")
	}
	m := byteRangeRE.FindSubmatch(signed[at:min(len(signed), at+200)])
	if m == nil {
		return errors.New("malformed /ByteRange in the signed PDF")
	}
	var br [4]int
	for i := range br {
		v, err := strconv.Atoi(string(m[i+1]))
		if err != nil {
			return fmt.Errorf("/ByteRange: %w", err)
		}
		br[i] = v
	}
	a, b, c, d := br[0], br[1], br[2], br[3]
	if a != 0 || b <= 0 || c <= a+b || c+d != len(signed) {
		return fmt.Errorf("/ByteRange %v does not cover the %d-byte file", br, len(signed))
	}
	hole := bytes.TrimSpace(signed[a+b : c])
	if len(hole) < 2 || hole[0] != '<' || hole[len(hole)-1] != '>' {
		return errors.New("/Contents is not a hex string at the /ByteRange hole")
	}
	padded, err := hex.DecodeString(string(hole[1 : len(hole)-1]))
	if err != nil {
		return fmt.Errorf("/Contents: %w", err)
	}
	var rv asn1.RawValue // cut the zero padding after the DER
	if _, err := asn1.Unmarshal(padded, &rv); err != nil {
		return fmt.Errorf("/Contents: %w", err)
	}
	p7, err := pkcs7.Parse(rv.FullBytes)
	if err != nil {
		return fmt.Errorf("CMS: %w", err)
	}
	p7.Content = append(append([]byte{}, signed[a:a+b]...), signed[c:c+d]...)
	if err := p7.Verify(); err != nil {
		return fmt.Errorf("CMS: %w", err)
	}
	if s := p7.GetOnlySigner(); s == nil || !s.Equal(cert) {
		return errors.New("CMS signer is not the credential's certificate")
	}
	if wantTimestamp {
		for _, a := range p7.Signers[0].UnauthenticatedAttributes {
			if a.Type.Equal(oidTimeStampToken) {
				return nil
			}
		}
		return errors.New("B-T signature without a signature time-stamp token")
	}
	return nil
}
