package settlement_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/validation"
)

// recorder stands in for the webhook emitter and the payment services.
type recorder struct {
	mu       sync.Mutex
	events   []settlement.Event
	settled  []string
	failed   []string // paymentID code
	held     []string
	failWith error
}

func (r *recorder) Held(_ context.Context, _ *sql.Tx, kind settlement.Kind, paymentID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held = append(r.held, string(kind)+" "+paymentID)
	return r.failWith
}

// named counts the events of one name.
func (r *recorder) named(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Name == name {
			n++
		}
	}
	return n
}

func (r *recorder) EmitSettlementEvent(_ context.Context, _ *sql.Tx, e settlement.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) Settled(_ context.Context, _ *sql.Tx, kind settlement.Kind, paymentID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.settled = append(r.settled, string(kind)+" "+paymentID)
	return r.failWith
}

func (r *recorder) Failed(_ context.Context, _ *sql.Tx, kind settlement.Kind, paymentID, code, detail string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if detail == "" {
		code += " (no detail)"
	}
	r.failed = append(r.failed, string(kind)+" "+paymentID+" "+code)
	return r.failWith
}

func (r *recorder) counts() (events, settled, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events), len(r.settled), len(r.failed)
}

type partnerFixture struct {
	*fixture
	partner *settlement.Partner
	rec     *recorder
	jobs    *jobs.Client
}

func newPartnerFixture(t testing.TB, db *store.DB) *partnerFixture {
	f := newFixture(t, db, map[string]string{"11110001": "100.00", "22220002": "0.00"})
	rec := &recorder{}
	p := &settlement.Partner{DB: db, Clock: f.clock, Logger: slog.New(slog.DiscardHandler), Events: rec, Outcomes: rec}
	jc := jobs.New(db, jobs.Config{Clock: f.clock})
	p.Register(jc)
	return &partnerFixture{fixture: f, partner: p, rec: rec, jobs: jc}
}

func (f *partnerFixture) ask(t testing.TB, tr settlement.Transfer) {
	t.Helper()
	err := f.write(t, func(tx *sql.Tx) error {
		if err := f.partner.Reserve(context.Background(), tx, tr); err != nil {
			return err
		}
		done, err := f.partner.Settle(context.Background(), tx, tr)
		if err == nil && done {
			err = errors.New("partner settle said done before any report")
		}
		return err
	})
	if err != nil {
		t.Fatalf("reserve and settle %s: %v", tr.PaymentID, err)
	}
}

// TestPartnerSteps: Reserve and Release are bookkeeping, Settle asks the
// partner once with an event, every step idempotent.
func TestPartnerSteps(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newPartnerFixture(t, db)
		ctx := context.Background()
		p := f.partner
		// Checks on the debtor account, no check of funds (the partner's).
		for _, c := range []struct {
			tr   settlement.Transfer
			want error
		}{
			{f.transfer("x-unknown", "99990009", "11110001", 100), settlement.ErrAccountNotAllowed},
			{f.transfer("x-same", "11110001", "11110001", 100), settlement.ErrSameAccount},
			{f.transfer("x-big", "11110001", "22220002", 100_000_000), nil},
		} {
			err := f.write(t, func(tx *sql.Tx) error { return p.Reserve(ctx, tx, c.tr) })
			if !errors.Is(err, c.want) {
				t.Errorf("reserve %s: %v, want %v", c.tr.PaymentID, err, c.want)
			}
		}

		tr := f.transfer("p-1", "11110001", "22220002", 1234)
		f.ask(t, tr)
		for range 2 { // asked again: no second event, no second job
			err := f.write(t, func(tx *sql.Tx) error {
				if err := p.Reserve(ctx, tx, tr); err != nil {
					return err
				}
				done, err := p.Settle(ctx, tx, tr)
				if done {
					t.Error("done before any report")
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if n, _, _ := f.rec.counts(); n != 1 {
			t.Fatalf("%d events, want 1", n)
		}
		ev := f.rec.events[0]
		if ev.ApplicationID != holderApp || ev.Name != settlement.EventRequested || ev.EntityID != "p-1" || ev.ID == "" ||
			ev.Data["amount"] != "12.34" || ev.Data["endToEndId"] != tr.EndToEndID || ev.Data["currency"] != "BRL" ||
			ev.Data["kind"] != "pix-payment" || ev.Data["deadline"] != epoch.Add(settlement.DefaultDeadline).Format(time.RFC3339) {
			t.Errorf("event %+v", ev)
		}
		if d, _ := ev.Data["debtorAccount"].(map[string]any); d["number"] != "11110001" || d["ispb"] != ispb || d["issuer"] != "0001" {
			t.Errorf("debtor account in the event: %v", ev.Data["debtorAccount"])
		}
		// Pending at the partner: nothing to release.
		if err := f.write(t, func(tx *sql.Tx) error { return p.Release(ctx, tx, tr) }); !errors.Is(err, settlement.ErrNotReserved) {
			t.Errorf("release while pending: %v", err)
		}

		// Released before settling: cannot settle, cannot reserve again.
		tr2 := f.transfer("p-2", "11110001", "22220002", 100)
		if err := f.write(t, func(tx *sql.Tx) error {
			if err := p.Reserve(ctx, tx, tr2); err != nil {
				return err
			}
			if err := p.Release(ctx, tx, tr2); err != nil {
				return err
			}
			return p.Release(ctx, tx, tr2)
		}); err != nil {
			t.Fatal(err)
		}
		if err := f.write(t, func(tx *sql.Tx) error { _, err := p.Settle(ctx, tx, tr2); return err }); !errors.Is(err, settlement.ErrNotReserved) {
			t.Errorf("settle after release: %v", err)
		}
		if err := f.write(t, func(tx *sql.Tx) error { return p.Reserve(ctx, tx, tr2) }); !errors.Is(err, settlement.ErrReleased) {
			t.Errorf("reserve after release: %v", err)
		}
		// The partner's money: the ledger's balances are not touched.
		f.wantBalances(t, "11110001", "100.00", "0.00")
	})
}

// TestPartnerReport: outcomes reach the payment's service once; the same
// report again answers the same; another is a conflict; tenants are apart.
func TestPartnerReport(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newPartnerFixture(t, db)
		ctx := context.Background()
		p := f.partner
		f.ask(t, f.transfer("r-1", "11110001", "22220002", 500))
		rec := f.transfer("r-2", "11110001", "22220002", 700)
		rec.Kind = settlement.KindRecurring
		f.ask(t, rec)

		if _, err := p.Report(ctx, otherApp, "r-1", settlement.Report{Status: "ACSC"}); !errors.Is(err, settlement.ErrNotFound) {
			t.Errorf("another partner's payment: %v", err)
		}
		if _, err := p.Report(ctx, holderApp, "nope", settlement.Report{Status: "ACSC"}); !errors.Is(err, settlement.ErrNotFound) {
			t.Errorf("unknown payment: %v", err)
		}
		for i := range 2 {
			s, err := p.Report(ctx, holderApp, "r-1", settlement.Report{Status: "ACSC"})
			if err != nil || s.Status != "ACSC" || s.Amount() != "5.00" {
				t.Fatalf("report #%d: %+v %v", i+1, s, err)
			}
		}
		if _, settled, _ := f.rec.counts(); settled != 1 || f.rec.settled[0] != "pix-payment r-1" {
			t.Errorf("settled outcomes %v, want one", f.rec.settled)
		}
		s, err := p.Report(ctx, holderApp, "r-1", settlement.Report{Status: "RJCT", Code: "SALDO_INSUFICIENTE"})
		if !errors.Is(err, settlement.ErrConflict) || s == nil || s.Status != "ACSC" {
			t.Errorf("conflicting report: %+v %v", s, err)
		}

		// Validation: every field at once; codes of the payment's own API.
		for _, c := range []struct {
			r      settlement.Report
			fields []string
		}{
			{settlement.Report{Status: "DONE"}, []string{"status"}},
			{settlement.Report{Status: "RJCT"}, []string{"rejectionReason.code"}},
			{settlement.Report{Status: "ACSC", Code: "SALDO_INSUFICIENTE"}, []string{"rejectionReason"}},
			{settlement.Report{Status: "RJCT", Code: "COBRANCA_INVALIDA"}, []string{"rejectionReason.code"}}, // a Pix code, not a recurring one
		} {
			_, err := p.Report(ctx, holderApp, "r-2", c.r)
			var verr *validation.Error
			if !errors.As(err, &verr) || len(verr.Fields) != len(c.fields) || verr.Fields[0].Field != c.fields[0] {
				t.Errorf("%+v: %v, want fields %v", c.r, err, c.fields)
			}
		}
		s, err = p.Report(ctx, holderApp, "r-2", settlement.Report{Status: "RJCT", Code: "LIMITE_TENTATIVAS_EXCEDIDO"})
		if err != nil || s.Status != "RJCT" || s.Code != "LIMITE_TENTATIVAS_EXCEDIDO" || s.Detail == "" {
			t.Fatalf("rejection: %+v %v", s, err)
		}
		if _, err := p.Report(ctx, holderApp, "r-2", settlement.Report{Status: "RJCT", Code: "LIMITE_TENTATIVAS_EXCEDIDO", Detail: "again"}); err != nil {
			t.Errorf("the same rejection again: %v", err)
		}
		if _, _, failed := f.rec.counts(); failed != 1 || f.rec.failed[0] != "recurring-payment r-2 LIMITE_TENTATIVAS_EXCEDIDO" {
			t.Errorf("failed outcomes %v", f.rec.failed)
		}

		// A payment not yet asked to settle awaits no outcome.
		if err := f.write(t, func(tx *sql.Tx) error { return p.Reserve(ctx, tx, f.transfer("r-3", "11110001", "22220002", 1)) }); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Report(ctx, holderApp, "r-3", settlement.Report{Status: "ACSC"}); !errors.Is(err, settlement.ErrConflict) {
			t.Errorf("report before settle: %v", err)
		}

		// The payment service refusing the outcome rolls the report back.
		f.ask(t, f.transfer("r-4", "11110001", "22220002", 1))
		f.rec.failWith = errors.New("payment service down")
		if _, err := p.Report(ctx, holderApp, "r-4", settlement.Report{Status: "ACSC"}); err == nil {
			t.Fatal("report succeeded though the payment service failed")
		}
		f.rec.failWith = nil
		if s, err := p.Report(ctx, holderApp, "r-4", settlement.Report{Status: "ACSC"}); err != nil || s.Status != "ACSC" {
			t.Errorf("report after the failure: %+v %v", s, err)
		}
	})
}

// TestPartnerDeadline: a payment the partner never answers is rejected with
// FALHA_INFRAESTRUTURA_DETENTORA by the durable job at its deadline, once;
// a report after the deadline finds it rejected.
func TestPartnerDeadline(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newPartnerFixture(t, db)
		ctx := context.Background()
		f.partner.Deadline = 10 * time.Minute
		f.ask(t, f.transfer("d-1", "11110001", "22220002", 100))
		f.ask(t, f.transfer("d-2", "11110001", "22220002", 100))
		f.ask(t, f.transfer("d-3", "11110001", "22220002", 100))
		if _, err := f.partner.Report(ctx, holderApp, "d-3", settlement.Report{Status: "ACSC"}); err != nil {
			t.Fatal(err)
		}

		f.clock.Advance(10*time.Minute - time.Second)
		if _, err := f.jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, failed := f.rec.counts(); failed != 0 {
			t.Fatalf("rejected before the deadline: %v", f.rec.failed)
		}
		f.clock.Advance(time.Second)
		// d-2's report comes past the deadline, before the job ran.
		s, err := f.partner.Report(ctx, holderApp, "d-2", settlement.Report{Status: "ACSC"})
		if !errors.Is(err, settlement.ErrConflict) || s.Status != "RJCT" || s.Code != settlement.DeadlineCode {
			t.Errorf("late report: %+v %v", s, err)
		}
		if _, err := f.jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		_, settled, failed := f.rec.counts()
		if settled != 1 || failed != 2 || f.rec.failed[0] != "pix-payment d-2 FALHA_INFRAESTRUTURA_DETENTORA" ||
			f.rec.failed[1] != "pix-payment d-1 FALHA_INFRAESTRUTURA_DETENTORA" {
			t.Errorf("outcomes: settled %v, failed %v", f.rec.settled, f.rec.failed)
		}
		var expired int
		for _, e := range f.rec.events {
			if e.Name == settlement.EventExpired && e.ApplicationID == holderApp {
				expired++
			}
		}
		if expired != 2 {
			t.Errorf("%d expiry events, want 2", expired)
		}
		// The deadline's answer is final, and repeatable.
		if s, err := f.partner.Report(ctx, holderApp, "d-1", settlement.Report{Status: "RJCT", Code: settlement.DeadlineCode}); err != nil || s.Status != "RJCT" {
			t.Errorf("the deadline's own outcome again: %+v %v", s, err)
		}
		// Settling again does not ask again.
		if err := f.write(t, func(tx *sql.Tx) error {
			done, err := f.partner.Settle(ctx, tx, f.transfer("d-1", "11110001", "22220002", 100))
			if done {
				t.Error("a rejected settlement is not done")
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPartnerConcurrentReports: the partner's retries arriving at once
// decide once; a conflicting report racing them gets ErrConflict, never an
// error of the race itself.
func TestPartnerConcurrentReports(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newPartnerFixture(t, db)
		f.ask(t, f.transfer("c-1", "11110001", "22220002", 100))
		const n = 10
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := settlement.Report{Status: "ACSC"}
				if i%3 == 2 {
					r = settlement.Report{Status: "RJCT", Code: "SALDO_INSUFICIENTE"}
				}
				_, err := f.partner.Report(context.Background(), holderApp, "c-1", r)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		ok, conflicts := 0, 0
		for err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, settlement.ErrConflict):
				conflicts++
			default:
				t.Errorf("report: %v", err)
			}
		}
		_, settled, failed := f.rec.counts()
		if settled+failed != 1 || ok+conflicts != n {
			t.Errorf("%d settled and %d failed outcomes (want one in all); %d answered, %d conflicts", settled, failed, ok, conflicts)
		}
	})
}

// TestPartnerHold: the partner holds a Pix payment for analysis (PDNG), its
// deadline starts again from the hold, and ACSC or RJCT finish it later; a
// sweeping payment cannot be held.
func TestPartnerHold(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newPartnerFixture(t, db)
		ctx := context.Background()
		p := f.partner
		p.Deadline = 10 * time.Minute
		for _, id := range []string{"hold-1", "hold-2", "hold-3"} {
			f.ask(t, f.transfer(id, "11110001", "22220002", 100))
		}
		rec := f.transfer("hold-rec", "11110001", "22220002", 100)
		rec.Kind = settlement.KindRecurring
		f.ask(t, rec)

		f.clock.Advance(5 * time.Minute)
		for i := range 2 { // the same hold again changes nothing
			s, err := p.Report(ctx, holderApp, "hold-1", settlement.Report{Status: "PDNG"})
			if err != nil || s.Status != "PDNG" || !s.Deadline.Equal(epoch.Add(15*time.Minute)) {
				t.Fatalf("hold #%d: %+v %v", i+1, s, err)
			}
		}
		if _, err := p.Report(ctx, holderApp, "hold-2", settlement.Report{Status: "PDNG"}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Report(ctx, holderApp, "hold-3", settlement.Report{Status: "PDNG"}); err != nil {
			t.Fatal(err)
		}
		if len(f.rec.held) != 3 || f.rec.held[0] != "pix-payment hold-1" {
			t.Errorf("held outcomes %v, want hold-1, hold-2 and hold-3 once each", f.rec.held)
		}
		var verr *validation.Error
		if _, err := p.Report(ctx, holderApp, "hold-rec", settlement.Report{Status: "PDNG"}); !errors.As(err, &verr) || verr.Fields[0].Field != "status" {
			t.Errorf("holding a sweeping payment: %v", err)
		}
		if _, err := p.Report(ctx, holderApp, "hold-1", settlement.Report{Status: "PDNG", Code: "NAO_INFORMADO"}); !errors.As(err, &verr) ||
			verr.Fields[0].Field != "rejectionReason" {
			t.Errorf("PDNG with a reason: %v", err)
		}

		// The first deadline passes: held payments are not rejected.
		f.clock.Advance(5 * time.Minute)
		for range 2 {
			if _, err := f.jobs.RunDue(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, failed := f.rec.counts(); failed != 1 || f.rec.failed[0] != "recurring-payment hold-rec FALHA_INFRAESTRUTURA_DETENTORA" {
			t.Fatalf("failed outcomes at the first deadline %v, want only the unheld sweeping payment", f.rec.failed)
		}

		// ACSC and RJCT finish a held payment.
		if s, err := p.Report(ctx, holderApp, "hold-1", settlement.Report{Status: "ACSC"}); err != nil || s.Status != "ACSC" {
			t.Errorf("settling a held payment: %+v %v", s, err)
		}
		if s, err := p.Report(ctx, holderApp, "hold-2", settlement.Report{Status: "RJCT", Code: "PAGAMENTO_RECUSADO_DETENTORA"}); err != nil || s.Status != "RJCT" {
			t.Errorf("rejecting a held payment: %+v %v", s, err)
		}
		if s, err := p.Report(ctx, holderApp, "hold-1", settlement.Report{Status: "PDNG"}); !errors.Is(err, settlement.ErrConflict) || s.Status != "ACSC" {
			t.Errorf("holding a settled payment: %+v %v", s, err)
		}

		// hold-3 is never reported again: rejected at the held deadline.
		f.clock.Advance(5*time.Minute - time.Second)
		if _, err := f.jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, failed := f.rec.counts(); failed != 2 {
			t.Fatalf("rejected before the held deadline: %v", f.rec.failed)
		}
		f.clock.Advance(time.Second)
		if _, err := f.jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, failed := f.rec.counts(); failed != 3 || f.rec.failed[2] != "pix-payment hold-3 FALHA_INFRAESTRUTURA_DETENTORA" {
			t.Errorf("failed outcomes after the held deadline: %v", f.rec.failed)
		}
		if n := f.rec.named(settlement.EventExpired); n != 2 {
			t.Errorf("%d expiry events, want 2", n)
		}
	})
}

// TestPartnerCancelHeld: releasing a held payment (the initiator cancelled
// it) closes its request, tells the partner, and later reports are 409s;
// the deadline job ends quietly.
func TestPartnerCancelHeld(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newPartnerFixture(t, db)
		ctx := context.Background()
		p := f.partner
		tr := f.transfer("cancel-1", "11110001", "22220002", 100)
		f.ask(t, tr)
		// Not held: a request sent for settlement cannot be released.
		if err := f.write(t, func(tx *sql.Tx) error { return p.Release(ctx, tx, tr) }); !errors.Is(err, settlement.ErrNotReserved) {
			t.Fatalf("release of a pending request: %v", err)
		}
		if _, err := p.Report(ctx, holderApp, "cancel-1", settlement.Report{Status: "PDNG"}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := f.write(t, func(tx *sql.Tx) error { return p.Release(ctx, tx, tr) }); err != nil {
				t.Fatalf("release of a held request: %v", err)
			}
		}
		if n := f.rec.named(settlement.EventCancelled); n != 1 {
			t.Errorf("%d cancellation events, want 1", n)
		}
		for _, r := range []settlement.Report{{Status: "ACSC"}, {Status: "RJCT", Code: "SALDO_INSUFICIENTE"}, {Status: "PDNG"}} {
			if s, err := p.Report(ctx, holderApp, "cancel-1", r); !errors.Is(err, settlement.ErrConflict) || s.Status != "RELEASED" {
				t.Errorf("report %s after the cancellation: %+v %v", r.Status, s, err)
			}
		}
		f.clock.Advance(settlement.DefaultDeadline * 2)
		for range 2 {
			if _, err := f.jobs.RunDue(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, settled, failed := f.rec.counts(); settled+failed != 0 {
			t.Errorf("outcomes after the cancellation: settled %v failed %v", f.rec.settled, f.rec.failed)
		}
	})
}
