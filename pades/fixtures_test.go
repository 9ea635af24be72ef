package pades_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireTool fails under CI and skips loudly elsewhere when an external
// validator is missing.
func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed: %v", name, err)
		}
		t.Skipf("SKIPPING: %s not installed (%v); install it to run this validation", name, err)
	}
}

// pdfSpec describes a generated test PDF.
type pdfSpec struct {
	pages     int
	textField bool // an AcroForm with one text field, /DA and /DR
	padBytes  int  // size of an extra uncompressed content stream
}

// makePDF writes a small, valid PDF with a classic cross-reference table.
func makePDF(s pdfSpec) []byte {
	if s.pages < 1 {
		s.pages = 1
	}
	var b bytes.Buffer
	var offs []int
	obj := func(body string) {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offs), body)
	}
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	// 1 catalog, 2 pages, 3 font, 4 content, 5 pad, 6.. pages, then form.
	first := 6
	kids := []string{}
	for i := 0; i < s.pages; i++ {
		kids = append(kids, fmt.Sprintf("%d 0 R", first+i))
	}
	field := first + s.pages
	cat := "<< /Type /Catalog /Pages 2 0 R >>"
	if s.textField {
		cat = fmt.Sprintf("<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [%d 0 R] /DA (/Helv 0 Tf 0 g) /DR << /Font << /Helv 3 0 R >> >> >> >>", field)
	}
	obj(cat)
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), s.pages))
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
	content := "BT /F1 24 Tf 72 720 Td (sigillo test document) Tj ET"
	obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
	var pad bytes.Buffer
	for pad.Len() < s.padBytes {
		pad.WriteString("% padding line to make the document larger than it needs to be.......\n")
	}
	obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", pad.Len(), pad.Bytes()))
	for i := 0; i < s.pages; i++ {
		annots := ""
		if s.textField && i == 0 {
			annots = fmt.Sprintf(" /Annots [%d 0 R]", field)
		}
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents [4 0 R 5 0 R]%s >>", annots))
	}
	if s.textField {
		obj(fmt.Sprintf("<< /Type /Annot /Subtype /Widget /FT /Tx /T (customer) /V (Mario Rossi) /Rect [72 600 300 620] /P %d 0 R /F 4 /DA (/Helv 12 Tf 0 g) >>", first))
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f\r\n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n\r\n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>] >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref)
	return b.Bytes()
}

// qpdfConvert runs qpdf with args on the PDF and returns the output.
func qpdfConvert(t testing.TB, in []byte, args ...string) []byte {
	t.Helper()
	requireTool(t, "qpdf")
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "in.pdf"), filepath.Join(dir, "out.pdf")
	os.WriteFile(src, in, 0o600)
	cmd := exec.Command("qpdf", append(append(args, src), dst)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("qpdf %v: %v\n%s", args, err, out)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
