package app_test

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// mySharingTicket asks for a "Meus compartilhamentos" ticket for document.
func mySharingTicket(t *testing.T, s *apptest.Server, token, clientID, document string) *apptest.Response {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"requestUri": dataconsents.MySharingRequestURI, "clientId": clientID, "documentNumber": document})
	return s.Do(t, "POST", "/openfinance/consent-flow/ticket", map[string]string{"Authorization": "Bearer " + token,
		consentflow.IdempotencyHeader: uuid.NewString(), "x-correlation-id": uuid.NewString()}, string(b))
}

func ticketID(t *testing.T, r *apptest.Response) string {
	t.Helper()
	var tk struct {
		TicketID string `json:"ticketId"`
	}
	r.JSON(t, &tk)
	if r.Status != 201 || tk.TicketID == "" {
		t.Fatalf("ticket: %d %s", r.Status, r.Body)
	}
	return tk.TicketID
}

// openMySharing opens the page with a ticket in a fresh browser and returns
// the browser and the page.
func openMySharing(t *testing.T, s *apptest.Server, browser *http.Client, ticket string) (int, string) {
	t.Helper()
	resp, err := browser.Get(s.URL + dataconsents.PathMySharing + "?ticket=" + url.QueryEscape(ticket))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, string(b)
	}
	return getPage(t, s, browser, resp.Header.Get("Location"))
}

func getPage(t *testing.T, s *apptest.Server, browser *http.Client, path string) (int, string) {
	t.Helper()
	resp, err := browser.Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// TestMySharing: the customer opens "Meus compartilhamentos" with a ticket
// for urn:ponte:my-sharing, sees his active consent (and no other
// customer's), revokes it, and the data APIs' Grant says REJECTED /
// CUSTOMER_MANUALLY_REVOKED; a used ticket does not open the page again.
func TestMySharing(t *testing.T) {
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			acct := demoAccountID(t, s, "47742663023")
			mine := createDataConsentFor(t, s, "47742663023")
			authoriseData(t, s, mine, acct)
			pending := createDataConsentFor(t, s, "47742663023") // awaiting: not listed
			// Another customer of the same partner (João Souza, 12345678909) and his consent.
			theirs := createDataConsentFor(t, s, "12345678909")
			authoriseData(t, s, theirs, demoAccountID(t, s, "12345678909"))

			tok := s.Token(t, "openfinance.ticket.write")
			ticket := ticketID(t, mySharingTicket(t, s, tok, s.App.Demo.ClientID, "47742663023"))
			browser := newBrowser(t)
			status, page := openMySharing(t, s, browser, ticket)
			if status != 200 || !strings.Contains(page, "Meus compartilhamentos") || !strings.Contains(page, `value="`+mine+`"`) ||
				!strings.Contains(page, "Saldos") || !strings.Contains(page, "conta 1234567") {
				t.Fatalf("page: %d %s", status, page)
			}
			for _, other := range []string{theirs, pending} {
				if strings.Contains(page, other) {
					t.Errorf("page lists %s", other)
				}
			}
			// The ticket is used: a second opening is refused.
			if status, _ := openMySharing(t, s, newBrowser(t), ticket); status != http.StatusGone {
				t.Errorf("reused ticket: %d", status)
			}
			// Another customer's consent cannot be revoked from this session.
			revoke := func(id string) *http.Response {
				req, _ := http.NewRequest(http.MethodPost, s.URL+dataconsents.PathMySharingRevoke, strings.NewReader(url.Values{"consentId": {id}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", s.URL)
				resp, err := browser.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp
			}
			if r := revoke(theirs); r.StatusCode != http.StatusNotFound {
				t.Errorf("revoke another's consent: %d", r.StatusCode)
			}
			if g, _ := s.App.DataConsents.Grant(t.Context(), theirs); g.Status != "AUTHORISED" {
				t.Errorf("another's consent after the refused revocation: %+v", g)
			}
			r := revoke(mine)
			if r.StatusCode != http.StatusSeeOther {
				t.Fatalf("revoke: %d", r.StatusCode)
			}
			status, page = getPage(t, s, browser, r.Header.Get("Location"))
			if status != 200 || strings.Contains(page, `value="`+mine+`"`) || !strings.Contains(page, "Compartilhamento encerrado") {
				t.Errorf("page after revocation: %d %s", status, page)
			}
			g, err := s.App.DataConsents.Grant(t.Context(), mine)
			if err != nil || g.Status != "REJECTED" {
				t.Fatalf("grant after revocation: %+v %v", g, err)
			}
			c, _ := s.App.DataConsents.Get(t.Context(), s.App.Demo.ID, mine)
			if c.Rejection == nil || c.Rejection.Reason.Code != dataconsents.ReasonCustomerManuallyRevoked || c.Rejection.RejectedBy != dataconsents.ByUser {
				t.Errorf("rejection = %+v", c.Rejection)
			}
		})
	}
}

// TestMySharingProductionRefusesStrangers: outside the sandbox a partner
// gets a my-sharing ticket only for its own customers.
func TestMySharingProductionRefusesStrangers(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{Mode: config.Production})
	partner, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Holder partner", CompanyKey: "ACESSO",
		Scopes: []string{"openfinance.ticket.write"}, AcceptPlainJSON: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.Customers.CreateCustomer(t.Context(), partner.ID, "47742663023", "Marco Antonio de Brito"); err != nil {
		t.Fatal(err)
	}
	tok := s.TokenFor(t, partner.ClientID, secret, "")
	if r := mySharingTicket(t, s, tok, partner.ClientID, "52998224725"); r.Status != 400 || !strings.Contains(string(r.Body), "documentNumber") {
		t.Errorf("stranger's ticket: %d %s", r.Status, r.Body)
	}
	ticket := ticketID(t, mySharingTicket(t, s, tok, partner.ClientID, "47742663023"))
	if status, page := openMySharing(t, s, newBrowser(t), ticket); status != 200 || !strings.Contains(page, "Você não tem compartilhamentos") {
		t.Errorf("own customer's page: %d %s", status, page)
	}
}

// createDataConsentFor creates, as the demo partner, a consent sharing the
// accounts of the customer with this CPF.
func createDataConsentFor(t *testing.T, s *apptest.Server, cpf string) string {
	t.Helper()
	r := s.Do(t, "POST", dataconsents.ConsentsPath, map[string]string{
		"Authorization": "Bearer " + s.Token(t, dataconsents.Scope), "x-fapi-interaction-id": uuid.NewString()},
		strings.Replace(dataConsentBody, "47742663023", cpf, 1))
	var c struct {
		Data struct {
			ConsentID string `json:"consentId"`
		} `json:"data"`
	}
	r.JSON(t, &c)
	if r.Status != 201 {
		t.Fatalf("data consent: %d %s", r.Status, r.Body)
	}
	return c.Data.ConsentID
}

// demoAccountID is the first account of the demo partner's customer with this CPF.
func demoAccountID(t *testing.T, s *apptest.Server, cpf string) string {
	t.Helper()
	list, err := s.App.Customers.Accounts(t.Context(), s.App.Demo.ID, cpf)
	if err != nil || len(list) == 0 {
		t.Fatalf("accounts of %s: %v %v", cpf, list, err)
	}
	return list[0].ID
}

// authoriseData approves a data consent in the WebView's place.
func authoriseData(t *testing.T, s *apptest.Server, id, accountID string) {
	t.Helper()
	if err := s.App.DB.Write(t.Context(), func(tx *sql.Tx) error {
		_, err := s.App.DataConsents.AuthoriseTx(t.Context(), tx, id, s.App.Demo.ID, []string{accountID})
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
