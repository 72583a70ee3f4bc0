package payments_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/payments"
)

const consentsPath = "/open-banking/payments/v4/consents"

// today is apptest.Epoch's date in Brasília (2024-10-15T15:55:15-03:00).
const today = "2024-10-15"

const happyBody = `{"data":{
  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
  "businessEntity":{"document":{"identification":"11222333000181","rel":"CNPJ"}},
  "creditor":{"personType":"PESSOA_NATURAL","cpfCnpj":"12345678909","name":"Marco Antonio de Brito"},
  "payment":{"type":"PIX","date":"` + today + `","currency":"BRL","amount":"100000.12","ibgeTownCode":"5300108",
    "details":{"localInstrument":"DICT","proxy":"12345678909",
      "creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"}}}}}`

const interactionID = "d78fc4e5-37ca-4da3-adf2-9b082bf92280"

var consentIDPattern = regexp.MustCompile(`^urn:ponte:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func headers(token, key string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + token, "x-fapi-interaction-id": interactionID}
	if key != "" {
		h["x-idempotency-key"] = key
	}
	return h
}

type consentResp struct {
	Data struct {
		ConsentID            string                    `json:"consentId"`
		CreationDateTime     string                    `json:"creationDateTime"`
		ExpirationDateTime   string                    `json:"expirationDateTime"`
		StatusUpdateDateTime string                    `json:"statusUpdateDateTime"`
		Status               string                    `json:"status"`
		DebtorAccount        *payments.Account         `json:"debtorAccount"`
		RejectionReason      *payments.RejectionReason `json:"rejectionReason"`
		Payment              map[string]any            `json:"payment"`
	} `json:"data"`
	Links struct {
		Self string `json:"self"`
	} `json:"links"`
}

type errorResp struct {
	Errors []struct {
		Code, Title, Detail string
	} `json:"errors"`
	Meta struct {
		RequestDateTime string `json:"requestDateTime"`
	} `json:"meta"`
}

func create(t *testing.T, s *apptest.Server, token, key, body string) consentResp {
	t.Helper()
	validateSpec(t, nil, "CreatePaymentConsent", []byte(body))
	resp := s.Do(t, "POST", consentsPath, headers(token, key), body)
	if resp.Status != http.StatusCreated {
		t.Fatalf("create: status %d: %s", resp.Status, resp.Body)
	}
	validateSpec(t, s, "ResponseCreatePaymentConsent", resp.Body)
	var c consentResp
	resp.JSON(t, &c)
	return c
}

// get reads a consent with a fresh demo token (tests move the clock past token lifetimes).
func get(t *testing.T, s *apptest.Server, id string) consentResp {
	t.Helper()
	token := s.Token(t, "payments")
	resp := s.Do(t, "GET", consentsPath+"/"+id, headers(token, ""), "")
	if resp.Status != http.StatusOK {
		t.Fatalf("get: status %d: %s", resp.Status, resp.Body)
	}
	validateSpec(t, s, "ResponsePaymentConsent", resp.Body)
	var c consentResp
	resp.JSON(t, &c)
	return c
}

func TestCreateAndGetConsent(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "payments")
		resp := s.Do(t, "POST", consentsPath, headers(tok, "key-1"), happyBody)
		if resp.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", resp.Status, resp.Body)
		}
		if got := resp.Header.Get("x-fapi-interaction-id"); got != interactionID {
			t.Errorf("x-fapi-interaction-id = %q, want the request's %q", got, interactionID)
		}
		validateSpec(t, nil, "CreatePaymentConsent", []byte(happyBody))
		validateSpec(t, s, "ResponseCreatePaymentConsent", resp.Body)
		var c consentResp
		resp.JSON(t, &c)
		d := c.Data
		if !consentIDPattern.MatchString(d.ConsentID) || !payments.ConsentIDPattern.MatchString(d.ConsentID) {
			t.Errorf("consentId %q", d.ConsentID)
		}
		if d.Status != "AWAITING_AUTHORISATION" || d.CreationDateTime != "2024-10-15T18:55:15Z" ||
			d.ExpirationDateTime != "2024-10-15T19:00:15Z" || d.StatusUpdateDateTime != "2024-10-15T18:55:15Z" {
			t.Errorf("data = %+v", d)
		}
		if c.Links.Self != s.URL+consentsPath+"/"+d.ConsentID {
			t.Errorf("links.self = %q", c.Links.Self)
		}
		g := get(t, s, d.ConsentID)
		if g.Data.ConsentID != d.ConsentID || g.Data.Status != "AWAITING_AUTHORISATION" || g.Data.Payment["amount"] != "100000.12" {
			t.Errorf("get = %+v", g.Data)
		}

		// A scheduled payment at the far end of the window, with the initiator's debtor account.
		sched := mutate(t, happyBody, func(m map[string]any) {
			p := at(m, "data", "payment")
			delete(p, "date")
			p["schedule"] = map[string]any{"single": map[string]any{"date": "2026-10-15"}} // D+730
			at(m, "data")["debtorAccount"] = map[string]any{"ispb": "37241230", "number": "0001", "accountType": "TRAN"}
		})
		c2 := create(t, s, tok, "key-2", sched)
		if c2.Data.DebtorAccount == nil || c2.Data.DebtorAccount.ISPB != "37241230" {
			t.Errorf("debtorAccount = %+v", c2.Data.DebtorAccount)
		}
		// Each recurring schedule kind within its bounds.
		for i, schedule := range []map[string]any{
			{"daily": map[string]any{"startDate": "2024-10-16", "quantity": 60}},
			{"weekly": map[string]any{"dayOfWeek": "QUINTA_FEIRA", "startDate": "2024-10-16", "quantity": 10}},
			{"monthly": map[string]any{"dayOfMonth": 10, "startDate": "2024-11-01", "quantity": 24}},
			{"custom": map[string]any{"dates": []string{"2024-10-20", "2024-11-20"}, "additionalInformation": "Dois pagamentos"}},
		} {
			body := mutate(t, happyBody, func(m map[string]any) {
				p := at(m, "data", "payment")
				delete(p, "date")
				p["schedule"] = schedule
			})
			create(t, s, tok, "sched-"+string(rune('a'+i)), body)
		}
	})
}

func TestCreateConsentErrors(t *testing.T) {
	t.Parallel()
	set := func(path []string, key string, v any) func(m map[string]any) {
		return func(m map[string]any) {
			if v == nil {
				delete(at(m, path...), key)
				return
			}
			at(m, path...)[key] = v
		}
	}
	payment := []string{"data", "payment"}
	details := []string{"data", "payment", "details"}
	account := []string{"data", "payment", "details", "creditorAccount"}
	schedule := func(v any) func(m map[string]any) {
		return func(m map[string]any) {
			p := at(m, payment...)
			delete(p, "date")
			p["schedule"] = v
		}
	}
	cases := []struct {
		name   string
		body   func(m map[string]any)
		raw    string
		status int
		code   string
	}{
		{name: "malformed JSON", raw: `{"data":`, status: 400, code: "PARAMETRO_INVALIDO"},
		{name: "missing data", raw: `{}`, status: 422, code: "PARAMETRO_NAO_INFORMADO"},
		{name: "missing creditor", body: set([]string{"data"}, "creditor", nil), status: 422, code: "PARAMETRO_NAO_INFORMADO"},
		{name: "missing amount", body: set(payment, "amount", nil), status: 422, code: "PARAMETRO_NAO_INFORMADO"},
		{name: "amount one decimal", body: set(payment, "amount", "10.5"), status: 422, code: "PARAMETRO_INVALIDO"},
		{name: "amount wrong JSON type", body: set(payment, "amount", 10.5), status: 422, code: "PARAMETRO_INVALIDO"},
		{name: "amount zero", body: set(payment, "amount", "0.00"), status: 422, code: "DETALHE_PAGAMENTO_INVALIDO"},
		{name: "currency not BRL", body: set(payment, "currency", "USD"), status: 422, code: "DETALHE_PAGAMENTO_INVALIDO"},
		{name: "logged user CPF check digit", body: set([]string{"data", "loggedUser", "document"}, "identification", "47742663024"), status: 422, code: "PARAMETRO_INVALIDO"},
		{name: "business entity CNPJ check digit", body: set([]string{"data", "businessEntity", "document"}, "identification", "11222333000182"), status: 422, code: "PARAMETRO_INVALIDO"},
		{name: "creditor CPF check digit", body: set([]string{"data", "creditor"}, "cpfCnpj", "12345678900"), status: 422, code: "PARAMETRO_INVALIDO"},
		{name: "creditor name pattern", body: set([]string{"data", "creditor"}, "name", "Ana\nBeatriz"), status: 422, code: "PARAMETRO_INVALIDO"},
		{name: "payment type", body: set(payment, "type", "TED"), status: 422, code: "FORMA_PAGAMENTO_INVALIDA"},
		{name: "date in the past", body: set(payment, "date", "2024-10-14"), status: 422, code: "DATA_PAGAMENTO_INVALIDA"},
		{name: "date in the future", body: set(payment, "date", "2024-10-16"), status: 422, code: "DATA_PAGAMENTO_INVALIDA"},
		{name: "date and schedule", body: set(payment, "schedule", map[string]any{"single": map[string]any{"date": "2024-10-16"}}), status: 422, code: "PARAMETRO_INVALIDO"},
		{name: "neither date nor schedule", body: set(payment, "date", nil), status: 422, code: "PARAMETRO_NAO_INFORMADO"},
		{name: "single today", body: schedule(map[string]any{"single": map[string]any{"date": today}}), status: 422, code: "DATA_PAGAMENTO_INVALIDA"},
		{name: "single beyond D+730", body: schedule(map[string]any{"single": map[string]any{"date": "2026-10-16"}}), status: 422, code: "DATA_PAGAMENTO_INVALIDA"},
		{name: "daily too many", body: schedule(map[string]any{"daily": map[string]any{"startDate": "2024-10-16", "quantity": 61}}), status: 422, code: "PARAMETRO_INVALIDO"},
		{name: "custom repeated dates", body: schedule(map[string]any{"custom": map[string]any{"dates": []string{"2024-10-20", "2024-10-20"}, "additionalInformation": "x"}}), status: 422, code: "PARAMETRO_INVALIDO"},
		{name: "recurring with INIC", body: func(m map[string]any) {
			schedule(map[string]any{"daily": map[string]any{"startDate": "2024-10-16", "quantity": 3}})(m)
			at(m, details...)["localInstrument"] = "INIC"
		}, status: 422, code: "FORMA_PAGAMENTO_INVALIDA"},
		{name: "MANU with proxy", body: set(details, "localInstrument", "MANU"), status: 422, code: "DETALHE_PAGAMENTO_INVALIDO"},
		{name: "DICT without proxy", body: set(details, "proxy", nil), status: 422, code: "DETALHE_PAGAMENTO_INVALIDO"},
		{name: "DICT with qrCode", body: set(details, "qrCode", payments.BRCode("12345678909", "", "", "")), status: 422, code: "DETALHE_PAGAMENTO_INVALIDO"},
		{name: "QRDN without qrCode", body: set(details, "localInstrument", "QRDN"), status: 422, code: "DETALHE_PAGAMENTO_INVALIDO"},
		{name: "unknown localInstrument", body: set(details, "localInstrument", "BOLETO"), status: 422, code: "PARAMETRO_INVALIDO"},
		{name: "accountType", body: set(account, "accountType", "XXXX"), status: 422, code: "PARAMETRO_INVALIDO"},
		{name: "ispb length", body: set(account, "ispb", "1234567"), status: 422, code: "PARAMETRO_INVALIDO"},
		{name: "account number letters", body: set(account, "number", "12A4"), status: 422, code: "PARAMETRO_INVALIDO"},
		{name: "CACC without issuer", body: set(account, "issuer", nil), status: 422, code: "DETALHE_PAGAMENTO_INVALIDO"},
		{name: "ibgeTownCode", body: set(payment, "ibgeTownCode", "123"), status: 422, code: "PARAMETRO_INVALIDO"},
	}
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "payments")
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				body := tc.raw
				if body == "" {
					body = mutate(t, happyBody, tc.body)
				}
				resp := s.Do(t, "POST", consentsPath, headers(tok, "err-"+string(rune('A'+i))), body)
				checkError(t, s, resp, tc.status, tc.code)
			})
		}
		var n int
		if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM payment_consents`).Scan(&n); err != nil || n != 0 {
			t.Errorf("refused requests stored %d consents (err %v)", n, err)
		}
	})
}

func checkError(t *testing.T, s *apptest.Server, resp *apptest.Response, status int, code string) {
	t.Helper()
	if resp.Status != status {
		t.Fatalf("status %d, want %d: %s", resp.Status, status, resp.Body)
	}
	var e errorResp
	resp.JSON(t, &e)
	if len(e.Errors) == 0 || e.Errors[0].Code != code {
		t.Errorf("errors = %+v, want first code %s", e.Errors, code)
	}
	if e.Meta.RequestDateTime != "2024-10-15T18:55:15Z" && !strings.HasSuffix(e.Meta.RequestDateTime, "Z") {
		t.Errorf("meta.requestDateTime = %q", e.Meta.RequestDateTime)
	}
	if !regexp.MustCompile(`^[0-9a-fA-F-]{36}$`).MatchString(resp.Header.Get("x-fapi-interaction-id")) {
		t.Errorf("x-fapi-interaction-id = %q", resp.Header.Get("x-fapi-interaction-id"))
	}
	schema := "ResponseError"
	if status == http.StatusUnprocessableEntity {
		schema = "422ResponseErrorCreateConsent"
	}
	validateSpec(t, s, schema, resp.Body)
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "payments")
		// x-idempotency-key is required on POST, 1–40 characters.
		checkError(t, s, s.Do(t, "POST", consentsPath, headers(tok, ""), happyBody), 400, "PARAMETRO_NAO_INFORMADO")
		checkError(t, s, s.Do(t, "POST", consentsPath, headers(tok, strings.Repeat("k", 41)), happyBody), 400, "PARAMETRO_INVALIDO")

		// x-fapi-interaction-id: missing or not a UUID → a new one and 400.
		h := headers(tok, "k")
		delete(h, "x-fapi-interaction-id")
		resp := s.Do(t, "POST", consentsPath, h, happyBody)
		checkError(t, s, resp, 400, "PARAMETRO_NAO_INFORMADO")
		h["x-fapi-interaction-id"] = "not-a-uuid"
		resp = s.Do(t, "GET", consentsPath+"/urn:ponte:x", h, "")
		checkError(t, s, resp, 400, "PARAMETRO_INVALIDO")
		if resp.Header.Get("x-fapi-interaction-id") == "not-a-uuid" {
			t.Error("an invalid interaction id was echoed")
		}

		// A signed body from an application without registered keys cannot be
		// verified; a body of another media type is refused.
		h = headers(tok, "k")
		h["Content-Type"] = "application/jwt"
		checkError(t, s, s.Do(t, "POST", consentsPath, h, "eyJhbGciOiJQUzI1NiJ9.e30.c2ln"), 400, "BAD_SIGNATURE")
		h["Content-Type"] = "application/xml"
		checkError(t, s, s.Do(t, "POST", consentsPath, h, "<data/>"), 415, "UNSUPPORTED_MEDIA_TYPE")

		// Authentication and scope; the interaction id is echoed on errors too.
		resp = s.Do(t, "POST", consentsPath, map[string]string{"x-fapi-interaction-id": interactionID, "x-idempotency-key": "k"}, happyBody)
		checkError(t, s, resp, 401, "UNAUTHORIZED")
		if resp.Header.Get("x-fapi-interaction-id") != interactionID {
			t.Errorf("401 x-fapi-interaction-id = %q", resp.Header.Get("x-fapi-interaction-id"))
		}
		other := s.Token(t, "webhooks.read")
		checkError(t, s, s.Do(t, "GET", consentsPath+"/urn:ponte:x", headers(other, ""), ""), 403, "FORBIDDEN")

		// consentId format and unknown consents.
		checkError(t, s, s.Do(t, "GET", consentsPath+"/not-a-urn", headers(tok, ""), ""), 400, "PARAMETRO_INVALIDO")
		checkError(t, s, s.Do(t, "GET", consentsPath+"/urn:ponte:00000000-0000-4000-8000-000000000000", headers(tok, ""), ""), 404, "NOT_FOUND")
	})
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "payments")
		first := s.Do(t, "POST", consentsPath, headers(tok, "idem-1"), happyBody)
		if first.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", first.Status, first.Body)
		}
		s.Clock.Advance(time.Minute)
		// Same key, same data (other whitespace): the stored response, byte for byte.
		again := s.Do(t, "POST", consentsPath, headers(tok, "idem-1"), strings.ReplaceAll(happyBody, "\n", " "))
		if again.Status != http.StatusCreated || string(again.Body) != string(first.Body) {
			t.Errorf("replay: status %d, body differs: %s\nfirst: %s", again.Status, again.Body, first.Body)
		}
		// Same key, another body: ERRO_IDEMPOTENCIA.
		other := mutate(t, happyBody, func(m map[string]any) { at(m, "data", "payment")["amount"] = "1.00" })
		checkError(t, s, s.Do(t, "POST", consentsPath, headers(tok, "idem-1"), other), 422, "ERRO_IDEMPOTENCIA")
		// ... also when the other body is itself invalid.
		bad := mutate(t, happyBody, func(m map[string]any) { at(m, "data", "payment")["amount"] = "1" })
		checkError(t, s, s.Do(t, "POST", consentsPath, headers(tok, "idem-1"), bad), 422, "ERRO_IDEMPOTENCIA")
		var n int
		if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM payment_consents`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d consents (err %v), want 1", n, err)
		}
		// After 24 h the key is free again: a new consent.
		s.Clock.Advance(24 * time.Hour)
		tok = s.Token(t, "payments")
		nextDay := strings.ReplaceAll(happyBody, today, "2024-10-16")
		later := create(t, s, tok, "idem-1", nextDay)
		if strings.Contains(string(first.Body), later.Data.ConsentID) {
			t.Error("a key older than 24 h replayed its old response")
		}
	})
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "payments")
		c := create(t, s, tok, "same-key", happyBody)
		a, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Other ITP", CompanyKey: "OTHER", Scopes: []string{"payments"}, AcceptPlainJSON: true})
		if err != nil {
			t.Fatal(err)
		}
		otherTok := s.TokenFor(t, a.ClientID, secret, "payments")
		checkError(t, s, s.Do(t, "GET", consentsPath+"/"+c.Data.ConsentID, headers(otherTok, ""), ""), 404, "NOT_FOUND")
		// Idempotency keys are per application: the same key is a new consent.
		c2 := create(t, s, otherTok, "same-key", happyBody)
		if c2.Data.ConsentID == c.Data.ConsentID {
			t.Error("another application's key replayed the first application's consent")
		}
	})
}
