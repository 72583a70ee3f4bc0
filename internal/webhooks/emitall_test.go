package webhooks_test

import (
	"context"
	"database/sql"
	"net/http"
	"testing"

	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// TestEmitAll: a batch of events reads the subscriptions once and records
// what Emit would for each, an id repeated in it once; an event of an
// unknown application fails the batch like Emit.
func TestEmitAll(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		rc := newReceiver(t, always(http.StatusOK))
		e.subscribe(t, rc.URL())
		ctx := context.Background()
		ev := func(id string) webhooks.Event {
			return webhooks.Event{ID: id, ApplicationID: e.appID, Context: "Payments", Name: "PIX_PAYMENT_STATUS_CHANGED", EntityID: id}
		}
		batch := []webhooks.Event{ev("e-1"), ev("e-2"), ev("e-3"), ev("e-2")}
		if err := db.Write(ctx, func(tx *sql.Tx) error { return e.emitter.EmitAll(ctx, tx, batch) }); err != nil {
			t.Fatal(err)
		}
		count := func(table string) int {
			var n int
			if err := db.Read().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if ev, d := count("webhook_events"), count("webhook_deliveries"); ev != 3 || d != 3 {
			t.Errorf("%d events, %d deliveries; want 3 and 3", ev, d)
		}
		bad := ev("e-4")
		bad.ApplicationID = "no-such-app"
		if err := db.Write(ctx, func(tx *sql.Tx) error { return e.emitter.EmitAll(ctx, tx, []webhooks.Event{ev("e-5"), bad}) }); err == nil {
			t.Error("an event of an unknown application accepted")
		}
		if ev := count("webhook_events"); ev != 3 {
			t.Errorf("a failed batch left %d events, want 3", ev)
		}
	})
}
