package payments

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// FuzzDecodeSigned feeds arbitrary bodies to the signed-body decoder: it
// must never panic, must refuse with the specification's status and code
// (400 BAD_SIGNATURE, 403 INVALID_CLIENT, or the data's 400/422), and may
// accept only a body whose claims hold.
func FuzzDecodeSigned(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	keys := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1"}}}
	now := time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)
	want := Expectations{Audience: "https://ponte.example/open-banking/payments/v4/consents", Issuer: "client-1", Now: now}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), "k1"))
	if err != nil {
		f.Fatal(err)
	}
	sign := func(claims map[string]any) string {
		b, _ := json.Marshal(claims)
		jws, err := signer.Sign(b)
		if err != nil {
			f.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}
	data := map[string]any{"loggedUser": map[string]any{"document": map[string]any{"identification": "47742663023", "rel": "CPF"}}}
	good := map[string]any{"aud": want.Audience, "iss": want.Issuer, "iat": now.Unix(), "jti": "j1", "data": data}
	f.Add(sign(good))
	f.Add(sign(map[string]any{"aud": []string{want.Audience}, "iss": want.Issuer, "iat": float64(now.Unix()) + 0.5, "jti": "j2", "data": data}))
	f.Add(sign(map[string]any{"aud": want.Audience, "iss": want.Issuer, "iat": 1e300, "jti": "j3"}))
	f.Add(sign(map[string]any{"aud": want.Audience, "iss": want.Issuer, "iat": -1, "jti": "j4", "data": "x"}))
	f.Add(sign(map[string]any{"data": nil}))
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(`{"data":{}}`)
	// Bad text in the signed claims: refused at the edge, never stored.
	valid := map[string]any{"loggedUser": map[string]any{"document": map[string]any{"identification": "47742663023", "rel": "CPF"}},
		"creditor": map[string]any{"personType": "PESSOA_JURIDICA", "cpfCnpj": "11222333000181", "name": "Loja"},
		"payment": map[string]any{"type": "PIX", "date": "2024-10-15", "currency": "BRL", "amount": "0.01",
			"details": map[string]any{"localInstrument": "MANU", "creditorAccount": map[string]any{"ispb": "12345678", "number": "1", "accountType": "TRAN"}}}}
	f.Add(sign(map[string]any{"aud": want.Audience, "iss": want.Issuer, "iat": now.Unix(), "jti": "j5", "data": valid}))
	valid["creditor"].(map[string]any)["name"] = "Lo\x00ja"
	f.Add(sign(map[string]any{"aud": want.Audience, "iss": want.Issuer, "iat": now.Unix(), "jti": "j6", "data": valid}))
	f.Add(sign(map[string]any{"aud": want.Audience, "iss": want.Issuer, "iat": now.Unix(), "jti": "j7\x00", "data": valid}))
	store := fuzzStore(f)
	f.Fuzz(func(t *testing.T, body string) {
		if herr := httpx.CheckJWS([]byte(body)); herr != nil {
			return // refused at the edge with a 400
		}
		got, verr := decodeSigned([]byte(body), keys, want)
		if verr != nil {
			if got != nil {
				t.Fatal("both a result and an error")
			}
			if len(verr.Problems) == 0 {
				t.Fatal("an error without problems")
			}
			code := verr.Problems[0].Code
			switch verr.Status {
			case http.StatusBadRequest:
				if code != CodeBadSignature && code != CodeParametroInvalido {
					t.Fatalf("400 with code %s", code)
				}
			case http.StatusForbidden:
				if code != CodeInvalidClient {
					t.Fatalf("403 with code %s", code)
				}
			case http.StatusUnprocessableEntity:
			default:
				t.Fatalf("status %d", verr.Status)
			}
			return
		}
		if got == nil || got.Request == nil || got.JTI == "" || len(got.JTI) > MaxJTILength {
			t.Fatalf("accepted without a request or jti: %+v", got)
		}
		if err := checkClaims(mustPayload(t, body, key), want); err != nil {
			t.Fatalf("accepted with invalid claims: %v", err)
		}
		store(t, *got.Request, got.JTI)
	})
}

func mustPayload(t *testing.T, body string, key *rsa.PrivateKey) []byte {
	jws, err := jose.ParseSignedCompact(body, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		t.Fatal(err)
	}
	p, err := jws.Verify(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
