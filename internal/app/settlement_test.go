package app

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// outcomeTarget records what reaches one payment service.
type outcomeTarget struct{ calls []string }

func (o *outcomeTarget) SettlementSettled(_ context.Context, _ *sql.Tx, id string) error {
	o.calls = append(o.calls, "settled "+id)
	return nil
}

func (o *outcomeTarget) SettlementFailed(_ context.Context, _ *sql.Tx, id, code, detail string) error {
	o.calls = append(o.calls, "failed "+id+" "+code+" "+detail)
	return nil
}

// TestSettlementOutcomesByKind: each outcome reaches the service of its
// payment's kind, and only it; an unknown kind is an error.
func TestSettlementOutcomesByKind(t *testing.T) {
	t.Parallel()
	pix, rec := &outcomeTarget{}, &outcomeTarget{}
	o := settlementOutcomes{pix: pix, recurring: rec}
	ctx := context.Background()
	for _, err := range []error{
		o.Settled(ctx, nil, settlement.KindPix, "p1"),
		o.Failed(ctx, nil, settlement.KindPix, "p2", "SALDO_INSUFICIENTE", "d"),
		o.Settled(ctx, nil, settlement.KindRecurring, "r1"),
		o.Failed(ctx, nil, settlement.KindRecurring, "r2", "FALHA_INFRAESTRUTURA_DETENTORA", "late"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(pix.calls) != 2 || pix.calls[0] != "settled p1" || pix.calls[1] != "failed p2 SALDO_INSUFICIENTE d" {
		t.Errorf("pix: %v", pix.calls)
	}
	if len(rec.calls) != 2 || rec.calls[0] != "settled r1" || rec.calls[1] != "failed r2 FALHA_INFRAESTRUTURA_DETENTORA late" {
		t.Errorf("recurring: %v", rec.calls)
	}
	if o.Settled(ctx, nil, "card", "x") == nil || o.Failed(ctx, nil, "card", "x", "C", "") == nil {
		t.Error("an unknown kind reached a service")
	}
}

// TestWireSettlement: --settlement picks the ledger or the partner; the
// partner's deadline job and report route exist either way.
func TestWireSettlement(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, mode := range []string{config.SettlementLedger, config.SettlementPartner} {
			clk := clock.NewFake(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
			b := base{cfg: config.Config{Mode: config.Sandbox, Settlement: mode, SettlementDeadline: time.Minute},
				logger: slog.New(slog.DiscardHandler), clock: clk, db: db}
			mux := http.NewServeMux()
			jobq := jobs.New(db, jobs.Config{Clock: clk})
			settle, partner := wireSettlement(b, mux, jobq, webhooks.NewEmitter(clk), nil)
			switch s := settle.(type) {
			case *settlement.Ledger:
				if mode != config.SettlementLedger {
					t.Errorf("%s: built the ledger", mode)
				}
			case *settlement.Partner:
				if mode != config.SettlementPartner || s != partner {
					t.Errorf("%s: built a partner that is not the one reports reach", mode)
				}
			default:
				t.Errorf("%s: built %T", mode, settle)
			}
			if partner.Deadline != time.Minute {
				t.Errorf("%s: deadline %s", mode, partner.Deadline)
			}
			req, _ := http.NewRequest(http.MethodPost, "/admin/v1/settlements/p-1", nil)
			if _, pattern := mux.Handler(req); pattern != "POST "+settlement.ReportPath {
				t.Errorf("%s: report route not registered (%q)", mode, pattern)
			}
		}
	})
}
