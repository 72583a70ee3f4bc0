package itpflow_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// tokens is the Brick endpoints' token verifier: each token is one partner
// application with the payments.admin scope.
type tokens map[string]string

func (ts tokens) VerifyAccessToken(_ context.Context, raw string) (*httpx.Principal, error) {
	app, ok := ts[raw]
	if !ok {
		return nil, httpx.ErrInvalidToken
	}
	return &httpx.Principal{ApplicationID: app, ClientID: app, Scopes: []string{itpflow.ScopePaymentsAdmin}}, nil
}

// registered are app-1's redirect URLs.
var registered = []string{"https://partner.example/cb", "https://partner.example/app/return?x=1"}

// brick serves the Brick endpoints of h's flow on loopback.
func (h *harness) brick(t *testing.T) *httptest.Server {
	t.Helper()
	handler := &itpflow.BrickHandler{Flow: h.flow, Verifier: tokens{"tok-1": "app-1", "tok-2": "app-2"}, Logger: discard(),
		Redirects: func(_ context.Context, app string) ([]string, error) {
			if app == "app-1" {
				return registered, nil
			}
			return []string{"https://other.example/cb"}, nil
		}}
	mux := http.NewServeMux()
	handler.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type brickAnswer struct {
	status int
	Data   struct {
		ConsentID, Status, BrandID, AuthorizationURL, RedirectURI, FlowStatus, Error string
	} `json:"data"`
	Errors []struct{ Code, Title, Detail string } `json:"errors"`
}

func post(t *testing.T, srv *httptest.Server, path, token, body string) brickAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := brickAnswer{status: res.StatusCode}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: status %d, body %s", path, res.StatusCode, b)
	}
	return out
}

func (a brickAnswer) code() string {
	if len(a.Errors) == 0 {
		return ""
	}
	return a.Errors[0].Code
}

const device = `"device":{"platform":"APP","os":"ANDROID","osVersion":"14"}`

func consentBody(brand, redirect string) string {
	body := `{"data":{"loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},"payment":{"amount":"1.00"}},` +
		device + `,"specVersion":"v4","brandId":"` + brand + `"`
	if redirect != "" {
		body += `,"redirectUri":"` + redirect + `"`
	}
	return body + "}"
}

func callbackBody(cb fapiclient.Callback) string {
	b, _ := json.Marshal(map[string]any{"code": cb.Code, "id_token": cb.IDToken, "state": cb.State, "error": cb.Error,
		"error_description": cb.ErrorDescription, "device": json.RawMessage(device[len(`"device":`):])})
	return string(b)
}

// TestBrickConsentRedirectURI: the redirect URI is one of the application's
// registered URLs byte for byte (none given: the first), and it is the one
// pushed to the brand.
func TestBrickConsentRedirectURI(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		srv := h.brick(t)
		tests := []struct {
			name, redirect, want string
		}{
			{"none: the first registered", "", registered[0]},
			{"the second, with its query", registered[1], registered[1]},
			{"trailing slash", registered[0] + "/", ""},
			{"other case", "https://PARTNER.example/cb", ""},
			{"default port spelt out", "https://partner.example:443/cb", ""},
			{"percent-encoded", "https://partner.example/%63b", ""},
			{"query reordered", "https://partner.example/app/return?x=1&y=2", ""},
			{"fragment", registered[0] + "#f", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				pushed := h.brand.pushedCount()
				got := post(t, srv, "/api/admin/payment-initiation/v1/consents", "tok-1", consentBody(brandID, tt.redirect))
				if tt.want == "" {
					if got.status != http.StatusUnprocessableEntity || got.code() != "REDIRECT_URI_NAO_REGISTRADA" {
						t.Fatalf("answer = %d %+v", got.status, got.Errors)
					}
					if h.brand.pushedCount() != pushed {
						t.Error("a request was pushed for an unregistered redirect URI")
					}
					return
				}
				if got.status != http.StatusCreated || got.Data.RedirectURI != tt.want || got.Data.FlowStatus != itpflow.StatusPending ||
					got.Data.Status != "AWAITING_AUTHORISATION" || got.Data.BrandID != brandID || got.Data.AuthorizationURL == "" {
					t.Fatalf("answer = %d %+v %+v", got.status, got.Data, got.Errors)
				}
				if req := h.brand.lastPushed(); req["redirect_uri"] != tt.want || req["scope"] != "openid payments consent:"+got.Data.ConsentID {
					t.Errorf("pushed redirect_uri %v, scope %v", req["redirect_uri"], req["scope"])
				}
			})
		}
	})
}

// TestBrickConsentErrors maps the brand's answers and bad requests to the
// Brick error codes.
func TestBrickConsentErrors(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		srv := h.brick(t)
		tests := []struct {
			name   string
			body   string
			refuse *refusal
			status int
			code   string
		}{
			{"unknown brand", consentBody("brand-b", ""), nil, http.StatusUnprocessableEntity, "BRAND_NAO_ENCONTRADA"},
			{"the brand refuses (422)", consentBody(brandID, ""), &refusal{422, `{"errors":[{"code":"DETALHE_PAGAMENTO_INVALIDO","title":"t","detail":"d"}]}`},
				http.StatusUnprocessableEntity, "DETALHE_PAGAMENTO_INVALIDO"},
			{"the brand refuses (400)", consentBody(brandID, ""), &refusal{400, `{"errors":[{"code":"PARAMETRO_INVALIDO","title":"t","detail":"d"}]}`},
				http.StatusUnprocessableEntity, "PARAMETRO_INVALIDO"},
			{"the brand refuses without errors", consentBody(brandID, ""), &refusal{403, `{}`}, http.StatusUnprocessableEntity, "NAO_INFORMADO"},
			{"the brand fails", consentBody(brandID, ""), &refusal{503, `{}`}, http.StatusBadGateway, "FALHA_DETENTORA"},
			{"invalid CPF", strings.Replace(consentBody(brandID, ""), "47742663023", "47742663024", 1), nil, http.StatusBadRequest, "PARAMETRO_INVALIDO"},
			{"other specVersion", strings.Replace(consentBody(brandID, ""), `"v4"`, `"v3"`, 1), nil, http.StatusBadRequest, "PARAMETRO_INVALIDO"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h.brand.mu.Lock()
				h.brand.refuse = tt.refuse
				h.brand.mu.Unlock()
				got := post(t, srv, "/api/admin/payment-initiation/v1/consents", "tok-1", tt.body)
				if got.status != tt.status || got.code() != tt.code {
					t.Fatalf("answer = %d %+v, want %d %s", got.status, got.Errors, tt.status, tt.code)
				}
			})
		}
	})
}

// TestBrickCallbackErrors: each failed check of a callback gets its Brick
// error code and changes nothing; the genuine callback then completes.
func TestBrickCallbackErrors(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		srv := h.brick(t)
		otherKey := newKey(t)
		const path = "/api/admin/payment-initiation/v1/consents/callback"
		tests := []struct {
			name   string
			token  string
			forge  func(f *forgery)
			status int
			code   string
		}{
			{"state of no consent", "tok-1", func(f *forgery) { f.cb.State = "nope" }, http.StatusNotFound, "CONSENTIMENTO_NAO_ENCONTRADO"},
			{"another application's consent", "tok-2", func(*forgery) {}, http.StatusNotFound, "CONSENTIMENTO_NAO_ENCONTRADO"},
			{"id_token of another issuer", "tok-1", func(f *forgery) { f.claims["iss"] = "https://other.example" },
				http.StatusUnprocessableEntity, "CALLBACK_INVALIDO"},
			{"id_token for another client", "tok-1", func(f *forgery) { f.claims["aud"] = "other" }, http.StatusUnprocessableEntity, "CALLBACK_INVALIDO"},
			{"expired id_token", "tok-1", func(f *forgery) { f.claims["exp"] = f.claims["iat"].(int64) - 60 },
				http.StatusUnprocessableEntity, "CALLBACK_INVALIDO"},
			{"nonce of another request", "tok-1", func(f *forgery) { f.claims["nonce"] = "n" }, http.StatusUnprocessableEntity, "CALLBACK_INVALIDO"},
			{"c_hash of another code", "tok-1", func(f *forgery) { f.cb.Code = "other-code" }, http.StatusUnprocessableEntity, "CALLBACK_INVALIDO"},
			{"s_hash of another state", "tok-1", func(f *forgery) { f.claims["s_hash"] = halfHash("x") }, http.StatusUnprocessableEntity, "CALLBACK_INVALIDO"},
			{"id_token signed by another key", "tok-1", func(f *forgery) { f.key = otherKey }, http.StatusUnprocessableEntity, "CALLBACK_INVALIDO"},
			{"tampered id_token", "tok-1", func(f *forgery) { f.tamper = true }, http.StatusUnprocessableEntity, "CALLBACK_INVALIDO"},
			{"code without id_token", "tok-1", func(f *forgery) { f.cb.IDToken = "" }, http.StatusBadRequest, "PARAMETRO_INVALIDO"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				created := post(t, srv, "/api/admin/payment-initiation/v1/consents", "tok-1", consentBody(brandID, ""))
				if created.status != http.StatusCreated {
					t.Fatalf("consent: %d %+v", created.status, created.Errors)
				}
				genuine, f := h.forge(h.brand.lastPushed(), tt.forge)
				got := post(t, srv, path, tt.token, callbackBody(f.cb))
				if got.status != tt.status || got.code() != tt.code {
					t.Fatalf("answer = %d %+v, want %d %s", got.status, got.Errors, tt.status, tt.code)
				}
				done := post(t, srv, path, "tok-1", callbackBody(genuine))
				if done.status != http.StatusOK || done.Data.FlowStatus != itpflow.StatusAuthorised || done.Data.Status != "AUTHORISED" ||
					done.Data.ConsentID != created.Data.ConsentID || done.Data.AuthorizationURL != "" {
					t.Fatalf("genuine callback afterwards: %d %+v %+v", done.status, done.Data, done.Errors)
				}
			})
		}

		t.Run("replayed, refused and late callbacks", func(t *testing.T) {
			post(t, srv, "/api/admin/payment-initiation/v1/consents", "tok-1", consentBody(brandID, ""))
			req := h.brand.lastPushed()
			genuine := h.genuine(req, h.brand.approve(req))
			if got := post(t, srv, path, "tok-1", callbackBody(genuine)); got.status != http.StatusOK {
				t.Fatalf("callback: %d %+v", got.status, got.Errors)
			}
			if got := post(t, srv, path, "tok-1", callbackBody(genuine)); got.status != http.StatusConflict || got.code() != "CALLBACK_JA_PROCESSADO" {
				t.Errorf("replay: %d %+v", got.status, got.Errors)
			}

			post(t, srv, "/api/admin/payment-initiation/v1/consents", "tok-1", consentBody(brandID, ""))
			denied := fapiclient.Callback{State: h.brand.lastPushed()["state"].(string), Error: "access_denied", ErrorDescription: "no"}
			if got := post(t, srv, path, "tok-1", callbackBody(denied)); got.status != http.StatusOK ||
				got.Data.FlowStatus != itpflow.StatusRejected || got.Data.Error != "access_denied" {
				t.Errorf("denied: %d %+v %+v", got.status, got.Data, got.Errors)
			}

			post(t, srv, "/api/admin/payment-initiation/v1/consents", "tok-1", consentBody(brandID, ""))
			req = h.brand.lastPushed()
			late := h.genuine(req, h.brand.approve(req))
			h.clock.Advance(itpflow.Lifetime)
			if got := post(t, srv, path, "tok-1", callbackBody(late)); got.status != http.StatusGone || got.code() != "CALLBACK_EXPIRADO" {
				t.Errorf("late: %d %+v", got.status, got.Errors)
			}
		})
	})
}

// TestBrickRequiresItsScope: the endpoints answer 401 without a valid token.
func TestBrickRequiresItsScope(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv := newHarness(t, db).brick(t)
		for _, path := range []string{"/api/admin/payment-initiation/v1/consents", "/api/admin/payment-initiation/v1/consents/callback"} {
			if got := post(t, srv, path, "forged", "{}"); got.status != http.StatusUnauthorized || got.code() != "UNAUTHORIZED" {
				t.Errorf("%s: %d %+v", path, got.status, got.Errors)
			}
		}
	})
}
