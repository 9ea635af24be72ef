package portal

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/sigillo/sigillo/enroll"
)

// Every message key the templates name literally, and every key built
// from a known set of values, has an English and an Italian text.
func TestDictionaryCoversTemplates(t *testing.T) {
	re := regexp.MustCompile(`T "([a-z_.A-Z0-9-]+)"`)
	keys := map[string]bool{}
	err := fs.WalkDir(assets, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			keys[m[1]] = true
		}
		// Labels and helps passed to the field partials.
		for _, m := range regexp.MustCompile(`"(?:Label|Help)" "([a-z_.A-Z0-9-]+)"`).FindAllStringSubmatch(string(b), -1) {
			keys[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"valid", "suspended", "revoked", "expired"} {
		keys["status."+s] = true
	}
	for _, s := range []string{"sms", "totp", "none"} {
		keys["otp.type."+s] = true
	}
	for _, s := range []string{"pending", "approved", "rejected", "issued", "issuing"} {
		keys["request.status."+s] = true
	}
	for _, s := range []string{"authorize", "sign", "extend"} {
		keys["history."+s] = true
	}
	for _, m := range enroll.Methods {
		keys["method."+m] = true
	}
	for _, d := range enroll.DocTypes {
		keys["doc."+d] = true
	}
	for _, c := range enroll.Countries {
		keys["country."+c] = true
	}
	for _, k := range []string{"required", "too_long", "email_format", "email_taken", "password_policy", "mismatch", "country",
		"consent_required", "fiscal_code", "phone_format", "date_format", "underage", "expired", "choice", "doc_number",
		"pin_format", "passphrase_policy", "acceptance", "otp_format", "puk_format", "confirm", "bound", "invalid_otp",
		"invalid_new_otp", "doc_foreign", "form", "csrf", "internal", "no_credential"} {
		keys["err."+k] = true
	}
	for _, f := range []string{"otp_sent", "verified", "password_changed", "issued", "pin_changed", "pin_unblocked", "activated",
		"reactivated", "renewed", "suspended", "revoked", "otp_ok", "phone_changed", "emergency_suspend", "emergency_revoke", "totp_enrolled"} {
		keys["flash."+f] = true
	}
	for k := range keys {
		for _, l := range []string{"en", "it"} {
			if strings.TrimSpace(dict[l][k]) == "" {
				t.Errorf("%s: no %s text", k, l)
			}
		}
	}
	if len(keys) < 150 {
		t.Fatalf("only %d keys found: the scan is broken", len(keys))
	}
}
