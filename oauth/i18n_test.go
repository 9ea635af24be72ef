package oauth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/sigillo/sigillo/errs"
	"github.com/sigillo/sigillo/sam"
)

func msgOf(err error) string {
	e, _ := errs.As(err)
	return e.Msg
}

// TestItalianCoversEveryText: every text the templates translate and
// every message the handlers put on a page (titles, errors, notices, the
// request checks shown on the error page, sam's refusals) has Italian.
func TestItalianCoversEveryText(t *testing.T) {
	var texts []string
	quoted := `"((?:[^"\\]|\\.)*)"`
	tmplRE := regexp.MustCompile(`\.(?:T|Tf) ` + quoted + `|\.Tn ` + quoted + ` ` + quoted)
	files, _ := filepath.Glob("templates/*.html")
	if len(files) == 0 {
		t.Fatal("no templates")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range tmplRE.FindAllStringSubmatch(string(b), -1) {
			for _, s := range m[1:] {
				if s != "" {
					texts = append(texts, s)
				}
			}
		}
	}
	goRE := regexp.MustCompile(`(?:errorPage\(c, [^,]+, |Title: |v\.Error = |v\.Error = [^"\n]*|v\.Flash = |page\(|desc: )` + quoted)
	for _, f := range []string{"pages.go", "request.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goRE.FindAllStringSubmatch(string(b), -1) {
			texts = append(texts, m[1])
		}
	}
	if len(texts) < 40 {
		t.Fatalf("found only %d texts: the patterns no longer match the sources", len(texts))
	}
	for _, e := range []error{sam.ErrAuthentication, sam.ErrPasswordChange, sam.ErrUserDisabled, sam.ErrInvalidPIN,
		sam.ErrInvalidOTP, sam.ErrPINLocked, sam.ErrOTPLocked, sam.ErrDisabled, sam.ErrNotActivated, sam.ErrTooMany,
		sam.ErrOTPUnavailable} {
		texts = append(texts, msgOf(e))
	}
	for _, s := range texts {
		if _, ok := it[s]; !ok {
			t.Errorf("no Italian for %q", s)
		}
	}
}

// TestLang: the CSC lang parameter wins over the browser's preference.
func TestLang(t *testing.T) {
	for _, tc := range []struct{ param, accept, want string }{
		{"", "", "en"},
		{"", "it-IT,it;q=0.9,en;q=0.8", "it"},
		{"", "en-GB,it;q=0.5", "en"},
		{"it", "en", "it"},
		{"it-IT", "", "it"},
		{"en-US", "it", "en"},
		{"de", "", "en"},
	} {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.accept != "" {
			c.Request.Header.Set("Accept-Language", tc.accept)
		}
		if got := lang(c, &authRequest{Lang: tc.param}); got != tc.want {
			t.Errorf("lang %q, Accept-Language %q: %s, want %s", tc.param, tc.accept, got, tc.want)
		}
	}
	v := &view{Lang: "it"}
	if got := v.Tn("Authorize %d signature", "Authorize %d signatures", 1); got != "Autorizza 1 firma" {
		t.Errorf("singular: %q", got)
	}
	if got := v.Tn("Authorize %d signature", "Authorize %d signatures", 3); got != "Autorizza 3 firme" {
		t.Errorf("plural: %q", got)
	}
	if got := (&view{Lang: "en"}).T("Sign in"); got != "Sign in" {
		t.Errorf("English: %q", got)
	}
}
