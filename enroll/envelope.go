package enroll

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

// Envelope is what the holder's sealed envelope carries: the codes that
// unblock (PUK) and stop (ERC) the credential, and the identifiers to quote
// with them. Never the PIN: the holder chose it and nobody else knows it.
type Envelope struct {
	Number    string
	IUT       string
	PUK       string
	ERC       string
	Holder    string
	UserID    string
	Serial    string
	IssuedAt  string
	Italian   bool
	PortalURL string
}

// lines is the envelope's text, one PDF line each.
func (e Envelope) lines() []string {
	if e.Italian {
		return []string{
			"Busta PIN/PUK - sigillo firma remota",
			"",
			"Numero busta: " + e.Number,
			"Titolare: " + e.Holder,
			"UserID: " + e.UserID,
			"Numero di serie del certificato: " + e.Serial,
			"Emessa il: " + e.IssuedAt,
			"",
			"IUT (codice identificativo): " + e.IUT,
			"PUK (sblocco PIN): " + e.PUK,
			"ERC (codice di emergenza): " + e.ERC,
			"",
			"Conservi questo documento in un luogo sicuro.",
			"Con IUT ed ERC puo' sospendere o revocare il certificato",
			"senza accedere: " + e.PortalURL + "/portal/emergency",
			"Il PIN non e' riportato: lo conosce solo lei.",
		}
	}
	return []string{
		"PIN/PUK envelope - sigillo remote signature",
		"",
		"Envelope number: " + e.Number,
		"Holder: " + e.Holder,
		"UserID: " + e.UserID,
		"Certificate serial: " + e.Serial,
		"Issued: " + e.IssuedAt,
		"",
		"IUT (identifying code): " + e.IUT,
		"PUK (PIN unblock key): " + e.PUK,
		"ERC (emergency code): " + e.ERC,
		"",
		"Keep this document in a safe place.",
		"With the IUT and the ERC you can suspend or revoke the",
		"certificate without logging in: " + e.PortalURL + "/portal/emergency",
		"The PIN is not printed here: only you know it.",
	}
}

// pdfText escapes a line for a PDF literal string, keeping printable ASCII
// only (the standard Helvetica encoding is enough for our fixed texts;
// anything else would come from user input and is replaced).
func pdfText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// plainPDF writes a one-page A4 PDF with the lines in Helvetica: the
// smallest correct document (with an exact xref table) that pdfcpu can
// then encrypt.
func plainPDF(lines []string) []byte {
	var content bytes.Buffer
	content.WriteString("BT\n/F1 16 Tf\n56 780 Td\n")
	for i, l := range lines {
		if i == 1 {
			content.WriteString("/F1 12 Tf\n")
		}
		fmt.Fprintf(&content, "(%s) Tj\n0 -20 Td\n", pdfText(l))
	}
	content.WriteString("ET\n")
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", content.Len(), content.String()),
	}
	var out bytes.Buffer
	out.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = out.Len()
		fmt.Fprintf(&out, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := out.Len()
	fmt.Fprintf(&out, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&out, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&out, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return out.Bytes()
}

var pdfcpuOnce sync.Once

// EnvelopePDF renders the envelope and encrypts it with AES-256 under the
// holder's passphrase (user password). The owner password is random and
// thrown away: nobody, us included, can open it without the passphrase.
func EnvelopePDF(e Envelope, passphrase string) ([]byte, error) {
	// pdfcpu otherwise reads and writes a configuration directory in the
	// user's home: a server must not depend on that.
	pdfcpuOnce.Do(api.DisableConfigDir)
	var owner [24]byte
	if _, err := rand.Read(owner[:]); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	conf := model.NewAESConfiguration(passphrase, hex.EncodeToString(owner[:]), 256)
	conf.ValidationMode = model.ValidationRelaxed
	var out bytes.Buffer
	if err := api.Encrypt(bytes.NewReader(plainPDF(e.lines())), &out, conf); err != nil {
		return nil, fmt.Errorf("envelope: encrypt: %w", err)
	}
	return out.Bytes(), nil
}
