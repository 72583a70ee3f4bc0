package recurring_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/recurring"
)

// TestSweepingPaymentSettles runs a sweeping payment from the user's
// approval to the ledger on both engines: the authorization_code token of
// the approved consent creates it RCVD (echoing the consent's debtor
// account), the jobs reserve and settle it in the sandbox ledger (ACSC),
// Maria's available balance falls by the amount, each status change is a
// webhook event, the list and the read show it, and the same key replays
// the 201.
func TestSweepingPaymentSettles(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		withLedger(t, s)
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		defer receiver.Close()
		if sub := s.Do(t, "POST", "/webhooks/v1/subscriptions", map[string]string{"Authorization": "Bearer " + s.Token(t, "")},
			fmt.Sprintf(`{"url":%q,"events":[%q]}`, receiver.URL, recurring.EventPaymentStatusChanged)); sub.Status != http.StatusCreated {
			t.Fatalf("subscribe: %d %s", sub.Status, sub.Body)
		}
		sw := authorise(t, s, sweepBody)
		before := available(t, s)
		body := paymentBody(s, "100.00")
		key := uuid.NewString()
		resp := pay(t, s, sw.token, key, body)
		if resp.Status != http.StatusCreated {
			t.Fatalf("payment: %d %s", resp.Status, resp.Body)
		}
		var p paymentResp
		resp.JSON(t, &p)
		if p.Data.Status != "RCVD" || p.Data.RecurringConsentID != sw.consentID || p.Data.DebtorAccount["number"] != "1234567" ||
			p.Links.Self != s.URL+paymentsPath+"/"+p.Data.RecurringPaymentID {
			t.Fatalf("created = %+v", p)
		}
		replay := pay(t, s, sw.token, key, body)
		if replay.Status != http.StatusCreated || string(replay.Body) != string(resp.Body) || replay.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %s", replay.Status, replay.Body)
		}

		runJobs(t, s)
		if got := getPayment(t, s, p.Data.RecurringPaymentID); got.Data.Status != "ACSC" {
			t.Fatalf("after processing: %+v", got.Data)
		}
		if after := available(t, s); after != before-10000 {
			t.Fatalf("available %d → %d, want −10000 cents", before, after)
		}
		var statuses []string
		rows, err := s.App.DB.Read().QueryContext(t.Context(), `SELECT body FROM webhook_events WHERE entity_id = $1 ORDER BY created_at`, p.Data.RecurringPaymentID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var b string
			var ev struct {
				Context, Name string
				Data          map[string]any
			}
			if err := rows.Scan(&b); err != nil || json.Unmarshal([]byte(b), &ev) != nil {
				t.Fatal(err, b)
			}
			if ev.Context != recurring.EventContext || ev.Name != recurring.EventPaymentStatusChanged || ev.Data["recurringConsentId"] != sw.consentID {
				t.Errorf("event %s", b)
			}
			statuses = append(statuses, ev.Data["status"].(string))
		}
		rows.Close()
		if strings.Join(statuses, ",") != "RCVD,ACCP,ACSC" {
			t.Errorf("events for statuses %v", statuses)
		}

		list := s.Do(t, "GET", paymentsPath+"?recurringConsentId="+sw.consentID, headers(token(t, s), ""), "")
		if list.Status != http.StatusOK {
			t.Fatalf("list: %d %s", list.Status, list.Body)
		}
		validateSpec(t, s, "ResponseRecurringPixPayment", list.Body)
		var l struct{ Data []map[string]any }
		list.JSON(t, &l)
		if len(l.Data) != 1 || l.Data[0]["status"] != "ACSC" {
			t.Fatalf("list = %s", list.Body)
		}
		today := s.Clock.Now().In(time.FixedZone("BRT", -3*3600))
		empty := s.Do(t, "GET", paymentsPath+"?recurringConsentId="+sw.consentID+"&startDate="+today.AddDate(0, 0, 1).Format("2006-01-02"), headers(token(t, s), ""), "")
		validateSpec(t, s, "ResponseRecurringPixPayment", empty.Body)
		if empty.Status != http.StatusOK || strings.Contains(string(empty.Body), "recurringPaymentId") {
			t.Fatalf("list from tomorrow: %d %s", empty.Status, empty.Body)
		}
		inRange := s.Do(t, "GET", paymentsPath+"?recurringConsentId="+sw.consentID+"&startDate="+today.Format("2006-01-02")+"&endDate="+today.Format("2006-01-02"), headers(token(t, s), ""), "")
		if !strings.Contains(string(inRange.Body), p.Data.RecurringPaymentID) {
			t.Fatalf("list of today: %s", inRange.Body)
		}
	})
}

// available is Maria's available balance as the Accounts API shows it, in cents.
func available(t *testing.T, s *apptest.Server) int64 {
	t.Helper()
	var amount string
	err := s.App.DB.Read().QueryRowContext(t.Context(), `SELECT b.available_amount FROM account_balances b
		JOIN accounts a ON a.id = b.account_id JOIN customers c ON c.id = a.customer_id
		WHERE a.number = '1234567' AND c.application_id = $1`, s.App.Demo.ID).Scan(&amount)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := recurring.Cents(amount)
	if !ok {
		t.Fatalf("balance %q", amount)
	}
	return c
}

// TestSweepingPaymentDailyLimitIsDecidedByTheDatabase sends 20 payments at
// once against a limit of 3 a day, on both engines: exactly 3 are created,
// the 17 others are 422 LIMITE_PERIODO_QUANTIDADE_EXCEDIDO. A rejected
// payment gives its share back: after one is rejected a fourth passes.
func TestSweepingPaymentDailyLimitIsDecidedByTheDatabase(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		withLedger(t, s)
		sw := authorise(t, s, sweepBody)
		const n = 20
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created []string
			codes   = map[string]int{}
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp := s.Do(t, "POST", paymentsPath, headers(sw.token, uuid.NewString()), paymentBody(s, "10.00"))
				mu.Lock()
				defer mu.Unlock()
				switch resp.Status {
				case http.StatusCreated:
					var p paymentResp
					_ = json.Unmarshal(resp.Body, &p)
					created = append(created, p.Data.RecurringPaymentID)
				case http.StatusUnprocessableEntity:
					var e errorResp
					_ = json.Unmarshal(resp.Body, &e)
					codes[strings.Join(e.codes(), ",")]++
				default:
					codes[resp.Header.Get("Content-Type")+" "+string(resp.Body)]++
				}
			}()
		}
		wg.Wait()
		if len(created) != 3 || codes[recurring.CodeLimitePeriodoQuantidadeExcedido] != n-3 {
			t.Fatalf("created %d, refusals %v", len(created), codes)
		}
		// A rejection releases the payment's share of the day.
		if err := s.App.DB.Write(t.Context(), func(tx *sql.Tx) error {
			return s.App.Recurring.SettlementFailed(t.Context(), tx, created[0], recurring.CodePagamentoRecusadoSPI, "AC03")
		}); err != nil {
			t.Fatal(err)
		}
		if got := getPayment(t, s, created[0]); got.Data.Status != "RJCT" || got.Data.RejectionReason == nil ||
			got.Data.RejectionReason.Code != recurring.CodePagamentoRecusadoSPI || got.Data.RejectionReason.Detail != "AC03" {
			t.Fatalf("rejected = %+v", got.Data)
		}
		mustPay(t, s, sw.token, paymentBody(s, "10.00"))
		wantCodes(t, pay(t, s, sw.token, uuid.NewString(), paymentBody(s, "10.00")), http.StatusUnprocessableEntity,
			recurring.CodeLimitePeriodoQuantidadeExcedido)
	})
}

// TestSweepingPaymentTokens: POST takes only the authorization_code token
// of the payment's consent, in either scope form; a client_credentials
// token, another consent's token, no token are refused with the file's
// 401 and 403; GET takes a client_credentials token, but only for the
// caller's payments (400 otherwise, 404 for none).
func TestSweepingPaymentTokens(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		a := authorise(t, s, sweepBody)
		b := authorise(t, s, sweepBody)
		check := func(name string, resp *apptest.Response, status int, code string) {
			t.Helper()
			validateSpec(t, s, "ResponseError", resp.Body)
			wantCodes(t, resp, status, code)
		}
		check("client_credentials", s.Do(t, "POST", paymentsPath, headers(token(t, s), uuid.NewString()), paymentBody(s, "1.00")),
			http.StatusForbidden, "FORBIDDEN")
		other := mutate(t, paymentBody(s, "1.00"), func(m map[string]any) { at(m, "data")["recurringConsentId"] = b.consentID })
		check("other consent", s.Do(t, "POST", paymentsPath, headers(a.token, uuid.NewString()), other), http.StatusForbidden, "FORBIDDEN")
		check("no token", s.Do(t, "POST", paymentsPath, map[string]string{"x-fapi-interaction-id": interactionID, "x-idempotency-key": "k"},
			paymentBody(s, "1.00")), http.StatusUnauthorized, "UNAUTHORIZED")
		check("bad token", s.Do(t, "POST", paymentsPath, headers("not-a-token", uuid.NewString()), paymentBody(s, "1.00")),
			http.StatusUnauthorized, "UNAUTHORIZED")
		own := mutate(t, paymentBody(s, "1.00"), func(m map[string]any) { at(m, "data")["recurringConsentId"] = a.consentID })
		p := mustPay(t, s, a.token, own)

		// Another application reads: 400, as the specification says.
		intruder := newPartner(t, s)
		check("other client's payment", s.Do(t, "GET", paymentsPath+"/"+p.Data.RecurringPaymentID, headers(intruder.token, ""), ""),
			http.StatusBadRequest, "PARAMETRO_INVALIDO")
		check("other client's list", s.Do(t, "GET", paymentsPath+"?recurringConsentId="+a.consentID, headers(intruder.token, ""), ""),
			http.StatusBadRequest, "PARAMETRO_INVALIDO")
		check("unknown payment", s.Do(t, "GET", paymentsPath+"/"+uuid.NewString(), headers(token(t, s), ""), ""), http.StatusNotFound, "NOT_FOUND")
		check("list without consent", s.Do(t, "GET", paymentsPath, headers(token(t, s), ""), ""), http.StatusBadRequest, "PARAMETRO_NAO_INFORMADO")
		check("list with bad date", s.Do(t, "GET", paymentsPath+"?recurringConsentId="+a.consentID+"&startDate=2024-13-01", headers(token(t, s), ""), ""),
			http.StatusBadRequest, "PARAMETRO_INVALIDO")
		check("no interaction id", s.Do(t, "POST", paymentsPath, map[string]string{"Authorization": "Bearer " + a.token, "x-idempotency-key": "k"},
			paymentBody(s, "1.00")), http.StatusBadRequest, "PARAMETRO_NAO_INFORMADO")
		check("no idempotency key", s.Do(t, "POST", paymentsPath, headers(a.token, ""), paymentBody(s, "1.00")),
			http.StatusBadRequest, "PARAMETRO_NAO_INFORMADO")
	})
}
