package consentflow

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// A backlog larger than one step is swept in several transactions, each
// expired ticket counted exactly once, used and live tickets left alone.
func TestSweepInSteps(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := clock.NewFake(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
		app, _, err := auth.NewApplications(db, c).Create(ctx, auth.NewApplication{Name: "Sweep", CompanyKey: "sweep", Scopes: []string{"openfinance.ticket.write"}})
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		m := NewTicketMetrics(reg)
		s := NewTickets(db, c, nil, m, nil)
		insert := func(status string, created time.Time) {
			t.Helper()
			tk := &Ticket{TicketID: newTicketID(created), ApplicationID: app.ID, CompanyKey: app.CompanyKey, DocumentNumber: "47742663023",
				RequestURI: "urn:ietf:params:oauth:request_uri:x", ClientID: "client", Status: status,
				CreatedAt: created, UpdatedAt: created, ExpiresAt: created.Add(TicketTTL)}
			if err := db.Write(ctx, func(tx *sql.Tx) error { _, err := insertTicket(ctx, db, tx, tk, ""); return err }); err != nil {
				t.Fatal(err)
			}
		}
		for range 7 {
			insert(TicketUnused, c.Now())
		}
		insert(TicketUsed, c.Now())
		c.Advance(TicketTTL)
		insert(TicketUnused, c.Now()) // still live

		n, err := s.sweep(ctx, 3)
		if err != nil || n != 7 {
			t.Fatalf("sweep in steps of 3 = %d, %v; want 7", n, err)
		}
		if n, err := s.sweep(ctx, 3); err != nil || n != 0 {
			t.Fatalf("second sweep = %d, %v; want 0", n, err)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if got := mf.GetMetric()[0].GetCounter().GetValue(); mf.GetName() == "ponte_tickets_expired_total" && got != 7 {
				t.Errorf("ponte_tickets_expired_total = %v, want 7", got)
			}
		}
		var counted int
		if err := db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM consent_flow_tickets WHERE expiry_counted = 1`).Scan(&counted); err != nil {
			t.Fatal(err)
		}
		if counted != 7 {
			t.Errorf("%d tickets marked counted, want 7 (not the used one, not the live one)", counted)
		}
	})
}
