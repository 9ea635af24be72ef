package smtpmail

import (
	"bytes"
	"mime"
	"net/mail"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sigillo/sigillo/enroll"
)

// FuzzCompose: whatever the recipient, subject, body and attachment name,
// compose either refuses or writes a message that parses back with exactly
// our headers (no injected one), the same recipient and the same subject.
func FuzzCompose(f *testing.F) {
	f.Add("maria@example.test", "Your signature envelope E1", "body\n.\nend", "busta.pdf", true)
	f.Add("Maria Rossi <maria@example.test>", "Conferma — àè", "", "", false)
	f.Add("a@b.test", "hi\r\nBcc: x@y.test", "x", "a\"b.pdf", true)
	f.Add("a@b.test\r\nBcc: x@y.test", "s", "b", "n", false)
	from, _ := mail.ParseAddress("sigillo <noreply@sigillo.test>")
	f.Fuzz(func(t *testing.T, to, subject, body, name string, attach bool) {
		m := enroll.Mail{To: to, Subject: subject, Body: body, AttachmentName: name}
		if attach {
			m.Attachment = []byte("%PDF-1.7 x")
		}
		rcpt, err := mail.ParseAddress(to)
		if err != nil {
			return // Send refuses it before compose
		}
		msg, err := compose(m, from, rcpt, time.Unix(1_800_000_000, 0))
		if err != nil {
			return
		}
		parsed, err := mail.ReadMessage(bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("composed message does not parse: %v\n%q", err, msg)
		}
		var keys []string
		for k := range parsed.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := "Content-Transfer-Encoding,Content-Type,Date,From,Message-Id,Mime-Version,Subject,To"
		if attach {
			want = "Content-Type,Date,From,Message-Id,Mime-Version,Subject,To"
		}
		if got := strings.Join(keys, ","); got != want {
			t.Fatalf("headers %s, want %s\n%q", got, want, msg)
		}
		back, err := parsed.Header.AddressList("To")
		if err != nil || len(back) != 1 || back[0].Address != rcpt.Address {
			t.Fatalf("recipient %v (%v), want %s", back, err, rcpt.Address)
		}
		// Header parsing trims the ends of a value written as is (RFC
		// 5322 folding white space); everything else comes back as written.
		if s, err := new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject")); err != nil || (s != subject && s != strings.Trim(subject, " \t")) {
			t.Fatalf("subject %q (%v), want %q", s, err, subject)
		}
	})
}
