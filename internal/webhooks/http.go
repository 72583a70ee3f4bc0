package webhooks

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
)

// Route patterns.
const (
	routeCreate     = "POST /webhooks/v1/subscriptions"
	routeList       = "GET /webhooks/v1/subscriptions"
	routeGet        = "GET /webhooks/v1/subscriptions/{id}"
	routeDelete     = "DELETE /webhooks/v1/subscriptions/{id}"
	routeRotate     = "POST /webhooks/v1/subscriptions/{id}/rotate-secret"
	routeDeliveries = "GET /webhooks/v1/deliveries"
	routeDelivery   = "GET /webhooks/v1/deliveries/{id}"
	routeRetry      = "POST /webhooks/v1/deliveries/{id}/retry"
)

// Handler serves the webhook API. Errors are in the Bankly shape.
type Handler struct {
	Service  *Service
	Verifier httpx.TokenVerifier
	Clock    clock.Clock
	Logger   *slog.Logger
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	errs := httpx.Bankly{}
	api := func(scope string, fn http.HandlerFunc) http.Handler {
		return httpx.Recover(errs, h.Logger, httpx.RequireScope(h.Verifier, scope, errs, fn))
	}
	mux.Handle(routeCreate, api(ScopeWrite, h.create))
	mux.Handle(routeList, api(ScopeRead, h.list))
	mux.Handle(routeGet, api(ScopeRead, h.get))
	mux.Handle(routeDelete, api(ScopeWrite, h.delete))
	mux.Handle(routeRotate, api(ScopeWrite, h.rotate))
	mux.Handle(routeDeliveries, api(ScopeRead, h.deliveries))
	mux.Handle(routeDelivery, api(ScopeRead, h.delivery))
	mux.Handle(routeRetry, api(ScopeWrite, h.retry))
}

func (h *Handler) now() time.Time {
	if h.Clock == nil {
		return time.Now()
	}
	return h.Clock.Now()
}

// fail answers err from the service in the Bankly shape: a validation error
// as a 400 listing every field, not-found as 404, a refused retry as 409, the
// rest as a logged 500.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	errs := httpx.Bankly{}
	var verr *ValidationError
	var rerr *RetryError
	switch {
	case errors.As(err, &verr):
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: "invalid " + verr.What, Fields: httpFields(verr.Fields)})
	case errors.Is(err, ErrNotFound):
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusNotFound, Message: what + " Not Found"})
	case errors.As(err, &rerr):
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusConflict, Message: "Delivery cannot be retried: " + rerr.Reason})
	default:
		h.Logger.ErrorContext(r.Context(), "webhooks: "+what, "err", err)
		errs.WriteError(w, r, httpx.Internal())
	}
}

// httpFields converts the service's field errors for httpx.
func httpFields(fields []FieldError) []httpx.FieldError {
	out := make([]httpx.FieldError, len(fields))
	for i, f := range fields {
		out[i] = httpx.FieldError{Field: f.Field, Message: f.Message}
	}
	return out
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	errs := httpx.Bankly{}
	body, herr := httpx.ReadBody(w, r)
	if herr != nil {
		errs.WriteError(w, r, herr)
		return
	}
	var in CreateSubscription
	if herr := httpx.DecodeObject(body, &in); herr != nil {
		errs.WriteError(w, r, herr.Merge(httpFields(h.Service.Validate(r.Context(), &in))))
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	sub, secret, err := h.Service.Create(r.Context(), p.ApplicationID, in)
	if err != nil {
		h.fail(w, r, "Subscription", err)
		return
	}
	out := sub.JSON(h.now())
	out.Secret = secret
	w.Header().Set("Cache-Control", "no-store") // the secret is in this response only
	httpx.WriteJSON(w, r, http.StatusCreated, out)
}

type subscriptionList struct {
	Data []SubscriptionJSON `json:"data"`
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	subs, err := h.Service.List(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID)
	if err != nil {
		h.fail(w, r, "Subscription", err)
		return
	}
	out := subscriptionList{Data: []SubscriptionJSON{}}
	now := h.now()
	for _, s := range subs {
		out.Data = append(out.Data, s.JSON(now))
	}
	httpx.WriteJSON(w, r, http.StatusOK, out)
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	sub, err := h.Service.Get(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, "Subscription", err)
		return
	}
	httpx.WriteJSON(w, r, http.StatusOK, sub.JSON(h.now()))
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.Service.Delete(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, r.PathValue("id")); err != nil {
		h.fail(w, r, "Subscription", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) rotate(w http.ResponseWriter, r *http.Request) {
	sub, secret, err := h.Service.RotateSecret(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, "Subscription", err)
		return
	}
	out := sub.JSON(h.now())
	out.Secret = secret
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, r, http.StatusOK, out)
}

type deliveryList struct {
	Data       []DeliveryJSON `json:"data"`
	NextCursor string         `json:"nextCursor,omitempty"`
}

func (h *Handler) deliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := DeliveryFilter{SubscriptionID: q.Get("subscriptionId"), EventID: q.Get("eventId"), Status: q.Get("status"), Cursor: q.Get("cursor")}
	var fields []httpx.FieldError
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			fields = append(fields, httpx.FieldError{Field: "limit", Message: fmt.Sprintf("must be an integer from 1 to %d", maxPageLimit)})
		} else {
			f.Limit = n
		}
	}
	fields = append(fields, httpFields(ValidateFilter(&f))...) // f.Limit is 0 (valid) when it did not parse
	if len(fields) > 0 {
		httpx.Bankly{}.WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: "invalid query parameters", Fields: fields})
		return
	}
	page, err := h.Service.Deliveries(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, f)
	if err != nil {
		h.fail(w, r, "Delivery", err)
		return
	}
	out := deliveryList{Data: []DeliveryJSON{}, NextCursor: page.NextCursor}
	for _, d := range page.Deliveries {
		out.Data = append(out.Data, d.JSON())
	}
	httpx.WriteJSON(w, r, http.StatusOK, out)
}

func (h *Handler) delivery(w http.ResponseWriter, r *http.Request) {
	d, err := h.Service.Delivery(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, "Delivery", err)
		return
	}
	httpx.WriteJSON(w, r, http.StatusOK, d.JSON())
}

func (h *Handler) retry(w http.ResponseWriter, r *http.Request) {
	d, err := h.Service.RetryDelivery(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, "Delivery", err)
		return
	}
	httpx.WriteJSON(w, r, http.StatusAccepted, d.JSON())
}
