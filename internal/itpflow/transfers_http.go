package itpflow

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/itp"
)

// TransfersPath is the Open Keys collection of sweeping transfers ("Criar
// Payment Initiation" of seed 003), beside the journey sessions.
const TransfersPath = itp.BasePath + "/sweeping-accounts/v2/payment-initiations"

// Messages of the transfers endpoints, in the seed's style.
const (
	MsgTransferExternalIDTaken = "Each Payment Initiation should have a unique externalId prop."
	MsgTransferNotFound        = "payment initiation not found"
	// MsgInitiatorNotConfigured: the operator has not given Ponte its CNPJ as
	// an initiator (--itp-cnpj), so no payment can be initiated at a brand.
	MsgInitiatorNotConfigured = "payment initiation is not available: the initiator's CNPJ is not configured"
)

// TransfersHandler serves the sweeping transfers in the Open Keys family:
// token with scope "app", errors {"error","message"} (itp.ErrorWriter).
type TransfersHandler struct {
	Transfers *Transfers
	Verifier  httpx.TokenVerifier
	Logger    *slog.Logger
}

// Register adds the routes to mux.
func (h *TransfersHandler) Register(mux *http.ServeMux) {
	guard := func(f http.HandlerFunc) http.Handler {
		return httpx.Recover(itp.ErrorWriter{}, h.Logger, httpx.RequireScope(h.Verifier, itp.Scope, itp.ErrorWriter{}, f))
	}
	mux.Handle("POST "+TransfersPath, guard(h.create))
	mux.Handle("GET "+TransfersPath, guard(h.list))
	mux.Handle("GET "+TransfersPath+"/{id}", guard(h.get))
}

// transferBody is the POST body.
type transferBody struct {
	JourneySessionID      string          `json:"journeySessionId" required:"true"`
	ExternalID            string          `json:"externalId" required:"true"`
	Amount                string          `json:"amount" required:"true"`
	CreditorAccount       CreditorAccount `json:"creditorAccount" required:"true"`
	Document              string          `json:"document"`
	RemittanceInformation string          `json:"remittanceInformation"`
	RiskSignals           json.RawMessage `json:"riskSignals" required:"true"`
	Tags                  json.RawMessage `json:"tags"`
}

// TransferJSON is a sweeping transfer as the endpoints show it.
type TransferJSON struct {
	ID                 string           `json:"id"`
	JourneySessionID   string           `json:"journeySessionId"`
	ExternalID         string           `json:"externalId"`
	BrandID            string           `json:"brandId"`
	RecurringConsentID string           `json:"recurringConsentId"`
	RecurringPaymentID string           `json:"recurringPaymentId,omitempty"`
	EndToEndID         string           `json:"endToEndId"`
	Status             string           `json:"status"`
	Amount             string           `json:"amount"`
	Date               string           `json:"date"`
	CreditorAccount    json.RawMessage  `json:"creditorAccount"`
	Document           json.RawMessage  `json:"document"`
	RejectionReason    *RejectionReason `json:"rejectionReason,omitempty"`
	Error              string           `json:"error,omitempty"`
	Tags               json.RawMessage  `json:"tags"`
	CreatedAt          string           `json:"createdAt"`
	UpdatedAt          string           `json:"updatedAt"`
}

// transferJSON renders p (a SWEEPING payment).
func transferJSON(p *Payment) TransferJSON {
	var req struct {
		Date            string          `json:"date"`
		CreditorAccount json.RawMessage `json:"creditorAccount"`
		Document        json.RawMessage `json:"document"`
		Payment         struct {
			Amount string `json:"amount"`
		} `json:"payment"`
	}
	_ = json.Unmarshal(p.Request, &req)
	tags := p.Tags
	if len(tags) == 0 || string(tags) == "null" {
		tags = json.RawMessage(`{}`)
	}
	return TransferJSON{ID: p.ID, JourneySessionID: p.SessionID, ExternalID: p.ExternalID, BrandID: p.BrandID,
		RecurringConsentID: p.ConsentID, RecurringPaymentID: p.PaymentID, EndToEndID: p.EndToEndID, Status: p.Status,
		Amount: req.Payment.Amount, Date: req.Date, CreditorAccount: req.CreditorAccount, Document: req.Document,
		RejectionReason: rejection(p), Error: p.Error, Tags: tags,
		CreatedAt: p.CreatedAt.UTC().Format(itp.TimeLayout), UpdatedAt: p.UpdatedAt.UTC().Format(itp.TimeLayout)}
}

func (h *TransfersHandler) fail(w http.ResponseWriter, r *http.Request, status int, msg string, fields ...httpx.FieldError) {
	itp.ErrorWriter{}.WriteError(w, r, &httpx.Error{Status: status, Message: msg, Fields: fields})
}

func (h *TransfersHandler) serviceError(w http.ResponseWriter, r *http.Request, err error) {
	var verr *itp.ValidationError
	switch {
	case errors.As(err, &verr):
		fields := make([]httpx.FieldError, len(verr.Fields))
		for i, f := range verr.Fields {
			fields[i] = httpx.FieldError{Field: f.Field, Message: f.Message}
		}
		h.fail(w, r, http.StatusUnprocessableEntity, itp.MsgValidationFailed, fields...)
	case errors.Is(err, itp.ErrNotFound):
		h.fail(w, r, http.StatusNotFound, itp.MsgSessionNotFound)
	case errors.Is(err, ErrTransferNotFound):
		h.fail(w, r, http.StatusNotFound, MsgTransferNotFound)
	case errors.Is(err, ErrExternalIDConflict):
		h.fail(w, r, http.StatusConflict, MsgTransferExternalIDTaken)
	case errors.Is(err, ErrInitiatorNotConfigured):
		h.fail(w, r, http.StatusServiceUnavailable, MsgInitiatorNotConfigured)
	default:
		h.Logger.ErrorContext(r.Context(), "payment initiations: internal error", "err", err)
		h.fail(w, r, http.StatusInternalServerError, itp.MsgInternal)
	}
}

func (h *TransfersHandler) create(w http.ResponseWriter, r *http.Request) {
	raw, herr := httpx.ReadBody(w, r)
	if herr != nil {
		itp.ErrorWriter{}.WriteError(w, r, herr)
		return
	}
	var body transferBody
	if herr := httpx.DecodeObject(raw, &body); herr != nil {
		itp.ErrorWriter{}.WriteError(w, r, herr)
		return
	}
	if len(body.Tags) > 0 && string(body.Tags) != "null" {
		var tags map[string]any
		if json.Unmarshal(body.Tags, &tags) != nil || tags == nil {
			h.fail(w, r, http.StatusBadRequest, "", httpx.FieldError{Field: "tags", Message: "must be an object"})
			return
		}
	}
	p, created, err := h.Transfers.Create(r.Context(), TransferRequest{
		ApplicationID: httpx.PrincipalFrom(r.Context()).ApplicationID, SessionID: body.JourneySessionID, ExternalID: body.ExternalID,
		Amount: body.Amount, CreditorAccount: body.CreditorAccount, Document: body.Document,
		RemittanceInformation: body.RemittanceInformation, RiskSignals: body.RiskSignals, Tags: body.Tags,
	})
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	if created {
		h.Logger.InfoContext(r.Context(), "sweeping transfer recorded", "id", p.ID, "session_id", p.SessionID, "end_to_end_id", p.EndToEndID)
	}
	httpx.WriteJSON(w, r, http.StatusOK, transferJSON(p))
}

func (h *TransfersHandler) get(w http.ResponseWriter, r *http.Request) {
	p, err := h.Transfers.Transfer(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, r.PathValue("id"))
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	httpx.WriteJSON(w, r, http.StatusOK, transferJSON(p))
}

// transferStatuses are the statuses a list may filter on.
var transferStatuses = []string{PaymentPending, "RCVD", "ACCP", "ACPD", PaymentACSC, PaymentRJCT, PaymentCANC, "PDNG", PaymentSCHD, PaymentFailed}

func (h *TransfersHandler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := TransferFilter{SessionID: q.Get("journeySessionId"), ExternalID: q.Get("externalId"), Cursor: q.Get("cursor")}
	var fields []httpx.FieldError
	for _, v := range q["status"] {
		for _, st := range strings.Split(v, ",") {
			st = strings.TrimSpace(st)
			if !slices.Contains(transferStatuses, st) {
				fields = append(fields, httpx.FieldError{Field: "status", Message: "must be one of " + strings.Join(transferStatuses, ", ")})
				break
			}
			f.Statuses = append(f.Statuses, st)
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > itp.MaxListLimit {
			fields = append(fields, httpx.FieldError{Field: "limit", Message: "must be an integer from 1 to " + strconv.Itoa(itp.MaxListLimit)})
		}
		f.Limit = n
	}
	if len(fields) > 0 {
		h.fail(w, r, http.StatusUnprocessableEntity, itp.MsgValidationFailed, fields...)
		return
	}
	list, next, err := h.Transfers.List(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, f)
	if errors.Is(err, ErrBadCursor) {
		h.fail(w, r, http.StatusUnprocessableEntity, itp.MsgValidationFailed, httpx.FieldError{Field: "cursor", Message: "Invalid format"})
		return
	}
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	out := struct {
		Data       []TransferJSON `json:"data"`
		NextCursor string         `json:"nextCursor,omitempty"`
	}{Data: make([]TransferJSON, len(list)), NextCursor: next}
	for i, p := range list {
		out.Data[i] = transferJSON(p)
	}
	httpx.WriteJSON(w, r, http.StatusOK, out)
}
