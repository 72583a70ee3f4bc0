package customers

import "testing"

func TestAccountLabel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		accountType, issuer, number, want string
	}{
		{TypeCACC, "0001", "1234567", "Conta corrente · ag. 0001 · conta 1234567"},
		{TypeSVGS, "0001", "7654321", "Conta poupança · ag. 0001 · conta 7654321"},
		{TypeTRAN, "", "99887766", "Conta de pagamento · conta 99887766"},
		{TypeTRAN, "0002", "1", "Conta de pagamento · ag. 0002 · conta 1"},
		{"SLRY", "0001", "5", "SLRY · ag. 0001 · conta 5"},
	}
	for _, tt := range tests {
		if got := AccountLabel(tt.accountType, tt.issuer, tt.number); got != tt.want {
			t.Errorf("AccountLabel(%q, %q, %q) = %q, want %q", tt.accountType, tt.issuer, tt.number, got, tt.want)
		}
	}
}
