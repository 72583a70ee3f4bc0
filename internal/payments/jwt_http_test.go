package payments_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/payments"
)

var (
	keysOnce             sync.Once
	partnerKey, rogueKey *rsa.PrivateKey
)

// testKeys returns the partner's signing key and an unrelated one, generated once.
func testKeys(t testing.TB) (partner, rogue *rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if partnerKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rogueKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return partnerKey, rogueKey
}

const partnerKID = "partner-key-1"

func publicJWKS(t testing.TB, keys ...jose.JSONWebKey) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// partner is a non-demo application holding the payments scope.
type partner struct {
	app   *auth.Application
	token string
}

// newPartner registers an application with the partner key's JWKS (or none).
func newPartner(t *testing.T, s *apptest.Server, withKeys bool) partner {
	t.Helper()
	key, _ := testKeys(t)
	n := auth.NewApplication{Name: "Iniciadora", CompanyKey: "ITP", Scopes: []string{"payments"}}
	if withKeys {
		n.JWKS = publicJWKS(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: partnerKID, Algorithm: "PS256", Use: "sig"})
	}
	a, secret, err := s.App.Apps.Create(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	if a.AcceptPlainJSON {
		t.Fatal("a new application accepts plain JSON by default")
	}
	return partner{app: a, token: s.TokenFor(t, a.ClientID, secret, "payments")}
}

// organisation is what a's signed messages name: its organisation id, or
// its client_id when it has none (an application from before organisation ids).
func organisation(a *auth.Application) string {
	if a.OrganisationID != "" {
		return a.OrganisationID
	}
	return a.ClientID
}

// claimsFor are valid claims for a POST /consents of p carrying happyBody's data.
func claimsFor(t *testing.T, s *apptest.Server, p partner) map[string]any {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal([]byte(happyBody), &body); err != nil {
		t.Fatal(err)
	}
	body["aud"] = s.URL + consentsPath
	body["iss"] = organisation(p.app)
	body["iat"] = s.Clock.Now().Unix()
	body["jti"] = uuid.NewString()
	return body
}

func sign(t testing.TB, key any, alg jose.SignatureAlgorithm, kid string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return compact
}

func jwtHeaders(token, key string) map[string]string {
	h := headers(token, key)
	h["Content-Type"] = payments.MediaTypeJWT
	return h
}

// ponteKeys fetches Ponte's published signing keys.
func ponteKeys(t *testing.T, s *apptest.Server) *jose.JSONWebKeySet {
	t.Helper()
	resp := s.Do(t, "GET", "/.well-known/jwks.json", nil, "")
	var set jose.JSONWebKeySet
	if resp.Status != http.StatusOK || json.Unmarshal(resp.Body, &set) != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %d %s", resp.Status, resp.Body)
	}
	return &set
}

// verifySigned checks a signed response — PS256 with Ponte's published key,
// aud the caller's organisation, iss Ponte's organisation id, iat now, a
// jti — and returns its claims.
func verifySigned(t *testing.T, s *apptest.Server, p partner, resp *apptest.Response) map[string]json.RawMessage {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != payments.MediaTypeJWT {
		t.Fatalf("Content-Type %q, want %s: %s", ct, payments.MediaTypeJWT, resp.Body)
	}
	jws, err := jose.ParseSignedCompact(string(resp.Body), []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		t.Fatalf("response is not a PS256 JWS: %v", err)
	}
	keys := ponteKeys(t, s).Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("response kid %q is not Ponte's", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("response signature: %v", err)
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	var aud, iss, jti string
	var iat int64
	_ = json.Unmarshal(claims["aud"], &aud)
	_ = json.Unmarshal(claims["iss"], &iss)
	_ = json.Unmarshal(claims["jti"], &jti)
	_ = json.Unmarshal(claims["iat"], &iat)
	if aud != organisation(p.app) || iss != s.App.Config.OrganisationID || jti == "" || iat != s.Clock.Now().Unix() {
		t.Errorf("response claims aud=%q iss=%q jti=%q iat=%d", aud, iss, jti, iat)
	}
	return claims
}

// withoutClaims is the response body inside the signed claims.
func withoutClaims(t *testing.T, claims map[string]json.RawMessage) []byte {
	t.Helper()
	rest := map[string]json.RawMessage{}
	for k, v := range claims {
		switch k {
		case "aud", "iss", "iat", "jti":
		default:
			rest[k] = v
		}
	}
	b, err := json.Marshal(rest)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func consentCount(t *testing.T, s *apptest.Server, applicationID string) int {
	t.Helper()
	var n int
	if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM payment_consents WHERE application_id = $1`, applicationID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSignedConsentCreated(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		key, _ := testKeys(t)
		p := newPartner(t, s, true)
		resp := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "k1"), sign(t, key, jose.PS256, partnerKID, claimsFor(t, s, p)))
		if resp.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", resp.Status, resp.Body)
		}
		if got := resp.Header.Get("x-fapi-interaction-id"); got != interactionID {
			t.Errorf("x-fapi-interaction-id = %q", got)
		}
		body := withoutClaims(t, verifySigned(t, s, p, resp))
		validateSpec(t, s, "ResponseCreatePaymentConsent", body)
		var c consentResp
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatal(err)
		}
		if c.Data.Status != "AWAITING_AUTHORISATION" || c.Links.Self != s.URL+consentsPath+"/"+c.Data.ConsentID {
			t.Errorf("consent %+v", c)
		}
		// Read back, signed on request.
		h := headers(p.token, "")
		h["Accept"] = payments.MediaTypeJWT
		got := s.Do(t, "GET", consentsPath+"/"+c.Data.ConsentID, h, "")
		if got.Status != http.StatusOK {
			t.Fatalf("get: %d %s", got.Status, got.Body)
		}
		validateSpec(t, s, "ResponsePaymentConsent", withoutClaims(t, verifySigned(t, s, p, got)))
		// Signed whatever Accept says: the official file declares only
		// application/jwt, and this application did not opt into plain JSON.
		for _, accept := range []string{"", "application/json", "*/*"} {
			h := headers(p.token, "")
			if accept != "" {
				h["Accept"] = accept
			}
			got := s.Do(t, "GET", consentsPath+"/"+c.Data.ConsentID, h, "")
			if got.Status != http.StatusOK {
				t.Fatalf("get with Accept %q: %d %s", accept, got.Status, got.Body)
			}
			validateSpec(t, s, "ResponsePaymentConsent", withoutClaims(t, verifySigned(t, s, p, got)))
		}
	})
}

func TestSignedConsentRefused(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		key, rogue := testKeys(t)
		p := newPartner(t, s, true)
		ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		claims := func(change func(m map[string]any)) map[string]any {
			m := claimsFor(t, s, p)
			change(m)
			return m
		}
		valid := func(m map[string]any) map[string]any { return m }
		cases := []struct {
			name   string
			body   string
			status int
			code   string
		}{
			{"bad signature", sign(t, rogue, jose.PS256, partnerKID, claims(func(map[string]any) {})), 400, "BAD_SIGNATURE"},
			{"tampered payload", func() string {
				parts := strings.Split(sign(t, key, jose.PS256, partnerKID, claimsFor(t, s, p)), ".")
				other := strings.Split(sign(t, key, jose.PS256, partnerKID, claims(func(m map[string]any) { m["jti"] = "x" })), ".")
				return parts[0] + "." + other[1] + "." + parts[2]
			}(), 400, "BAD_SIGNATURE"},
			{"unknown kid", sign(t, key, jose.PS256, "other-kid", valid(claimsFor(t, s, p))), 400, "BAD_SIGNATURE"},
			{"no kid", sign(t, key, jose.PS256, "", valid(claimsFor(t, s, p))), 400, "BAD_SIGNATURE"},
			{"RS256", sign(t, key, jose.RS256, partnerKID, valid(claimsFor(t, s, p))), 400, "BAD_SIGNATURE"},
			{"ES256", sign(t, ecKey, jose.ES256, partnerKID, valid(claimsFor(t, s, p))), 400, "BAD_SIGNATURE"},
			{"HS256", sign(t, []byte("0123456789abcdef0123456789abcdef"), jose.HS256, partnerKID, valid(claimsFor(t, s, p))), 400, "BAD_SIGNATURE"},
			{"alg none", "eyJhbGciOiJub25lIiwia2lkIjoicGFydG5lci1rZXktMSJ9.eyJkYXRhIjp7fX0.", 400, "BAD_SIGNATURE"},
			{"malformed compact JWS", "not.a.jws", 400, "BAD_SIGNATURE"},
			{"plain JSON sent as application/jwt", happyBody, 400, "BAD_SIGNATURE"},
			{"wrong aud", sign(t, key, jose.PS256, partnerKID, claims(func(m map[string]any) { m["aud"] = s.URL + "/open-banking/payments/v4/pix/payments" })), 403, "INVALID_CLIENT"},
			{"aud array without the endpoint", sign(t, key, jose.PS256, partnerKID, claims(func(m map[string]any) { m["aud"] = []string{"https://other.example"} })), 403, "INVALID_CLIENT"},
			{"wrong iss", sign(t, key, jose.PS256, partnerKID, claims(func(m map[string]any) { m["iss"] = "someone-else" })), 403, "INVALID_CLIENT"},
			{"stale iat", sign(t, key, jose.PS256, partnerKID, claims(func(m map[string]any) { m["iat"] = s.Clock.Now().Add(-61 * time.Second).Unix() })), 403, "INVALID_CLIENT"},
			{"future iat", sign(t, key, jose.PS256, partnerKID, claims(func(m map[string]any) { m["iat"] = s.Clock.Now().Add(61 * time.Second).Unix() })), 403, "INVALID_CLIENT"},
			{"iat not a number", sign(t, key, jose.PS256, partnerKID, claims(func(m map[string]any) { m["iat"] = "now" })), 403, "INVALID_CLIENT"},
			{"missing jti", sign(t, key, jose.PS256, partnerKID, claims(func(m map[string]any) { delete(m, "jti") })), 403, "INVALID_CLIENT"},
			{"empty jti", sign(t, key, jose.PS256, partnerKID, claims(func(m map[string]any) { m["jti"] = "" })), 403, "INVALID_CLIENT"},
			{"missing aud", sign(t, key, jose.PS256, partnerKID, claims(func(m map[string]any) { delete(m, "aud") })), 403, "INVALID_CLIENT"},
			{"missing iss", sign(t, key, jose.PS256, partnerKID, claims(func(m map[string]any) { delete(m, "iss") })), 403, "INVALID_CLIENT"},
			{"missing iat", sign(t, key, jose.PS256, partnerKID, claims(func(m map[string]any) { delete(m, "iat") })), 403, "INVALID_CLIENT"},
			{"claims not an object", sign(t, key, jose.PS256, partnerKID, []string{"data"}), 403, "INVALID_CLIENT"},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "refused-"+string(rune('a'+i))), tc.body)
				if resp.Status != tc.status {
					t.Fatalf("status %d, want %d: %s", resp.Status, tc.status, resp.Body)
				}
				validateSpec(t, nil, "ResponseError", resp.Body)
				var e errorResp
				resp.JSON(t, &e)
				if len(e.Errors) != 1 || e.Errors[0].Code != tc.code || e.Errors[0].Detail == "" {
					t.Errorf("errors = %+v, want %s", e.Errors, tc.code)
				}
			})
		}
		if n := consentCount(t, s, p.app.ID); n != 0 {
			t.Errorf("%d consents created by refused requests", n)
		}
	})
}

func TestSignedConsentReplayAndIdempotency(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		key, _ := testKeys(t)
		p := newPartner(t, s, true)
		claims := claimsFor(t, s, p)
		jwt := sign(t, key, jose.PS256, partnerKID, claims)
		first := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "idem-1"), jwt)
		if first.Status != http.StatusCreated {
			t.Fatalf("first: %d %s", first.Status, first.Body)
		}
		firstBody := withoutClaims(t, verifySigned(t, s, p, first))

		// The same JWT with the same key: an idempotent replay, re-signed.
		again := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "idem-1"), jwt)
		if again.Status != http.StatusCreated || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %s", again.Status, again.Body)
		}
		if got := withoutClaims(t, verifySigned(t, s, p, again)); string(got) != string(firstBody) {
			t.Errorf("replayed body differs:\n%s\n%s", got, firstBody)
		}
		// A new JWT (new jti and iat) with the same data and key: the same consent.
		s.Clock.Advance(10 * time.Second)
		fresh := claimsFor(t, s, p)
		resent := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "idem-1"), sign(t, key, jose.PS256, partnerKID, fresh))
		if resent.Status != http.StatusCreated || resent.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("resend: %d %s", resent.Status, resent.Body)
		}
		if got := withoutClaims(t, verifySigned(t, s, p, resent)); string(got) != string(firstBody) {
			t.Errorf("resent body differs")
		}
		// The same JWT under another key: a replayed jti, refused.
		replayed := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "idem-2"), jwt)
		if replayed.Status != http.StatusForbidden || !strings.Contains(string(replayed.Body), "INVALID_CLIENT") {
			t.Fatalf("replayed jti: %d %s", replayed.Status, replayed.Body)
		}
		// Other data under the first key: 422 ERRO_IDEMPOTENCIA, signed.
		other := claimsFor(t, s, p)
		at(other, "data", "payment")["amount"] = "1.00"
		diff := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "idem-1"), sign(t, key, jose.PS256, partnerKID, other))
		if diff.Status != http.StatusUnprocessableEntity {
			t.Fatalf("other data: %d %s", diff.Status, diff.Body)
		}
		errBody := withoutClaims(t, verifySigned(t, s, p, diff))
		validateSpec(t, nil, "422ResponseErrorCreateConsent", errBody)
		if !strings.Contains(string(errBody), "ERRO_IDEMPOTENCIA") {
			t.Errorf("422 body %s", errBody)
		}
		if n := consentCount(t, s, p.app.ID); n != 1 {
			t.Errorf("%d consents, want 1", n)
		}

		// A business error is a signed 422, and does not use up the jti.
		bad := claimsFor(t, s, p)
		at(bad, "data", "payment")["amount"] = "0.00"
		badJWT := sign(t, key, jose.PS256, partnerKID, bad)
		resp := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "idem-3"), badJWT)
		if resp.Status != http.StatusUnprocessableEntity {
			t.Fatalf("zero amount: %d %s", resp.Status, resp.Body)
		}
		if b := withoutClaims(t, verifySigned(t, s, p, resp)); !strings.Contains(string(b), "DETALHE_PAGAMENTO_INVALIDO") {
			t.Errorf("zero amount body %s", b)
		}

		// After 24 h the jti records are swept by their job, and a jti may be used again.
		var rows int
		if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM payment_consent_jtis`).Scan(&rows); err != nil || rows != 1 {
			t.Fatalf("jti rows %d, %v", rows, err)
		}
		s.Clock.Advance(payments.JTIWindow + time.Hour)
		if _, err := s.App.Jobs.RunDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM payment_consent_jtis`).Scan(&rows); err != nil || rows != 0 {
			t.Errorf("after the sweep job: %d jti rows, %v", rows, err)
		}
		if n, err := s.App.Payments.Sweep(context.Background()); err != nil || n != 0 {
			t.Errorf("Sweep: %d %v", n, err)
		}
		token := s.TokenFor(t, p.app.ClientID, mustRotate(t, s, p), "payments")
		claims["iat"] = s.Clock.Now().Unix()
		at(claims, "data", "payment")["date"] = "2024-10-16" // the clock's new day in Brasília
		if resp := s.Do(t, "POST", consentsPath, jwtHeaders(token, "idem-4"), sign(t, key, jose.PS256, partnerKID, claims)); resp.Status != http.StatusCreated {
			t.Errorf("jti after its window: %d %s", resp.Status, resp.Body)
		}
	})
}

// mustRotate returns a fresh secret for p (the test clock outlived its token).
func mustRotate(t *testing.T, s *apptest.Server, p partner) string {
	t.Helper()
	_, secret, err := s.App.Apps.RotateSecret(context.Background(), p.app.ID)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func TestBodyFormatPerApplication(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		ctx := context.Background()
		key, _ := testKeys(t)
		p := newPartner(t, s, false)

		// No keys registered: a signed body cannot be verified.
		resp := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "f1"), sign(t, key, jose.PS256, partnerKID, claimsFor(t, s, p)))
		if resp.Status != http.StatusBadRequest || !strings.Contains(string(resp.Body), "BAD_SIGNATURE") {
			t.Errorf("no JWKS: %d %s", resp.Status, resp.Body)
		}
		// Plain JSON from an application without AcceptPlainJSON: 415.
		resp = s.Do(t, "POST", consentsPath, headers(p.token, "f2"), happyBody)
		if resp.Status != http.StatusUnsupportedMediaType {
			t.Fatalf("plain JSON refused: %d %s", resp.Status, resp.Body)
		}
		validateSpec(t, nil, "ResponseError", resp.Body)
		// Another media type: 415 for everyone.
		h := headers(s.Token(t, "payments"), "f3")
		h["Content-Type"] = "text/plain"
		if resp := s.Do(t, "POST", consentsPath, h, happyBody); resp.Status != http.StatusUnsupportedMediaType {
			t.Errorf("text/plain: %d %s", resp.Status, resp.Body)
		}
		// The flag and the keys apply to the very next request.
		if _, err := s.App.Apps.SetAcceptPlainJSON(ctx, p.app.ClientID, true); err != nil {
			t.Fatal(err)
		}
		if resp := s.Do(t, "POST", consentsPath, headers(p.token, "f4"), happyBody); resp.Status != http.StatusCreated ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("plain JSON after SetAcceptPlainJSON: %d %s", resp.Status, resp.Body)
		}
		a, err := s.App.Apps.SetJWKS(ctx, p.app.ID, publicJWKS(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: partnerKID}))
		if err != nil || a.KeyCount() != 1 {
			t.Fatalf("SetJWKS: %v, %d keys", err, a.KeyCount())
		}
		if resp := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "f5"), sign(t, key, jose.PS256, partnerKID, claimsFor(t, s, p))); resp.Status != http.StatusCreated {
			t.Errorf("signed after SetJWKS: %d %s", resp.Status, resp.Body)
		}
		// Removing the keys refuses signed bodies again.
		if _, err := s.App.Apps.SetJWKS(ctx, p.app.ID, nil); err != nil {
			t.Fatal(err)
		}
		if resp := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "f6"), sign(t, key, jose.PS256, partnerKID, claimsFor(t, s, p))); resp.Status != http.StatusBadRequest {
			t.Errorf("signed after removing the keys: %d %s", resp.Status, resp.Body)
		}

		// The sandbox demo application accepts plain JSON, also after a
		// restart of a database where it had been switched off.
		if !s.App.Demo.AcceptPlainJSON {
			t.Fatal("demo application does not accept plain JSON")
		}
		if resp := s.Do(t, "POST", consentsPath, headers(s.Token(t, "payments"), "f7"), happyBody); resp.Status != http.StatusCreated {
			t.Errorf("demo plain JSON: %d %s", resp.Status, resp.Body)
		}
		if _, err := s.App.Apps.SetAcceptPlainJSON(ctx, s.App.Demo.ID, false); err != nil {
			t.Fatal(err)
		}
		s = s.Restart(t)
		if !s.App.Demo.AcceptPlainJSON {
			t.Error("EnsureDemo did not restore AcceptPlainJSON")
		}
		if resp := s.Do(t, "POST", consentsPath, headers(s.Token(t, "payments"), "f8"), happyBody); resp.Status != http.StatusCreated {
			t.Errorf("demo plain JSON after restart: %d %s", resp.Status, resp.Body)
		}
	})
}

func TestApplicationJWKSValidation(t *testing.T) {
	t.Parallel()
	key, _ := testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	cases := []struct {
		name string
		jwks json.RawMessage
		keys int // 0: refused
	}{
		{"RSA 2048", publicJWKS(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: "a", Use: "sig"}), 1},
		{"RSA and EC P-256", publicJWKS(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: "a"}, jose.JSONWebKey{Key: &p256.PublicKey, KeyID: "b"}), 2},
		{"private RSA key", publicJWKS(t, jose.JSONWebKey{Key: key, KeyID: "a"}), 0},
		{"private EC key", publicJWKS(t, jose.JSONWebKey{Key: p256, KeyID: "a"}), 0},
		{"symmetric key", publicJWKS(t, jose.JSONWebKey{Key: []byte("0123456789abcdef"), KeyID: "a"}), 0},
		{"no kid", publicJWKS(t, jose.JSONWebKey{Key: &key.PublicKey}), 0},
		{"duplicate kid", publicJWKS(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: "a"}, jose.JSONWebKey{Key: &p256.PublicKey, KeyID: "a"}), 0},
		{"RSA 1024", publicJWKS(t, jose.JSONWebKey{Key: &small.PublicKey, KeyID: "a"}), 0},
		{"EC P-384", publicJWKS(t, jose.JSONWebKey{Key: &p384.PublicKey, KeyID: "a"}), 0},
		{"encryption key", publicJWKS(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: "a", Use: "enc"}), 0},
		{"no keys", raw(`{"keys":[]}`), 0},
		{"not JSON", raw(`{"keys":`), 0},
		{"not a key set", raw(`[1,2]`), 0},
	}
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		ctx := context.Background()
		p := newPartner(t, s, false)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				a, err := s.App.Apps.SetJWKS(ctx, p.app.ClientID, tc.jwks)
				if tc.keys == 0 {
					if err == nil {
						t.Fatalf("accepted: %s", a.JWKS)
					}
					if !strings.Contains(err.Error(), "JWKS") {
						t.Errorf("error %q does not name the JWKS", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				stored, err := s.App.Apps.Get(ctx, p.app.ID)
				if err != nil || stored.KeyCount() != tc.keys || string(stored.JWKS) != string(a.JWKS) {
					t.Errorf("stored %d keys (%v), want %d", stored.KeyCount(), err, tc.keys)
				}
			})
		}
		// Create validates the same way.
		_, _, err := s.App.Apps.Create(ctx, auth.NewApplication{Name: "x", CompanyKey: "X", Scopes: []string{"payments"},
			JWKS: publicJWKS(t, jose.JSONWebKey{Key: key, KeyID: "a"})})
		if err == nil {
			t.Error("Create accepted a private key")
		}
	})
}
