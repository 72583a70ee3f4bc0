package app

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/cards"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/directory"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/sandboxapp"
)

// guard wraps mux in httpx.Guard: text Ponte cannot store (NUL, invalid
// UTF-8) is refused before any handler, in the error shape of the route's
// API family (DESIGN.md §3), people's pages with the Portuguese error page.
func (s *site) guard(mux *http.ServeMux) http.Handler {
	families, fallback := s.families()
	return httpx.Guard{
		Mux:      mux,
		Families: families,
		Fallback: fallback,
		// Every request header a handler or go-oidc reads, except three never
		// stored nor looked up as they arrive: x-correlation-id (an unusable
		// one is replaced), User-Agent (only matched for the device's
		// platform) and Cookie (net/http drops a cookie value that is not
		// plain ASCII, and other applications on the same host may set some).
		Headers: []string{"Authorization", "Content-Type", "Accept", "Origin", "Sec-Fetch-Site", "DPoP",
			consentflow.IdempotencyHeader, payments.IdempotencyHeader, payments.InteractionHeader,
			dataconsents.CustomerIPHeader, dataconsents.UserAgentHeader, "x-fapi-auth-date",
			cards.APIVersionHeader, cards.NetworkTimestampHeader, cards.NetworkSignatureHeader, itpflow.HeaderWebhookInteractionID},
	}.Handler()
}

// families says which API family (DESIGN.md §3) each path belongs to, by
// prefix (the longest wins), and the writer for paths of none: the error
// shape of answers written before or without a route's own handler (the
// guard's refusals, unknown paths).
func (s *site) families() ([]httpx.Family, httpx.ErrorWriter) {
	page := httpx.Page{Pages: s.pages, Logger: s.logger}
	bankly := httpx.Bankly{}
	brick := httpx.OpenFinance{Now: s.clock.Now}
	return []httpx.Family{
		{Prefix: "/oauth/", Errors: httpx.OAuth{}},
		{Prefix: "/.well-known/", Errors: httpx.OAuth{}},
		{Prefix: oidc.PathRegister, Errors: httpx.OAuth{}}, // dynamic client registration: RFC 7591 errors
		{Prefix: "/openfinance/", Errors: bankly},
		{Prefix: "/openfinance/consent-flow/webview", Errors: page},
		{Prefix: dataconsents.PathMySharing, Errors: page},
		{Prefix: "/cards-pci/", Errors: bankly},
		{Prefix: "/admin/v1/cards", Errors: bankly},
		{Prefix: "/webhooks/", Errors: bankly},
		{Prefix: "/api/", Errors: brick},
		{Prefix: "/admin/v1/customers/", Errors: fapiErrors{brick}},   // the data import, an Open Finance family route
		{Prefix: "/admin/v1/settlements/", Errors: fapiErrors{brick}}, // partners' settlement reports, Payments' family
		{Prefix: "/admin/pcm", Errors: page},
		{Prefix: "/journey/", Errors: page},
		{Prefix: "/sandbox/", Errors: page},
		{Prefix: directory.PathPrefix + "/", Errors: bankly}, // the sandbox Directory's JSON routes
		{Prefix: "/admin/v1/directory/", Errors: bankly},
		{Prefix: sandboxapp.PathToken, Errors: bankly},
		{Prefix: SandboxPCMPrefix + "/", Errors: bankly},
		{Prefix: "/open-banking/", Errors: fapiErrors{payments.ErrorWriter{Clock: s.clock}}},
		{Prefix: itp.BasePath + "/", Errors: itp.ErrorWriter{}},
	}, bankly
}

// fapiErrors is the Open Finance Brasil family's writer for refusals made
// before the route's own middleware ran: every answer of those APIs carries
// x-fapi-interaction-id, the request's when it is a UUID, a new one otherwise.
type fapiErrors struct{ httpx.ErrorWriter }

func (f fapiErrors) WriteError(w http.ResponseWriter, r *http.Request, e *httpx.Error) {
	id := r.Header.Get(payments.InteractionHeader)
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		id = uuid.NewString()
	}
	w.Header().Set(payments.InteractionHeader, id)
	f.ErrorWriter.WriteError(w, r, e)
}
