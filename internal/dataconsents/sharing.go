package dataconsents

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/ofb"
)

// MySharingRequestURI is the requestUri a holder partner puts in a
// consent-flow ticket (seed 000) to open "Meus compartilhamentos" for the
// ticket's documentNumber instead of an authorization journey.
const MySharingRequestURI = "urn:ponte:my-sharing"

// Routes of "Meus compartilhamentos".
const (
	PathMySharing       = "/openfinance/consent-flow/my-sharing"
	PathMySharingRevoke = PathMySharing + "/revoke"
)

// sharingCookie holds the session a my-sharing ticket opened.
const sharingCookie = "ponte_sharing_session"

// AppNames gives an application's display name (the receiving institution).
type AppNames interface {
	AppName(ctx context.Context, applicationID string) string
}

// SharingHandler serves "Meus compartilhamentos": the page where a holder
// partner's customer sees the data-sharing consents they authorised and
// revokes them. The partner's app asks for a ticket whose requestUri is
// MySharingRequestURI and opens PathMySharing?ticket=<ticketId> within 60
// seconds; the page is for the ticket's documentNumber at that partner.
type SharingHandler struct {
	Service *Service
	Tickets *consentflow.Tickets
	Names   AppNames
	Pages   *template.Template
	Logger  *slog.Logger
	// SecureCookies sets Secure on the session cookie (https public URL).
	SecureCookies bool
}

// Register adds the routes to mux.
func (h *SharingHandler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathMySharing, h.ServePage)
	mux.HandleFunc("GET "+PathMySharingRevoke, h.ServeConfirm)
	mux.HandleFunc("POST "+PathMySharingRevoke, h.ServeRevoke)
}

// sharingPage is the template's data.
type sharingPage struct {
	MaskedDocument string
	Consents       []sharingItem
	Revoked        bool
	SessionExpires string
}

type sharingItem struct {
	ID, Receiver, Since string
	Data                *consentflow.DataView
	Accounts            []string
}

type sharingError struct{ Title, Message string }

// confirmPage asks before revoking: ending a sharing cannot be undone.
type confirmPage struct {
	Consent        sharingItem
	SessionExpires string
}

func (h *SharingHandler) headers(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with the page's revoke form (a navigation POST), which
	// ServeRevoke's origin check must refuse. Other sites still get no referrer.
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

// ServePage opens the page with a ticket (?ticket=), then shows it for the session.
func (h *SharingHandler) ServePage(w http.ResponseWriter, r *http.Request) {
	h.headers(w)
	ctx := r.Context()
	if id := r.URL.Query().Get("ticket"); id != "" {
		t, sess, err := h.Tickets.Redeem(ctx, id)
		switch {
		case err == nil:
		case errors.Is(err, consentflow.ErrTicketUsed):
			h.render(w, r, http.StatusGone, "ticket_error", sharingError{"Link já utilizado", "Este link de acesso já foi usado e não pode ser aberto de novo."})
			return
		case errors.Is(err, consentflow.ErrTicketExpired):
			h.render(w, r, http.StatusGone, "ticket_error", sharingError{"Link expirado", "Este link de acesso expirou: ele vale por 60 segundos."})
			return
		case errors.Is(err, consentflow.ErrTicketNotFound):
			h.render(w, r, http.StatusNotFound, "ticket_error", sharingError{"Link inválido", "Não encontramos este link de acesso."})
			return
		default:
			h.fail(w, r, "redeem my-sharing ticket", err)
			return
		}
		if t.RequestURI != MySharingRequestURI {
			h.render(w, r, http.StatusNotFound, "ticket_error", sharingError{"Link inválido", "Este link de acesso não abre Meus compartilhamentos."})
			return
		}
		http.SetCookie(w, &http.Cookie{Name: sharingCookie, Value: sess.Token, Path: PathMySharing, HttpOnly: true,
			SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil || h.SecureCookies, Expires: sess.ExpiresAt,
			// Max-Age from the injected clock, never the wall clock: the
			// session's expiry is on the service's clock.
			MaxAge: max(1, int(sess.ExpiresAt.Sub(h.Service.Clock.Now())/time.Second))})
		// Drop the ticket from the address bar: reloads use the session.
		http.Redirect(w, r, PathMySharing, http.StatusSeeOther)
		return
	}
	t, sess, ok := h.session(w, r)
	if !ok {
		return
	}
	items, err := h.items(ctx, t)
	if err != nil {
		h.fail(w, r, "list customer data consents", err)
		return
	}
	h.render(w, r, http.StatusOK, "my_sharing", sharingPage{MaskedDocument: ofb.MaskDocument(t.DocumentNumber),
		Revoked: r.URL.Query().Get("revoked") == "1", SessionExpires: sess.ExpiresAt.In(brasilia).Format("15:04"), Consents: items})
}

// items are the session customer's active consents as the page shows them.
func (h *SharingHandler) items(ctx context.Context, t *consentflow.Ticket) ([]sharingItem, error) {
	list, err := h.Service.CustomerConsents(ctx, t.ApplicationID, t.DocumentNumber)
	if err != nil {
		return nil, err
	}
	accounts, err := h.Service.customerAccounts(ctx, t.ApplicationID, t.DocumentNumber)
	if err != nil {
		return nil, fmt.Errorf("dataconsents: customer accounts: %w", err)
	}
	out := make([]sharingItem, 0, len(list))
	for _, c := range list {
		item := sharingItem{ID: c.ID, Receiver: c.ApplicationID, Since: brDateTime(c.AuthorisedAt), Data: View(c)}
		if h.Names != nil {
			if n := h.Names.AppName(ctx, c.ApplicationID); n != "" {
				item.Receiver = n
			}
		}
		for _, id := range c.AccountIDs {
			if label, ok := accounts[id]; ok {
				item.Accounts = append(item.Accounts, label)
			}
		}
		out = append(out, item)
	}
	return out, nil
}

// ServeConfirm asks the customer to confirm ending one sharing
// (?consentId=); the page's form posts to ServeRevoke. A plain page, so the
// confirmation works without JavaScript.
func (h *SharingHandler) ServeConfirm(w http.ResponseWriter, r *http.Request) {
	h.headers(w)
	t, sess, ok := h.session(w, r)
	if !ok {
		return
	}
	items, err := h.items(r.Context(), t)
	if err != nil {
		h.fail(w, r, "list customer data consents", err)
		return
	}
	id := r.URL.Query().Get("consentId")
	for _, item := range items {
		if item.ID == id {
			h.render(w, r, http.StatusOK, "my_sharing_confirm", confirmPage{Consent: item, SessionExpires: sess.ExpiresAt.In(brasilia).Format("15:04")})
			return
		}
	}
	h.render(w, r, http.StatusNotFound, "ticket_error", sharingError{"Compartilhamento não encontrado", "Não encontramos este compartilhamento entre os seus ativos."})
}

// session admits a request with a live my-sharing session of a customer
// the ticket's partner serves, writing the refusal otherwise.
func (h *SharingHandler) session(w http.ResponseWriter, r *http.Request) (*consentflow.Ticket, *consentflow.Session, bool) {
	c, err := r.Cookie(sharingCookie)
	if err != nil {
		h.render(w, r, http.StatusUnauthorized, "ticket_error", sharingError{"Sessão expirada", "Abra Meus compartilhamentos de novo pelo aplicativo."})
		return nil, nil, false
	}
	t, sess, err := h.Tickets.SessionTicket(r.Context(), c.Value)
	if err != nil || t.RequestURI != MySharingRequestURI {
		h.render(w, r, http.StatusUnauthorized, "ticket_error", sharingError{"Sessão expirada", "Abra Meus compartilhamentos de novo pelo aplicativo."})
		return nil, nil, false
	}
	if _, err := customers.CustomerTx(r.Context(), h.Service.DB.Read(), t.ApplicationID, t.DocumentNumber); err != nil {
		h.render(w, r, http.StatusForbidden, "ticket_error", sharingError{"Cliente não encontrado", "Esta instituição não atende o documento informado."})
		return nil, nil, false
	}
	return t, sess, true
}

// ServeRevoke revokes one of the customer's consents (form field consentId).
func (h *SharingHandler) ServeRevoke(w http.ResponseWriter, r *http.Request) {
	h.headers(w)
	// A form from this page only: same origin (the cookie is also SameSite=Lax).
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		h.render(w, r, http.StatusForbidden, "ticket_error", sharingError{"Pedido recusado", "Pedidos de outros sites são recusados."})
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if u, err := url.Parse(origin); err != nil || u.Host != r.Host {
			h.render(w, r, http.StatusForbidden, "ticket_error", sharingError{"Pedido recusado", "Pedidos de outros sites são recusados."})
			return
		}
	}
	t, _, ok := h.session(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	id := r.PostFormValue("consentId")
	err := h.Service.RevokeByCustomer(r.Context(), t.ApplicationID, t.DocumentNumber, id)
	switch {
	case err == nil, errors.Is(err, ErrAlreadyRejected):
		h.Logger.InfoContext(r.Context(), "data consent revoked by the customer", "consent_id", id)
		http.Redirect(w, r, PathMySharing+"?revoked=1", http.StatusSeeOther)
	case errors.Is(err, ErrNotFound):
		h.render(w, r, http.StatusNotFound, "ticket_error", sharingError{"Compartilhamento não encontrado", "Não encontramos este compartilhamento entre os seus."})
	default:
		h.fail(w, r, "revoke data consent", err)
	}
}

func (h *SharingHandler) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.Logger.ErrorContext(r.Context(), what, "err", err)
	h.render(w, r, http.StatusInternalServerError, "ticket_error", sharingError{"Falha temporária", "Não foi possível abrir seus compartilhamentos agora. Tente novamente em instantes."})
}

func (h *SharingHandler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
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

// customerAccounts labels a customer's accounts by id: "Conta corrente · ag. 0001 · conta 1234567".
func (s *Service) customerAccounts(ctx context.Context, appID, document string) (map[string]string, error) {
	list, err := customers.AccountsTx(ctx, s.DB.Read(), appID, document)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(list))
	for _, a := range list {
		out[a.ID] = customers.AccountLabel(a.AccountType, a.Issuer, a.Number)
	}
	return out, nil
}
