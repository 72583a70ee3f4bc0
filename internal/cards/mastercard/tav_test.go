package mastercard

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKey returns one 2048-bit key per test binary; generation is slow.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// verifyTAV is an independent verifier: it decodes the TAV by hand, checks
// the exact key set and values, and verifies the signature over the
// '|'-joined values with the public key only.
func verifyTAV(t *testing.T, pub *rsa.PublicKey, tav string, now time.Time, pan, expiry, version string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(tav)
	if err != nil {
		t.Fatalf("TAV is not standard base64: %v", err)
	}
	var fields map[string]string
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("TAV is not a JSON object of strings: %v", err)
	}
	want := map[string]string{
		"version":               version,
		"signatureAlgorithm":    "RSA-SHA256",
		"includedFieldsInOrder": "dataValidUntilTimestamp|accountNumber|accountExpiry",
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("%s = %q, want %q", k, fields[k], v)
		}
	}
	if len(fields) != 5 {
		t.Errorf("TAV has %d fields, want 5: %v", len(fields), fields)
	}
	if strings.Contains(string(raw), pan) {
		t.Error("TAV carries the card number in clear")
	}

	until := fields["dataValidUntilTimestamp"]
	if len(until) != len("2006-01-02T15:04:05.000Z") || !strings.HasSuffix(until, "Z") {
		t.Errorf("dataValidUntilTimestamp %q is not UTC with milliseconds", until)
	}
	parsed, err := time.Parse(time.RFC3339Nano, until)
	if err != nil {
		t.Fatalf("dataValidUntilTimestamp: %v", err)
	}
	if d := parsed.Sub(now); d < 30*time.Minute-time.Millisecond || d > 30*time.Minute {
		t.Errorf("valid for %s after now, want 30m", d)
	}

	sig, err := base64.StdEncoding.DecodeString(fields["signature"])
	if err != nil {
		t.Fatalf("signature is not standard base64: %v", err)
	}
	digest := sha256.Sum256([]byte(until + "|" + pan + "|" + expiry))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	other := sha256.Sum256([]byte(until + "|" + "5555555555554444" + "|" + expiry))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, other[:], sig) == nil {
		t.Fatal("signature also verifies for another card")
	}
}

func TestSign(t *testing.T) {
	key := testKey()
	// Sub-millisecond and non-UTC input must still give UTC milliseconds.
	now := time.Date(2026, 3, 10, 9, 15, 30, 123_456_789, time.FixedZone("BRT", -3*3600))
	for _, version := range []string{"", "4"} {
		tav, err := TAVSigner{Key: key, Version: version}.Sign(now, "5204247750001471", "1128")
		if err != nil {
			t.Fatal(err)
		}
		want := version
		if want == "" {
			want = "3"
		}
		verifyTAV(t, &key.PublicKey, tav, now, "5204247750001471", "1128", want)
		raw, _ := base64.StdEncoding.DecodeString(tav)
		if !strings.Contains(string(raw), `"dataValidUntilTimestamp":"2026-03-10T12:45:30.123Z"`) {
			t.Errorf("timestamp not formatted as expected: %s", raw)
		}
		if !strings.HasPrefix(string(raw), `{"version":`) {
			t.Errorf("field order changed: %s", raw)
		}
	}
}

func TestSignRejects(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name    string
		signer  TAVSigner
		pan     string
		expiry  string
		wantErr error
	}{
		{"no key", TAVSigner{}, "5204247750001471", "1128", ErrNoKey},
		{"small key", TAVSigner{Key: small}, "5204247750001471", "1128", nil},
		{"bad check digit", TAVSigner{Key: testKey()}, "5204247750001472", "1128", ErrInvalidAccountNumber},
		{"letters", TAVSigner{Key: testKey()}, "52042477500014x1", "1128", ErrInvalidAccountNumber},
		{"expiry with slash", TAVSigner{Key: testKey()}, "5204247750001471", "11/28", ErrInvalidExpiry},
		{"expiry month 00", TAVSigner{Key: testKey()}, "5204247750001471", "0028", ErrInvalidExpiry},
		{"expiry month 13", TAVSigner{Key: testKey()}, "5204247750001471", "1328", ErrInvalidExpiry},
		{"expiry YYYY", TAVSigner{Key: testKey()}, "5204247750001471", "112028", ErrInvalidExpiry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.signer.Sign(now, tt.pan, tt.expiry)
			if err == nil {
				t.Fatal("Sign succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), tt.pan) {
				t.Errorf("error reveals the card number: %v", err)
			}
		})
	}
}

func TestValidPAN(t *testing.T) {
	tests := []struct {
		pan  string
		want bool
	}{
		{"4111111111111111", true},
		{"5555555555554444", true},
		{"5204247750001471", true}, // Apple Pay sandbox Mastercard
		{"2223003122003222", true}, // Mastercard 2-series
		{"378282246310005", true},  // 15 digits
		{"6011000990139424", true},
		{"000000000000", true},        // 12 digits, checksum 0
		{"0000000000000000000", true}, // 19 digits
		{"4111111111111112", false},   // check digit off by one
		{"5555555555554443", false},
		{"4111111111111121", false}, // transposed digits
		{"00000000000", false},      // 11 digits
		{"00000000000000000000", false},
		{"", false},
		{"4111 1111 1111 1111", false},
		{"4111-1111-1111-1111", false},
		{"411111111111111a", false},
		{"４１１１１１１１１１１１１１１１", false}, // full-width digits
	}
	for _, tt := range tests {
		if got := ValidPAN(tt.pan); got != tt.want {
			t.Errorf("ValidPAN(%q) = %v, want %v", tt.pan, got, tt.want)
		}
	}
}
