package fapiclient_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

const redirectURI = "https://itp.example/journey/callback"

// consent is a Payments v4 consent for the sandbox user 47742663023 on
// apptest.Epoch's date in Brasília.
const consent = `{"data":{
  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
  "creditor":{"personType":"PESSOA_NATURAL","cpfCnpj":"12345678909","name":"Marco Antonio de Brito"},
  "payment":{"type":"PIX","date":"2024-10-15","currency":"BRL","amount":"100.00",
    "details":{"localInstrument":"DICT","proxy":"12345678909",
      "creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"}}}}}`

// itp registers an initiator at a running Ponte (the brand): a partner
// application with a signing key and scope payments, and the same client_id
// at the authorization server, then returns a Client for it.
func itp(t *testing.T, s *apptest.Server) *fapiclient.Client {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "itp-1", Algorithm: "PS256", Use: "sig"}}})
	app, _, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Ponte ITP", CompanyKey: "ITP", Scopes: []string{"payments"}, JWKS: jwks})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.AuthServer.Storage().RegisterInitiator(t.Context(), oidc.Initiator{
		ClientID: app.ClientID, Name: "Ponte ITP", JWKS: jwks, RedirectURIs: []string{redirectURI}}); err != nil {
		t.Fatal(err)
	}
	return &fapiclient.Client{Issuer: s.URL, APIBase: s.URL, ClientID: app.ClientID, Key: key, KeyID: "itp-1",
		RedirectURI: redirectURI, HTTP: &http.Client{Timeout: 10 * time.Second}, Clock: clock.System{}}
}

func callbackOf(u *url.URL) fapiclient.Callback {
	f, _ := url.ParseQuery(u.Fragment)
	return fapiclient.Callback{Code: f.Get("code"), IDToken: f.Get("id_token"), State: f.Get("state"),
		Error: f.Get("error"), ErrorDescription: f.Get("error_description")}
}

// TestLoopAgainstPonte runs the ITP side of the redirect journey against
// Ponte's own holder side: signed consent, PAR, a user approving in the
// sandbox, the callback's checks, the code exchange and the consent read.
func TestLoopAgainstPonte(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			// The brand's clock is real here: go-oidc reads the wall clock
			// and the client signs with it.
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Clock: clock.NewFake(time.Now())})
			c := itp(t, s)
			ctx := t.Context()
			token, err := c.Token(ctx, "payments")
			if err != nil {
				t.Fatal(err)
			}
			body := strings.Replace(consent, "2024-10-15", s.Clock.Now().In(time.FixedZone("BRT", -3*3600)).Format("2006-01-02"), 1)
			created, err := c.CreateConsent(ctx, token, payments.ConsentsPath, json.RawMessage(body), uuid.NewString())
			if err != nil {
				t.Fatal(err)
			}
			if created.Status != "AWAITING_AUTHORISATION" || !strings.HasPrefix(created.ID, "urn:ponte:") {
				t.Fatalf("created = %+v", created)
			}

			ar := fapiclient.NewAuthRequest("openid payments consent:" + created.ID)
			authorize, err := c.Push(ctx, ar)
			if err != nil {
				t.Fatal(err)
			}
			back := apptest.NewSandboxUser("47742663023", "1234567").Decide(t, s, authorize, true)
			if !strings.HasPrefix(back.String(), redirectURI) {
				t.Fatalf("the brand sent the user to %s", back)
			}
			cb := callbackOf(back)

			// Forged and mismatched callbacks are refused before any exchange.
			forged := []struct {
				name string
				cb   fapiclient.Callback
				ar   fapiclient.AuthRequest
			}{
				{"other state", fapiclient.Callback{Code: cb.Code, IDToken: cb.IDToken, State: "x"}, ar},
				{"other code", fapiclient.Callback{Code: cb.Code + "x", IDToken: cb.IDToken, State: cb.State}, ar},
				{"other nonce", cb, fapiclient.AuthRequest{State: ar.State, Nonce: "n", Verifier: ar.Verifier}},
				{"tampered id_token", fapiclient.Callback{Code: cb.Code, IDToken: cb.IDToken[:len(cb.IDToken)-4] + "AAAA", State: cb.State}, ar},
				{"no id_token", fapiclient.Callback{Code: cb.Code, State: cb.State}, ar},
			}
			for _, f := range forged {
				if _, err := c.VerifyCallback(ctx, f.cb, f.ar); !errors.Is(err, fapiclient.ErrCallback) {
					t.Errorf("%s: %v, want ErrCallback", f.name, err)
				}
			}
			code, err := c.VerifyCallback(ctx, cb, ar)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := c.ExchangeCode(ctx, code, ar)
			if err != nil || tok.AccessToken == "" {
				t.Fatalf("exchange: %+v %v", tok, err)
			}
			if _, err := c.ExchangeCode(ctx, code, ar); err == nil {
				t.Error("the code was exchanged twice")
			}
			read, err := c.GetConsent(ctx, token, payments.ConsentsPath+"/"+created.ID)
			if err != nil || read.Status != "AUTHORISED" {
				t.Fatalf("consent after approval: %+v %v", read, err)
			}

			// A cancelled journey comes back as access_denied.
			created2, err := c.CreateConsent(ctx, token, payments.ConsentsPath, json.RawMessage(body), uuid.NewString())
			if err != nil {
				t.Fatal(err)
			}
			ar2 := fapiclient.NewAuthRequest("openid payments consent:" + created2.ID)
			authorize2, err := c.Push(ctx, ar2)
			if err != nil {
				t.Fatal(err)
			}
			back2 := apptest.NewSandboxUser("47742663023", "1234567").Decide(t, s, authorize2, false)
			var denied *fapiclient.DeniedError
			if _, err := c.VerifyCallback(ctx, callbackOf(back2), ar2); !errors.As(err, &denied) || denied.Code != "access_denied" {
				t.Fatalf("cancelled callback: %v", err)
			}

			// A refusal by the brand's consent API comes back as an APIError.
			_, err = c.CreateConsent(ctx, token, payments.ConsentsPath, json.RawMessage(`{"data":{}}`), uuid.NewString())
			var apiErr *fapiclient.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != 422 || len(apiErr.Errors) == 0 {
				t.Fatalf("invalid consent: %v", err)
			}
		})
	}
}
