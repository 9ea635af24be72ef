package loadtest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// account is one provisioned user with one credential.
type account struct {
	Username, Password, UserID string
	CredentialID, PIN          string
	Cert                       *x509.Certificate // from enrollment; replaced by credentials/info at set-up
	OTP                        *otp.Key          // nil when the credential has no OTP

	lastStep int64 // TOTP step last used (authorize-sign); guarded by the pool
}

// totpCode returns the code for time t and its step number.
func (a *account) totpCode(t time.Time) (string, int64, error) {
	period := a.OTP.Period()
	if period == 0 {
		period = 30
	}
	code, err := totp.GenerateCodeCustom(a.OTP.Secret(), t, totp.ValidateOpts{
		Period: uint(period), Digits: a.OTP.Digits(), Algorithm: a.OTP.Algorithm(),
	})
	if err != nil {
		return "", 0, fmt.Errorf("TOTP for %s: %w", a.Username, err)
	}
	return code, t.Unix() / int64(period), nil
}

// credSpec says what credentials a scenario needs.
type credSpec struct {
	KeyAlgo   string
	OTP       string // totp | none
	SCAL      int
	Multisign int
	// Domain, when set, makes automatic-signature credentials in that
	// domain, aliased by username.
	Domain string
}

// provision creates n users with one credential each through the operator
// API, a few at a time (each costs server-side password hashing and an HSM
// key generation), reporting progress to w.
func provision(ctx context.Context, c *client, adminToken, runID string, n int, spec credSpec, w io.Writer) ([]*account, error) {
	accts := make([]*account, n)
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
		errOnce    sync.Once
		firstErr   error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	par := min(n, 4)
	start := time.Now()
	lastPrint := time.Now()
	var printMu sync.Mutex
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				a, err := provisionOne(ctx, c, adminToken, fmt.Sprintf("lt-%s-%d", runID, i), spec)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				accts[i] = a
				d := done.Add(1)
				printMu.Lock()
				if w != nil && (d == int64(n) || time.Since(lastPrint) > time.Second) {
					lastPrint = time.Now()
					fmt.Fprintf(w, "provisioning: %d/%d users with %s credentials (%.1fs)\n", d, n, spec.KeyAlgo, time.Since(start).Seconds())
				}
				printMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("provision: %w", firstErr)
	}
	return accts, nil
}

func provisionOne(ctx context.Context, c *client, adminToken, username string, spec credSpec) (*account, error) {
	a := &account{Username: username, Password: newPassword(), PIN: newPIN()}
	var u newUserResp
	err := c.post(ctx, adminUsersPath, bearer(adminToken), newUserReq{
		Username: username, Password: a.Password,
		Email: username + "@loadtest.invalid", Phone: "+39300" + digits(7),
		GivenName: "Load", Surname: "Test", FiscalCode: fiscalCode(),
	}, &u)
	if err != nil {
		return nil, fmt.Errorf("create user %s: %w", username, err)
	}
	a.UserID = u.UserID
	var cr newCredResp
	err = c.post(ctx, adminCredsPath, bearer(adminToken), newCredReq{
		UserID: u.UserID, PIN: a.PIN, KeyAlgo: spec.KeyAlgo, OTP: spec.OTP, SCAL: spec.SCAL, Multisign: spec.Multisign,
		Domain: spec.Domain, Alias: aliasOf(spec, username),
	}, &cr)
	if err != nil {
		return nil, fmt.Errorf("create credential for %s: %w", username, err)
	}
	if cr.CredentialID == "" || len(cr.Certificates) == 0 {
		return nil, fmt.Errorf("create credential for %s: %w: no credentialID or certificate", username, errDecode)
	}
	a.CredentialID = cr.CredentialID
	if a.Cert, err = parseCertB64(cr.Certificates[0]); err != nil {
		return nil, fmt.Errorf("credential %s: %w", cr.CredentialID, err)
	}
	if spec.OTP == "totp" {
		switch {
		case cr.OTPURI != "":
			if a.OTP, err = otp.NewKeyFromURL(cr.OTPURI); err != nil {
				return nil, fmt.Errorf("credential %s: otpURI: %w", cr.CredentialID, err)
			}
		case cr.OTPSecret != "":
			// Defaults of RFC 6238 authenticator apps.
			a.OTP, _ = otp.NewKeyFromURL("otpauth://totp/sigillo:" + username + "?secret=" + cr.OTPSecret + "&period=30&digits=6&algorithm=SHA1")
		default:
			return nil, fmt.Errorf("credential %s: %w: no otpSecret for a TOTP credential", cr.CredentialID, errDecode)
		}
	}
	return a, nil
}

func aliasOf(spec credSpec, username string) string {
	if spec.Domain == "" {
		return ""
	}
	return username
}

// newPassword returns a random password that meets sigillo's policy
// (≥8 chars, upper, lower, digit, special, no three identical in a row):
// every class present, and no character equal to the one before it.
func newPassword() string {
	classes := []string{"ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnpqrstuvwxyz", "23456789", "!#%+-.:=?@_"}
	out := make([]byte, 0, 20)
	for i := range 20 {
		set := classes[i%len(classes)]
		for {
			ch := set[randInt(len(set))]
			if len(out) == 0 || out[len(out)-1] != ch {
				out = append(out, ch)
				break
			}
		}
	}
	return string(out)
}

// newPIN returns 8 random digits with no digit equal to the one before it
// (so no repeated or trivially weak PIN is refused by a policy).
func newPIN() string {
	out := make([]byte, 0, 8)
	for len(out) < 8 {
		ch := byte('0' + randInt(10))
		if len(out) > 0 && (out[len(out)-1] == ch || out[len(out)-1]+1 == ch) {
			continue
		}
		out = append(out, ch)
	}
	return string(out)
}

// fiscalCode returns a random code shaped like an Italian codice fiscale
// (6 letters, 2 digits, letter, 2 digits, letter, 3 digits, letter): a
// qualified certificate carries it as the subject's serialNumber.
func fiscalCode() string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	var b strings.Builder
	for _, class := range "LLLLLLDDLDDLDDDL" {
		if class == 'L' {
			b.WriteByte(letters[randInt(len(letters))])
		} else {
			b.WriteByte(byte('0' + randInt(10)))
		}
	}
	return b.String()
}

func digits(n int) string {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte('0' + randInt(10))
	}
	return string(out)
}

func randInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(err) // crypto/rand never fails (Go 1.24+)
	}
	return int(v.Int64())
}
