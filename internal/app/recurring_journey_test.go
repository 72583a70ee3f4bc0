package app_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// sweepingBody is the demo customer's sweeping consent with every kind of limit.
const sweepingBody = `{"data":{
  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
  "creditors":[{"personType":"PESSOA_NATURAL","cpfCnpj":"47742663023","name":"Marco Antonio de Brito"}],
  "expirationDateTime":"2025-10-15T18:55:15Z",
  "recurringConfiguration":{"sweeping":{"totalAllowedAmount":"50000.00","transactionLimit":"1000.00",
    "periodicLimits":{"day":{"quantityLimit":2,"transactionLimit":"1500.00"},"month":{"transactionLimit":"20000.00"}},
    "startDateTime":"2024-10-16T03:00:00Z"}}}}`

// sweepingScope is what a sweeping initiator pushes for a recurring consent:
// the Automatic Payments v2 security section's recurring-consent:{id}.
func sweepingScope(consentID string) string {
	return "openid recurring-payments recurring-consent:" + consentID
}

// createRecurring creates the sweeping consent as the demo partner (plain JSON).
func createRecurring(t *testing.T, s *apptest.Server) string {
	t.Helper()
	r := s.Do(t, "POST", recurring.ConsentsPath, map[string]string{
		"Authorization": "Bearer " + s.Token(t, recurring.Scope), "x-fapi-interaction-id": uuid.NewString(), "x-idempotency-key": uuid.NewString()}, sweepingBody)
	if r.Status != 201 {
		t.Fatalf("recurring consent: %d %s", r.Status, r.Body)
	}
	var c struct {
		Data struct {
			RecurringConsentID string `json:"recurringConsentId"`
		} `json:"data"`
	}
	r.JSON(t, &c)
	return c.Data.RecurringConsentID
}

// startSweepingJourney creates a sweeping consent, pushes its request
// (sweepingScope: "openid recurring-payments recurring-consent:<id>") and follows the deep link into
// the WebView, which must show the limits; it returns the journey, the
// interaction id and the partner's login token.
func startSweepingJourney(t *testing.T, s *apptest.Server, in *oidctest.Initiator) (*journey, string, string) {
	t.Helper()
	consentID := createRecurring(t, s)
	req := oidctest.NewRequest(consentID)
	uri := pushPAR(t, s, in, req, sweepingScope(consentID))
	j, wv := openPhoneJourney(t, s, in, consentID, req, authorizeURL(s, in, uri))
	expectInPage(t, wv.body, "Transferências Inteligentes", "Marco Antonio de Brito", "Limite total", "R$ 50.000,00",
		"até R$ 1.000,00", "Por dia: até R$ 1.500,00 em até 2 transferências", "Por mês: até R$ 20.000,00",
		"a partir de 16/10/2024 às 00:00 até 15/10/2025 às 15:55", "Test initiator "+in.ClientID)
	if strings.Contains(wv.body, `id="amount"`) {
		t.Error("webview shows a payment section for a sweeping consent")
	}
	return j, wv.interactionID, wv.loginToken
}

// TestSweepingJourneyApproveAndCancel runs the redirect journey for a
// recurring consent for sweeping on both databases: authorize → deep link →
// partner app → ticket → WebView (limits shown) → login → approve → code +
// id_token, the consent AUTHORISED with the chosen account; and a cancel,
// REJECTED / REJEITADO_USUARIO by the user at the holder.
func TestSweepingJourneyApproveAndCancel(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			// The initiator's OIDC client is the consent-creating application.
			in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)

			j, id, token := startSweepingJourney(t, s, in)
			if r := j.step(t, id, "login", loginBody(token)); r.Status != 200 {
				t.Fatalf("login: %d %s", r.Status, r.Body)
			}
			r := j.step(t, id, "consent", approveBody)
			if r.Status != 200 {
				t.Fatalf("approve: %d %s", r.Status, r.Body)
			}
			var approved consentflow.InteractionJSON
			r.JSON(t, &approved)
			if approved.Status != consentflow.InteractionApproved || approved.RedirectURI == "" {
				t.Fatalf("approve = %+v", approved)
			}
			c, err := s.App.Recurring.Get(t.Context(), s.App.Demo.ID, j.consentID)
			if err != nil || c.Status != recurring.StatusAuthorised || c.DebtorAccount == nil || c.DebtorAccount.Number != "1234567" ||
				c.AuthorisedAt.IsZero() || c.DueAt != c.ExpiresAt {
				t.Fatalf("consent after approval: %+v %v", c, err)
			}
			cb := location(t, j.get(t, approved.RedirectURI))
			frag, _ := url.ParseQuery(cb.Fragment)
			code := frag.Get("code")
			if code == "" || frag.Get("id_token") == "" || frag.Get("state") != j.req.State {
				t.Fatalf("callback fragment = %v", frag)
			}
			status, tok := in.ExchangeCode(t, oidctest.NoRedirects(), s.URL, code, j.req)
			if status != 200 || !strings.Contains(tok["scope"].(string), "recurring-consent:"+j.consentID) || !strings.Contains(tok["scope"].(string), "recurring-payments") {
				t.Fatalf("code exchange: %d %v", status, tok)
			}

			// A second journey, cancelled by the user.
			j2, id2, token2 := startSweepingJourney(t, s, in)
			if r := j2.step(t, id2, "login", loginBody(token2)); r.Status != 200 {
				t.Fatalf("login 2: %d %s", r.Status, r.Body)
			}
			r = j2.step(t, id2, "cancel", `{"device":`+device+`}`)
			if r.Status != 200 {
				t.Fatalf("cancel: %d %s", r.Status, r.Body)
			}
			var cancelled consentflow.InteractionJSON
			r.JSON(t, &cancelled)
			cb = location(t, j2.get(t, cancelled.RedirectURI))
			frag, _ = url.ParseQuery(cb.Fragment)
			if frag.Get("error") != "access_denied" || frag.Get("state") != j2.req.State {
				t.Fatalf("cancel callback = %v", frag)
			}
			c, _ = s.App.Recurring.Get(t.Context(), s.App.Demo.ID, j2.consentID)
			if c.Status != recurring.StatusRejected || c.Rejection == nil || c.Rejection.Reason.Code != string(recurring.RejectRejeitadoUsuario) ||
				c.Rejection.RejectedBy != recurring.ActorUser || c.Rejection.RejectedFrom != recurring.ActorHolder {
				t.Fatalf("cancelled consent = %+v %+v", c, c.Rejection)
			}
		})
	}
}
