package itpflow_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

var browser = ofb.Device{Platform: "BROWSER", OS: "LINUX", OSVersion: "20.04"}

// start runs Flow.Start for a payment consent of app-1 at the test brand and
// returns the authorization and the request object the brand received.
func (h *harness) start(t *testing.T, redirectURI string) (*itpflow.Authorization, map[string]any) {
	t.Helper()
	a, _, err := h.flow.Start(t.Context(), itpflow.StartRequest{ApplicationID: "app-1", Kind: itpflow.KindPaymentInitiation,
		BrandID: brandID, Collection: itpflow.PaymentConsentsPath, Body: json.RawMessage(`{"data":{"payment":{"amount":"1.00"}}}`),
		APIScope: "payments", RedirectURI: redirectURI, IdempotencyKey: "idem-1", Device: browser})
	if err != nil {
		t.Fatal(err)
	}
	return a, h.brand.lastPushed()
}

// TestStartConstruction checks what Start sends to the brand and keeps: the
// consent as a JWT signed by Ponte for the consent URL, the pushed request
// object (response type, exact redirect URI, scope naming the consent, fresh
// state and nonce, an S256 PKCE challenge), and the record of it, whose
// state is kept only as a hash.
func TestStartConstruction(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		tests := []struct {
			name, kind, collection, apiScope, redirect string
			consentScope                               string // the consent-bound scope's prefix
		}{
			{"payment consent", itpflow.KindPaymentInitiation, itpflow.PaymentConsentsPath, "payments",
				"https://partner.example/cb/Path%2Fx?app=1", "consent:"},
			// automatic-payments-2.0.0.yml's security section names recurring-consent:{recurringConsentId}.
			{"sweeping consent", itpflow.KindJourneySession, itpflow.RecurringConsentPath, "recurring-payments",
				"https://ponte.example" + itpflow.CallbackPath, "recurring-consent:"},
		}
		seen := map[string]bool{}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				now := h.clock.Now()
				a, consent, err := h.flow.Start(t.Context(), itpflow.StartRequest{ApplicationID: "app-1", Kind: tt.kind,
					BrandID: brandID, Collection: tt.collection, Body: json.RawMessage(`{"data":{"n":1}}`), APIScope: tt.apiScope,
					RedirectURI: tt.redirect, IdempotencyKey: "idem-" + tt.kind, Device: browser})
				if err != nil {
					t.Fatal(err)
				}

				h.brand.mu.Lock()
				call := h.brand.consents[len(h.brand.consents)-1]
				h.brand.mu.Unlock()
				if call.IdempotencyKey != "idem-"+tt.kind {
					t.Errorf("x-idempotency-key = %q", call.IdempotencyKey)
				}
				if data, _ := json.Marshal(call.Claims["data"]); string(data) != `{"n":1}` {
					t.Errorf("consent data = %s", data)
				}
				if call.Claims["aud"] != h.brand.issuer()+tt.collection || call.Claims["iss"] != ponteClientID ||
					call.Claims["jti"] == "" || call.Claims["iat"] != float64(now.Unix()) {
					t.Errorf("consent claims = %v", call.Claims)
				}

				req := h.brand.lastPushed()
				want := map[string]any{
					"iss": ponteClientID, "aud": h.brand.issuer(), "client_id": ponteClientID,
					"response_type": "code id_token", "redirect_uri": tt.redirect,
					"scope": "openid " + tt.apiScope + " " + tt.consentScope + consent.ID, "code_challenge_method": "S256",
					"iat": float64(now.Unix()), "nbf": float64(now.Unix()), "exp": float64(now.Add(5 * time.Minute).Unix()),
				}
				for k, v := range want {
					if req[k] != v {
						t.Errorf("request object %s = %v, want %v", k, req[k], v)
					}
				}
				if _, ok := req["response_mode"]; ok {
					t.Errorf("response_mode = %v: the hybrid flow's default (fragment) is asked for", req["response_mode"])
				}
				for _, k := range []string{"state", "nonce", "code_challenge", "jti"} {
					v, _ := req[k].(string)
					if len(v) < 32 || seen[v] {
						t.Errorf("%s = %q: want a fresh random value", k, v)
					}
					seen[v] = true
				}

				if a.ConsentID != consent.ID || a.ConsentPath != tt.collection+"/"+consent.ID || a.Scope != want["scope"] ||
					a.RedirectURI != tt.redirect || a.Status != itpflow.StatusPending || a.Kind != tt.kind ||
					!a.ExpiresAt.Equal(now.Add(itpflow.Lifetime)) {
					t.Errorf("authorization = %+v", a)
				}
				u, err := url.Parse(a.AuthorizationURL)
				if err != nil || u.Scheme+"://"+u.Host+u.Path != h.brand.issuer()+"/authorize" ||
					u.Query().Get("client_id") != ponteClientID || !strings.HasPrefix(u.Query().Get("request_uri"), "urn:ietf:params:oauth:request_uri:") ||
					len(u.Query()) != 2 {
					t.Errorf("authorization URL = %s", a.AuthorizationURL)
				}

				state := req["state"].(string)
				sum := sha256.Sum256([]byte(state))
				var stored int
				if err := db.Read().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM itp_authorizations WHERE id = $1 AND state_hash = $2
					AND state_hash <> $3 AND nonce <> $3 AND code_verifier <> $3 AND authorization_url NOT LIKE '%' || $3 || '%'`,
					a.ID, hex.EncodeToString(sum[:]), state).Scan(&stored); err != nil || stored != 1 {
					t.Errorf("state stored as its hash only: %d rows, %v", stored, err)
				}
				steps, err := h.flow.Steps(t.Context(), a.ID)
				if err != nil || len(steps) != 1 || steps[0].Step != itpflow.StepConsentRequest || steps[0].Device != browser {
					t.Errorf("steps = %+v, %v", steps, err)
				}
			})
		}
	})
}

// TestStartRefusals: nothing is recorded when the brand is unknown or
// refuses the consent.
func TestStartRefusals(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		tests := []struct {
			name    string
			brandID string
			refuse  *refusal
			check   func(error) bool
		}{
			{"unknown brand", "brand-b", nil, func(err error) bool { return errors.Is(err, itpflow.ErrBrandNotFound) }},
			{"brand refuses the consent", brandID, &refusal{422, `{"errors":[{"code":"DETALHE_PAGAMENTO_INVALIDO","title":"t","detail":"d"}]}`},
				func(err error) bool {
					var apiErr *fapiclient.APIError
					return errors.As(err, &apiErr) && apiErr.Status == 422 && apiErr.Errors[0].Code == "DETALHE_PAGAMENTO_INVALIDO"
				}},
			{"brand fails", brandID, &refusal{500, `{}`}, func(err error) bool {
				var apiErr *fapiclient.APIError
				return errors.As(err, &apiErr) && apiErr.Status == 500
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h.brand.mu.Lock()
				h.brand.refuse = tt.refuse
				h.brand.mu.Unlock()
				_, _, err := h.flow.Start(t.Context(), itpflow.StartRequest{ApplicationID: "app-1", Kind: itpflow.KindPaymentInitiation,
					BrandID: tt.brandID, Collection: itpflow.PaymentConsentsPath, Body: json.RawMessage(`{"data":{}}`),
					APIScope: "payments", RedirectURI: "https://partner.example/cb", IdempotencyKey: "k", Device: browser})
				if !tt.check(err) {
					t.Fatalf("err = %v", err)
				}
				var n int
				if err := db.Read().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM itp_authorizations`).Scan(&n); err != nil || n != 0 {
					t.Errorf("%d authorizations recorded, %v", n, err)
				}
			})
		}
	})
}

// TestCompleteRefusesForgedCallbacks: a callback that fails a check (state,
// owner, id_token signature, algorithm, key, iss, aud, exp, nbf, nonce,
// c_hash, s_hash) changes nothing — the request stays PENDING with no
// callback step — and the genuine callback still completes it afterwards.
func TestCompleteRefusesForgedCallbacks(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		otherKey := newKey(t)
		tests := []struct {
			name  string
			forge func(f *forgery)
			want  error
		}{
			{"state of no request", func(f *forgery) { f.cb.State = "not-a-state" }, itpflow.ErrNotFound},
			{"no state", func(f *forgery) { f.cb.State = "" }, itpflow.ErrNotFound},
			{"state too long", func(f *forgery) { f.cb.State = strings.Repeat("s", 513) }, itpflow.ErrNotFound},
			{"another application's request", func(f *forgery) { f.app = "app-2" }, itpflow.ErrNotFound},
			{"no id_token", func(f *forgery) { f.cb.IDToken = "" }, fapiclient.ErrCallback},
			{"no code", func(f *forgery) { f.cb.Code = "" }, fapiclient.ErrCallback},
			{"id_token not a JWT", func(f *forgery) { f.cb.IDToken = "not.a.jwt" }, fapiclient.ErrCallback},
			{"id_token signed by another key", func(f *forgery) { f.key = otherKey }, fapiclient.ErrCallback},
			{"id_token with an unknown key id", func(f *forgery) { f.kid = "brand-2" }, fapiclient.ErrCallback},
			{"id_token signed RS256", func(f *forgery) { f.alg = jose.RS256 }, fapiclient.ErrCallback},
			{"id_token of another issuer", func(f *forgery) { f.claims["iss"] = "https://other.example" }, fapiclient.ErrCallback},
			{"id_token for another client", func(f *forgery) { f.claims["aud"] = "someone-else" }, fapiclient.ErrCallback},
			{"expired id_token", func(f *forgery) { f.claims["exp"] = f.claims["iat"].(int64) - 60 }, fapiclient.ErrCallback},
			{"id_token without exp", func(f *forgery) { delete(f.claims, "exp") }, fapiclient.ErrCallback},
			{"id_token not valid yet", func(f *forgery) { f.claims["nbf"] = f.claims["iat"].(int64) + 120 }, fapiclient.ErrCallback},
			{"id_token of another request (nonce)", func(f *forgery) { f.claims["nonce"] = "other-nonce" }, fapiclient.ErrCallback},
			{"code not the id_token's (c_hash)", func(f *forgery) { f.cb.Code += "x" }, fapiclient.ErrCallback},
			{"s_hash of another state", func(f *forgery) { f.claims["s_hash"] = halfHash("other-state") }, fapiclient.ErrCallback},
			{"tampered id_token", func(f *forgery) { f.tamper = true }, fapiclient.ErrCallback},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a, req := h.start(t, "https://partner.example/cb")
				genuine, f := h.forge(req, tt.forge)
				_, err := h.flow.Complete(t.Context(), itpflow.CompleteRequest{ApplicationID: f.app, Callback: f.cb, Device: browser})
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if status, steps := h.authorization(t, a.ID); status != itpflow.StatusPending || steps != 1 {
					t.Errorf("after the forged callback: %s with %d steps, want PENDING with 1", status, steps)
				}
				done, err := h.flow.Complete(t.Context(), itpflow.CompleteRequest{ApplicationID: "app-1", Callback: genuine, Device: browser})
				if err != nil || done.Status != itpflow.StatusAuthorised {
					t.Fatalf("the genuine callback afterwards: %+v, %v", done, err)
				}
			})
		}
	})
}

// TestCompleteOutcomes: how a callback that passes its checks ends the
// request, and what a second callback or a late one gets.
func TestCompleteOutcomes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		tests := []struct {
			name string
			// callback returns the callback for the pushed request req.
			callback                      func(req map[string]any) fapiclient.Callback
			status, consentStatus, detail string
			steps                         int
		}{
			{"approved", func(req map[string]any) fapiclient.Callback { return h.genuine(req, h.brand.approve(req)) },
				itpflow.StatusAuthorised, "AUTHORISED", "", 2},
			{"the user said no", func(req map[string]any) fapiclient.Callback {
				return fapiclient.Callback{State: req["state"].(string), Error: "access_denied", ErrorDescription: "cancelled"}
			}, itpflow.StatusRejected, "AWAITING_AUTHORISATION", "access_denied", 2},
			{"the brand does not redeem the code", func(req map[string]any) fapiclient.Callback {
				return h.genuine(req, "code-the-brand-never-issued")
			}, itpflow.StatusFailed, "", "code_exchange_failed", 2},
			{"the consent was rejected at the brand", func(req map[string]any) fapiclient.Callback {
				cb := h.genuine(req, h.brand.approve(req))
				h.brand.mu.Lock()
				h.brand.status[scopeConsentID(req)] = "REJECTED"
				h.brand.mu.Unlock()
				return cb
			}, itpflow.StatusRejected, "REJECTED", "consent_REJECTED", 2},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a, req := h.start(t, "https://partner.example/cb")
				cb := tt.callback(req)
				done, err := h.flow.Complete(t.Context(), itpflow.CompleteRequest{ApplicationID: "app-1", Callback: cb, Device: browser})
				if err != nil {
					t.Fatal(err)
				}
				if done.Status != tt.status || done.ConsentStatus != tt.consentStatus || done.Error != tt.detail {
					t.Errorf("completed = %s %q %q, want %s %q %q", done.Status, done.ConsentStatus, done.Error, tt.status, tt.consentStatus, tt.detail)
				}
				if status, steps := h.authorization(t, a.ID); status != tt.status || steps != tt.steps {
					t.Errorf("stored: %s with %d steps", status, steps)
				}
				if _, err := h.flow.Complete(t.Context(), itpflow.CompleteRequest{ApplicationID: "app-1", Callback: cb, Device: browser}); !errors.Is(err, itpflow.ErrAlreadyCompleted) {
					t.Errorf("replayed callback: %v, want ErrAlreadyCompleted", err)
				}
			})
		}

		t.Run("late callback", func(t *testing.T) {
			a, req := h.start(t, "https://partner.example/cb")
			cb := h.genuine(req, h.brand.approve(req))
			h.clock.Advance(itpflow.Lifetime)
			if _, err := h.flow.Complete(t.Context(), itpflow.CompleteRequest{Callback: cb, Device: browser}); !errors.Is(err, itpflow.ErrExpired) {
				t.Fatalf("err = %v, want ErrExpired", err)
			}
			if status, steps := h.authorization(t, a.ID); status != itpflow.StatusPending || steps != 1 {
				t.Errorf("stored: %s with %d steps", status, steps)
			}
		})
	})
}
