package payments_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// pixServer starts Ponte on every engine for a Pix payment test.
func pixServer(t *testing.T, fn func(t *testing.T, s *apptest.Server)) {
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		if s.App.Payments.Settlement == nil {
			t.Fatal("the app wires no settlement for Pix payments")
		}
		fn(t, s)
	})
}

// TestPixPaymentSettled: an immediate payment through the whole journey:
// 201 ACCP, replay by key, GET, the worker settles it (ACSC), the consent is
// CONSUMED, and each status change is a webhook event for the holder partner.
func TestPixPaymentSettled(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		// Maria's bank (the demo partner) listens to its payments.
		if _, _, err := s.App.WebhookService.Create(t.Context(), s.App.Demo.ID,
			webhooks.CreateSubscription{URL: "https://partner.example/hooks", Events: []string{"PIX_PAYMENT_STATUS_CHANGED"}}); err != nil {
			t.Fatal(err)
		}
		consentID, token := authorised(t, s, pixConsent("150.00", ""))
		body := pixBody(t, pixItem(e2eAt(s.Clock.Now()), "150.00"))
		created := createPix(t, s, token, "pay-1", body)
		if len(created.Data) != 1 || created.Data[0].Status != "ACCP" || created.Data[0].ConsentID != consentID ||
			created.Data[0].DebtorAccount.Number != mariaAccount || !strings.HasSuffix(created.Links.Self, "/pix/payments/"+created.Data[0].PaymentID) {
			t.Fatalf("created = %+v", created)
		}
		id := created.Data[0].PaymentID
		again := postPix(t, s, token, "pay-1", body)
		if again.Status != http.StatusCreated || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %s", again.Status, again.Body)
		}
		if g := getPix(t, s, id); g.Data.Status != "ACCP" || g.Data.ConsentID != consentID {
			t.Fatalf("get = %+v", g.Data)
		}
		if c := get(t, s, consentID); c.Data.Status != "AUTHORISED" {
			t.Fatalf("consent while the payment is open: %s", c.Data.Status)
		}
		runSettlement(t, s)
		if g := getPix(t, s, id); g.Data.Status != "ACSC" {
			t.Fatalf("after settlement: %+v", g.Data)
		}
		if c := get(t, s, consentID); c.Data.Status != "CONSUMED" {
			t.Fatalf("consent after settlement: %s", c.Data.Status)
		}
		if ev := pixEvents(t, s, id); strings.Join(ev, " ") != "PIX_PAYMENT_STATUS_CHANGED:ACCP PIX_PAYMENT_STATUS_CHANGED:ACSC" {
			t.Errorf("webhook events = %v", ev)
		}
		// Consumed: a second payment is refused, and the refusal is replayed too.
		second := pixBody(t, pixItem(e2eAt(s.Clock.Now()), "150.00"))
		r := postPix(t, s, token, "pay-2", second)
		checkPixError(t, s, r, http.StatusUnprocessableEntity, payments.CodeConsentimentoInvalido, "422ResponseErrorCreatePixPayments")
		if r2 := postPix(t, s, token, "pay-2", second); r2.Status != 422 || r2.Header.Get("Idempotent-Replayed") != "true" || string(r2.Body) != string(r.Body) {
			t.Errorf("422 replay: %d %s", r2.Status, r2.Body)
		}
	})
}

// TestPixPaymentRefused: one case per POST /pix/payments error code, each
// on a consent that stays usable (a 422 does not consume it).
func TestPixPaymentRefused(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		_, token := authorised(t, s, pixConsent("150.00", ""))
		now := s.Clock.Now()
		item := func(change func(m map[string]any)) string {
			m := pixItem(e2eAt(now), "150.00")
			change(m)
			return pixBody(t, m)
		}
		tests := []struct {
			name   string
			body   string
			status int
			code   string
		}{
			{"malformed", `{"data":`, 400, payments.CodeParametroInvalido},
			{"no data", `{}`, 422, payments.CodeParametroNaoInformado},
			{"data not an array", `{"data":{}}`, 422, payments.CodeParametroInvalido},
			{"no endToEndId", item(func(m map[string]any) { delete(m, "endToEndId") }), 422, payments.CodeParametroNaoInformado},
			{"endToEndId pattern", item(func(m map[string]any) { m["endToEndId"] = "E123" }), 422, payments.CodeParametroInvalido},
			{"endToEndId a day away", item(func(m map[string]any) { m["endToEndId"] = e2eAt(now.Add(24 * time.Hour)) }), 422, payments.CodeParametroInvalido},
			{"DICT without proxy", item(func(m map[string]any) { delete(m, "proxy") }), 422, payments.CodeDetalhePagamentoInvalido},
			{"amount", item(func(m map[string]any) { m["payment"] = map[string]any{"amount": "150.01", "currency": "BRL"} }), 422, payments.CodePagamentoDivergente},
			{"creditor account", item(func(m map[string]any) { m["creditorAccount"].(map[string]any)["number"] = "99" }), 422, payments.CodePagamentoDivergente},
			{"two payments for one", pixBody(t, pixItem(e2eAt(now), "150.00"), pixItem(e2eAt(now), "150.00")), 422, payments.CodePagamentoDivergente},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp := s.Do(t, "POST", pixPath, headers(token, "refused-"+string(rune('a'+i))), tt.body)
				checkPixError(t, s, resp, tt.status, tt.code, "422ResponseErrorCreatePixPayments")
			})
		}
		// A 422 is kept under its key: the same request again is replayed.
		again := s.Do(t, "POST", pixPath, headers(token, "refused-b"), `{}`)
		if again.Status != 422 || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("422 of an undecodable body not replayed: %d %v", again.Status, again.Header)
		}
		// The same key with another body: ERRO_IDEMPOTENCIA.
		resp := s.Do(t, "POST", pixPath, headers(token, "refused-h"), item(func(m map[string]any) { m["endToEndId"] = e2eAt(now) }))
		checkPixError(t, s, resp, 422, payments.CodeErroIdempotencia, "422ResponseErrorCreatePixPayments")
		// Still usable after all that.
		createPix(t, s, token, "ok", pixBody(t, pixItem(e2eAt(now), "150.00")))
		// An endToEndId is one Pix: a second consent's payment cannot reuse it.
		_, token2 := authorised(t, s, pixConsent("150.00", ""))
		e2e := e2eAt(now)
		createPix(t, s, token2, "e2e-1", pixBody(t, pixItem(e2e, "150.00")))
		_, token3 := authorised(t, s, pixConsent("150.00", ""))
		resp = postPix(t, s, token3, "e2e-2", pixBody(t, pixItem(e2e, "150.00")))
		checkPixError(t, s, resp, 422, payments.CodeParametroInvalido, "422ResponseErrorCreatePixPayments")
	})
}

// TestPixPaymentConsentState: CONSENTIMENTO_INVALIDO for an expired consent,
// CONSENTIMENTO_PENDENTE_AUTORIZACAO for a partially accepted one, and
// SALDO_INSUFICIENTE from the settlement's reservation.
func TestPixPaymentConsentState(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		// Insufficient balance: Maria has 5320.47 available.
		_, token := authorised(t, s, pixConsent("9000.00", ""))
		resp := postPix(t, s, token, "poor", pixBody(t, pixItem(e2eAt(s.Clock.Now()), "9000.00")))
		checkPixError(t, s, resp, 422, payments.CodeSaldoInsuficiente, "422ResponseErrorCreatePixPayments")

		// Partially accepted (multiple approvals): not consumed, refused.
		pending, token := authorised(t, s, pixConsent("10.00", ""))
		if err := s.App.DB.Write(t.Context(), func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE payment_consents SET status = 'PARTIALLY_ACCEPTED' WHERE id = $1`, pending)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		resp = postPix(t, s, token, "pending", pixBody(t, pixItem(e2eAt(s.Clock.Now()), "10.00")))
		checkPixError(t, s, resp, 422, payments.CodeConsentimentoPendente, "422ResponseErrorCreatePixPayments")

		// Past the consumption window (its timer not run yet): the consent
		// expires there and then. The window is shortened in the database
		// rather than waited for, as the 300-second token would not last it.
		expired, token := authorised(t, s, pixConsent("10.00", ""))
		if err := s.App.DB.Write(t.Context(), func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE payment_consents SET expires_at = $1 WHERE id = $2`, s.Clock.Now().UnixMilli(), expired)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		resp = postPix(t, s, token, "late", pixBody(t, pixItem(e2eAt(s.Clock.Now()), "10.00")))
		checkPixError(t, s, resp, 422, payments.CodeConsentimentoInvalido, "422ResponseErrorCreatePixPayments")
		if c := get(t, s, expired); c.Data.Status != "REJECTED" || c.Data.RejectionReason.Code != "TEMPO_EXPIRADO_CONSUMO" {
			t.Errorf("expired consent = %+v", c.Data)
		}
	})
}

// TestPixPaymentTokens: POST takes only the authorization_code token of the
// consent (401 without a valid one, 403 for a client_credentials token);
// GET and PATCH take only client_credentials tokens (403 for a consent's).
func TestPixPaymentTokens(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		consentID, token := authorised(t, s, pixConsent("10.00", ""))
		body := pixBody(t, pixItem(e2eAt(s.Clock.Now()), "10.00"))
		checkPixError(t, s, s.Do(t, "POST", pixPath, headers("nope", "k1"), body), 401, "UNAUTHORIZED", "")
		checkPixError(t, s, s.Do(t, "POST", pixPath, headers(s.Token(t, "payments"), "k1"), body), 403, "FORBIDDEN", "")
		h := headers(token, "k1")
		delete(h, "x-idempotency-key")
		checkPixError(t, s, s.Do(t, "POST", pixPath, h, body), 400, payments.CodeParametroNaoInformado, "")
		h = headers(token, "k1")
		delete(h, "x-fapi-interaction-id")
		checkPixError(t, s, s.Do(t, "POST", pixPath, h, body), 400, payments.CodeParametroNaoInformado, "")
		id := createPix(t, s, token, "k1", body).Data[0].PaymentID
		checkPixError(t, s, s.Do(t, "GET", pixPath+"/"+id, headers(token, ""), ""), 403, "FORBIDDEN", "")
		checkPixError(t, s, s.Do(t, "GET", pixPath+"/"+uuid.NewString(), headers(s.Token(t, "payments"), ""), ""), 404, "NOT_FOUND", "")
		checkPixError(t, s, s.Do(t, "GET", pixPath+"/-bad", headers(s.Token(t, "payments"), ""), ""), 400, payments.CodeParametroInvalido, "")
		// Another application's client_credentials token does not see it.
		other := newPartner(t, s, false)
		checkPixError(t, s, s.Do(t, "GET", pixPath+"/"+id, headers(other.token, ""), ""), 404, "NOT_FOUND", "")
		// The authorization server only issues a consent's token to the
		// application that created it; the service checks it again.
		var item payments.PixPaymentRequest
		raw, _ := json.Marshal(pixItem(e2eAt(s.Clock.Now()), "10.00"))
		if err := json.Unmarshal(raw, &item); err != nil {
			t.Fatal(err)
		}
		if _, err := s.App.Payments.CreatePixPayments(t.Context(), payments.CreatePixPaymentsInput{ApplicationID: other.app.ID,
			ConsentID: consentID, Items: []payments.PixPaymentRequest{item}, IdempotencyKey: "other"}); !errors.Is(err, payments.ErrConsentNotOwned) {
			t.Errorf("another application's consent: %v", err)
		}
	})
}

func cancelBody(doc string) string {
	return `{"data":{"status":"CANC","cancellation":{"cancelledBy":{"document":{"identification":"` + doc + `","rel":"CPF"}}}}}`
}

// TestPixScheduled: a daily schedule of three creates three SCHD payments;
// the first is executed on its date by the durable worker (after a
// restart), the others are cancelled through PATCH
// /pix/payments/consents/{id}, and the consent is CONSUMED once all three are
// final. PATCH answers 422 PAGAMENTO_NAO_PERMITE_CANCELAMENTO when nothing
// is left to cancel.
func TestPixScheduled(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		schedule := `{"daily":{"startDate":"2024-10-16","quantity":3}}`
		consentID, token := authorised(t, s, pixConsent("25.00", schedule))
		// Not at 15:00 UTC: refused.
		bad := pixBody(t, pixItem(e2eAt(time.Date(2024, 10, 16, 14, 0, 0, 0, time.UTC)), "25.00"),
			pixItem(scheduledE2E(t, "2024-10-17"), "25.00"), pixItem(scheduledE2E(t, "2024-10-18"), "25.00"))
		checkPixError(t, s, postPix(t, s, token, "sched-bad", bad), 422, payments.CodeParametroInvalido, "422ResponseErrorCreatePixPayments")
		body := pixBody(t, pixItem(scheduledE2E(t, "2024-10-16"), "25.00"), pixItem(scheduledE2E(t, "2024-10-17"), "25.00"),
			pixItem(scheduledE2E(t, "2024-10-18"), "25.00"))
		created := createPix(t, s, token, "sched", body)
		if len(created.Data) != 3 {
			t.Fatalf("created %d payments", len(created.Data))
		}
		for _, d := range created.Data {
			if d.Status != "SCHD" {
				t.Fatalf("scheduled payment status %s", d.Status)
			}
		}
		ids := []string{created.Data[0].PaymentID, created.Data[1].PaymentID, created.Data[2].PaymentID}

		// 2024-10-16 00:00 in Brasília is 03:00 UTC: the first is due.
		s = s.Restart(t)
		s.Clock.Set(time.Date(2024, 10, 16, 3, 0, 0, 0, time.UTC))
		runSettlement(t, s)
		if st := []string{paymentStatus(t, s, ids[0]), paymentStatus(t, s, ids[1]), paymentStatus(t, s, ids[2])}; st[0] != "ACSC" || st[1] != "SCHD" || st[2] != "SCHD" {
			t.Fatalf("after the first date: %v", st)
		}
		if c := get(t, s, consentID); c.Data.Status != "AUTHORISED" {
			t.Fatalf("consent with payments left: %s", c.Data.Status)
		}
		// A settled payment is not cancellable.
		cc := s.Token(t, "payments")
		resp := s.Do(t, "PATCH", pixPath+"/"+ids[0], headers(cc, ""), cancelBody(mariaCPF))
		checkPixError(t, s, resp, 422, payments.CodePagamentoNaoPermiteCancel, "422ResponseErrorCreatePixPayment")
		// Cancel the rest of the consent.
		validateSpec(t, nil, "PatchPixPayment", []byte(cancelBody(mariaCPF)))
		resp = s.Do(t, "PATCH", pixPath+"/consents/"+consentID, headers(cc, "cancel-all"), cancelBody(mariaCPF))
		if resp.Status != http.StatusOK {
			t.Fatalf("cancel consent's payments: %d %s", resp.Status, resp.Body)
		}
		validateSpec(t, s, "ResponsePatchPixConsent", resp.Body)
		if !strings.Contains(string(resp.Body), ids[1]) || !strings.Contains(string(resp.Body), ids[2]) {
			t.Errorf("cancelled = %s", resp.Body)
		}
		g := getPix(t, s, ids[2])
		if g.Data.Status != "CANC" || g.Data.Cancellation == nil || g.Data.Cancellation.Reason != payments.CancelAgendamento ||
			g.Data.Cancellation.CancelledFrom != "INICIADORA" || g.Data.Cancellation.CancelledBy.Document.Identification != mariaCPF ||
			g.Data.Cancellation.CancelledAt != "2024-10-16T03:00:02Z" {
			t.Errorf("cancelled payment = %+v %+v", g.Data, g.Data.Cancellation)
		}
		if c := get(t, s, consentID); c.Data.Status != "CONSUMED" {
			t.Errorf("consent after all final: %s", c.Data.Status)
		}
		// Replay by key; then nothing left to cancel.
		if again := s.Do(t, "PATCH", pixPath+"/consents/"+consentID, headers(cc, "cancel-all"), cancelBody(mariaCPF)); again.Status != 200 ||
			again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replayed cancel: %d %s", again.Status, again.Body)
		}
		resp = s.Do(t, "PATCH", pixPath+"/consents/"+consentID, headers(cc, "cancel-again"), cancelBody(mariaCPF))
		checkPixError(t, s, resp, 422, payments.CodePagamentoNaoPermiteCancel, "422ResponseErrorCreatePixPayment")
		// The consent route requires its key, a known consent and a valid body.
		checkPixError(t, s, s.Do(t, "PATCH", pixPath+"/consents/"+consentID, headers(cc, ""), cancelBody(mariaCPF)), 400, payments.CodeParametroNaoInformado, "")
		checkPixError(t, s, s.Do(t, "PATCH", pixPath+"/consents/urn:ponte:unknown", headers(cc, "x1"), cancelBody(mariaCPF)), 404, "NOT_FOUND", "")
		checkPixError(t, s, s.Do(t, "PATCH", pixPath+"/"+ids[1], headers(cc, ""), `{"data":{"status":"ACSC"}}`), 400, payments.CodeParametroInvalido, "")
		checkPixError(t, s, s.Do(t, "PATCH", pixPath+"/"+ids[1], headers(cc, ""), `{"data":{"status":"CANC"}}`), 400, payments.CodeParametroNaoInformado, "")
	})
}

// TestPixCancelOne: PATCH /pix/payments/{id} cancels a scheduled payment
// until 23:59 in Brasília of the day before its date (a payment held for
// analysis: TestPixPartnerHold).
func TestPixCancelOne(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		// A single schedule: cancellable until 23:59:59 in Brasília of the day before.
		_, token := authorised(t, s, pixConsent("30.00", `{"single":{"date":"2024-10-17"}}`))
		id := createPix(t, s, token, "single", pixBody(t, pixItem(scheduledE2E(t, "2024-10-17"), "30.00"))).Data[0].PaymentID
		_, token = authorised(t, s, pixConsent("30.00", `{"single":{"date":"2024-10-19"}}`))
		late := createPix(t, s, token, "late", pixBody(t, pixItem(scheduledE2E(t, "2024-10-19"), "30.00"))).Data[0].PaymentID
		s.Clock.Set(time.Date(2024, 10, 17, 2, 59, 59, 0, time.UTC)) // 23:59:59 on the 16th in Brasília
		resp := s.Do(t, "PATCH", pixPath+"/"+id, headers(s.Token(t, "payments"), ""), cancelBody(mariaCPF))
		if resp.Status != http.StatusOK {
			t.Fatalf("cancel: %d %s", resp.Status, resp.Body)
		}
		validateSpec(t, s, "ResponsePatchPixPayment", resp.Body)
		// Too late: the day has come.
		s.Clock.Set(time.Date(2024, 10, 19, 3, 0, 0, 0, time.UTC))
		resp = s.Do(t, "PATCH", pixPath+"/"+late, headers(s.Token(t, "payments"), ""), cancelBody(mariaCPF))
		checkPixError(t, s, resp, 422, payments.CodePagamentoNaoPermiteCancel, "422ResponseErrorCreatePixPayment")
	})
}

// TestPixSignedBodies: signed request in, signed response out (POST, GET
// with Accept application/jwt, PATCH), with the consents' claim rules:
// BAD_SIGNATURE, INVALID_CLIENT for a wrong aud and a reused jti.
func TestPixSignedBodies(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		_, token := authorised(t, s, pixConsent("12.00", ""))
		// The demo application signs with the test key from now on (its
		// sandbox app's logins, which need the old key, are over).
		key, rogue := testKeys(t)
		jwks := publicJWKS(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: partnerKID, Algorithm: "PS256", Use: "sig"})
		if _, err := s.App.Apps.SetJWKS(t.Context(), s.App.Demo.ClientID, jwks); err != nil {
			t.Fatal(err)
		}
		demo, err := s.App.Apps.Get(t.Context(), s.App.Demo.ID)
		if err != nil {
			t.Fatal(err)
		}
		p := partner{app: demo}
		claims := func(aud, jti string) map[string]any {
			return map[string]any{"aud": aud, "iss": organisation(demo), "iat": s.Clock.Now().Unix(), "jti": jti,
				"data": []any{pixItem(e2eAt(s.Clock.Now()), "12.00")}}
		}
		jti := uuid.NewString()
		good := claims(s.URL+pixPath, jti)
		resp := s.Do(t, "POST", pixPath, jwtHeaders(token, "signed-1"), sign(t, key, jose.PS256, partnerKID, good))
		if resp.Status != http.StatusCreated {
			t.Fatalf("signed create: %d %s", resp.Status, resp.Body)
		}
		body := withoutClaims(t, verifySigned(t, s, p, resp))
		validateSpec(t, s, "ResponseCreatePixPayment", body)

		checkPixError(t, s, s.Do(t, "POST", pixPath, jwtHeaders(token, "signed-2"), sign(t, rogue, jose.PS256, partnerKID, claims(s.URL+pixPath, uuid.NewString()))),
			400, payments.CodeBadSignature, "")
		checkPixError(t, s, s.Do(t, "POST", pixPath, jwtHeaders(token, "signed-3"), sign(t, key, jose.PS256, partnerKID, claims(s.URL+consentsPath, uuid.NewString()))),
			403, payments.CodeInvalidClient, "")
		checkPixError(t, s, s.Do(t, "POST", pixPath, jwtHeaders(token, "signed-4"), sign(t, key, jose.PS256, partnerKID, claims(s.URL+pixPath, jti))),
			403, payments.CodeInvalidClient, "")

		var out pixResp
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		id := out.Data[0].PaymentID
		h := headers(s.Token(t, "payments"), "")
		h["Accept"] = payments.MediaTypeJWT
		resp = s.Do(t, "GET", pixPath+"/"+id, h, "")
		validateSpec(t, s, "ResponsePixPayment", withoutClaims(t, verifySigned(t, s, p, resp)))
		// A signed PATCH of an accepted payment: the 422 is signed too.
		patch := map[string]any{"aud": s.URL + pixPath + "/" + id, "iss": organisation(demo), "iat": s.Clock.Now().Unix(), "jti": uuid.NewString(),
			"data": map[string]any{"status": "CANC", "cancellation": map[string]any{"cancelledBy": map[string]any{
				"document": map[string]any{"identification": mariaCPF, "rel": "CPF"}}}}}
		resp = s.Do(t, "PATCH", pixPath+"/"+id, jwtHeaders(s.Token(t, "payments"), ""), sign(t, key, jose.PS256, partnerKID, patch))
		if resp.Status != 422 {
			t.Fatalf("signed patch: %d %s", resp.Status, resp.Body)
		}
		validateSpec(t, s, "422ResponseErrorCreatePixPayment", withoutClaims(t, verifySigned(t, s, p, resp)))
	})
}

// TestPixScheduleKinds: every schedule kind creates one SCHD payment per
// date, each named by its date at 15:00 UTC; a monthly day the month lacks
// is paid on the first of the next month.
func TestPixScheduleKinds(t *testing.T) {
	t.Parallel()
	pixServer(t, func(t *testing.T, s *apptest.Server) {
		tests := []struct {
			name, schedule string
			dates          []string
		}{
			{"single", `{"single":{"date":"2024-10-20"}}`, []string{"2024-10-20"}},
			{"weekly", `{"weekly":{"dayOfWeek":"SEXTA_FEIRA","startDate":"2024-10-16","quantity":2}}`, []string{"2024-10-18", "2024-10-25"}},
			{"monthly", `{"monthly":{"dayOfMonth":31,"startDate":"2024-10-16","quantity":2}}`, []string{"2024-10-31", "2024-12-01"}},
			{"custom", `{"custom":{"dates":["2024-12-01","2024-11-01"],"additionalInformation":"Parcelas"}}`, []string{"2024-11-01", "2024-12-01"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, token := authorised(t, s, pixConsent("5.00", tt.schedule))
				var items []map[string]any
				for _, d := range tt.dates {
					items = append(items, pixItem(scheduledE2E(t, d), "5.00"))
				}
				created := createPix(t, s, token, "kind-"+tt.name, pixBody(t, items...))
				if len(created.Data) != len(tt.dates) {
					t.Fatalf("%d payments for %d dates", len(created.Data), len(tt.dates))
				}
				for _, d := range created.Data {
					if d.Status != "SCHD" {
						t.Errorf("status %s", d.Status)
					}
				}
			})
		}
		// November has no 31st: the 30th is not the date.
		_, token := authorised(t, s, pixConsent("5.00", `{"monthly":{"dayOfMonth":31,"startDate":"2024-10-16","quantity":2}}`))
		resp := postPix(t, s, token, "kind-bad", pixBody(t, pixItem(scheduledE2E(t, "2024-10-31"), "5.00"), pixItem(scheduledE2E(t, "2024-11-30"), "5.00")))
		checkPixError(t, s, resp, http.StatusUnprocessableEntity, payments.CodeParametroInvalido, "422ResponseErrorCreatePixPayments")
	})
}
