package recurring

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// ConsentScopePrefix starts the scope binding an authorization_code token
// to one recurring consent (the specification's recurring-consent:{id}).
// Tokens issued before Ponte's authorization server knew it carry Ponte's
// own consent:{id} form, accepted too for recurring consent ids.
const ConsentScopePrefix = "recurring-consent:"

// registerPayments adds the recurring-payments routes (called by Register).
func (h *Handler) registerPayments(mux *http.ServeMux, route func(http.HandlerFunc) http.Handler) {
	mux.Handle("POST "+PaymentsPath, route(h.createPayment))
	mux.Handle("GET "+PaymentsPath, route(h.listPayments))
	mux.Handle("GET "+PaymentsPath+"/{recurringPaymentId}", route(h.getPayment))
	mux.Handle("PATCH "+PaymentsPath+"/{recurringPaymentId}", route(h.cancelPayment))
}

// tokenConsents are the recurring consents a token's scopes name.
func tokenConsents(scopes []string) []string {
	var out []string
	for _, s := range scopes {
		if id, ok := strings.CutPrefix(s, ConsentScopePrefix); ok && id != "" {
			out = append(out, id)
		} else if id, ok := strings.CutPrefix(s, "consent:"); ok && strings.HasPrefix(id, IDPrefix) {
			out = append(out, id)
		}
	}
	return out
}

func (h *Handler) createPayment(w http.ResponseWriter, r *http.Request) {
	p := httpx.PrincipalFrom(r.Context())
	consents := tokenConsents(p.Scopes)
	if len(consents) == 0 {
		// A client_credentials token: POST needs the user's authorization_code token.
		h.forbidden(w, r, "O token de acesso não foi emitido para um consentimento recorrente (scope "+ConsentScopePrefix+"{recurringConsentId}): use o token obtido com a autorização do usuário.")
		return
	}
	req := h.readWrite(w, r, h.Service.PaymentsURL())
	if req == nil {
		return
	}
	data, verr := DecodePayment(req.payload)
	if verr != nil {
		h.fail(w, r, req, verr)
		return
	}
	resp, err := h.Service.CreatePayment(r.Context(), CreatePaymentInput{ApplicationID: p.ApplicationID, TokenConsents: consents,
		Request: *data, IdempotencyKey: req.key, JTI: req.jti})
	h.answerPayment(w, r, req, resp, err, "create recurring payment")
}

func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, detail string) {
	h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusForbidden, Message: detail})
}

// answerPayment writes the outcome of CreatePayment or CancelPayment.
func (h *Handler) answerPayment(w http.ResponseWriter, r *http.Request, req *request, resp idempotency.Response, err error, what string) {
	switch {
	case err == nil:
		if resp.Replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		h.respond(w, r, req, resp.Status, resp.Body)
	case errors.Is(err, ErrTokenConsent):
		h.forbidden(w, r, "O token de acesso não foi emitido para o consentimento recorrente deste pagamento.")
	case errors.Is(err, ErrEndToEndUsed):
		h.fail(w, r, req, &payments.ValidationError{Status: http.StatusUnprocessableEntity, Problems: []payments.Problem{{
			Code: payments.CodeDetalhePagamentoInvalido, Detail: "Parâmetro endToEndId não obedece às regras de negócio: já utilizado em outro pagamento."}}})
	case errors.Is(err, ErrPaymentNotFound):
		h.writeProblems(w, r, http.StatusNotFound, payments.Problem{Code: "NOT_FOUND", Detail: "Pagamento não encontrado."})
	case errors.Is(err, ErrNotOwner):
		h.notOwner(w, r)
	default:
		h.answer(w, r, req, resp, err, what) // idempotency, jti, internal errors: as for consents
	}
}

// notOwner is the specification's answer to a payment another client
// created ("retorne um erro HTTP 400").
func (h *Handler) notOwner(w http.ResponseWriter, r *http.Request) {
	h.writeProblems(w, r, http.StatusBadRequest, payments.Problem{Code: payments.CodeParametroInvalido,
		Detail: "O recurso consultado não pertence ao client_id do token de acesso."})
}

// paymentID reads and checks the path's recurringPaymentId.
func (h *Handler) paymentID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("recurringPaymentId")
	if !paymentIDPattern.MatchString(id) {
		h.writeProblems(w, r, http.StatusBadRequest, payments.Problem{Code: payments.CodeParametroInvalido,
			Detail: "Parâmetro recurringPaymentId não obedece as regras de formatação esperadas."})
		return "", false
	}
	return id, true
}

func (h *Handler) getPayment(w http.ResponseWriter, r *http.Request) {
	id, ok := h.paymentID(w, r)
	if !ok {
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	pay, err := h.Service.GetPayment(r.Context(), p.ApplicationID, id)
	switch {
	case errors.Is(err, ErrPaymentNotFound):
		h.writeProblems(w, r, http.StatusNotFound, payments.Problem{Code: "NOT_FOUND", Detail: "Pagamento não encontrado."})
		return
	case errors.Is(err, ErrNotOwner):
		h.notOwner(w, r)
		return
	case err != nil:
		h.Logger.ErrorContext(r.Context(), "get recurring payment", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	h.read(w, r, pay.Response(h.Service.PaymentURL(pay.ID), h.Service.Clock.Now()))
}

// read writes a GET answer: signed (the official files' only media type
// for a 200), whatever the Accept header says, except for an application
// that opted into plain JSON (a Ponte extension) and did not ask for
// application/jwt.
func (h *Handler) read(w http.ResponseWriter, r *http.Request, v any) {
	caller, err := h.Callers.Caller(r.Context(), httpx.PrincipalFrom(r.Context()).ClientID)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "look up recurring caller", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	if !payments.SignsReads(caller, r.Header.Get("Accept")) {
		httpx.WriteJSON(w, r, http.StatusOK, v)
		return
	}
	body, err := httpx.Marshal(v)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "encode recurring answer", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	h.writeSigned(w, r, caller.Organisation(), http.StatusOK, body)
}

func (h *Handler) listPayments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bad := func(code, detail string) {
		h.writeProblems(w, r, http.StatusBadRequest, payments.Problem{Code: code, Detail: detail})
	}
	in := ListInput{ApplicationID: httpx.PrincipalFrom(r.Context()).ApplicationID, ConsentID: q.Get("recurringConsentId"),
		StartDate: q.Get("startDate"), EndDate: q.Get("endDate"), OriginalPaymentID: q.Get("originalRecurringPaymentId")}
	switch {
	case in.ConsentID == "":
		bad(payments.CodeParametroNaoInformado, "Parâmetro recurringConsentId obrigatório não informado.")
		return
	case len(in.ConsentID) > 256 || !ConsentIDPattern.MatchString(in.ConsentID):
		bad(payments.CodeParametroInvalido, "Parâmetro recurringConsentId não obedece as regras de formatação esperadas.")
		return
	case q.Has("originalRecurringPaymentId") && !paymentIDPattern.MatchString(in.OriginalPaymentID):
		bad(payments.CodeParametroInvalido, "Parâmetro originalRecurringPaymentId não obedece as regras de formatação esperadas.")
		return
	}
	var bounds [2]time.Time
	for i, f := range []struct {
		name string
		v    *string
	}{{"startDate", &in.StartDate}, {"endDate", &in.EndDate}} {
		if !q.Has(f.name) {
			continue
		}
		d, err := time.Parse("2006-1-2", *f.v)
		if len(*f.v) != 10 || !datePattern.MatchString(*f.v) || err != nil {
			bad(payments.CodeParametroInvalido, "Parâmetro "+f.name+" não obedece as regras de formatação esperadas.")
			return
		}
		bounds[i], *f.v = d, d.Format("2006-01-02")
	}
	if !bounds[0].IsZero() && !bounds[1].IsZero() && bounds[0].After(bounds[1]) {
		bad(payments.CodeParametroInvalido, "Parâmetro startDate não pode ser posterior a endDate.")
		return
	}
	list, err := h.Service.ListPayments(r.Context(), in)
	switch {
	case errors.Is(err, ErrNotFound):
		h.writeProblems(w, r, http.StatusNotFound, payments.Problem{Code: "NOT_FOUND", Detail: "Consentimento não encontrado."})
		return
	case errors.Is(err, ErrNotOwner):
		h.notOwner(w, r)
		return
	case err != nil:
		h.Logger.ErrorContext(r.Context(), "list recurring payments", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	resp := PaymentListResponse{Data: make([]PaymentListItem, 0, len(list)),
		Links: Links{Self: h.Service.PaymentsURL() + "?" + r.URL.RawQuery}, Meta: Meta{RequestDateTime: formatTime(h.Service.Clock.Now())}}
	for _, p := range list {
		resp.Data = append(resp.Data, p.listItem())
	}
	h.read(w, r, resp)
}

func (h *Handler) cancelPayment(w http.ResponseWriter, r *http.Request) {
	id, ok := h.paymentID(w, r)
	if !ok {
		return
	}
	req := h.readWrite(w, r, h.Service.PaymentURL(id))
	if req == nil {
		return
	}
	data, verr := DecodePaymentPatch(req.payload)
	if verr != nil {
		h.fail(w, r, req, verr)
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	resp, err := h.Service.CancelPayment(r.Context(), CancelPaymentInput{ApplicationID: p.ApplicationID, PaymentID: id,
		Request: *data, IdempotencyKey: req.key, JTI: req.jti})
	h.answerPayment(w, r, req, resp, err, "cancel recurring payment")
}
