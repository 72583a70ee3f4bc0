package recurring_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
)

var (
	keysOnce             sync.Once
	partnerKey, rogueKey *rsa.PrivateKey
)

func testKeys() (partner, rogue *rsa.PrivateKey) {
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

type partner struct {
	app   *auth.Application
	token string
}

// newPartner registers an initiator application with the partner key's JWKS.
func newPartner(t *testing.T, s *apptest.Server) partner {
	t.Helper()
	key, _ := testKeys()
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: partnerKID, Algorithm: "PS256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	a, secret, err := s.App.Apps.Create(context.Background(), auth.NewApplication{Name: "Iniciadora", CompanyKey: "ITP", Scopes: []string{recurring.Scope}, JWKS: jwks})
	if err != nil {
		t.Fatal(err)
	}
	return partner{app: a, token: s.TokenFor(t, a.ClientID, secret, recurring.Scope)}
}

// claims are valid claims carrying body's data for aud.
func claims(t *testing.T, s *apptest.Server, p partner, aud, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	m["aud"], m["iss"], m["iat"], m["jti"] = aud, organisation(p.app), s.Clock.Now().Unix(), uuid.NewString()
	return m
}

func sign(t testing.TB, key any, kid string, claims any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
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

// organisation is what a's signed messages name: its organisation id, or
// its client_id when it has none (an application from before organisation ids).
func organisation(a *auth.Application) string {
	if a.OrganisationID != "" {
		return a.OrganisationID
	}
	return a.ClientID
}

// verifySigned checks a signed answer (Ponte's published key, aud the
// caller's organisation, iss Ponte's organisation id) and returns the body
// inside the claims.
func verifySigned(t *testing.T, s *apptest.Server, p partner, resp *apptest.Response) []byte {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != payments.MediaTypeJWT {
		t.Fatalf("Content-Type %q: %s", ct, resp.Body)
	}
	jwks := s.Do(t, "GET", "/.well-known/jwks.json", nil, "")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks.Body, &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(string(resp.Body), []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatal("answer not signed with Ponte's key")
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	var aud, iss string
	_ = json.Unmarshal(c["aud"], &aud)
	_ = json.Unmarshal(c["iss"], &iss)
	if aud != organisation(p.app) || iss != s.App.Config.OrganisationID || len(c["jti"]) == 0 || len(c["iat"]) == 0 {
		t.Errorf("answer claims aud=%q iss=%q", aud, iss)
	}
	for _, k := range []string{"aud", "iss", "iat", "jti"} {
		delete(c, k)
	}
	b, _ := json.Marshal(c)
	return b
}

func TestSignedRecurringConsent(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		key, rogue := testKeys()
		p := newPartner(t, s)
		collection := s.URL + consentsPath

		cl := claims(t, s, p, collection, happyBody)
		r := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "s-1"), sign(t, key, partnerKID, cl))
		if r.Status != http.StatusCreated {
			t.Fatalf("signed create: %d %s", r.Status, r.Body)
		}
		body := verifySigned(t, s, p, r)
		validateSpec(t, s, "ResponsePostRecurringConsent", body)
		var c consentResp
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatal(err)
		}
		id := c.Data.RecurringConsentID

		// GET with Accept: application/jwt is signed.
		h := headers(p.token, "")
		h["Accept"] = payments.MediaTypeJWT
		g := s.Do(t, "GET", consentsPath+"/"+id, h, "")
		validateSpec(t, s, "ResponseRecurringConsent", verifySigned(t, s, p, g))

		// The same jti again (new idempotency key): 403 INVALID_CLIENT.
		if r := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "s-2"), sign(t, key, partnerKID, cl)); r.Status != 403 || !strings.Contains(string(r.Body), "INVALID_CLIENT") {
			t.Errorf("reused jti: %d %s", r.Status, r.Body)
		}
		// A signed 422 is signed.
		bad := claims(t, s, p, collection, mutate(t, happyBody, func(m map[string]any) { delete(at(m, "data"), "creditors") }))
		r = s.Do(t, "POST", consentsPath, jwtHeaders(p.token, "s-3"), sign(t, key, partnerKID, bad))
		if r.Status != 422 {
			t.Fatalf("signed 422: %d %s", r.Status, r.Body)
		}
		validateSpec(t, nil, "ResponseErrorCreateConsent", verifySigned(t, s, p, r))

		for _, tc := range []struct {
			name   string
			body   string
			status int
			code   string
		}{
			{"another key", sign(t, rogue, partnerKID, claims(t, s, p, collection, happyBody)), 400, "BAD_SIGNATURE"},
			{"unknown kid", sign(t, key, "other", claims(t, s, p, collection, happyBody)), 400, "BAD_SIGNATURE"},
			{"not a JWS", "eyJhbGciOiJub25lIn0.e30.", 400, "BAD_SIGNATURE"},
			{"aud of payments", sign(t, key, partnerKID, claims(t, s, p, s.URL+payments.ConsentsPath, happyBody)), 403, "INVALID_CLIENT"},
			{"iss of another", sign(t, key, partnerKID, func() map[string]any {
				m := claims(t, s, p, collection, happyBody)
				m["iss"] = "someone"
				return m
			}()), 403, "INVALID_CLIENT"},
			{"stale iat", sign(t, key, partnerKID, func() map[string]any {
				m := claims(t, s, p, collection, happyBody)
				m["iat"] = s.Clock.Now().Unix() - 61
				return m
			}()), 403, "INVALID_CLIENT"},
			{"no jti", sign(t, key, partnerKID, func() map[string]any {
				m := claims(t, s, p, collection, happyBody)
				delete(m, "jti")
				return m
			}()), 403, "INVALID_CLIENT"},
		} {
			r := s.Do(t, "POST", consentsPath, jwtHeaders(p.token, uuid.NewString()), tc.body)
			if r.Status != tc.status || !strings.Contains(string(r.Body), tc.code) {
				t.Errorf("%s: %d %s", tc.name, r.Status, r.Body)
			}
			validateSpec(t, nil, "ResponseError", r.Body)
		}
		// Plain JSON is only for applications allowed to send it.
		if r := s.Do(t, "POST", consentsPath, headers(p.token, "s-4"), happyBody); r.Status != http.StatusUnsupportedMediaType {
			t.Errorf("plain JSON from a signing application: %d %s", r.Status, r.Body)
		}

		// PATCH: aud is the consent's URL, not the collection's.
		wrong := claims(t, s, p, collection, patchBody("REJECTED", "NAO_INFORMADO"))
		if r := s.Do(t, "PATCH", consentsPath+"/"+id, jwtHeaders(p.token, "s-5"), sign(t, key, partnerKID, wrong)); r.Status != 403 {
			t.Errorf("patch with the collection's aud: %d %s", r.Status, r.Body)
		}
		ok := claims(t, s, p, collection+"/"+id, patchBody("REJECTED", "NAO_INFORMADO"))
		r = s.Do(t, "PATCH", consentsPath+"/"+id, jwtHeaders(p.token, "s-6"), sign(t, key, partnerKID, ok))
		if r.Status != 200 {
			t.Fatalf("signed patch: %d %s", r.Status, r.Body)
		}
		validateSpec(t, s, "ResponseRecurringConsentPatch", verifySigned(t, s, p, r))
	})
}
