package itpflow_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// Ponte's registration at the test brand.
const (
	ponteClientID = "ponte-at-brand"
	ponteKeyID    = "ponte-1"
	brandKeyID    = "brand-1"
	brandID       = "brand-a"
)

func newKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// brand is an account holder's authorization server and consent API on
// loopback, as far as the initiator's flow uses them: discovery, JWKS,
// private_key_jwt client credentials, PAR with a signed request object,
// signed consent bodies and answers, and the code exchange with PKCE. It
// checks what Ponte sends with Ponte's public key and records it; the
// user's visit to the authorize endpoint is approve, called by the test.
type brand struct {
	t      *testing.T
	srv    *httptest.Server
	key    *rsa.PrivateKey // the brand's: id_tokens and consent answers
	client *rsa.PublicKey  // Ponte's registration key
	clock  clock.Clock

	mu       sync.Mutex
	pushed   []map[string]any // each request object's claims, in order
	consents []consentCall    // each consent creation, in order
	status   map[string]string
	codes    map[string]codeGrant
	// refuse, when set, is the answer to the next consent creation.
	refuse *refusal

	// consentData is each consent's data as Ponte sent it, by consent id.
	consentData map[string]map[string]any
	// refreshTokens makes the code exchange issue a refresh token.
	refreshTokens bool
	// issued is when each access token was issued (they last 300 s), and
	// refreshes each refresh token redeemed.
	issued    map[string]time.Time
	refreshes []string
	// payments are the payments created, in order, and each one's status.
	payments   []paymentCall
	payStatus  map[string][]string // remaining statuses each GET steps through
	payRefuse  *refusal
	payAnswers map[string]string // idempotency key → the answer first given
	// afterCreate, when set, runs (under mu) for each payment created.
	afterCreate func(id string)
	// rejectRefresh makes the brand refuse every refresh token (revoked).
	rejectRefresh bool
}

// paymentCall is one payment creation Ponte sent.
type paymentCall struct {
	Path, Token, IdempotencyKey, InteractionID string
	Claims                                     map[string]any
}

type consentCall struct {
	Claims         map[string]any
	IdempotencyKey string
}

type codeGrant struct{ challenge, redirectURI string }

type refusal struct {
	status int
	body   string
}

func newBrand(t *testing.T, clientKey *rsa.PublicKey, c clock.Clock) *brand {
	b := &brand{t: t, key: newKey(t), client: clientKey, clock: c, status: map[string]string{}, codes: map[string]codeGrant{},
		consentData: map[string]map[string]any{}, issued: map[string]time.Time{}, payStatus: map[string][]string{}, payAnswers: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /open-banking/{api}/{version}/pix/{collection}", b.createPayment)
	mux.HandleFunc("GET /open-banking/{api}/{version}/pix/{collection}/{id}", b.readPayment)
	mux.HandleFunc("GET /.well-known/openid-configuration", b.discovery)
	mux.HandleFunc("GET /jwks", b.jwks)
	mux.HandleFunc("POST /token", b.token)
	mux.HandleFunc("POST /par", b.par)
	mux.HandleFunc("POST /open-banking/{api}/{version}/{collection}", b.createConsent)
	mux.HandleFunc("GET /open-banking/{api}/{version}/{collection}/{id}", b.readConsent)
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

func (b *brand) issuer() string { return b.srv.URL }

func (b *brand) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"issuer": b.issuer(), "authorization_endpoint": b.issuer() + "/authorize",
		"token_endpoint": b.issuer() + "/token", "pushed_authorization_request_endpoint": b.issuer() + "/par",
		"jwks_uri": b.issuer() + "/jwks", "response_types_supported": []string{"code id_token"}})
}

func (b *brand) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &b.key.PublicKey, KeyID: brandKeyID, Algorithm: "PS256", Use: "sig"}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// verify checks a JWT Ponte signed (PS256, Ponte's key id) and returns its claims.
func (b *brand) verify(raw, typ string) (map[string]any, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		return nil, err
	}
	if h := tok.Headers[0]; h.KeyID != ponteKeyID || (typ != "" && h.ExtraHeaders["typ"] != typ) {
		return nil, fmt.Errorf("header kid %q typ %v", h.KeyID, h.ExtraHeaders["typ"])
	}
	var claims map[string]any
	if err := tok.Claims(b.client, &claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// authenticate checks the private_key_jwt client assertion of a token or PAR request.
func (b *brand) authenticate(r *http.Request) bool {
	claims, err := b.verify(r.PostForm.Get("client_assertion"), "JWT")
	return err == nil && r.PostForm.Get("client_id") == ponteClientID && claims["iss"] == ponteClientID &&
		claims["sub"] == ponteClientID && audHas(claims["aud"], b.issuer())
}

func audHas(aud any, want string) bool {
	switch v := aud.(type) {
	case string:
		return v == want
	case []any:
		for _, a := range v {
			if a == want {
				return true
			}
		}
	}
	return false
}

func (b *brand) token(w http.ResponseWriter, r *http.Request) {
	if r.ParseForm() != nil || !b.authenticate(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	refresh := ""
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
	case "refresh_token":
		b.mu.Lock()
		ok := strings.HasPrefix(r.PostForm.Get("refresh_token"), "rt-") && !b.rejectRefresh
		b.refreshes = append(b.refreshes, r.PostForm.Get("refresh_token"))
		b.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
	case "authorization_code":
		b.mu.Lock()
		g, ok := b.codes[r.PostForm.Get("code")]
		delete(b.codes, r.PostForm.Get("code"))
		b.mu.Unlock()
		if !ok || s256(r.PostForm.Get("code_verifier")) != g.challenge || r.PostForm.Get("redirect_uri") != g.redirectURI {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
		if b.refreshTokens {
			refresh = "rt-" + uuid.NewString()
		}
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	access := "at-" + uuid.NewString()
	b.mu.Lock()
	b.issued[access] = b.clock.Now()
	b.mu.Unlock()
	answer := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 300}
	if refresh != "" {
		answer["refresh_token"] = refresh
	}
	writeJSON(w, http.StatusOK, answer)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (b *brand) par(w http.ResponseWriter, r *http.Request) {
	if r.ParseForm() != nil || !b.authenticate(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	claims, err := b.verify(r.PostForm.Get("request"), "oauth-authz-req+jwt")
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request_object", "error_description": err.Error()})
		return
	}
	b.mu.Lock()
	b.pushed = append(b.pushed, claims)
	n := len(b.pushed)
	b.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"request_uri": fmt.Sprintf("urn:ietf:params:oauth:request_uri:%d", n), "expires_in": 60})
}

func (b *brand) createConsent(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	claims, err := b.verify(string(body), "JWT")
	if err != nil || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer at-") {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorised"})
		return
	}
	b.mu.Lock()
	b.consents = append(b.consents, consentCall{Claims: claims, IdempotencyKey: r.Header.Get("x-idempotency-key")})
	refuse := b.refuse
	b.refuse = nil
	b.mu.Unlock()
	if refuse != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(refuse.status)
		_, _ = io.WriteString(w, refuse.body)
		return
	}
	id := "urn:brand:" + uuid.NewString()
	b.mu.Lock()
	b.status[id] = "AWAITING_AUTHORISATION"
	if data, ok := claims["data"].(map[string]any); ok {
		b.consentData[id] = data
	}
	b.mu.Unlock()
	b.answer(w, http.StatusCreated, id, "AWAITING_AUTHORISATION")
}

func (b *brand) readConsent(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	st, ok := b.status[r.PathValue("id")]
	b.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": []map[string]string{{"code": "NAO_ENCONTRADO", "title": "Not Found", "detail": "no consent"}}})
		return
	}
	b.answer(w, http.StatusOK, r.PathValue("id"), st)
}

// answer writes a consent as a JWS signed by the brand, addressed to Ponte:
// the data Ponte sent, with the consent's id and status.
func (b *brand) answer(w http.ResponseWriter, status int, id, consentStatus string) {
	data := map[string]any{}
	b.mu.Lock()
	for k, v := range b.consentData[id] {
		data[k] = v
	}
	b.mu.Unlock()
	data["consentId"], data["status"] = id, consentStatus
	if _, recurring := data["recurringConfiguration"]; recurring {
		delete(data, "consentId")
		data["recurringConsentId"] = id
	}
	b.signed(w, status, data)
}

// signed writes data as a JWS signed by the brand, addressed to Ponte.
func (b *brand) signed(w http.ResponseWriter, status int, data any) {
	signed := b.sign(b.key, brandKeyID, jose.PS256, map[string]any{"aud": ponteClientID, "iss": b.issuer(),
		"iat": b.clock.Now().Unix(), "jti": uuid.NewString(), "data": data})
	w.Header().Set("Content-Type", "application/jwt")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, signed)
}

func (b *brand) sign(key any, kid string, alg jose.SignatureAlgorithm, claims map[string]any) string {
	b.t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		b.t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// lastPushed is the claims of the latest request object Ponte pushed.
func (b *brand) lastPushed() map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pushed) == 0 {
		b.t.Fatal("nothing was pushed")
	}
	return b.pushed[len(b.pushed)-1]
}

// pushedCount is how many requests Ponte has pushed.
func (b *brand) pushedCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pushed)
}

// idToken is the claims of an id_token the brand would issue for the pushed
// request req, with its code.
func (b *brand) idToken(req map[string]any, code string) map[string]any {
	now := b.clock.Now()
	return map[string]any{"iss": b.issuer(), "aud": ponteClientID, "sub": "user-1", "iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "nonce": req["nonce"], "c_hash": halfHash(code), "s_hash": halfHash(req["state"].(string))}
}

// approve is the user approving the pushed request req at the brand: the
// consent becomes AUTHORISED and the brand issues a code, which it will
// exchange with req's PKCE challenge and redirect URI.
func (b *brand) approve(req map[string]any) (code string) {
	code = "code-" + uuid.NewString()
	consentID := scopeConsentID(req)
	b.mu.Lock()
	b.codes[code] = codeGrant{challenge: req["code_challenge"].(string), redirectURI: req["redirect_uri"].(string)}
	b.status[consentID] = "AUTHORISED"
	b.mu.Unlock()
	return code
}

func halfHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// brands is the flow's brand directory: one FAPI client per brand id.
type brands map[string]*fapiclient.Client

func (bs brands) Client(_ context.Context, id string) (*fapiclient.Client, error) {
	if c, ok := bs[id]; ok {
		return c, nil
	}
	return nil, itpflow.ErrBrandNotFound
}

// harness is a Flow on a fresh database with one brand, brandID, and a
// partner application, "app-1".
type harness struct {
	db    *store.DB
	clock *clock.Fake
	brand *brand
	flow  *itpflow.Flow
}

func newHarness(t *testing.T, db *store.DB) *harness {
	t.Helper()
	clk := clock.NewFake(time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC))
	ponteKey := newKey(t)
	b := newBrand(t, &ponteKey.PublicKey, clk)
	client := &fapiclient.Client{Issuer: b.issuer(), APIBase: b.issuer(), ClientID: ponteClientID, Key: ponteKey, KeyID: ponteKeyID,
		HTTP: b.srv.Client(), Clock: clk}
	storetest.AddApplication(t, db, "app-1")
	storetest.AddApplication(t, db, "app-2")
	return &harness{db: db, clock: clk, brand: b,
		flow: &itpflow.Flow{DB: db, Clock: clk, Brands: brands{brandID: client}, Logger: discard()}}
}

// authorization returns the authorization's status and how many steps it recorded.
func (h *harness) authorization(t *testing.T, id string) (status string, steps int) {
	t.Helper()
	err := h.db.Read().QueryRowContext(t.Context(), `SELECT a.status, (SELECT COUNT(*) FROM itp_steps s WHERE s.authorization_id = a.id)
		FROM itp_authorizations a WHERE a.id = $1`, id).Scan(&status, &steps)
	if err != nil {
		t.Fatal(err)
	}
	return status, steps
}

// forgery is a callback forged from a genuine one: its fields, the claims
// of its id_token and how that is signed, and the application presenting it.
type forgery struct {
	cb     fapiclient.Callback
	claims map[string]any
	key    any
	kid    string
	alg    jose.SignatureAlgorithm
	// tamper keeps the genuine id_token's header and signature over other claims.
	tamper bool
	app    string
}

// forge has the user approve the pushed request req at the brand and
// returns the genuine callback and the one mutate makes of it. Unless
// mutate replaced the id_token, the forged one is signed anew from the
// forgery's claims, key, key id and algorithm.
func (h *harness) forge(req map[string]any, mutate func(*forgery)) (genuine fapiclient.Callback, f *forgery) {
	code := h.brand.approve(req)
	genuine = h.genuine(req, code)
	f = &forgery{cb: genuine, claims: h.brand.idToken(req, code), key: h.brand.key, kid: brandKeyID, alg: jose.PS256, app: "app-1"}
	mutate(f)
	switch {
	case f.tamper:
		parts := strings.Split(genuine.IDToken, ".")
		other := strings.Split(h.brand.sign(h.brand.key, brandKeyID, jose.PS256, map[string]any{"iss": "x"}), ".")
		f.cb.IDToken = parts[0] + "." + other[1] + "." + parts[2]
	case f.cb.IDToken == genuine.IDToken:
		f.cb.IDToken = h.brand.sign(f.key, f.kid, f.alg, f.claims)
	}
	return genuine, f
}

// genuine is the callback the brand sends for the pushed request req with code.
func (h *harness) genuine(req map[string]any, code string) fapiclient.Callback {
	return fapiclient.Callback{Code: code, State: req["state"].(string),
		IDToken: h.brand.sign(h.brand.key, brandKeyID, jose.PS256, h.brand.idToken(req, code))}
}

// scopeConsentID is the consent a pushed request object names in its third
// scope: consent:{id}, or recurring-consent:{id} for a recurring consent.
func scopeConsentID(req map[string]any) string {
	sc := strings.Fields(req["scope"].(string))[2]
	if id, ok := strings.CutPrefix(sc, "recurring-consent:"); ok {
		return id
	}
	return strings.TrimPrefix(sc, "consent:")
}
