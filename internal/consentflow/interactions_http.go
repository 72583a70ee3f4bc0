package consentflow

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/httpx"
)

// Route patterns of the interaction API (seed 002).
const (
	routeInteractionLogin   = "POST /api/{client_name}/consents/v1/interactions/{interactionId}/login"
	routeInteractionConsent = "POST /api/{client_name}/consents/v1/interactions/{interactionId}/consent"
	routeInteractionCancel  = "POST /api/{client_name}/consents/v1/interactions/{interactionId}/cancel"
)

// ScopeInteractionsWrite lets a holder partner's backend drive its own
// customers' interactions from native screens.
const ScopeInteractionsWrite = "openfinance.interactions.write"

// InteractionJSON is the API's view of an interaction after a step.
type InteractionJSON struct {
	InteractionID string         `json:"interactionId"`
	ConsentID     string         `json:"consentId"`
	Status        string         `json:"status"`
	Accounts      []AccountJSON  `json:"accounts,omitempty"`
	DebtorAccount *DebtorAccount `json:"debtorAccount,omitempty"`
	// RedirectURI is where the user's browser goes next (after consent or
	// cancel): the authorization server, which returns to the initiator.
	RedirectURI string `json:"redirectUri,omitempty"`
	// Handoff is true when the journey started on a desktop browser: that
	// browser follows RedirectURI by itself, the phone only shows "done".
	Handoff bool `json:"handoff"`
}

// AccountJSON is one of the logged-in customer's accounts.
type AccountJSON struct {
	ISPB        string `json:"ispb"`
	Issuer      string `json:"issuer,omitempty"`
	Number      string `json:"number"`
	AccountType string `json:"accountType"`
	Status      string `json:"status"`
}

func outcomeJSON(o *Outcome) InteractionJSON {
	it := o.Interaction
	out := InteractionJSON{InteractionID: it.ID, ConsentID: it.ConsentID, Status: it.Status, RedirectURI: o.RedirectURI, Handoff: it.Handoff}
	for _, a := range o.Accounts {
		out.Accounts = append(out.Accounts, AccountJSON{ISPB: a.ISPB, Issuer: a.Issuer, Number: a.Number, AccountType: a.AccountType, Status: a.Status})
	}
	if a := it.DebtorAccount; a != nil {
		out.DebtorAccount = &DebtorAccount{ISPB: a.ISPB, Issuer: a.Issuer, Number: a.Number, AccountType: a.AccountType}
	}
	return out
}

// registerInteractions adds the interaction API. Two callers are admitted:
// a holder partner's backend with a bearer token holding
// ScopeInteractionsWrite (its own interactions only), and the WebView, by the
// browser session its ticket opened (that session's interaction only; JSON
// bodies from the same origin, which a cross-site form cannot forge).
func (h *Handler) registerInteractions(mux *http.ServeMux) {
	errs := h.brick()
	step := func(fn func(w http.ResponseWriter, r *http.Request, actor Actor)) http.Handler {
		partner := httpx.RequireScope(h.Verifier, ScopeInteractionsWrite, errs, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fn(w, r, Actor{ApplicationID: httpx.PrincipalFrom(r.Context()).ApplicationID})
		}))
		return httpx.Recover(errs, h.Logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			if r.Header.Get("Authorization") != "" {
				partner.ServeHTTP(w, r)
				return
			}
			actor, herr := h.sessionActor(r)
			if herr != nil {
				if herr.Status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer`)
				}
				errs.WriteError(w, r, herr)
				return
			}
			fn(w, r, actor)
		}))
	}
	mux.Handle(routeInteractionLogin, step(h.login))
	mux.Handle(routeInteractionConsent, step(h.consent))
	mux.Handle(routeInteractionCancel, step(h.cancel))
}

// sessionActor admits the WebView: a live holder session cookie, a JSON
// body, and — when the browser says — a same-origin request.
func (h *Handler) sessionActor(r *http.Request) (Actor, *httpx.Error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return Actor{}, &httpx.Error{Status: http.StatusUnauthorized, Message: "missing bearer access token or WebView session"}
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return Actor{}, &httpx.Error{Status: http.StatusForbidden, Message: "cross-site requests are refused"}
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return Actor{}, &httpx.Error{Status: http.StatusForbidden, Message: "cross-origin requests are refused"}
		}
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/json") {
		return Actor{}, &httpx.Error{Status: http.StatusUnsupportedMediaType, Message: "Content-Type must be application/json"}
	}
	_, sess, err := h.Tickets.SessionTicket(r.Context(), c.Value)
	if err != nil || sess.InteractionID == "" {
		return Actor{}, &httpx.Error{Status: http.StatusUnauthorized, Message: "the WebView session expired or opens no interaction"}
	}
	return Actor{SessionInteractionID: sess.InteractionID}, nil
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request, actor Actor) {
	var in LoginRequest
	if !h.decode(w, r, &in, in.Validate) {
		return
	}
	out, err := h.Interactions.Login(r.Context(), actor, r.PathValue("client_name"), r.PathValue("interactionId"), in)
	h.respond(w, r, "login", out, err)
}

func (h *Handler) consent(w http.ResponseWriter, r *http.Request, actor Actor) {
	var in ConsentRequest
	if !h.decode(w, r, &in, in.Validate) {
		return
	}
	out, err := h.Interactions.Approve(r.Context(), actor, r.PathValue("client_name"), r.PathValue("interactionId"), in)
	h.respond(w, r, "consent", out, err)
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request, actor Actor) {
	var in CancelRequest
	if !h.decode(w, r, &in, in.Validate) {
		return
	}
	out, err := h.Interactions.Cancel(r.Context(), actor, r.PathValue("client_name"), r.PathValue("interactionId"), in)
	h.respond(w, r, "cancel", out, err)
}

// decode reads and checks a step's body, writing the error when it fails.
// validate is bound to dst's value before decoding, so it runs on a pointer
// receiver and sees the decoded fields.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, dst any, validate func() []httpx.FieldError) bool {
	errs := h.brick()
	body, herr := httpx.ReadBody(w, r)
	if herr != nil {
		errs.WriteError(w, r, herr)
		return false
	}
	if herr := httpx.DecodeObject(body, dst); herr != nil {
		errs.WriteError(w, r, herr.Merge(validate()))
		return false
	}
	if fields := validate(); len(fields) > 0 {
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: "invalid request body", Fields: fields})
		return false
	}
	return true
}

// brick is the Brick family's error shape (DESIGN.md §3): Open Finance's.
func (h *Handler) brick() httpx.OpenFinance {
	return httpx.OpenFinance{Now: h.Interactions.clock.Now}
}

func (h *Handler) respond(w http.ResponseWriter, r *http.Request, step string, out *Outcome, err error) {
	errs := h.brick()
	if err == nil {
		h.Logger.InfoContext(r.Context(), "interaction step", "step", step, "interaction_id", out.Interaction.ID,
			"status", out.Interaction.Status)
		if out.ByDisplayName {
			h.Logger.WarnContext(r.Context(), "interaction path names the partner by its display name: deprecated, use its slug (ponte apps show)",
				"step", step, "application_id", out.Interaction.ApplicationID)
		}
		httpx.WriteJSON(w, r, http.StatusOK, outcomeJSON(out))
		return
	}
	if herr := interactionError(err); herr != nil {
		errs.WriteError(w, r, herr)
		return
	}
	if errors.Is(err, customers.ErrCustomerNotFound) {
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusForbidden, Code: "WRONG_USER", Message: ErrWrongUser.Error()})
		return
	}
	h.Logger.ErrorContext(r.Context(), "interaction step", "step", step, "err", err)
	errs.WriteError(w, r, httpx.Internal())
}

// interactionError maps a service error to the API's error, or nil for an internal one.
func interactionError(err error) *httpx.Error {
	type mapping struct {
		status int
		code   string
	}
	table := []struct {
		err error
		m   mapping
	}{
		{ErrInteractionNotFound, mapping{http.StatusNotFound, "INTERACTION_NOT_FOUND"}},
		{ErrInteractionExpired, mapping{http.StatusGone, "INTERACTION_EXPIRED"}},
		{ErrInteractionFinished, mapping{http.StatusConflict, "INTERACTION_FINISHED"}},
		{ErrLoginRequired, mapping{http.StatusConflict, "LOGIN_REQUIRED"}},
		{ErrLoginToken, mapping{http.StatusUnauthorized, "INVALID_ACCESS_TOKEN"}},
		{ErrWrongUser, mapping{http.StatusForbidden, "WRONG_USER"}},
		{ErrForeignAccount, mapping{http.StatusUnprocessableEntity, "DEBTOR_ACCOUNT_NOT_FOUND"}},
		{ErrAccountBlocked, mapping{http.StatusUnprocessableEntity, "DEBTOR_ACCOUNT_BLOCKED"}},
		{ErrAccountNotAllowed, mapping{http.StatusUnprocessableEntity, "DEBTOR_ACCOUNT_NOT_ALLOWED"}},
		{ErrPartialApproval, mapping{http.StatusUnprocessableEntity, "PARTIAL_APPROVAL_NOT_SUPPORTED"}},
		{ErrConsentNotAwaiting, mapping{http.StatusConflict, "CONSENT_NOT_AWAITING_AUTHORISATION"}},
	}
	for _, e := range table {
		if errors.Is(err, e.err) {
			he := &httpx.Error{Status: e.m.status, Code: e.m.code, Message: e.err.Error()}
			switch e.err {
			case ErrForeignAccount, ErrAccountBlocked, ErrAccountNotAllowed:
				he.Fields = []httpx.FieldError{{Field: "debtorAccount", Message: e.err.Error()}}
			case ErrLoginToken, ErrWrongUser:
				he.Fields = []httpx.FieldError{{Field: "accessToken", Message: e.err.Error()}}
			case ErrPartialApproval:
				he.Fields = []httpx.FieldError{{Field: "partialApproval", Message: "must be false"}}
			}
			return he
		}
	}
	return nil
}
