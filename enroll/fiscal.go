package enroll

import "regexp"

// reFiscal is the shape of an Italian fiscal code for a person (omocodia
// letters allowed in the digit positions).
var reFiscal = regexp.MustCompile(`^[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$`)

// oddValues are the check-character weights of characters in odd
// (1-based) positions; even positions use the plain 0..25 / 0..9 value.
var oddValues = [36]int{
	// 0-9
	1, 0, 5, 7, 9, 13, 15, 17, 19, 21,
	// A-Z
	1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
}

// ValidFiscalCode reports whether cf (upper case) is a well-formed Italian
// personal fiscal code with the right check character. A typo in a fiscal
// code would put a wrong identity in a qualified certificate, so we refuse
// it at the form rather than at the operator's desk.
func ValidFiscalCode(cf string) bool {
	if !reFiscal.MatchString(cf) {
		return false
	}
	sum := 0
	for i := 0; i < 15; i++ {
		ch := cf[i]
		var idx, plain int
		if ch >= '0' && ch <= '9' {
			idx, plain = int(ch-'0'), int(ch-'0')
		} else {
			idx, plain = 10+int(ch-'A'), int(ch-'A')
		}
		if i%2 == 0 { // odd position (1-based)
			sum += oddValues[idx]
		} else {
			sum += plain
		}
	}
	return cf[15] == byte('A'+sum%26)
}
