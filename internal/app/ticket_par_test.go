package app_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// consentBody is a valid Payments v4 consent for the logged user 47742663023,
// paid on apptest.Epoch's date in Brasília.
const consentBody = `{"data":{
  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
  "creditor":{"personType":"PESSOA_NATURAL","cpfCnpj":"12345678909","name":"Marco Antonio de Brito"},
  "payment":{"type":"PIX","date":"2024-10-15","currency":"BRL","amount":"100.00",
    "details":{"localInstrument":"DICT","proxy":"12345678909",
      "creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"}}}}}`

// TestTicketNeedsLivePushedRequest: outside the sandbox a ticket's requestUri
// must be a live pushed authorization request of clientId (the full URN or
// its id part), younger than 60 s, for the customer its consent names.
func TestTicketNeedsLivePushedRequest(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Mode: config.Production})
			partner, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Holder partner", CompanyKey: "ACESSO",
				Scopes: []string{"openfinance.ticket.write", "payments"}, AcceptPlainJSON: true})
			if err != nil {
				t.Fatal(err)
			}
			tok := s.TokenFor(t, partner.ClientID, secret, "")
			// The initiator's consent (with the authorization server's token:
			// outside the sandbox the consent API takes no client-secret
			// token), then its pushed authorization request.
			requestURI, clientID := pushedPaymentRequest(t, s)
			idPart := strings.TrimPrefix(requestURI, "urn:ietf:params:oauth:request_uri:")

			ticket := func(requestURI, clientID, document string) *apptest.Response {
				b, _ := json.Marshal(map[string]string{"requestUri": requestURI, "clientId": clientID, "documentNumber": document})
				return s.Do(t, "POST", "/openfinance/consent-flow/ticket", map[string]string{"Authorization": "Bearer " + tok}, string(b))
			}
			refused := func(r *apptest.Response, field string) {
				t.Helper()
				if r.Status != 400 || !strings.Contains(string(r.Body), `"propertyName":"`+field+`"`) {
					t.Errorf("got %d %s, want 400 naming %s", r.Status, r.Body, field)
				}
			}
			refused(ticket("urn:ietf:params:oauth:request_uri:unknown", clientID, "47742663023"), "requestUri")
			refused(ticket(requestURI, "another-client", "47742663023"), "requestUri")
			refused(ticket(requestURI, clientID, "52998224725"), "documentNumber")
			first := ticket(requestURI, clientID, "47742663023")
			if first.Status != 201 {
				t.Fatalf("full URN: %d %s", first.Status, first.Body)
			}
			// The WebView names the initiator as registered, not by its client id.
			var tk struct {
				TicketID string `json:"ticketId"`
			}
			first.JSON(t, &tk)
			page := s.Do(t, "GET", "/openfinance/consent-flow/webview?ticket="+tk.TicketID, nil, "")
			if page.Status != 200 || !strings.Contains(string(page.Body), "Test initiator "+clientID) {
				t.Errorf("webview: %d, initiator name missing", page.Status)
			}
			// And the holder partner by its name (on PostgreSQL the
			// redemption's statement reads both names).
			if !strings.Contains(string(page.Body), "Holder partner · Open Finance") {
				t.Errorf("webview: partner name missing: %s", page.Body)
			}
			s.Clock.Advance(59 * time.Second)
			if r := ticket(idPart, clientID, "47742663023"); r.Status != 201 {
				t.Errorf("id part at 59 s: %d %s", r.Status, r.Body)
			}
			s.Clock.Advance(time.Second)
			refused(ticket(requestURI, clientID, "47742663023"), "requestUri")
		})
	}
}
