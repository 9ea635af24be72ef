package sam

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sigillo/sigillo/errs"
)

// Password rules, as reported to the user. CheckPassword lists every rule
// a password breaks.
const (
	RuleLength   = "at least 8 characters"
	RuleUpper    = "at least one upper-case letter"
	RuleLower    = "at least one lower-case letter"
	RuleDigit    = "at least one digit"
	RuleSpecial  = "at least one special character"
	RuleRepeated = "no more than two identical characters in a row"
)

// PasswordViolations returns the rules pw breaks, in a fixed order; nil
// means the password is acceptable.
func PasswordViolations(pw string) []string {
	var out []string
	if utf8.RuneCountInString(pw) < 8 {
		out = append(out, RuleLength)
	}
	var upper, lower, digit, special bool
	run, prev := 0, rune(-1)
	repeated := false
	for _, r := range pw {
		switch {
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r):
			special = true
		}
		if r == prev {
			run++
		} else {
			run, prev = 1, r
		}
		if run > 2 {
			repeated = true
		}
	}
	if !upper {
		out = append(out, RuleUpper)
	}
	if !lower {
		out = append(out, RuleLower)
	}
	if !digit {
		out = append(out, RuleDigit)
	}
	if !special {
		out = append(out, RuleSpecial)
	}
	if repeated {
		out = append(out, RuleRepeated)
	}
	return out
}

// CheckPassword returns an Invalid error listing every broken rule, or nil.
func CheckPassword(pw string) error {
	v := PasswordViolations(pw)
	if len(v) == 0 {
		return nil
	}
	return errs.Invalidf("Password does not meet the policy: %s", strings.Join(v, "; "))
}
