package app_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// dataConsentBody shares the demo customer's registration data and accounts
// (balances and statements) until 2025-04-15.
const dataConsentBody = `{"data":{
  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
  "permissions":["CUSTOMERS_PERSONAL_IDENTIFICATIONS_READ","RESOURCES_READ","ACCOUNTS_READ","ACCOUNTS_BALANCES_READ","ACCOUNTS_TRANSACTIONS_READ"],
  "expirationDateTime":"2025-04-15T18:55:15Z"}}`

// createDataConsent creates a data-sharing consent as the demo partner.
func createDataConsent(t *testing.T, s *apptest.Server) string {
	t.Helper()
	r := s.Do(t, "POST", dataconsents.ConsentsPath, map[string]string{
		"Authorization": "Bearer " + s.Token(t, dataconsents.Scope), "x-fapi-interaction-id": uuid.NewString()}, dataConsentBody)
	if r.Status != 201 {
		t.Fatalf("data consent: %d %s", r.Status, r.Body)
	}
	var c struct {
		Data struct {
			ConsentID string `json:"consentId"`
		} `json:"data"`
	}
	r.JSON(t, &c)
	return c.Data.ConsentID
}

// startDataJourney creates a data-sharing consent, pushes its request and
// follows the deep link into the WebView, which must show the permission
// groups in Portuguese; it returns the journey, the interaction id and the
// partner's login token.
func startDataJourney(t *testing.T, s *apptest.Server, in *oidctest.Initiator) (*journey, string, string) {
	t.Helper()
	consentID := createDataConsent(t, s)
	req := oidctest.NewRequest(consentID)
	uri := pushPAR(t, s, in, req, "openid consents consent:"+consentID)
	j, wv := openPhoneJourney(t, s, in, consentID, req, authorizeURL(s, in, uri))
	expectInPage(t, wv.body, "Compartilhar dados via Open Finance", `data-kind="data"`, `data-needs-accounts="true"`,
		"<dt>Contas</dt>", "<strong>Saldos</strong>", "<strong>Extratos</strong>", "Até 15/04/2025 às 15:55",
		"Test initiator "+in.ClientID, "Contas compartilhadas")
	// Ponte serves accounts only: the registration group was not granted, nor shown.
	for _, unwanted := range []string{"<dt>Cadastro</dt>", "<strong>Limites</strong>", `id="amount"`} {
		if strings.Contains(wv.body, unwanted) {
			t.Errorf("webview shows %q", unwanted)
		}
	}
	return j, wv.interactionID, wv.loginToken
}

// TestDataJourneyApproveAndCancel runs the redirect journey of a
// data-sharing consent on both databases: authorize → deep link → sandbox
// partner app → ticket → WebView (groups in Portuguese) → login → approve
// sharing ONE of the user's two accounts → code + id_token, the consent
// AUTHORISED with exactly that account; then a cancel, REJECTED /
// CUSTOMER_MANUALLY_REJECTED.
func TestDataJourneyApproveAndCancel(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			second, err := s.App.Customers.AddAccount(t.Context(), s.App.Demo.ID, "47742663023",
				customers.Account{ISPB: "37241230", Issuer: "0001", Number: "7777777", AccountType: "CACC"})
			if err != nil {
				t.Fatal(err)
			}
			in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)

			j, id, tok := startDataJourney(t, s, in)
			r := j.step(t, id, "login", loginBody(tok))
			var logged consentflow.InteractionJSON
			r.JSON(t, &logged)
			if r.Status != 200 || !hasAccount(logged.Accounts, "1234567") || !hasAccount(logged.Accounts, second.Number) {
				t.Fatalf("login: %d %s", r.Status, r.Body)
			}
			// Share only the second account (debtorAccount stays seed 002's required field).
			approve := `{"partialApproval":false,"debtorAccount":{"ispb":"37241230","issuer":"0001","number":"1234567","accountType":"CACC"},` +
				`"accounts":[{"ispb":"37241230","issuer":"0001","number":"7777777","accountType":"CACC"}],"device":` + device + `}`
			r = j.step(t, id, "consent", approve)
			if r.Status != 200 {
				t.Fatalf("approve: %d %s", r.Status, r.Body)
			}
			var approved consentflow.InteractionJSON
			r.JSON(t, &approved)
			if approved.Status != consentflow.InteractionApproved || approved.RedirectURI == "" {
				t.Fatalf("approve = %+v", approved)
			}
			g, err := s.App.DataConsents.Grant(t.Context(), j.consentID)
			if err != nil || g.Status != string(dataconsents.StatusAuthorised) || !slices.Equal(g.AccountIDs, []string{second.ID}) ||
				!slices.Equal(g.Permissions, []string{"RESOURCES_READ", "ACCOUNTS_READ", "ACCOUNTS_BALANCES_READ", "ACCOUNTS_TRANSACTIONS_READ"}) {
				t.Fatalf("grant after approval: %+v %v", g, err)
			}
			cb := location(t, j.get(t, approved.RedirectURI))
			frag, _ := url.ParseQuery(cb.Fragment)
			code := frag.Get("code")
			if code == "" || frag.Get("id_token") == "" || frag.Get("state") != j.req.State {
				t.Fatalf("callback fragment = %v", frag)
			}
			status, token := in.ExchangeCode(t, oidctest.NoRedirects(), s.URL, code, j.req)
			scope, _ := token["scope"].(string)
			if status != 200 || !slices.Contains(strings.Fields(scope), "consents") || !slices.Contains(strings.Fields(scope), "consent:"+j.consentID) {
				t.Fatalf("code exchange: %d %v", status, token)
			}

			// A second journey, cancelled by the user.
			j2, id2, tok2 := startDataJourney(t, s, in)
			if r := j2.step(t, id2, "login", loginBody(tok2)); r.Status != 200 {
				t.Fatalf("login 2: %d %s", r.Status, r.Body)
			}
			r = j2.step(t, id2, "cancel", `{"device":`+device+`}`)
			var cancelled consentflow.InteractionJSON
			r.JSON(t, &cancelled)
			if r.Status != 200 || cancelled.RedirectURI == "" {
				t.Fatalf("cancel: %d %s", r.Status, r.Body)
			}
			cb = location(t, j2.get(t, cancelled.RedirectURI))
			frag, _ = url.ParseQuery(cb.Fragment)
			if frag.Get("error") != "access_denied" || frag.Get("state") != j2.req.State {
				t.Fatalf("cancel callback = %v", frag)
			}
			c, err := s.App.DataConsents.Get(t.Context(), s.App.Demo.ID, j2.consentID)
			if err != nil || c.Status != dataconsents.StatusRejected || c.Rejection == nil ||
				c.Rejection.Reason.Code != dataconsents.ReasonCustomerManuallyRejected || c.Rejection.RejectedBy != dataconsents.ByUser {
				t.Fatalf("cancelled consent = %+v %v", c, err)
			}
		})
	}
}

func hasAccount(list []consentflow.AccountJSON, number string) bool {
	for _, a := range list {
		if a.Number == number {
			return true
		}
	}
	return false
}
