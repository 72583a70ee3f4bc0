package payments

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestVerifySignedSerializations: a signed body is a compact JWS. The same
// valid signature in the JWS JSON serializations is refused with 400
// BAD_SIGNATURE: the edge's bad-text check reads only the compact form, so a
// JSON serialization would carry its claims past it.
func TestVerifySignedSerializations(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1"}}}
	now := time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)
	want := Expectations{Audience: "https://ponte.example/open-banking/payments/v4/consents", Issuer: "client-1", Now: now}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), "k1"))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := json.Marshal(map[string]any{"aud": want.Audience, "iss": want.Issuer, "iat": now.Unix(), "jti": "j1", "data": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"compact", compact, true},
		{"flattened JSON", flattened(t, compact), false},
		{"general JSON", jws.FullSerialize(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, jti, verr := VerifySigned([]byte(tt.body), keys, want)
			if tt.ok {
				if verr != nil || jti != "j1" || len(payload) == 0 {
					t.Fatalf("got jti %q, error %+v; want the payload", jti, verr)
				}
				return
			}
			if verr == nil {
				t.Fatalf("accepted a %s body", tt.name)
			}
			if verr.Status != http.StatusBadRequest || verr.Problems[0].Code != CodeBadSignature {
				t.Fatalf("got %d %s, want 400 %s", verr.Status, verr.Problems[0].Code, CodeBadSignature)
			}
		})
	}
}

// flattened rewrites a compact JWS in the flattened JSON serialization.
func flattened(t *testing.T, compact string) string {
	t.Helper()
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		t.Fatal("not a compact JWS")
	}
	b, err := json.Marshal(map[string]string{"protected": parts[0], "payload": parts[1], "signature": parts[2]})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
