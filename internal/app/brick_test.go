package app_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

const fintechCallback = "https://fintech.example/openfinance/callback"

// brickConsentBody is the seed 002 body for today's date in Brasília.
func brickConsentBody(now time.Time, brandID string) string {
	date := now.In(time.FixedZone("BRT", -3*3600)).Format("2006-01-02")
	return `{"data":{
  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
  "creditor":{"personType":"PESSOA_NATURAL","cpfCnpj":"55155114845","name":"HOMOLOGACAO PIX"},
  "payment":{"type":"PIX","date":"` + date + `","details":{"localInstrument":"DICT",
    "creditorAccount":{"accountType":"CACC","ispb":"92894922","issuer":"0001","number":"10173722"},"proxy":"55155114845"},
    "amount":"1.15","currency":"BRL","ibgeTownCode":"5300108"}},
 "device":{"platform":"BROWSER","os":"LINUX","osVersion":"20.04"},
 "specVersion":"v4","brandId":"` + brandID + `"}`
}

// brickFintech registers a partner application allowed the Brick endpoints
// (and extra scopes), with the callback fintechCallback, and returns it with
// the Authorization header of a token of its own.
func brickFintech(t *testing.T, s *apptest.Server, extra ...string) (*auth.Application, map[string]string) {
	t.Helper()
	fintech, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Fintech", CompanyKey: "FINTECH",
		Scopes: append([]string{itpflow.ScopePaymentsAdmin}, extra...), RedirectURLs: []string{fintechCallback}})
	if err != nil {
		t.Fatal(err)
	}
	return fintech, map[string]string{"Authorization": "Bearer " + s.TokenFor(t, fintech.ClientID, secret, "")}
}

// decideBrickConsent creates a Brick consent at the sandbox brand with
// body, has Maria approve (or cancel) it at the holder and posts the
// callback, each step required to succeed; it returns the consent's id.
func decideBrickConsent(t *testing.T, s *apptest.Server, tok map[string]string, body string, approve bool) string {
	t.Helper()
	r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents", tok, body)
	var created struct {
		Data struct{ ConsentID, AuthorizationURL string } `json:"data"`
	}
	r.JSON(t, &created)
	if r.Status != 201 {
		t.Fatalf("consent: %d %s", r.Status, r.Body)
	}
	back := apptest.NewSandboxUser("47742663023", "1234567").Decide(t, s, created.Data.AuthorizationURL, approve)
	if r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", tok, fragmentCallback(back)); r.Status != 200 {
		t.Fatalf("callback: %d %s", r.Status, r.Body)
	}
	return created.Data.ConsentID
}

func fragmentCallback(u *url.URL) string {
	f, _ := url.ParseQuery(u.Fragment)
	if e := f.Get("error"); e != "" {
		return `{"error":"` + e + `","error_description":"` + f.Get("error_description") + `","state":"` + f.Get("state") +
			`","device":{"platform":"BROWSER","os":"LINUX","osVersion":"20.04"}}`
	}
	return `{"code":"` + f.Get("code") + `","id_token":"` + f.Get("id_token") + `","state":"` + f.Get("state") +
		`","device":{"platform":"BROWSER","os":"LINUX","osVersion":"20.04"}}`
}

// TestBrickPaymentInitiation runs the seed 002 initiator endpoints against
// the sandbox brand (Ponte's own holder side): consent → user approves at the
// holder → callback → AUTHORISED; replayed, forged and foreign callbacks
// change nothing; a cancel ends REJECTED.
func TestBrickPaymentInitiation(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Clock: wallClock(t)})
			fintech, tok := brickFintech(t, s)
			create := func() (string, string) {
				t.Helper()
				r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents", tok, brickConsentBody(s.Clock.Now(), s.App.SandboxBrandID))
				if r.Status != 201 {
					t.Fatalf("consent: %d %s", r.Status, r.Body)
				}
				var out struct {
					Data struct {
						ConsentID, Status, AuthorizationURL, FlowStatus, RedirectURI string
					} `json:"data"`
				}
				r.JSON(t, &out)
				if out.Data.Status != "AWAITING_AUTHORISATION" || out.Data.FlowStatus != "PENDING" || out.Data.RedirectURI != fintechCallback ||
					!strings.HasPrefix(out.Data.AuthorizationURL, s.URL+"/oauth/authorize?") {
					t.Fatalf("consent = %+v", out.Data)
				}
				return out.Data.ConsentID, out.Data.AuthorizationURL
			}
			consentID, authURL := create()
			back := apptest.NewSandboxUser("47742663023", "1234567").Decide(t, s, authURL, true)
			if !strings.HasPrefix(back.String(), fintechCallback+"#") {
				t.Fatalf("the holder returned the user to %s", back)
			}
			body := fragmentCallback(back)

			// Another partner cannot complete it; a made-up state is unknown.
			other, otherSecret, _ := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Other", CompanyKey: "OTHER", Scopes: []string{itpflow.ScopePaymentsAdmin}})
			otherTok := map[string]string{"Authorization": "Bearer " + s.TokenFor(t, other.ClientID, otherSecret, "")}
			if r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", otherTok, body); r.Status != 404 {
				t.Errorf("foreign callback: %d %s", r.Status, r.Body)
			}
			f, _ := url.ParseQuery(back.Fragment)
			forged := strings.Replace(body, f.Get("id_token")[:20], "eyJhbGciOiJub25lIn0.", 1)
			if r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", tok, forged); r.Status != 422 || !strings.Contains(string(r.Body), "CALLBACK_INVALIDO") {
				t.Errorf("forged id_token: %d %s", r.Status, r.Body)
			}
			r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", tok, body)
			if r.Status != 200 || !strings.Contains(string(r.Body), `"status":"AUTHORISED"`) || !strings.Contains(string(r.Body), `"flowStatus":"AUTHORISED"`) {
				t.Fatalf("callback: %d %s", r.Status, r.Body)
			}
			if r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", tok, body); r.Status != 409 {
				t.Errorf("replayed callback: %d %s", r.Status, r.Body)
			}
			a, err := s.App.ITPFlow.Authorization(t.Context(), fintech.ID, consentID)
			if err != nil || a.Status != itpflow.StatusAuthorised {
				t.Fatalf("authorization = %+v %v", a, err)
			}
			steps, err := s.App.ITPFlow.Steps(t.Context(), a.ID)
			if err != nil || len(steps) != 2 || steps[0].Step != itpflow.StepConsentRequest || steps[1].Step != itpflow.StepCallback ||
				steps[1].Device.OS != "LINUX" {
				t.Fatalf("steps = %+v %v", steps, err)
			}

			// The user cancels at the holder.
			_, authURL2 := create()
			back2 := apptest.NewSandboxUser("47742663023", "1234567").Decide(t, s, authURL2, false)
			r = s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", tok, fragmentCallback(back2))
			if r.Status != 200 || !strings.Contains(string(r.Body), `"flowStatus":"REJECTED"`) || !strings.Contains(string(r.Body), `"status":"REJECTED"`) ||
				!strings.Contains(string(r.Body), `"error":"access_denied"`) {
				t.Fatalf("cancelled callback: %d %s", r.Status, r.Body)
			}
		})
	}
}

// TestBrickPaymentInitiationRefusals: bad bodies, unknown brands, redirect
// URIs that are not registered, and the brand's own refusal.
func TestBrickPaymentInitiationRefusals(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{Clock: wallClock(t)})
	_, tok := brickFintech(t, s)
	good := brickConsentBody(s.Clock.Now(), s.App.SandboxBrandID)
	cases := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"no device", strings.Replace(good, `"device":{"platform":"BROWSER","os":"LINUX","osVersion":"20.04"},`, "", 1), 400, `"detail":"device `},
		{"bad device", strings.Replace(good, `"os":"LINUX"`, `"os":"BEOS"`, 1), 400, `"detail":"device.os `},
		{"spec v3", strings.Replace(good, `"specVersion":"v4"`, `"specVersion":"v3"`, 1), 400, `"detail":"specVersion `},
		{"bad CPF", strings.Replace(good, `"identification":"47742663023"`, `"identification":"47742663024"`, 1), 400, `data.loggedUser.document.identification`},
		{"unknown brand", strings.Replace(good, s.App.SandboxBrandID, "0123456789abcdef01234567", 1), 422, "BRAND_NAO_ENCONTRADA"},
		{"unregistered redirect", strings.Replace(good, `"specVersion"`, `"redirectUri":"https://evil.example/cb","specVersion"`, 1), 422, "REDIRECT_URI_NAO_REGISTRADA"},
		{"brand refuses the payment", strings.Replace(good, `"amount":"1.15"`, `"amount":"1.1"`, 1), 422, "PARAMETRO_INVALIDO"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents", tok, c.body)
			if r.Status != c.status || !strings.Contains(string(r.Body), c.want) {
				t.Errorf("%d %s, want %d with %s", r.Status, r.Body, c.status, c.want)
			}
		})
	}
	// Callback bodies.
	for name, body := range map[string]string{
		"no state":          `{"code":"c","id_token":"a.b.c","device":{"platform":"APP","os":"IOS","osVersion":"17"}}`,
		"no code or error":  `{"state":"s","device":{"platform":"APP","os":"IOS","osVersion":"17"}}`,
		"malformed":         `{"state":`,
		"wrong device type": `{"state":"s","error":"access_denied","device":"iphone"}`,
	} {
		if r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", tok, body); r.Status != 400 {
			t.Errorf("callback %s: %d %s", name, r.Status, r.Body)
		}
	}
	if r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents/callback", tok,
		`{"state":"never-issued","error":"access_denied","device":{"platform":"APP","os":"IOS","osVersion":"17"}}`); r.Status != 404 {
		t.Errorf("unknown state: %d %s", r.Status, r.Body)
	}
	// Without the scope.
	noScope, noSecret, _ := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "NoScope", CompanyKey: "NS", Scopes: []string{"payments"}})
	if r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents", map[string]string{"Authorization": "Bearer " + s.TokenFor(t, noScope.ClientID, noSecret, "")}, good); r.Status != 403 {
		t.Errorf("without payments.admin: %d", r.Status)
	}
}
