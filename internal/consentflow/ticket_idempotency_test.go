package consentflow_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

const createRoute = "POST /openfinance/consent-flow/ticket"

func ticketService(t *testing.T, db *store.DB, c clock.Clock) (*consentflow.Tickets, *httpx.Principal) {
	t.Helper()
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO applications (id, client_id, name, company_key, scopes, secret_hash, created_at, updated_at)
			VALUES ('a1', 'a1', 'n', 'K', 's', 'h', 0, 0)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tk := consentflow.NewTickets(db, c, consentflow.SandboxRequestURIs{}, consentflow.NewTicketMetrics(prometheus.NewRegistry()), nil)
	return tk, &httpx.Principal{ApplicationID: "a1", CompanyKey: "K"}
}

func ticketCount(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.Read().QueryRow(`SELECT COUNT(*) FROM consent_flow_tickets`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A ticket keeps its key in its own row; the replay is rebuilt from the row and
// must be the first 201 byte for byte, also once the ticket has been used.
func TestTicketReplayAfterRedemption(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := clock.NewFake(time.Date(2026, 3, 1, 10, 0, 0, 400_000_000, time.UTC))
		tk, p := ticketService(t, db, c)
		in := consentflow.CreateTicket{RequestURI: "r", ClientID: "c", DocumentNumber: "47742663023"}
		first, err := tk.Create(ctx, p, in, "k1", createRoute)
		if err != nil || first.Replayed || first.Ticket == nil || first.Ticket.Status != consentflow.TicketUnused {
			t.Fatalf("first: %+v %v", first, err)
		}
		c.Advance(3 * time.Second)
		if _, _, err := tk.Redeem(ctx, first.Ticket.TicketID); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Hour)
		again, err := tk.Create(ctx, p, in, "k1", createRoute)
		if err != nil || !again.Replayed || again.Ticket == nil || asJSON(t, again.Ticket) != asJSON(t, first.Ticket) {
			t.Errorf("replay of a used ticket: %+v %v\nwant the ticket as created, %+v", again, err, first.Ticket)
		}
		in.DocumentNumber = "52998224725"
		if _, err := tk.Create(ctx, p, in, "k1", createRoute); !errors.Is(err, idempotency.ErrKeyReused) {
			t.Errorf("other body: %v, want ErrKeyReused", err)
		}
		if n := ticketCount(t, db); n != 1 {
			t.Errorf("%d tickets, want 1", n)
		}
	})
}

// Keys in idempotency_records — a ticket's from before migration 00011, or
// another route's — still decide: the stored response, or ErrKeyReused.
func TestTicketKeyRecordedInIdempotencyRecords(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		c := clock.NewFake(now)
		tk, p := ticketService(t, db, c)
		in := consentflow.CreateTicket{RequestURI: "r", ClientID: "c", DocumentNumber: "47742663023"}
		fp, err := idempotency.Fingerprint(http.MethodPost, createRoute, in)
		if err != nil {
			t.Fatal(err)
		}
		const stored = `{"ticketId":"00000000000000000000000000000001","status":"UNUSED"}`
		err = db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO idempotency_records (application_id, idempotency_key, fingerprint, status_code, body, created_at, expires_at)
				VALUES ('a1', 'old', $1, 201, $2, $3, $4), ('a1', 'consent', 'another route', 201, '{}', $3, $4)`,
				fp, stored, now.UnixMilli(), now.Add(idempotency.TTL).UnixMilli())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Hour)
		got, err := tk.Create(ctx, p, in, "old", createRoute)
		if err != nil || !got.Replayed || got.Ticket != nil || got.Stored == nil || got.Stored.Status != 201 || string(got.Stored.Body) != stored {
			t.Errorf("legacy record: %+v %v, want the stored response", got, err)
		}
		if _, err := tk.Create(ctx, p, in, "consent", createRoute); !errors.Is(err, idempotency.ErrKeyReused) {
			t.Errorf("key of another route: %v, want ErrKeyReused", err)
		}
		if n := ticketCount(t, db); n != 0 {
			t.Errorf("%d tickets, want 0", n)
		}
		// Once the records expire, the keys are free.
		c.Advance(idempotency.TTL)
		if got, err := tk.Create(ctx, p, in, "old", createRoute); err != nil || got.Replayed {
			t.Errorf("after 24 h: %+v %v, want a new ticket", got, err)
		}
	})
}

// asJSON is a ticket as the API shows it.
func asJSON(t *testing.T, tk *consentflow.Ticket) string {
	t.Helper()
	b, err := json.Marshal(tk.JSON())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
