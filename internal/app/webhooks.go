package app

import (
	"context"
	"database/sql"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ponte-ofb/ponte/internal/cards"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/vault"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// wireWebhooks builds the webhook emitter, service and deliverer (its jobs
// on jobq), and registers the webhook routes. Subscription secrets are
// sealed with vlt, the data key in the data directory (DATA-DIR/data.key
// unless --data-key says otherwise), so they survive restarts.
func wireWebhooks(b base, mux *http.ServeMux, reg prometheus.Registerer, jobq *jobs.Client, vlt *vault.Vault,
	verifier httpx.TokenVerifier) (*webhooks.Emitter, *webhooks.Service) {
	opts := webhooks.Options{DB: b.db, Vault: vlt, Clock: b.clock, Logger: b.logger, Sandbox: b.cfg.Sandbox(),
		Metrics: webhooks.NewMetrics(reg)}
	events := webhooks.NewEmitter(b.clock)
	svc := webhooks.NewService(opts)
	webhooks.NewDeliverer(opts).Register(jobq)
	(&webhooks.Handler{Service: svc, Verifier: verifier, Clock: b.clock, Logger: b.logger}).Register(mux)
	return events, svc
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

// EmitTicketEvent implements consentflow.EventEmitter.
func (t ticketEvents) EmitTicketEvent(ctx context.Context, tx *sql.Tx, name string, tk *consentflow.Ticket) error {
	ev := ticketEvent(name, tk, tk.ClientID, tk.RequestURI)
	ev.ApplicationID = tk.ApplicationID
	return t.w.Emit(ctx, tx, ev)
}

// TicketEventSQL implements consentflow.EventStatement: the same event,
// its application, clientId and requestUri read by the statement.
func (t ticketEvents) TicketEventSQL(ctx context.Context, name string, tk *consentflow.Ticket, from string, first int) (consentflow.EventSQL, error) {
	st, err := t.w.Statement(ctx, ticketEvent(name, tk, webhooks.Expr(from+".client_id"), webhooks.Expr(from+".request_uri")),
		webhooks.Expr(from+".application_id"), from, first)
	return consentflow.EventSQL{CTEs: st.CTEs, Args: st.Args, Check: st.Check}, err
}

func ticketEvent(name string, tk *consentflow.Ticket, clientID, requestURI any) webhooks.Event {
	return webhooks.Event{
		ID:      "ticket-used-" + tk.TicketID, // one event per redemption, whatever retries happen
		Context: "ConsentFlow", Name: name, EntityID: tk.TicketID,
		Data: map[string]any{"ticketId": tk.TicketID, "status": tk.Status, "clientId": clientID, "requestUri": requestURI},
	}
}
