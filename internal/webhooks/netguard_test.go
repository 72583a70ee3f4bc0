package webhooks

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// fakeResolver answers from a map; unknown hosts do not resolve.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ips, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ips {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"93.184.216.34":            "",
		"8.8.8.8":                  "",
		"2606:4700:4700::1111":     "",
		"127.0.0.1":                "loopback",
		"127.255.0.9":              "loopback",
		"::1":                      "loopback",
		"::ffff:127.0.0.1":         "loopback",
		"10.0.0.1":                 "private",
		"172.16.5.4":               "private",
		"192.168.1.1":              "private",
		"fd00::1":                  "private",
		"169.254.169.254":          "link-local",
		"fe80::1":                  "link-local",
		"fe80::1%eth0":             "link-local",
		"0.0.0.0":                  "unspecified",
		"::":                       "unspecified",
		"0.1.2.3":                  "this-network",
		"224.0.0.1":                "multicast",
		"ff02::1":                  "multicast",
		"100.64.0.1":               "CGNAT (shared)",
		"100.127.255.254":          "CGNAT (shared)",
		"198.18.0.1":               "benchmarking",
		"192.0.2.10":               "documentation",
		"255.255.255.255":          "reserved",
		"240.0.0.1":                "reserved",
		"64:ff9b::7f00:1":          "loopback (via NAT64)",
		"64:ff9b::a9fe:a9fe":       "link-local (via NAT64)",
		"64:ff9b::5db8:d822":       "",
		"2002:7f00:1::1":           "loopback (via 6to4)",
		"::127.0.0.1":              "IPv4-compatible",
		"2001:db8::1":              "documentation",
		"2001:0:4136:e378::1":      "Teredo",
		"fec0::1":                  "site-local",
		"::ffff:169.254.169.254":   "link-local",
		"::ffff:10.1.2.3":          "private",
		"64:ff9b:1::a00:1":         "local NAT64",
		"100::1":                   "discard-only",
		"192.0.0.8":                "IETF protocol assignment",
		"203.0.113.7":              "documentation",
		"198.51.100.1":             "documentation",
		"2a00:1450:4001:82b::200e": "",
	}
	for ip, want := range tests {
		if got := classify(netip.MustParseAddr(ip)); got != want {
			t.Errorf("classify(%s) = %q, want %q", ip, got, want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	resolver := fakeResolver{
		"partner.example":   {"93.184.216.34"},
		"evil.example":      {"127.0.0.1"},
		"mixed.example":     {"93.184.216.34", "10.0.0.7"},
		"metadata.example":  {"169.254.169.254"},
		"v6only.example":    {"2606:4700:4700::1111"},
		"localhost.example": {"::1"},
	}
	prod := newNetGuard(false, resolver)
	sandbox := newNetGuard(true, resolver)
	tests := []struct {
		url         string
		prod, sandb string // "" accepted, else a substring of the message
	}{
		{"https://partner.example/hooks", "", ""},
		{"https://partner.example:8443/hooks?tenant=1", "", ""},
		{"https://v6only.example/h", "", ""},
		{"https://93.184.216.34/h", "", ""},
		{"http://partner.example/hooks", "must use https", ""},
		{"http://127.0.0.1:8080/hooks", "must use https", ""},
		{"https://127.0.0.1/hooks", "loopback", ""},
		{"https://10.0.0.1/hooks", "private", ""},
		{"https://169.254.169.254/latest/meta-data", "link-local", "link-local"},
		{"https://[::1]/hooks", "loopback", ""},
		{"https://[fe80::1%25eth0]/hooks", "link-local", "link-local"},
		{"https://[::ffff:127.0.0.1]/hooks", "loopback", ""},
		{"https://0.0.0.0/hooks", "unspecified", "unspecified"},
		{"https://100.64.1.1/hooks", "CGNAT", ""},
		{"https://evil.example/hooks", "loopback address (127.0.0.1)", ""},
		{"https://mixed.example/hooks", "private address (10.0.0.7)", ""},
		{"https://metadata.example/x", "link-local", ""}, // sandbox does not resolve; delivery refuses it
		{"https://localhost.example/x", "loopback", ""},
		{"https://nxdomain.example/x", "does not resolve", ""},
		{"https://user:pass@partner.example/hooks", "userinfo", "userinfo"},
		{"https://partner.example/hooks#frag", "fragment", "fragment"},
		{"https://partner.example/hooks#", "fragment", "fragment"},
		{"ftp://partner.example/x", "absolute https URL", "absolute https URL"},
		{"/relative/path", "absolute https URL", "absolute https URL"},
		{"https:///nohost", "absolute https URL", "absolute https URL"},
		{"mailto:ops@partner.example", "absolute https URL", "absolute https URL"},
		{"https://partner.example:99999/x", "port", "port"},
		{"", "must not be empty", "must not be empty"},
		{"https://partner.example/" + strings.Repeat("a", 2048), "at most 2048", "at most 2048"},
	}
	for _, tt := range tests {
		if got := prod.checkURL(context.Background(), tt.url); (tt.prod == "") != (got == "") || !strings.Contains(got, tt.prod) {
			t.Errorf("production checkURL(%.60q) = %q, want %q", tt.url, got, tt.prod)
		}
		if got := sandbox.checkURL(context.Background(), tt.url); (tt.sandb == "") != (got == "") || !strings.Contains(got, tt.sandb) {
			t.Errorf("sandbox checkURL(%.60q) = %q, want %q", tt.url, got, tt.sandb)
		}
	}
}

// TestDialControlRefusesActualAddress: the check runs on the socket being
// dialed, so a literal address or a resolver that changes its mind
// (rebinding) cannot reach a refused address.
func TestDialControlRefusesActualAddress(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	prod := newNetGuard(false, fakeResolver{"rebind.example": {"127.0.0.1"}})
	for _, addr := range []string{"127.0.0.1:" + port, "rebind.example:" + port, "[::ffff:127.0.0.1]:" + port} {
		conn, err := prod.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			conn.Close()
			t.Errorf("production dial %s connected", addr)
			continue
		}
		var ae *AddressError
		if !errors.Is(err, ErrForbiddenAddress) || !errors.As(err, &ae) || ae.Class != "loopback" {
			t.Errorf("production dial %s: %v, want a loopback refusal", addr, err)
		}
	}
	// The Control hook itself, as net.Dialer calls it.
	if err := prod.control("tcp4", "169.254.169.254:80", nil); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("control(metadata) = %v", err)
	}
	if err := prod.control("tcp4", "93.184.216.34:443", nil); err != nil {
		t.Errorf("control(public) = %v", err)
	}

	sandbox := newNetGuard(true, fakeResolver{"rebind.example": {"127.0.0.1"}})
	conn, err := sandbox.DialContext(context.Background(), "tcp", "rebind.example:"+port)
	if err != nil {
		t.Fatalf("sandbox dial to loopback: %v", err)
	}
	conn.Close()
	if err := sandbox.control("tcp4", "169.254.169.254:80", nil); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("sandbox allowed the metadata address: %v", err)
	}
}

func TestSignKnownAnswer(t *testing.T) {
	t.Parallel()
	// Example from the Standard Webhooks specification's reference libraries.
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	if s := FormatSecret(key); s != "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" {
		t.Errorf("FormatSecret round trip: %s", s)
	}
	two := signatureHeader([][]byte{key, []byte("old")}, "id", 1, []byte("{}"))
	if parts := strings.Split(two, " "); len(parts) != 2 || !strings.HasPrefix(parts[0], "v1,") || !strings.HasPrefix(parts[1], "v1,") {
		t.Errorf("two-key header %q", two)
	}
}

func TestContainsCardNumber(t *testing.T) {
	t.Parallel()
	refused := []string{
		`{"pan":"5555555555554444"}`,          // Mastercard test number
		`{"pan":4111111111111111}`,            // as a JSON number
		`{"x":"card 4111 1111 1111 1111 ok"}`, // grouped by spaces
		`{"x":"4111-1111-1111-1111"}`,         // grouped by dashes
		`{"amex":"378282246310005"}`,          // 15 digits
		`{"x":["6011111111111117"]}`,          // Discover, in an array
		`{"n":"2223003122003222"}`,            // Mastercard 2-series
		`{"nested":{"deep":{"v":"4000056655665556"}}}`,
		`{"amex":"3782 822463 10005"}`, // Amex grouping 4-6-5
	}
	for _, s := range refused {
		if !containsCardNumber([]byte(s)) {
			t.Errorf("not refused: %s", s)
		}
	}
	allowed := []string{
		`{"pan":"5555555555554445"}`,                    // fails Luhn
		`{"ts":1729018515000}`,                          // Unix ms (starts with 1)
		`{"id":"5e68b45d49104c40b3abec57c835120d"}`,     // hex id
		`{"id":"17307eb8-e9e6-4ce1-a14d-6f30923746f2"}`, // UUID
		`{"ref":"DWSPMC000000000132d72d4fcb2f4136a3e490b2b4d6b1df"}`,
		`{"id":"ab4111111111111111"}`, // glued to letters
		`{"lastFourDigits":"4444","status":"ACTIVE"}`,
		`{"amount":"1500.00","date":"2024-10-15T18:55:15Z"}`,
		`{"long":"41111111111111111111111"}`, // 23 digits: not a card length
		`{"x":"411111111111"}`,               // 12 digits
		// UUIDs whose hex happens to be all digits: grouped 8-4-4-4-12, not like a card.
		`{"id":"52042477-5000-1471-a123-456789abcdef"}`,
		`{"id":"a1b2c3d4-5204-2477-5000-147198765432"}`,
		`{"date":"2026-11-27","phone":"55 11 98765 4321"}`,
	}
	for _, s := range allowed {
		if containsCardNumber([]byte(s)) {
			t.Errorf("refused: %s", s)
		}
	}
	// A declared bank account number that happens to look like a card passes;
	// the declaration covers that exact run only.
	account := `{"debtorAccount":{"number":"4111111111111111"}}`
	if containsCardNumber([]byte(account), "4111111111111111") {
		t.Errorf("declared account number refused: %s", account)
	}
	if !containsCardNumber([]byte(account+`{"pan":"5555555555554444"}`), "4111111111111111") {
		t.Error("a card next to a declared account number passed")
	}
	if !containsCardNumber([]byte(account), "411111111111111") {
		t.Error("a declaration of other digits let a card-like run pass")
	}
}
