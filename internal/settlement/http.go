package settlement

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/validation"
)

// ReportPath is the admin route through which a holder partner reports a
// settlement's outcome (partner token, scope ScopeAdmin).
const ReportPath = "/admin/v1/settlements/{paymentId}"

// ScopeAdmin is the partner-token scope of the report route.
const ScopeAdmin = "payments.admin"

// Handler serves the admin report route in the Open Finance error shape (the
// payments' own family, like the account-data import).
type Handler struct {
	Partner  *Partner
	Verifier httpx.TokenVerifier
	Clock    clock.Clock
	Logger   *slog.Logger
}

// Register adds the route to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST "+ReportPath, httpx.Recover(h.errors(), h.Logger,
		httpx.RequireScope(h.Verifier, ScopeAdmin, h.errors(), http.HandlerFunc(h.report))))
}

func (h *Handler) errors() httpx.OpenFinance { return httpx.OpenFinance{Now: h.Clock.Now} }

// reportBody is the request body.
type reportBody struct {
	Status          string `json:"status" required:"true"`
	RejectionReason struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"rejectionReason"`
}

// reasonJSON and requestJSON are the answer.
type reasonJSON struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

type requestJSON struct {
	PaymentID       string      `json:"paymentId"`
	Kind            Kind        `json:"kind"`
	EndToEndID      string      `json:"endToEndId"`
	Amount          string      `json:"amount"`
	Currency        string      `json:"currency"`
	Status          string      `json:"status"`
	RejectionReason *reasonJSON `json:"rejectionReason,omitempty"`
	Deadline        string      `json:"deadline,omitempty"`
	UpdatedAt       string      `json:"updatedAt"`
}

func (h *Handler) report(w http.ResponseWriter, r *http.Request) {
	errs := h.errors()
	raw, herr := httpx.ReadBody(w, r)
	var body reportBody
	if herr == nil {
		herr = httpx.DecodeObject(raw, &body)
	}
	if herr != nil {
		errs.WriteError(w, r, herr)
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	s, err := h.Partner.Report(r.Context(), p.ApplicationID, r.PathValue("paymentId"),
		Report{Status: body.Status, Code: body.RejectionReason.Code, Detail: body.RejectionReason.Detail})
	var verr *validation.Error
	switch {
	case errors.As(err, &verr):
		fields := make([]httpx.FieldError, len(verr.Fields))
		for i, f := range verr.Fields {
			fields[i] = httpx.FieldError{Field: f.Field, Message: f.Message}
		}
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: "invalid settlement report", Fields: fields})
	case errors.Is(err, ErrNotFound):
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusNotFound, Message: "no settlement of this payment was asked of this application"})
	case errors.Is(err, ErrConflict):
		msg := "the payment is not waiting for a settlement outcome (status " + s.Status + ")"
		if s.Status == requestReleased {
			msg = "the payment's settlement was withdrawn: the payment was cancelled and must not be settled"
		}
		if s.Status == StatusSettled || s.Status == StatusRejected {
			msg = "the payment's settlement already has another outcome: " + s.Status
			if s.Code != "" {
				msg += " " + s.Code
			}
		}
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusConflict, Message: msg})
	case err != nil:
		h.Logger.ErrorContext(r.Context(), "settlement report", "payment_id", r.PathValue("paymentId"), "err", err)
		errs.WriteError(w, r, httpx.Internal())
	default:
		h.Logger.InfoContext(r.Context(), "settlement outcome reported", "kind", s.Kind, "payment_id", s.PaymentID, "status", s.Status, "code", s.Code)
		httpx.WriteJSON(w, r, http.StatusOK, requestView(s))
	}
}

func requestView(s *Request) requestJSON {
	out := requestJSON{PaymentID: s.PaymentID, Kind: s.Kind, EndToEndID: s.EndToEndID, Amount: s.Amount(), Currency: s.Currency,
		Status: s.Status, UpdatedAt: s.UpdatedAt.UTC().Format(time.RFC3339)}
	if s.Status == StatusRejected {
		out.RejectionReason = &reasonJSON{Code: s.Code, Detail: s.Detail}
	}
	if !s.Deadline.IsZero() {
		out.Deadline = s.Deadline.UTC().Format(time.RFC3339)
	}
	return out
}
