package webhooks_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// TestStatementEmitsWhatEmitDoes: on PostgreSQL an event emitted from
// inside one statement, its values read from a row, stores the body Emit
// stores byte for byte (escapes included), with a delivery and a job per
// matching subscription; a value that might be a card number, or an
// unknown application, fails the statement with GuardSQLState and writes
// nothing; no matching subscription writes nothing.
func TestStatementEmitsWhatEmitDoes(t *testing.T) {
	t.Parallel()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	db := storetest.Open(t, storetest.FreshSchema(t, base))
	e := newEnv(t, db, nil)
	rc := newReceiver(t, always(http.StatusOK))
	e.subscribe(t, rc.URL())                                 // every event
	e.subscribe(t, rc.URL(), "CONSENT_FLOW_TICKET_WAS_USED") // this one
	e.subscribe(t, rc.URL(), "CARD_WAS_ADDED_TO_WALLET")     // another one
	other, _ := e.subscribe(t, rc.URL(), "CONSENT_FLOW_TICKET_WAS_USED")
	ctx := context.Background()
	if _, err := db.Pool().Exec(ctx, `UPDATE webhook_subscriptions SET disabled = 1 WHERE id = $1`, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `CREATE TABLE src (k INTEGER PRIMARY KEY, app TEXT, a TEXT, b TEXT)`); err != nil {
		t.Fatal(err)
	}

	event := func(id string, a, b any) webhooks.Event {
		return webhooks.Event{ID: id, ApplicationID: e.appID, Context: "ConsentFlow", Name: "CONSENT_FLOW_TICKET_WAS_USED",
			EntityID: "t-" + id, CorrelationID: "corr-<&>-" + id,
			Data: map[string]any{"ticketId": "t-" + id, "status": "USED", "clientId": a, "requestUri": b}}
	}
	// emitted runs Statement over src's row k and returns the stored body
	// and how many deliveries and jobs the event got.
	emitted := func(t *testing.T, k int, app string, a, b string) (body string, deliveries, jobs int, err error) {
		t.Helper()
		if _, err := db.Pool().Exec(ctx, `INSERT INTO src (k, app, a, b) VALUES ($1, $2, $3, $4)`, k, app, a, b); err != nil {
			t.Fatal(err)
		}
		id := "s-" + strconv.Itoa(k)
		st, err := e.emitter.Statement(ctx, event(id, webhooks.Expr("r.a"), webhooks.Expr("r.b")), "r.app", "r", 2)
		if err != nil {
			return "", 0, 0, err
		}
		var check int
		err = db.Pool().QueryRow(ctx, `WITH r AS (SELECT * FROM src WHERE k = $1), `+st.CTEs+` SELECT `+st.Check,
			append([]any{k}, st.Args...)...).Scan(&check)
		if err != nil {
			return "", 0, 0, err
		}
		_ = db.Read().QueryRow(`SELECT body FROM webhook_events WHERE id = $1`, id).Scan(&body)
		if err := db.Read().QueryRow(`SELECT COUNT(*), COUNT(j.id) FROM webhook_deliveries d LEFT JOIN jobs j ON j.id = d.job_id
			AND j.payload = '{"deliveryId":"' || d.id || '"}' AND j.kind = $2 AND j.state = 'available'
			WHERE d.event_id = $1 AND d.status = 'pending'`, id, webhooks.JobKind).Scan(&deliveries, &jobs); err != nil {
			t.Fatal(err)
		}
		return body, deliveries, jobs, nil
	}
	// want is the body Emit stores for the same event (rolled back).
	want := func(t *testing.T, k int, a, b string) string {
		t.Helper()
		var body string
		stop := errors.New("roll back")
		err := db.Write(ctx, func(tx *sql.Tx) error {
			id := "s-" + strconv.Itoa(k)
			// Emit records an id once: make room for it in this transaction.
			if _, err := tx.Exec(`DELETE FROM webhook_deliveries WHERE event_id = $1`, id); err != nil {
				return err
			}
			if _, err := tx.Exec(`DELETE FROM webhook_events WHERE id = $1`, id); err != nil {
				return err
			}
			if err := e.emitter.Emit(ctx, tx, event(id, a, b)); err != nil {
				return err
			}
			if err := tx.QueryRow(`SELECT body FROM webhook_events WHERE id = $1`, id).Scan(&body); err != nil {
				return err
			}
			return stop
		})
		if !errors.Is(err, stop) {
			t.Fatalf("Emit: %v", err)
		}
		return body
	}

	for i, tc := range []struct{ name, a, b string }{
		{"plain", "client-1", "urn:ietf:params:oauth:request_uri:abc"},
		{"quotes and backslashes", `a"b\c`, `\"\\`},
		{"html", "<script>&amp;</script>", "a>b<c&d"},
		{"named controls", "line\nbreak\ttab\r", "\b\f"},
		{"other controls", "\x01\x1f\x7f", "x\x0by"},
		{"unicode", "ação ✓ 日本 😀", "\u2028\u2029 sep"},
		{"empty", "", ""},
		{"short numbers", "ISPB 12345678", "2026-12-07 10:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, deliveries, jobs, err := emitted(t, i, e.appID, tc.a, tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if w := want(t, i, tc.a, tc.b); body != w {
				t.Errorf("body\n got %s\nwant %s", body, w)
			}
			// Two enabled subscriptions want the event.
			if deliveries != 2 || jobs != 2 {
				t.Errorf("%d deliveries, %d jobs; want 2 and 2", deliveries, jobs)
			}
		})
	}

	var events int
	count := func() int {
		t.Helper()
		if err := db.Read().QueryRow(`SELECT (SELECT COUNT(*) FROM webhook_events) + (SELECT COUNT(*) FROM webhook_deliveries)
			+ (SELECT COUNT(*) FROM jobs)`).Scan(&events); err != nil {
			t.Fatal(err)
		}
		return events
	}
	before := count()
	for i, tc := range []struct{ name, app, a, b string }{
		{"card number", e.appID, "4111 1111 1111 1111", "b"},
		// Suspect, though Luhn says it is no card: Emit decides.
		{"card-like digit run", e.appID, "a", "urn:x:4111111111111112"},
		{"unknown application", "no-such-app", "a", "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := emitted(t, 100+i, tc.app, tc.a, tc.b)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != webhooks.GuardSQLState {
				t.Fatalf("err = %v, want SQLSTATE %s", err, webhooks.GuardSQLState)
			}
			if n := count(); n != before {
				t.Errorf("a refused statement wrote %d rows", n-before)
			}
		})
	}

	t.Run("no subscription", func(t *testing.T) {
		// The other application has no subscription.
		ev := event("s-200", webhooks.Expr("r.a"), webhooks.Expr("r.b"))
		if _, err := db.Pool().Exec(ctx, `INSERT INTO src (k, app, a, b) VALUES (200, $1, 'a', 'b')`, e.otherID); err != nil {
			t.Fatal(err)
		}
		st, err := e.emitter.Statement(ctx, ev, "r.app", "r", 2)
		if err != nil {
			t.Fatal(err)
		}
		var check int
		if err := db.Pool().QueryRow(ctx, `WITH r AS (SELECT * FROM src WHERE k = $1), `+st.CTEs+` SELECT `+st.Check,
			append([]any{200}, st.Args...)...).Scan(&check); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != before {
			t.Errorf("an event nobody wants wrote %d rows", n-before)
		}
	})

	t.Run("card number in what Go writes", func(t *testing.T) {
		ev := event("s-300", "4111 1111 1111 1111", webhooks.Expr("r.b"))
		if _, err := e.emitter.Statement(ctx, ev, "r.app", "r", 2); !errors.Is(err, webhooks.ErrCardData) {
			t.Errorf("err = %v, want ErrCardData", err)
		}
	})
}
