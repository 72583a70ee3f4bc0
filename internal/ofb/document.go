// Package ofb holds Open Finance Brasil value types shared by both sides of the journey.
package ofb

import "errors"

// Document validation errors; messages are client-facing.
var (
	ErrDocumentDigits = errors.New("must contain digits only")
	ErrDocumentLength = errors.New("must have 11 digits (CPF) or 14 digits (CNPJ)")
	ErrDocumentCheck  = errors.New("has invalid check digits")
)

// ValidateDocument checks a CPF (11 digits) or CNPJ (14 digits) given as digits
// only, including its two check digits. Sequences of one repeated digit pass the
// arithmetic but are not issued, so they are refused too.
func ValidateDocument(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return ErrDocumentDigits
		}
	}
	switch len(s) {
	case 11:
		if !ValidCPF(s) {
			return ErrDocumentCheck
		}
	case 14:
		if !ValidCNPJ(s) {
			return ErrDocumentCheck
		}
	default:
		return ErrDocumentLength
	}
	return nil
}

// ValidCPF reports whether s is 11 digits with valid CPF check digits.
func ValidCPF(s string) bool {
	if len(s) != 11 || !allDigits(s) || repeated(s) {
		return false
	}
	for _, n := range []int{9, 10} {
		sum := 0
		for i := 0; i < n; i++ {
			sum += int(s[i]-'0') * (n + 1 - i)
		}
		d := sum * 10 % 11
		if d == 10 {
			d = 0
		}
		if d != int(s[n]-'0') {
			return false
		}
	}
	return true
}

// ValidCNPJ reports whether s is 14 digits with valid CNPJ check digits.
func ValidCNPJ(s string) bool {
	if len(s) != 14 || !allDigits(s) || repeated(s) {
		return false
	}
	weights := []int{6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2}
	for _, n := range []int{12, 13} {
		sum := 0
		w := weights[13-n:]
		for i := 0; i < n; i++ {
			sum += int(s[i]-'0') * w[i]
		}
		d := 11 - sum%11
		if d >= 10 {
			d = 0
		}
		if d != int(s[n]-'0') {
			return false
		}
	}
	return true
}

// MaskDocument hides all but the first three and last two digits, for pages
// that must show who is consenting without exposing the whole document.
func MaskDocument(s string) string {
	if len(s) <= 5 {
		return "***"
	}
	b := []byte(s)
	for i := 3; i < len(b)-2; i++ {
		b[i] = '*'
	}
	return string(b)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func repeated(s string) bool {
	for i := 1; i < len(s); i++ {
		if s[i] != s[0] {
			return false
		}
	}
	return true
}
