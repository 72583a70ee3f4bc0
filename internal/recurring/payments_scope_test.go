package recurring

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestTokenConsents: both scope forms name a recurring consent; Ponte's
// consent:{id} only for recurring consent ids; the payment's consent must
// be one the token names.
func TestTokenConsents(t *testing.T) {
	const a, b = IDPrefix + "5ad82a8f-37e5-4369-a1a3-be4b1fb9c034", IDPrefix + "9b0f5f5e-8d0e-4c1b-b1a7-3f0b6f2f4c11"
	tests := []struct {
		scopes    []string
		requested string
		want      string
		wantErr   bool
	}{
		{scopes: []string{"openid", "recurring-payments", "recurring-consent:" + a}, want: a},
		{scopes: []string{"openid", "recurring-payments", "consent:" + a}, want: a},
		{scopes: []string{"recurring-payments", "recurring-consent:" + a}, requested: a, want: a},
		{scopes: []string{"recurring-payments", "recurring-consent:" + a}, requested: b, wantErr: true},
		{scopes: []string{"recurring-payments"}, wantErr: true}, // client_credentials
		{scopes: []string{"payments", "consent:urn:ponte:5ad82a8f-37e5-4369-a1a3-be4b1fb9c034"}, wantErr: true},
		{scopes: []string{"recurring-consent:" + a, "recurring-consent:" + b}, wantErr: true}, // which one?
		{scopes: []string{"recurring-consent:" + a, "recurring-consent:" + b}, requested: b, want: b},
		{scopes: []string{"recurring-consent:"}, wantErr: true},
	}
	for _, tc := range tests {
		got, err := tokenConsent(tokenConsents(tc.scopes), tc.requested)
		if tc.wantErr != errors.Is(err, ErrTokenConsent) || (!tc.wantErr && got != tc.want) {
			t.Errorf("scopes %v, requested %q: %q %v", tc.scopes, tc.requested, got, err)
		}
	}
	if got := tokenConsents([]string{"consent:" + a, "recurring-consent:" + b}); !slices.Equal(got, []string{a, b}) {
		t.Errorf("tokenConsents = %v", got)
	}
}

// TestLimitWindows: the windows of a day are its ISO week from Monday, its
// month and its year.
func TestLimitWindows(t *testing.T) {
	for _, tc := range []struct{ day, week, month, year string }{
		{"2024-10-15", "2024-10-14", "2024-10-01", "2024-01-01"}, // Tuesday
		{"2024-10-14", "2024-10-14", "2024-10-01", "2024-01-01"}, // Monday
		{"2024-10-20", "2024-10-14", "2024-10-01", "2024-01-01"}, // Sunday
		{"2025-01-01", "2024-12-30", "2025-01-01", "2025-01-01"}, // a week across years
	} {
		d, _ := time.Parse("2006-01-02", tc.day)
		if w := windowsOf(d); w != (windows{tc.day, tc.week, tc.month, tc.year}) {
			t.Errorf("%s: %+v", tc.day, w)
		}
	}
}

// TestCents: amounts are exact integer cents.
func TestCents(t *testing.T) {
	for in, want := range map[string]int64{"0.01": 1, "1000.00": 100000, "5320.47": 532047, "9999999999999999.99": 999999999999999999} {
		if got, ok := Cents(in); !ok || got != want {
			t.Errorf("Cents(%q) = %d %v", in, got, ok)
		}
	}
	for _, in := range []string{"1", "1.0", "-1.00", "1.001", "", "1e3"} {
		if _, ok := Cents(in); ok {
			t.Errorf("Cents(%q) accepted", in)
		}
	}
}
