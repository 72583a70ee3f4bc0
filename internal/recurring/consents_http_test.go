package recurring_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/recurring"
)

var idPattern = regexp.MustCompile(`^urn:ponte:rc:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestCreateAndGetRecurringConsent(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		resp := s.Do(t, "POST", consentsPath, headers(token(t, s), "key-1"), happyBody)
		if resp.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", resp.Status, resp.Body)
		}
		if got := resp.Header.Get("x-fapi-interaction-id"); got != interactionID {
			t.Errorf("x-fapi-interaction-id = %q", got)
		}
		if got := resp.Header.Get("x-v"); got != "2.0.0" {
			t.Errorf("x-v = %q", got)
		}
		validateSpec(t, nil, "CreateRecurringConsent", []byte(happyBody))
		validateSpec(t, s, "ResponsePostRecurringConsent", resp.Body)
		var c consentResp
		resp.JSON(t, &c)
		d := c.Data
		if !idPattern.MatchString(d.RecurringConsentID) || !recurring.ConsentIDPattern.MatchString(d.RecurringConsentID) {
			t.Errorf("recurringConsentId %q", d.RecurringConsentID)
		}
		if d.Status != "AWAITING_AUTHORISATION" || d.CreationDateTime != "2024-10-15T18:55:15Z" ||
			d.StatusUpdateDateTime != "2024-10-15T18:55:15Z" || d.ExpirationDateTime != "2025-10-15T18:55:15Z" {
			t.Errorf("data = %+v", d)
		}
		sw := d.RecurringConfiguration.Sweeping
		if sw["startDateTime"] != "2024-10-16T03:00:00Z" || sw["useOverdraftLimit"] != true || sw["totalAllowedAmount"] != "50000.00" {
			t.Errorf("sweeping = %v", sw)
		}
		if c.Links.Self != s.URL+consentsPath+"/"+d.RecurringConsentID {
			t.Errorf("links.self = %q", c.Links.Self)
		}
		g := get(t, s, d.RecurringConsentID)
		if g.Data.RecurringConsentID != d.RecurringConsentID || g.Data.Status != "AWAITING_AUTHORISATION" {
			t.Errorf("get = %+v", g.Data)
		}

		// A business entity with two establishments, the initiator's debtor
		// account, no limits: startDateTime defaults to the creation.
		pj := create(t, s, pjBody)
		if pj.Data.RecurringConfiguration.Sweeping["startDateTime"] != "2024-10-15T18:55:15Z" || pj.Data.DebtorAccount["number"] != "1234567" ||
			pj.Data.ExpirationDateTime != "" {
			t.Errorf("pj consent = %+v", pj.Data)
		}

		// Another application's consent does not exist for it.
		other, secret, err := s.App.Apps.Create(context.Background(), auth.NewApplication{Name: "Outra", CompanyKey: "OUT", Scopes: []string{recurring.Scope}})
		if err != nil {
			t.Fatal(err)
		}
		r := s.Do(t, "GET", consentsPath+"/"+d.RecurringConsentID, headers(s.TokenFor(t, other.ClientID, secret, recurring.Scope), ""), "")
		if r.Status != http.StatusNotFound {
			t.Errorf("foreign consent: %d %s", r.Status, r.Body)
		}
		validateSpec(t, nil, "ResponseError", r.Body)
		// A payments token is not enough.
		if r := s.Do(t, "GET", consentsPath+"/"+d.RecurringConsentID, headers(s.Token(t, "payments"), ""), ""); r.Status != http.StatusForbidden {
			t.Errorf("payments scope: %d %s", r.Status, r.Body)
		}
	})
}

// TestCreateRefused has one case per official error code of POST
// /recurring-consents that applies to sweeping, and the rules behind them.
func TestCreateRefused(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	tok := token(t, s)
	sweeping := func(fn func(sw map[string]any)) string {
		return mutate(t, happyBody, func(m map[string]any) { fn(at(m, "data", "recurringConfiguration", "sweeping")) })
	}
	data := func(fn func(d map[string]any)) string {
		return mutate(t, happyBody, func(m map[string]any) { fn(at(m, "data")) })
	}
	cases := []struct {
		name, body, code, detail string
	}{
		{"automatic is not offered", data(func(d map[string]any) {
			d["recurringConfiguration"] = map[string]any{"automatic": map[string]any{"contractId": "x"}}
		}), "FUNCIONALIDADE_NAO_HABILITADA", "Transferências Inteligentes"},
		{"vrp is not offered", data(func(d map[string]any) {
			d["recurringConfiguration"] = map[string]any{"vrp": map[string]any{}}
		}), "FUNCIONALIDADE_NAO_HABILITADA", ""},
		{"two products", data(func(d map[string]any) {
			d["recurringConfiguration"] = map[string]any{"vrp": map[string]any{}, "sweeping": map[string]any{}}
		}), "PARAMETRO_INVALIDO", "exatamente um"},
		{"no product", data(func(d map[string]any) { d["recurringConfiguration"] = map[string]any{} }), "PARAMETRO_NAO_INFORMADO", "recurringConfiguration.sweeping"},
		{"no loggedUser", data(func(d map[string]any) { delete(d, "loggedUser") }), "PARAMETRO_NAO_INFORMADO", "loggedUser"},
		{"CPF check digits", data(func(d map[string]any) {
			at(d, "loggedUser", "document")["identification"] = "47742663024"
		}), "PARAMETRO_INVALIDO", "loggedUser.document.identification"},
		{"CNPJ check digits", data(func(d map[string]any) {
			d["businessEntity"] = map[string]any{"document": map[string]any{"identification": "11222333000182", "rel": "CNPJ"}}
		}), "PARAMETRO_INVALIDO", "businessEntity.document.identification"},
		{"no creditors", data(func(d map[string]any) { d["creditors"] = []any{} }), "PARAMETRO_NAO_INFORMADO", "creditors"},
		{"natural person, two creditors", data(func(d map[string]any) {
			c := d["creditors"].([]any)
			d["creditors"] = append(c, c[0])
		}), "DETALHE_PAGAMENTO_INVALIDO", "único recebedor"},
		{"natural person, another CPF", data(func(d map[string]any) {
			d["creditors"].([]any)[0].(map[string]any)["cpfCnpj"] = "12345678909"
		}), "DETALHE_PAGAMENTO_INVALIDO", "usuário logado"},
		{"business entity, another CNPJ root", mutate(t, pjBody, func(m map[string]any) {
			at(m, "data")["creditors"].([]any)[1].(map[string]any)["cpfCnpj"] = "11444777000161"
		}), "DETALHE_PAGAMENTO_INVALIDO", "mesma raiz"},
		{"creditor name", data(func(d map[string]any) {
			d["creditors"].([]any)[0].(map[string]any)["name"] = "Nome {inválido}"
		}), "PARAMETRO_INVALIDO", "creditors[0].name"},
		{"expirationDateTime format", data(func(d map[string]any) { d["expirationDateTime"] = "2025-10-15T18:55:15-03:00" }), "PARAMETRO_INVALIDO", "expirationDateTime"},
		{"expirationDateTime past", data(func(d map[string]any) { d["expirationDateTime"] = "2024-10-15T18:55:15Z" }), "DETALHE_PAGAMENTO_INVALIDO", "expirationDateTime"},
		{"additionalInformation too long", data(func(d map[string]any) { d["additionalInformation"] = strings.Repeat("a", 141) }), "PARAMETRO_INVALIDO", "additionalInformation"},
		{"debtorAccount issuer", data(func(d map[string]any) {
			d["debtorAccount"] = map[string]any{"ispb": "37241230", "number": "1", "accountType": "CACC"}
		}), "DETALHE_PAGAMENTO_INVALIDO", "debtorAccount.issuer"},
		{"amount format", sweeping(func(sw map[string]any) { sw["totalAllowedAmount"] = "50000" }), "PARAMETRO_INVALIDO", "totalAllowedAmount"},
		{"zero amount", sweeping(func(sw map[string]any) { sw["transactionLimit"] = "0.00" }), "DETALHE_PAGAMENTO_INVALIDO", "maior que zero"},
		{"transaction above total", sweeping(func(sw map[string]any) { sw["transactionLimit"] = "50000.01" }), "DETALHE_PAGAMENTO_INVALIDO", "totalAllowedAmount"},
		{"empty period", sweeping(func(sw map[string]any) { at(sw, "periodicLimits")["week"] = map[string]any{} }), "PARAMETRO_NAO_INFORMADO", "week.quantityLimit"},
		{"quantity zero", sweeping(func(sw map[string]any) { at(sw, "periodicLimits", "day")["quantityLimit"] = 0 }), "PARAMETRO_INVALIDO", "day.quantityLimit"},
		{"day above month", sweeping(func(sw map[string]any) { at(sw, "periodicLimits", "day")["transactionLimit"] = "20000.01" }), "DETALHE_PAGAMENTO_INVALIDO", "limite de month"},
		{"startDateTime before today", sweeping(func(sw map[string]any) { sw["startDateTime"] = "2024-10-14T12:00:00Z" }), "DATA_PAGAMENTO_INVALIDA", "startDateTime"},
		{"startDateTime after expiry", sweeping(func(sw map[string]any) { sw["startDateTime"] = "2025-10-15T18:55:15Z" }), "DATA_PAGAMENTO_INVALIDA", "expirationDateTime"},
		{"wrong JSON type", data(func(d map[string]any) { d["creditors"] = "x" }), "PARAMETRO_INVALIDO", "creditors"},
		{"no data", `{"dados":{}}`, "PARAMETRO_NAO_INFORMADO", "data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Do(t, "POST", consentsPath, headers(tok, uuid.NewString()), tc.body)
			if r.Status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			validateSpec(t, nil, "ResponseErrorCreateConsent", r.Body)
			var e errorResp
			r.JSON(t, &e)
			if len(e.Errors) == 0 || e.Errors[0].Code != tc.code || !strings.Contains(e.Errors[0].Detail, tc.detail) {
				t.Errorf("errors = %+v, want %s mentioning %q", e.Errors, tc.code, tc.detail)
			}
		})
	}
	// The 400s: headers and malformed JSON, in the ResponseError shape.
	for _, tc := range []struct {
		name   string
		header map[string]string
		body   string
		code   string
	}{
		{"no interaction id", map[string]string{"Authorization": "Bearer " + tok, "x-idempotency-key": "k"}, happyBody, "PARAMETRO_NAO_INFORMADO"},
		{"bad interaction id", map[string]string{"Authorization": "Bearer " + tok, "x-idempotency-key": "k", "x-fapi-interaction-id": "nope"}, happyBody, "PARAMETRO_INVALIDO"},
		{"no idempotency key", headers(tok, ""), happyBody, "PARAMETRO_NAO_INFORMADO"},
		{"long idempotency key", headers(tok, strings.Repeat("k", 41)), happyBody, "PARAMETRO_INVALIDO"},
		{"malformed JSON", headers(tok, "k"), `{"data":`, "PARAMETRO_INVALIDO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Do(t, "POST", consentsPath, tc.header, tc.body)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			validateSpec(t, nil, "ResponseError", r.Body)
			var e errorResp
			r.JSON(t, &e)
			if !slices.Contains(e.codes(), tc.code) || r.Header.Get("x-fapi-interaction-id") == "" {
				t.Errorf("errors = %+v", e.Errors)
			}
		})
	}
	var n int
	if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM recurring_consents`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d consents stored after refusals (%v)", n, err)
	}
}

func TestRecurringIdempotency(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := token(t, s)
		first := s.Do(t, "POST", consentsPath, headers(tok, "same-key"), happyBody)
		again := s.Do(t, "POST", consentsPath, headers(tok, "same-key"), happyBody)
		if first.Status != 201 || again.Status != 201 || string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %d\n%s\n%s", first.Status, again.Status, first.Body, again.Body)
		}
		other := s.Do(t, "POST", consentsPath, headers(tok, "same-key"), pjBody)
		var e errorResp
		other.JSON(t, &e)
		if other.Status != 422 || len(e.Errors) != 1 || e.Errors[0].Code != "ERRO_IDEMPOTENCIA" {
			t.Fatalf("other body: %d %s", other.Status, other.Body)
		}
		validateSpec(t, nil, "ResponseErrorCreateConsent", other.Body)
		// A refused body under a used key is still ERRO_IDEMPOTENCIA.
		bad := mutate(t, happyBody, func(m map[string]any) { delete(at(m, "data"), "loggedUser") })
		if r := s.Do(t, "POST", consentsPath, headers(tok, "same-key"), bad); r.Status != 422 || !strings.Contains(string(r.Body), "ERRO_IDEMPOTENCIA") {
			t.Errorf("refused body, used key: %d %s", r.Status, r.Body)
		}
		// Keys live 24 hours.
		s.Clock.Advance(24*60*60*1e9 + 1e9)
		tok = token(t, s)
		if r := s.Do(t, "POST", consentsPath, headers(tok, "same-key"), pjBody); r.Status != 201 {
			t.Errorf("key after 24 h: %d %s", r.Status, r.Body)
		}
		var n int
		if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM recurring_consents`).Scan(&n); err != nil || n != 2 {
			t.Errorf("%d consents (%v), want 2", n, err)
		}
	})
}

func patchBody(status, reasonCode string) string {
	if status == "REVOKED" {
		return `{"data":{"status":"REVOKED","revocation":{"revokedBy":"USUARIO","revokedFrom":"INICIADORA","reason":{"code":"` + reasonCode + `","detail":"O usuário pediu a revogação."}}}}`
	}
	return `{"data":{"status":"REJECTED","rejection":{"rejectedBy":"INICIADORA","rejectedFrom":"INICIADORA","reason":{"code":"` + reasonCode + `","detail":"Cancelado na iniciadora."}}}}`
}

func TestPatchRejectAndRevoke(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := token(t, s)
		patch := func(id, key, body string) *apptest.Response {
			validateSpec(t, nil, "PatchRecurringConsent", []byte(body))
			return s.Do(t, "PATCH", consentsPath+"/"+id, headers(tok, key), body)
		}
		// The initiator rejects a consent still awaiting authorisation.
		id := create(t, s, happyBody).Data.RecurringConsentID
		r := patch(id, "p-1", patchBody("REJECTED", "NAO_INFORMADO"))
		if r.Status != 200 {
			t.Fatalf("reject: %d %s", r.Status, r.Body)
		}
		validateSpec(t, s, "ResponseRecurringConsentPatch", r.Body)
		var c consentResp
		r.JSON(t, &c)
		if c.Data.Status != "REJECTED" || c.Data.Rejection == nil || c.Data.Rejection.RejectedBy != "INICIADORA" ||
			c.Data.Rejection.RejectedAt != "2024-10-15T18:55:15Z" || c.Data.Rejection.Reason.Code != "NAO_INFORMADO" {
			t.Fatalf("rejected = %+v %+v", c.Data, c.Data.Rejection)
		}
		// Replay: the same answer; a rejected consent cannot be revoked.
		if again := patch(id, "p-1", patchBody("REJECTED", "NAO_INFORMADO")); again.Status != 200 || string(again.Body) != string(r.Body) {
			t.Errorf("replay: %d %s", again.Status, again.Body)
		}
		// The file's 422 for this PATCH lists no ERRO_IDEMPOTENCIA: a reused
		// key is PARAMETRO_INVALIDO there.
		if r := patch(id, "p-1", patchBody("REVOKED", "REVOGADO_USUARIO")); r.Status != 422 || !strings.Contains(string(r.Body), "PARAMETRO_INVALIDO") ||
			!strings.Contains(string(r.Body), "x-idempotency-key") {
			t.Errorf("same key, other body: %d %s", r.Status, r.Body)
		} else {
			validateSpec(t, nil, "422ResponseErrorRecurringConsents", r.Body)
		}
		r = patch(id, "p-2", patchBody("REVOKED", "REVOGADO_USUARIO"))
		validateSpec(t, nil, "422ResponseErrorRecurringConsents", r.Body)
		if r.Status != 422 || !strings.Contains(string(r.Body), "CONSENTIMENTO_NAO_PERMITE_CANCELAMENTO") {
			t.Errorf("revoke a rejected consent: %d %s", r.Status, r.Body)
		}

		// Authorised by the user, then revoked by the initiator.
		id = create(t, s, happyBody).Data.RecurringConsentID
		if r := patch(id, "p-3", patchBody("REVOKED", "REVOGADO_USUARIO")); r.Status != 422 || !strings.Contains(string(r.Body), "CONSENTIMENTO_NAO_PERMITE_CANCELAMENTO") {
			t.Errorf("revoke a consent awaiting: %d %s", r.Status, r.Body)
		}
		if _, err := s.App.Recurring.Authorise(t.Context(), id, debtor); err != nil {
			t.Fatal(err)
		}
		if r := patch(id, "p-4", patchBody("REJECTED", "NAO_INFORMADO")); r.Status != 422 || !strings.Contains(string(r.Body), "CONSENTIMENTO_NAO_PERMITE_CANCELAMENTO") {
			t.Errorf("reject an authorised consent: %d %s", r.Status, r.Body)
		}
		r = patch(id, "p-5", patchBody("REVOKED", "REVOGADO_USUARIO"))
		if r.Status != 200 {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		validateSpec(t, s, "ResponseRecurringConsentPatch", r.Body)
		g := get(t, s, id)
		if g.Data.Status != "REVOKED" || g.Data.Revocation == nil || g.Data.Revocation.RevokedBy != "USUARIO" ||
			g.Data.Revocation.Reason.Code != "REVOGADO_USUARIO" || g.Data.DebtorAccount["number"] != debtor.Number || g.Data.AuthorisedAtDateTime == "" {
			t.Errorf("revoked = %+v %+v", g.Data, g.Data.Revocation)
		}

		// The PATCH request's own refusals.
		for _, tc := range []struct{ name, body, code string }{
			{"edition", `{"data":{"creditors":[{"name":"Outro nome"}]}}`, "CAMPO_NAO_PERMITIDO"},
			{"no status", `{"data":{}}`, "PARAMETRO_NAO_INFORMADO"},
			{"unknown status", `{"data":{"status":"CONSUMED"}}`, "PARAMETRO_INVALIDO"},
			{"no revocation", `{"data":{"status":"REVOKED"}}`, "PARAMETRO_NAO_INFORMADO"},
			{"unknown reason", patchBody("REVOKED", "CANSEI"), "PARAMETRO_INVALIDO"},
			{"from the holder", strings.Replace(patchBody("REVOKED", "REVOGADO_USUARIO"), `"revokedFrom":"INICIADORA"`, `"revokedFrom":"DETENTORA"`, 1), "PARAMETRO_INVALIDO"},
		} {
			r := s.Do(t, "PATCH", consentsPath+"/"+id, headers(tok, uuid.NewString()), tc.body)
			validateSpec(t, nil, "422ResponseErrorRecurringConsents", r.Body)
			var e errorResp
			r.JSON(t, &e)
			if r.Status != 422 || len(e.Errors) == 0 || e.Errors[0].Code != tc.code {
				t.Errorf("%s: %d %s", tc.name, r.Status, r.Body)
			}
		}
		if r := s.Do(t, "PATCH", consentsPath+"/urn:ponte:rc:"+uuid.NewString(), headers(tok, "p-6"), patchBody("REVOKED", "REVOGADO_USUARIO")); r.Status != 404 {
			t.Errorf("unknown consent: %d %s", r.Status, r.Body)
		}
		if r := s.Do(t, "GET", consentsPath+"/not-an-urn", headers(tok, ""), ""); r.Status != 400 {
			t.Errorf("bad id: %d %s", r.Status, r.Body)
		}
	})
}
