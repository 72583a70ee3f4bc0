package app

import (
	"context"
	"database/sql"
	"github.com/prometheus/client_golang/prometheus"
	"net/http"

	"github.com/ponte-ofb/ponte/internal/cards"
	"github.com/ponte-ofb/ponte/internal/holder"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// wireWebhooks builds the job queue, the webhook emitter, service and
// deliverer, and registers the webhook routes. Subscription secrets are
// sealed with a.Vault, the data key in the data directory (DATA-DIR/data.key
// unless --data-key says otherwise), so they survive restarts.
func (a *App) wireWebhooks(mux *http.ServeMux, reg prometheus.Registerer) {
	a.Jobs = jobs.New(a.DB, jobs.Config{Clock: a.Clock, Logger: a.Logger})
	opts := webhooks.Options{DB: a.DB, Vault: a.Vault, Clock: a.Clock, Logger: a.Logger, Sandbox: a.Config.Sandbox(),
		Metrics: webhooks.NewMetrics(reg)}
	a.Webhooks = webhooks.NewEmitter(a.Clock)
	a.WebhookService = webhooks.NewService(opts)
	webhooks.NewDeliverer(opts).Register(a.Jobs)
	(&webhooks.Handler{Service: a.WebhookService, Verifier: a.Tokens, Clock: a.Clock, Logger: a.Logger}).Register(mux)
}

// cardEvents turns card lifecycle events into webhook events.
type cardEvents struct{ w *webhooks.Emitter }

// EmitCardEvent implements cards.EventEmitter.
func (c cardEvents) EmitCardEvent(ctx context.Context, tx *sql.Tx, e cards.Event) error {
	return c.w.Emit(ctx, tx, webhooks.Event{
		ApplicationID: e.ApplicationID, Context: "Card", Name: e.Name, EntityID: e.EntityID, Data: e.Data,
	})
}

// ticketEvents turns ticket state changes into webhook events: ids and status
// only, never the document number.
type ticketEvents struct{ w *webhooks.Emitter }

// EmitTicketEvent implements holder.EventEmitter.
func (t ticketEvents) EmitTicketEvent(ctx context.Context, tx *sql.Tx, name string, tk *holder.Ticket) error {
	return t.w.Emit(ctx, tx, webhooks.Event{
		ID:            "ticket-used-" + tk.TicketID, // one event per redemption, whatever retries happen
		ApplicationID: tk.ApplicationID, Context: "ConsentFlow", Name: name, EntityID: tk.TicketID,
		Data: map[string]any{"ticketId": tk.TicketID, "status": tk.Status, "clientId": tk.ClientID, "requestUri": tk.RequestURI},
	})
}
