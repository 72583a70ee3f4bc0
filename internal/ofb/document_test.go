package ofb

import (
	"errors"
	"testing"
)

func TestValidateDocument(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"47742663023", nil},    // the seed's example CPF
		{"52998224725", nil},    // CPF
		{"11222333000181", nil}, // CNPJ
		{"04252011000110", nil}, // CNPJ
		{"47742663024", ErrDocumentCheck},
		{"47742663003", ErrDocumentCheck}, // first check digit wrong
		{"11222333000182", ErrDocumentCheck},
		{"11222333000191", ErrDocumentCheck},
		{"11111111111", ErrDocumentCheck}, // passes the arithmetic, never issued
		{"00000000000000", ErrDocumentCheck},
		{"4774266302", ErrDocumentLength},
		{"477426630231", ErrDocumentLength},
		{"", ErrDocumentLength},
		{"477.426.630-23", ErrDocumentDigits},
		{"4774266302a", ErrDocumentDigits},
		{"４7742663023", ErrDocumentDigits}, // full-width digit
	}
	for _, tt := range tests {
		if got := ValidateDocument(tt.in); !errors.Is(got, tt.want) {
			t.Errorf("ValidateDocument(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestMaskDocument(t *testing.T) {
	if got, want := MaskDocument("47742663023"), "477******23"; got != want {
		t.Errorf("MaskDocument = %q, want %q", got, want)
	}
	if got := MaskDocument("123"); got != "***" {
		t.Errorf("MaskDocument(short) = %q", got)
	}
}

// FuzzValidateDocument checks the validator never panics and agrees with its
// own definition: accepted documents are 11 or 14 ASCII digits whose check
// digits recompute.
func FuzzValidateDocument(f *testing.F) {
	for _, s := range []string{"47742663023", "11222333000181", "", "abc", "00000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateDocument(s)
		if err != nil {
			return
		}
		if (len(s) != 11 && len(s) != 14) || !allDigits(s) {
			t.Fatalf("accepted %q", s)
		}
		if len(s) == 11 && !ValidCPF(s) || len(s) == 14 && !ValidCNPJ(s) {
			t.Fatalf("accepted %q with bad check digits", s)
		}
		// Changing the last digit must break validity.
		b := []byte(s)
		b[len(b)-1] = '0' + (b[len(b)-1]-'0'+1)%10
		if ValidateDocument(string(b)) == nil {
			t.Fatalf("accepted both %q and %q", s, b)
		}
	})
}
