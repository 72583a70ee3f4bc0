package recurring_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/settlement"
)

const paymentsPath = recurring.PaymentsPath

// The demo customer Maria (CPF 477.426.630-23, account 1234567 with
// R$ 5.320,47 available in the sandbox) sweeping to her own account at
// another institution, at most 3 transfers of up to R$ 1.000,00 a day.
const sweepBody = `{"data":{
  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
  "creditors":[{"personType":"PESSOA_NATURAL","cpfCnpj":"47742663023","name":"Maria da Silva"}],
  "expirationDateTime":"2025-10-15T18:55:15Z",
  "recurringConfiguration":{"sweeping":{"totalAllowedAmount":"4000.00","transactionLimit":"1000.00",
    "periodicLimits":{"day":{"quantityLimit":3,"transactionLimit":"2500.00"},"week":{"quantityLimit":10},
      "month":{"transactionLimit":"4000.00"},"year":{"quantityLimit":100}}}}}}`

// riskSignals are the manual signals of a user present at the initiator.
const riskSignals = `{"manual":{"deviceId":"5ad82a8f-37e5-4369-a1a3-be4b1fb9c034","osVersion":"17.5","userTimeZoneOffset":"-03",
  "language":"pt-BR","screenDimensions":{"width":390,"height":844},"accountTenure":"2023-01-01","isRootedDevice":false}}`

// endToEnd is a fresh endToEndId for the test clock's minute.
func endToEnd(now time.Time) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 11)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return "E12345678" + now.UTC().Format("200601021504") + string(b)
}

// paymentBody is a sweeping payment of amount to Maria's account elsewhere, today.
func paymentBody(s *apptest.Server, amount string) string {
	return paymentBodyAt(s.Clock.Now(), amount)
}

// paymentBodyAt is paymentBody for the day of now.
func paymentBodyAt(now time.Time, amount string) string {
	return fmt.Sprintf(`{"data":{"endToEndId":%q,"date":%q,"payment":{"amount":%q,"currency":"BRL"},
  "creditorAccount":{"ispb":"12345678","issuer":"0001","number":"9876543","accountType":"CACC"},
  "remittanceInformation":"Transferência inteligente","cnpjInitiator":"50685362000135","localInstrument":"MANU",
  "document":{"identification":"47742663023","rel":"CPF"},"riskSignals":%s}}`,
		endToEnd(now), now.In(time.FixedZone("BRT", -3*3600)).Format("2006-01-02"), amount, riskSignals)
}

// sweeping is an authorised sweeping consent and the initiator's
// authorization_code token for it.
type sweeping struct {
	consentID string
	token     string
}

// authorise creates the consent as the demo application, pushes its
// authorization request with the specification's scope
// (recurring-consent:{id}), runs Maria's approval through the partner app
// and the WebView and redeems the code: the token is a real
// authorization_code access token of Ponte's authorization server.
func authorise(t *testing.T, s *apptest.Server, body string) sweeping {
	t.Helper()
	c := create(t, s, body)
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
	req := oidctest.NewRequest(c.Data.RecurringConsentID)
	req.Scope = "openid recurring-payments " + recurring.ConsentScopePrefix + c.Data.RecurringConsentID
	resp := in.PAR(t, oidctest.NoRedirects(), s.URL, req)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &par) != nil {
		t.Fatalf("par with scope %q: %d %s", req.Scope, resp.StatusCode, b)
	}
	authorize := s.URL + oidc.PathAuthorize + "?" + url.Values{"client_id": {in.ClientID}, "request_uri": {par.RequestURI}}.Encode()
	cb := apptest.NewSandboxUser("47742663023", "1234567").Decide(t, s, authorize, true)
	frag, _ := url.ParseQuery(cb.Fragment)
	status, tok := in.ExchangeCode(t, oidctest.NoRedirects(), s.URL, frag.Get("code"), req)
	if status != http.StatusOK || !strings.Contains(tok["scope"].(string), req.Scope[len("openid recurring-payments "):]) {
		t.Fatalf("code exchange: %d %v", status, tok)
	}
	return sweeping{consentID: c.Data.RecurringConsentID, token: tok["access_token"].(string)}
}

// withLedger checks the server's sweeping payments settle in the sandbox
// ledger, as app wiring makes them in the sandbox.
func withLedger(t *testing.T, s *apptest.Server) *apptest.Server {
	t.Helper()
	if _, ok := s.App.Recurring.Settlement.(*settlement.Ledger); !ok {
		t.Fatalf("sweeping payments settle through %T, want the sandbox ledger", s.App.Recurring.Settlement)
	}
	return s
}

type paymentResp struct {
	Data struct {
		RecurringPaymentID string `json:"recurringPaymentId"`
		RecurringConsentID string `json:"recurringConsentId"`
		EndToEndID         string `json:"endToEndId"`
		Status             string `json:"status"`
		RejectionReason    *struct {
			Code, Detail string
		} `json:"rejectionReason"`
		DebtorAccount map[string]any `json:"debtorAccount"`
	} `json:"data"`
	Links struct {
		Self string `json:"self"`
	} `json:"links"`
}

// pay posts body with the token (plain JSON: the demo application may) and
// checks request and answer against the official file.
func pay(t *testing.T, s *apptest.Server, token, key, body string) *apptest.Response {
	t.Helper()
	validateSpec(t, nil, "CreateRecurringPixPayment", []byte(body))
	resp := s.Do(t, "POST", paymentsPath, headers(token, key), body)
	checkPaymentAnswer(t, s, resp)
	return resp
}

// checkPaymentAnswer validates a POST answer with the official schema of its status.
func checkPaymentAnswer(t *testing.T, s *apptest.Server, resp *apptest.Response) {
	t.Helper()
	switch resp.Status {
	case http.StatusCreated:
		validateSpec(t, s, "ResponseRecurringPaymentsIdPost", resp.Body)
	case http.StatusUnprocessableEntity:
		validateSpec(t, s, "422ResponseErrorCreatePixRecurringPayment", resp.Body)
	default:
		validateSpec(t, s, "ResponseError", resp.Body)
	}
}

// mustPay posts a payment that must be created, and returns it.
func mustPay(t *testing.T, s *apptest.Server, token, body string) paymentResp {
	t.Helper()
	resp := pay(t, s, token, uuid.NewString(), body)
	if resp.Status != http.StatusCreated {
		t.Fatalf("payment: %d %s", resp.Status, resp.Body)
	}
	var p paymentResp
	resp.JSON(t, &p)
	return p
}

// getPayment reads a payment with a client_credentials-like partner token.
func getPayment(t *testing.T, s *apptest.Server, id string) paymentResp {
	t.Helper()
	resp := s.Do(t, "GET", paymentsPath+"/"+id, headers(token(t, s), ""), "")
	if resp.Status != http.StatusOK {
		t.Fatalf("get payment: %d %s", resp.Status, resp.Body)
	}
	validateSpec(t, s, "ResponseRecurringPaymentsIdRead", resp.Body)
	var p paymentResp
	resp.JSON(t, &p)
	return p
}

// runJobs runs the due jobs until none is left.
func runJobs(t *testing.T, s *apptest.Server) {
	t.Helper()
	for range 10 {
		n, err := s.App.Jobs.RunDue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// wantCodes checks an error answer's status and codes.
func wantCodes(t *testing.T, resp *apptest.Response, status int, codes ...string) {
	t.Helper()
	var e errorResp
	resp.JSON(t, &e)
	if resp.Status != status || strings.Join(e.codes(), ",") != strings.Join(codes, ",") {
		t.Fatalf("status %d codes %v, want %d %v: %s", resp.Status, e.codes(), status, codes, resp.Body)
	}
}
