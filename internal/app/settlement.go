package app

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"

	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// wireSettlement builds where holder-side payments move money, as
// --settlement says: the sandbox ledger, or the holder partner. The partner
// side is built either way: its deadline job and its admin report route
// exist in both modes (with the ledger no settlement is ever asked, so every
// report is a 404). Its Outcomes are set once the payment services exist.
func wireSettlement(b base, mux *http.ServeMux, jobq *jobs.Client, events *webhooks.Emitter,
	verifier httpx.TokenVerifier) (settlement.Settlement, *settlement.Partner) {
	partner := &settlement.Partner{DB: b.db, Clock: b.clock, Logger: b.logger, Events: settlementEvents{events},
		Deadline: b.cfg.SettlementDeadline}
	partner.Register(jobq)
	(&settlement.Handler{Partner: partner, Verifier: verifier, Clock: b.clock, Logger: b.logger}).Register(mux)
	if b.cfg.Settlement == config.SettlementPartner {
		return partner, partner
	}
	ledger := settlement.NewLedgerOn(b.db)
	ledger.PixLimitCents = b.cfg.LedgerPixLimitCents
	return ledger, partner
}

// settlementEvents turns settlement requests into webhook events for the
// holder partner: ids, amount and accounts, never documents.
type settlementEvents struct{ w *webhooks.Emitter }

// EmitSettlementEvent implements settlement.Events.
func (s settlementEvents) EmitSettlementEvent(ctx context.Context, tx *sql.Tx, e settlement.Event) error {
	return s.w.Emit(ctx, tx, webhooks.Event{
		ID: e.ID, ApplicationID: e.ApplicationID, Context: settlement.EventContext, Name: e.Name, EntityID: e.EntityID, Data: e.Data,
		AccountNumbers: e.AccountNumbers,
	})
}

// settlementTarget is a payment service as a settlement outcome reaches it.
type settlementTarget interface {
	SettlementSettled(ctx context.Context, tx *sql.Tx, paymentID string) error
	SettlementFailed(ctx context.Context, tx *sql.Tx, paymentID, code, detail string) error
}

// settlementHolder is the service whose payments a partner may hold for
// analysis (PDNG): Pix payments only, as PDNG does not apply to sweeping.
type settlementHolder interface {
	SettlementHeld(ctx context.Context, tx *sql.Tx, paymentID string) error
}

// settlementOutcomes hands a settlement's outcome to the service of its
// payment's kind: Pix payments (payments) or sweeping payments (recurring).
type settlementOutcomes struct {
	pix, recurring settlementTarget
	pixHold        settlementHolder
}

func (o settlementOutcomes) target(kind settlement.Kind) (settlementTarget, error) {
	switch kind {
	case settlement.KindPix:
		return o.pix, nil
	case settlement.KindRecurring:
		return o.recurring, nil
	}
	return nil, fmt.Errorf("settlement outcome for unknown payment kind %q", kind)
}

// Settled implements settlement.Outcomes.
func (o settlementOutcomes) Settled(ctx context.Context, tx *sql.Tx, kind settlement.Kind, paymentID string) error {
	t, err := o.target(kind)
	if err != nil {
		return err
	}
	return t.SettlementSettled(ctx, tx, paymentID)
}

// Failed implements settlement.Outcomes.
func (o settlementOutcomes) Failed(ctx context.Context, tx *sql.Tx, kind settlement.Kind, paymentID, code, detail string) error {
	t, err := o.target(kind)
	if err != nil {
		return err
	}
	return t.SettlementFailed(ctx, tx, paymentID, code, detail)
}

// Held implements settlement.Outcomes.
func (o settlementOutcomes) Held(ctx context.Context, tx *sql.Tx, kind settlement.Kind, paymentID string) error {
	if kind != settlement.KindPix {
		return fmt.Errorf("settlement hold for payment kind %q: PDNG applies to Pix payments only", kind)
	}
	return o.pixHold.SettlementHeld(ctx, tx, paymentID)
}
