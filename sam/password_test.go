package sam_test

import (
	"reflect"
	"testing"

	"github.com/sigillo/sigillo/sam"
)

func TestPasswordPolicy(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		want []string
	}{
		{"good", "Corr3ct-Horse", nil},
		{"good_unicode_special", "Pässw0rd€x", nil},
		{"two_identical_in_a_row_allowed", "Aa11--bbC", nil},
		{"too_short", "Ab1-x", []string{sam.RuleLength}},
		{"no_upper", "corr3ct-horse", []string{sam.RuleUpper}},
		{"no_lower", "CORR3CT-HORSE", []string{sam.RuleLower}},
		{"no_digit", "Correct-Horse", []string{sam.RuleDigit}},
		{"no_special", "Corr3ctHorse", []string{sam.RuleSpecial}},
		{"three_identical", "Corr3ct-Hooorse", []string{sam.RuleRepeated}},
		{"three_identical_digits", "Abc-1112x", []string{sam.RuleRepeated}},
		{"empty_breaks_all_but_repeat", "", []string{sam.RuleLength, sam.RuleUpper, sam.RuleLower, sam.RuleDigit, sam.RuleSpecial}},
		{"every_rule", "aaa", []string{sam.RuleLength, sam.RuleUpper, sam.RuleDigit, sam.RuleSpecial, sam.RuleRepeated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sam.PasswordViolations(tt.pw)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PasswordViolations(%q) = %q, want %q", tt.pw, got, tt.want)
			}
			if err := sam.CheckPassword(tt.pw); (err == nil) != (tt.want == nil) {
				t.Errorf("CheckPassword(%q) = %v", tt.pw, err)
			}
		})
	}
}
