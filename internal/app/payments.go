package app

import (
	"net/http"

	"github.com/ponte-ofb/ponte/internal/payments"
)

// wirePayments builds the Payments API v4 consent service (holder side),
// registers its expiry job on a.Jobs and its routes on mux, and returns the
// service (for the WebView journey to authorise or reject consents). Call
// after wireWebhooks, which creates the job queue.
func (a *App) wirePayments(mux *http.ServeMux) *payments.Service {
	svc := payments.NewService(a.DB, a.Clock, a.Logger, a.Config.PublicURL)
	svc.Register(a.Jobs)
	(&payments.Handler{Service: svc, Verifier: a.Tokens, Logger: a.Logger}).Register(mux)
	return svc
}
