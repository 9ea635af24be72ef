package enroll

import (
	"strings"
	"testing"
)

func FuzzValidFiscalCode(f *testing.F) {
	for _, s := range []string{"RSSMRA80A01H501U", "RSSMRA80A01H501X", "", "ÀÈÌ", "RSSMRA80A01H50\x00U"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidFiscalCode(s) && (len(s) != 16 || strings.ToUpper(s) != s) {
			t.Fatalf("accepted %q", s)
		}
	})
}

// The envelope text comes partly from the holder (names): whatever it is,
// it must stay inside its PDF string literal.
func FuzzPDFText(f *testing.F) {
	for _, s := range []string{"Mario (Rossi)", `back\slash`, ") Tj ET BT (", "Žofia Ł", "\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := pdfText(s)
		depth, esc := 0, false
		for _, r := range out {
			if r < 0x20 || r > 0x7e {
				t.Fatalf("non-printable %q in %q", r, out)
			}
			switch {
			case esc:
				esc = false
			case r == '\\':
				esc = true
			case r == '(' || r == ')':
				depth++
			}
		}
		if depth != 0 || esc {
			t.Fatalf("unescaped delimiter in %q", out)
		}
	})
}
