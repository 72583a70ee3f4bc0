package consentflow

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/ofb"
)

// PathWebView is the WebView's path: a ticket in its query opens it.
const PathWebView = "/openfinance/consent-flow/webview"

// Route patterns, shared with the idempotency fingerprint and metrics.
const (
	routeCreateTicket = "POST /openfinance/consent-flow/ticket"
	routeGetTicket    = "GET /openfinance/consent-flow/ticket/{ticketId}"
	routeWebView      = "GET " + PathWebView
)

// Scopes of the ticket routes.
const (
	ScopeTicketWrite = "openfinance.ticket.write"
	ScopeTicketRead  = "openfinance.ticket.read"
)

// SessionCookie is the holder browser session cookie.
const SessionCookie = "ponte_holder_session"

// IdempotencyHeader is the Bankly idempotency header.
const IdempotencyHeader = "idempotencyKey"

// ClientNames tells the initiator's display name for a client_id, so the
// WebView and the hand-off page show the user who is asking rather than an
// opaque id.
type ClientNames interface {
	ClientName(ctx context.Context, clientID string) (string, bool)
}

// Handler serves the consent flow: the ticket API, the WebView, the
// interaction API, the desktop hand-off and, through Authorize, the
// authorization server's journey step.
type Handler struct {
	Clients      ClientNames // optional
	Tickets      *Tickets
	Interactions *Interactions
	// SandboxLogin reports whether the WebView may offer the sandbox login
	// form for a holder partner (only the sandbox demo partner, whose login
	// tokens Ponte's sandbox partner app can sign). Nil: never.
	SandboxLogin  func(applicationID string) bool
	Verifier      httpx.TokenVerifier
	Pages         *template.Template
	Logger        *slog.Logger
	SecureCookies bool // also set Secure on cookies when the public URL is https
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	errs := httpx.Bankly{}
	api := func(scope string, fn http.HandlerFunc) http.Handler {
		return httpx.Recover(errs, h.Logger, httpx.RequireScope(h.Verifier, scope, errs, fn))
	}
	mux.Handle(routeCreateTicket, api(ScopeTicketWrite, h.create))
	mux.Handle(routeGetTicket, api(ScopeTicketRead, h.get))
	mux.Handle(routeWebView, httpx.Recover(errs, h.Logger, http.HandlerFunc(h.webview)))
	mux.HandleFunc(routeHandoffStatus, h.handoffStatus)
	h.registerInteractions(mux)
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	errs := httpx.Bankly{}
	key := r.Header.Get(IdempotencyHeader)
	if len(key) > idempotency.MaxKeyLength {
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: "invalid header",
			Fields: []httpx.FieldError{{Field: IdempotencyHeader, Message: "must be at most 128 characters"}}})
		return
	}
	body, herr := httpx.ReadBody(w, r)
	if herr != nil {
		errs.WriteError(w, r, herr)
		return
	}
	var in CreateTicket
	if herr := httpx.DecodeObject(body, &in); herr != nil {
		// Report type errors and rule violations together: every offending field at once.
		errs.WriteError(w, r, herr.Merge(in.Validate()))
		return
	}
	created, err := h.Tickets.Create(r.Context(), httpx.PrincipalFrom(r.Context()), in, key, routeCreateTicket)
	var resp idempotency.Response
	if err == nil {
		resp, err = createdResponse(created)
	}
	var verr *ValidationError
	switch {
	case err == nil:
		if resp.Replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		httpx.WriteRawJSON(w, resp.Status, resp.Body)
	case errors.As(err, &verr):
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: "invalid request body", Fields: verr.Fields})
	case errors.Is(err, idempotency.ErrKeyReused):
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusUnprocessableEntity, Code: "IDEMPOTENCY_KEY_REUSED",
			Message: "idempotencyKey was already used with a different request"})
	case errors.Is(err, ErrDocumentMismatch):
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: ErrDocumentMismatch.Error(),
			Fields: []httpx.FieldError{{Field: "documentNumber", Message: "does not match the customer the consent names"}}})
	case errors.Is(err, ErrRequestURINotFound):
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: ErrRequestURINotFound.Error(),
			Fields: []httpx.FieldError{{Field: "requestUri", Message: "not found or expired"}}})
	default:
		h.Logger.ErrorContext(r.Context(), "create ticket", "err", err)
		errs.WriteError(w, r, httpx.Internal())
	}
}

// createdResponse is the answer to a create request: the response stored
// under its key, or the 201 with the ticket as created.
func createdResponse(c Created) (idempotency.Response, error) {
	if c.Stored != nil {
		return *c.Stored, nil
	}
	resp := idempotency.Response{Status: http.StatusCreated, Replayed: c.Replayed}
	if body, ok := appendTicketJSON(make([]byte, 0, 256+len(c.Ticket.RequestURI)), c.Ticket); ok {
		resp.Body = body
		return resp, nil
	}
	enc, err := idempotency.Encode(http.StatusCreated, c.Ticket.JSON())
	enc.Replayed = c.Replayed
	return enc, err
}

// appendTicketJSON appends httpx.Marshal(t.JSON()), byte for byte, without
// reflection or the re-validation json.Marshal gives the timestamps' own
// MarshalJSON output. It handles the usual case, strings that JSON writes as
// they are; ok is false when one needs escaping (httpx.Marshal then does it).
func appendTicketJSON(b []byte, t *Ticket) (_ []byte, ok bool) {
	for _, s := range [...]string{t.TicketID, t.CompanyKey, t.DocumentNumber, t.RequestURI, t.ClientID, t.Status} {
		for i := 0; i < len(s); i++ {
			// httpx.Marshal escapes control characters, '"' and '\\'
			// (not HTML's '<', '>', '&'); bytes from 0x80 up may need it too.
			if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
				return nil, false
			}
		}
	}
	b = append(b, `{"ticketId":"`...)
	b = append(b, t.TicketID...)
	b = append(b, `","companyKey":"`...)
	b = append(b, t.CompanyKey...)
	b = append(b, `","documentNumber":"`...)
	b = append(b, t.DocumentNumber...)
	b = append(b, `","requestUri":"`...)
	b = append(b, t.RequestURI...)
	b = append(b, `","clientId":"`...)
	b = append(b, t.ClientID...)
	b = append(b, `","status":"`...)
	b = append(b, t.Status...)
	b = append(b, `","createdAt":"`...)
	b = t.CreatedAt.UTC().AppendFormat(b, httpx.BanklyTimeLayout)
	b = append(b, `","updatedAt":"`...)
	b = t.UpdatedAt.UTC().AppendFormat(b, httpx.BanklyTimeLayout)
	return append(b, `"}`...), true
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	errs := httpx.Bankly{}
	t, err := h.Tickets.Get(r.Context(), httpx.PrincipalFrom(r.Context()), r.PathValue("ticketId"))
	switch {
	case err == nil:
		httpx.WriteJSON(w, r, http.StatusOK, t.JSON())
	case errors.Is(err, ErrTicketNotFound):
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusNotFound, Message: "Ticket Not Found"})
	default:
		h.Logger.ErrorContext(r.Context(), "get ticket", "err", err)
		errs.WriteError(w, r, httpx.Internal())
	}
}

// webviewPage is a sandbox ticket's page: a ticket for a made-up
// requestUri, with no authorization request behind it. It says so and shows
// no ids: Initiator is the client's registered name, empty when the
// clientId names no registered initiator.
type webviewPage struct {
	PartnerName, MaskedDocument, Initiator, SessionExpires string
}

type errorPage struct{ Title, Message string }

// webview redeems the ticket and opens the holder session. HEAD never redeems:
// link previewers must not burn a one-time ticket.
func (h *Handler) webview(w http.ResponseWriter, r *http.Request) {
	// The ticket is a credential in the URL: keep it out of caches and referrers.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		return
	}
	ticketID := r.URL.Query().Get("ticket")
	t, sess, err := h.Tickets.Redeem(r.Context(), ticketID)
	switch {
	case err == nil:
	case errors.Is(err, ErrTicketUsed) && h.ownSession(w, r, ticketID):
		return // a reload by the browser that redeemed it: same page, same session
	case errors.Is(err, ErrTicketUsed):
		h.page(w, r, http.StatusGone, "ticket_error", errorPage{"Link já utilizado", "Este link de acesso já foi usado e não pode ser aberto de novo."})
		return
	case errors.Is(err, ErrTicketExpired):
		h.page(w, r, http.StatusGone, "ticket_error", errorPage{"Link expirado", "Este link de acesso expirou: ele vale por 60 segundos."})
		return
	case errors.Is(err, ErrTicketNotFound):
		h.page(w, r, http.StatusNotFound, "ticket_error", errorPage{"Link inválido", "Não encontramos este link de acesso."})
		return
	default:
		h.Logger.ErrorContext(r.Context(), "redeem ticket", "err", err)
		h.page(w, r, http.StatusInternalServerError, "ticket_error", errorPage{"Falha temporária", "Não foi possível abrir a autorização agora. Tente novamente em instantes."})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: sess.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil || h.SecureCookies, Expires: sess.ExpiresAt, MaxAge: int(SessionTTL / time.Second),
	})
	h.Logger.InfoContext(r.Context(), "ticket redeemed", "company_key", t.CompanyKey, "client_id", t.ClientID)
	h.renderSession(w, r, t, sess)
}

// pageCSP lets the holder's pages load only Ponte's own stylesheet, script
// and images, and talk only to Ponte.
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// brasilia is Brasília time (UTC−3, no daylight saving since 2019): what the
// holder's users read on their phones.
var brasilia = time.FixedZone("BRT", -3*60*60)

func (h *Handler) renderSession(w http.ResponseWriter, r *http.Request, t *Ticket, sess *Session) {
	if sess.InteractionID != "" && h.Interactions != nil {
		h.renderJourney(w, r, t, sess, h.sessionInitiator(r.Context(), t, sess))
		return
	}
	page := webviewPage{PartnerName: t.CompanyKey, MaskedDocument: ofb.MaskDocument(t.DocumentNumber),
		SessionExpires: sess.ExpiresAt.In(brasilia).Format("15:04")}
	switch {
	case sess.NamesRead: // the redemption's statement read them
		page.Initiator = sess.Initiator
		if sess.Partner != "" {
			page.PartnerName = sess.Partner
		}
	default:
		if h.Clients != nil {
			page.Initiator, _ = h.Clients.ClientName(r.Context(), t.ClientID)
		}
		if h.Interactions != nil {
			if p, err := h.Interactions.partners.Partner(r.Context(), t.ApplicationID); err == nil && p.Name != "" {
				page.PartnerName = p.Name
			}
		}
	}
	h.page(w, r, http.StatusOK, "webview", page)
}

// sessionInitiator is initiatorName of t's client, without a read when the
// redemption read the name.
func (h *Handler) sessionInitiator(ctx context.Context, t *Ticket, sess *Session) string {
	if !sess.NamesRead {
		return h.initiatorName(ctx, t.ClientID)
	}
	if sess.Initiator != "" {
		return sess.Initiator
	}
	return t.ClientID
}

// initiatorName is the name the pages show for clientID: its registered
// name, else the id itself.
func (h *Handler) initiatorName(ctx context.Context, clientID string) string {
	if h.Clients != nil {
		if name, ok := h.Clients.ClientName(ctx, clientID); ok && name != "" {
			return name
		}
	}
	return clientID
}

// ownSession re-renders the page when a used ticket is opened again by the
// browser holding the session it opened (pull-to-refresh in the WebView).
func (h *Handler) ownSession(w http.ResponseWriter, r *http.Request, ticketID string) bool {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return false
	}
	t, sess, err := h.Tickets.SessionTicket(r.Context(), c.Value)
	if err != nil || t.TicketID != ticketID {
		return false
	}
	h.renderSession(w, r, t, sess)
	return true
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := h.Pages.ExecuteTemplate(&buf, name, data); err != nil {
		h.Logger.ErrorContext(r.Context(), "render page", "page", name, "err", err)
		http.Error(w, "Falha temporária", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
