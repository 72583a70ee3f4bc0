package recurring_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// laterSettlement stands for a settlement that answers later (the partner
// settlement's shape): Reserve holds nothing, Settle is never done at once.
type laterSettlement struct {
	mu       sync.Mutex
	released map[string]bool
}

func (l *laterSettlement) Reserve(context.Context, *sql.Tx, settlement.Transfer) error { return nil }
func (l *laterSettlement) Settle(context.Context, *sql.Tx, settlement.Transfer) (bool, error) {
	return false, nil
}
func (l *laterSettlement) Release(_ context.Context, _ *sql.Tx, t settlement.Transfer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released[t.PaymentID] = true
	return nil
}

var serviceEpoch = time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)

// authorisedConsent stores Maria's sweeping consent (body) for application
// app1 and authorises it with her account 1234567.
func authorisedConsent(t testing.TB, svc *recurring.Service, body string) string {
	t.Helper()
	req, verr := recurring.DecodeCreate([]byte(body))
	if verr != nil {
		t.Fatal(verr)
	}
	resp, err := svc.Create(context.Background(), recurring.CreateInput{ApplicationID: "app1", Request: *req})
	if err != nil || resp.Status != http.StatusCreated {
		t.Fatalf("create consent: %v %s", err, resp.Body)
	}
	var c struct {
		Data struct{ RecurringConsentID string }
	}
	if err := json.Unmarshal(resp.Body, &c); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authorise(context.Background(), c.Data.RecurringConsentID,
		&payments.Account{ISPB: "37241230", Issuer: "0001", Number: "1234567", AccountType: "CACC"}); err != nil {
		t.Fatal(err)
	}
	return c.Data.RecurringConsentID
}

func servicePayment(t testing.TB, now time.Time, amount string) recurring.PaymentRequest {
	t.Helper()
	req, verr := recurring.DecodePayment([]byte(paymentBodyAt(now, amount)))
	if verr != nil {
		t.Fatal(verr)
	}
	return *req
}

// TestSettlementOutcomes drives payments whose settlement answers later on
// both engines: ACCP → ACPD after the settle step; SettlementSettled → ACSC
// (again: nothing); SettlementFailed → RJCT with the code and detail, the
// reservation released and its share of the limits given back; outcomes for
// payments that cannot take them are errors.
func TestSettlementOutcomes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		storetest.AddApplication(t, db, "app1")
		svc := recurring.NewService(db, clock.NewFake(serviceEpoch), slog.New(slog.NewTextHandler(io.Discard, nil)), "https://ponte.example")
		later := &laterSettlement{released: map[string]bool{}}
		svc.Settlement = later
		consentID := authorisedConsent(t, svc, strings.Replace(sweepBody, `"quantityLimit":3`, `"quantityLimit":2`, 1))
		create := func(amount string) (string, idempotency.Response) {
			resp, err := svc.CreatePayment(ctx, recurring.CreatePaymentInput{ApplicationID: "app1", TokenConsents: []string{consentID},
				Request: servicePayment(t, serviceEpoch, amount), IdempotencyKey: uuid.NewString()})
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				Data struct{ RecurringPaymentID string }
			}
			_ = json.Unmarshal(resp.Body, &p)
			return p.Data.RecurringPaymentID, resp
		}
		step := func(id string, want recurring.PaymentStatus) {
			t.Helper()
			if err := svc.Process(ctx, id); err != nil {
				t.Fatal(err)
			}
			if p, err := svc.GetPayment(ctx, "app1", id); err != nil || p.Status != want {
				t.Fatalf("after a step: %v %v, want %s", p.Status, err, want)
			}
		}
		outcome := func(fn func(tx *sql.Tx) error) error { return db.Write(ctx, fn) }

		a, _ := create("10.00")
		step(a, recurring.PaymentAccepted)
		step(a, recurring.PaymentSettlementPending)
		step(a, recurring.PaymentSettlementPending) // waiting: nothing to do
		for range 2 {
			if err := outcome(func(tx *sql.Tx) error { return svc.SettlementSettled(ctx, tx, a) }); err != nil {
				t.Fatal(err)
			}
		}
		if p, _ := svc.GetPayment(ctx, "app1", a); p.Status != recurring.PaymentSettled {
			t.Fatalf("settled = %s", p.Status)
		}
		err := outcome(func(tx *sql.Tx) error { return svc.SettlementFailed(ctx, tx, a, recurring.CodeSaldoInsuficiente, "") })
		if !errors.Is(err, recurring.ErrPaymentTransition) {
			t.Fatalf("failing a settled payment: %v", err)
		}

		b, _ := create("10.00")
		if _, third := create("10.00"); third.Status != http.StatusUnprocessableEntity {
			t.Fatalf("third of the day: %d %s", third.Status, third.Body)
		}
		step(b, recurring.PaymentAccepted)
		step(b, recurring.PaymentSettlementPending)
		if err := outcome(func(tx *sql.Tx) error { return svc.SettlementFailed(ctx, tx, b, "NOT_A_CODE", "") }); !errors.Is(err, recurring.ErrRejectionReason) {
			t.Fatalf("unknown code: %v", err)
		}
		if err := outcome(func(tx *sql.Tx) error {
			return svc.SettlementFailed(ctx, tx, b, recurring.CodePagamentoRecusadoSPI, "AB03 tempo esgotado no SPI")
		}); err != nil {
			t.Fatal(err)
		}
		p, _ := svc.GetPayment(ctx, "app1", b)
		if p.Status != recurring.PaymentRejected || p.Rejection.Code != recurring.CodePagamentoRecusadoSPI || p.Rejection.Detail != "AB03 tempo esgotado no SPI" || !later.released[b] {
			t.Fatalf("failed = %+v %+v released=%v", p.Status, p.Rejection, later.released[b])
		}
		if err := outcome(func(tx *sql.Tx) error { return svc.SettlementSettled(ctx, tx, b) }); !errors.Is(err, recurring.ErrPaymentTransition) {
			t.Fatalf("settling a rejected payment: %v", err)
		}
		if _, again := create("10.00"); again.Status != http.StatusCreated {
			t.Fatalf("after the rejection the day has room again: %d %s", again.Status, again.Body)
		}
		if err := outcome(func(tx *sql.Tx) error { return svc.SettlementSettled(ctx, tx, "no-such-payment") }); !errors.Is(err, recurring.ErrPaymentNotFound) {
			t.Fatalf("unknown payment: %v", err)
		}
	})
}

// FuzzDecodePayment feeds arbitrary bytes through the payment requests'
// checks (the edge's text check, the POST and PATCH decoders, the
// validations) and creates
// the payments that pass on every engine: nothing panics, every refusal is
// a 400 or a 422 with one to three problems, every answer is a 201 or a 422,
// and nothing fails in a database.
func FuzzDecodePayment(f *testing.F) {
	valid := paymentBodyAt(serviceEpoch, "10.00")
	for _, seed := range []string{valid, strings.Replace(valid, `"MANU"`, `"DICT","proxy":"maria@example.com"`, 1),
		strings.Replace(valid, `"MANU"`, `"INIC","proxy":"+5511987654321","transactionIdentification":"abc123"`, 1),
		strings.Replace(valid, `"10.00"`, `"1000.01"`, 1), strings.Replace(valid, `"riskSignals"`, `"riskSignalz"`, 1),
		`{"data":{"riskSignals":[],"payment":null,"document":{}}}`, `{"data":{"status":"CANC","cancellation":{"cancelledBy":{"document":{"identification":"47742663023","rel":"CPF"}}}}}`, `{"data":{"date":"2024-2-30","endToEndId":7}}`, `{"data":null}`, `[]`, ``,
		strings.Replace(valid, "Transferência", "Transfer\xffncia", 1), strings.Replace(valid, "inteligente", `inte\u0000ligente`, 1)} {
		f.Add([]byte(seed))
	}
	dbs := storetest.OpenEach(f)
	type target struct {
		svc     *recurring.Service
		consent string
	}
	targets := make([]target, len(dbs))
	for i, db := range dbs {
		storetest.AddApplication(f, db.DB, "app1")
		svc := recurring.NewService(db.DB, clock.NewFake(serviceEpoch), slog.New(slog.NewTextHandler(io.Discard, nil)), "https://ponte.example")
		targets[i] = target{svc: svc, consent: authorisedConsent(f, svc, edit(sweepBody, func(m map[string]any) {
			at(m, "data", "recurringConfiguration")["sweeping"] = map[string]any{} // no limits: the fuzzer may pay often
		}))}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if herr := httpx.CheckJSON(body); herr != nil {
			return // refused at the edge with a 400
		}
		if patch, verr := recurring.DecodePaymentPatch(body); verr == nil {
			if verr := patch.Validate(); verr != nil && (len(verr.Problems) == 0 || len(verr.Problems) > 3) {
				t.Fatalf("patch validation %+v", verr)
			}
		}
		req, verr := recurring.DecodePayment(body)
		if verr != nil {
			if verr.Status != http.StatusBadRequest && verr.Status != http.StatusUnprocessableEntity {
				t.Fatalf("decode status %d", verr.Status)
			}
			return
		}
		if verr := req.Validate(serviceEpoch); verr != nil && (len(verr.Problems) == 0 || len(verr.Problems) > 3 || verr.Status != http.StatusUnprocessableEntity) {
			t.Fatalf("validation %+v", verr)
		}
		for i, tg := range targets {
			resp, err := tg.svc.CreatePayment(context.Background(), recurring.CreatePaymentInput{ApplicationID: "app1",
				TokenConsents: []string{tg.consent}, Request: *req, IdempotencyKey: uuid.NewString()})
			switch {
			case errors.Is(err, recurring.ErrTokenConsent), errors.Is(err, recurring.ErrEndToEndUsed):
			case err != nil:
				t.Fatalf("%s: %v", dbs[i].Engine, err)
			case resp.Status != http.StatusCreated && resp.Status != http.StatusUnprocessableEntity:
				t.Fatalf("%s: answer %d", dbs[i].Engine, resp.Status)
			}
		}
	})
}

// brokenSettlement fails every step with an error that is not a refusal
// (the core banking system is down).
type brokenSettlement struct{}

var errCoreDown = errors.New("core banking unreachable")

func (brokenSettlement) Reserve(context.Context, *sql.Tx, settlement.Transfer) error {
	return errCoreDown
}
func (brokenSettlement) Settle(context.Context, *sql.Tx, settlement.Transfer) (bool, error) {
	return false, errCoreDown
}
func (brokenSettlement) Release(context.Context, *sql.Tx, settlement.Transfer) error { return nil }

// TestPaymentJobGivesUp: while the settlement fails the processing job
// retries with backoff, the payment staying RCVD; when the job's last
// attempt fails the payment is RJCT FALHA_INFRAESTRUTURA_DETENTORA, not
// left half-way, and its share of the limits is free again.
func TestPaymentJobGivesUp(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		storetest.AddApplication(t, db, "app1")
		clk := clock.NewFake(serviceEpoch)
		svc := recurring.NewService(db, clk, slog.New(slog.NewTextHandler(io.Discard, nil)), "https://ponte.example")
		svc.Settlement = brokenSettlement{}
		q := jobs.New(db, jobs.Config{Clock: clk})
		svc.Register(q)
		consentID := authorisedConsent(t, svc, sweepBody)
		resp, err := svc.CreatePayment(ctx, recurring.CreatePaymentInput{ApplicationID: "app1", TokenConsents: []string{consentID},
			Request: servicePayment(t, serviceEpoch, "10.00"), IdempotencyKey: uuid.NewString()})
		if err != nil || resp.Status != http.StatusCreated {
			t.Fatalf("create: %v %s", err, resp.Body)
		}
		var created struct {
			Data struct{ RecurringPaymentID string }
		}
		_ = json.Unmarshal(resp.Body, &created)
		id := created.Data.RecurringPaymentID
		for i := range jobs.DefaultMaxAttempts {
			if _, err := q.RunDue(ctx); err != nil {
				t.Fatal(err)
			}
			p, err := svc.GetPayment(ctx, "app1", id)
			if err != nil {
				t.Fatal(err)
			}
			if i < jobs.DefaultMaxAttempts-1 && p.Status != recurring.PaymentReceived {
				t.Fatalf("attempt %d: %s", i+1, p.Status)
			}
			clk.Advance(time.Minute)
		}
		p, _ := svc.GetPayment(ctx, "app1", id)
		if p.Status != recurring.PaymentRejected || p.Rejection == nil || p.Rejection.Code != recurring.CodeFalhaInfraestruturaDetentora {
			t.Fatalf("after the last attempt: %s %+v", p.Status, p.Rejection)
		}
	})
}

// TestCreatePaymentOtherApplication: a token naming a consent another
// application created pays nothing (403), nor does one naming an unknown consent.
func TestCreatePaymentOtherApplication(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		storetest.AddApplication(t, db, "app1")
		storetest.AddApplication(t, db, "app2")
		svc := recurring.NewService(db, clock.NewFake(serviceEpoch), slog.New(slog.NewTextHandler(io.Discard, nil)), "https://ponte.example")
		consentID := authorisedConsent(t, svc, sweepBody)
		for _, in := range []recurring.CreatePaymentInput{
			{ApplicationID: "app2", TokenConsents: []string{consentID}},
			{ApplicationID: "app1", TokenConsents: []string{recurring.IDPrefix + uuid.NewString()}},
		} {
			in.Request, in.IdempotencyKey = servicePayment(t, serviceEpoch, "1.00"), uuid.NewString()
			if _, err := svc.CreatePayment(ctx, in); !errors.Is(err, recurring.ErrTokenConsent) {
				t.Errorf("%s paying with %v: %v", in.ApplicationID, in.TokenConsents, err)
			}
		}
		if list, err := svc.ListPayments(ctx, recurring.ListInput{ApplicationID: "app1", ConsentID: consentID}); err != nil || len(list) != 0 {
			t.Errorf("payments: %v %v", list, err)
		}
	})
}
