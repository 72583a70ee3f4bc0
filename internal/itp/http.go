package itp

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// Messages of seed 003, exactly as written there.
const (
	MsgApplicationNotFound = "application not found"
	MsgJourneyNotFound     = "journey not found"
	MsgRedirectNotAllowed  = "this redirectUrl is not allowed for this application."
	MsgExternalIDTaken     = "Each Journey Session should have a unique externalId prop."
	MsgValidationFailed    = "Validation failed"
	MsgUnauthorized        = "Token inválido ou expirado"
	MsgInternal            = "An unexpected error occurred"
	MsgSessionNotFound     = "journey session not found"
)

// ErrorWriter renders errors in the Open Keys shape (DESIGN.md §3):
//
//	{"error":"Forbidden","message":"journey not found"}
//
// A 422 adds "details":[{"field","message"}]; a 400 is "Validation Error"
// naming the first offending field. It implements httpx.ErrorWriter, so
// httpx.RequireScope's 401 and 403 come out in this shape too.
type ErrorWriter struct{}

type errorBody struct {
	Error   string       `json:"error"`
	Message string       `json:"message"`
	Details []FieldError `json:"details,omitempty"`
}

// WriteError implements httpx.ErrorWriter.
func (ErrorWriter) WriteError(w http.ResponseWriter, r *http.Request, e *httpx.Error) {
	body := errorBody{Error: http.StatusText(e.Status), Message: e.Message}
	switch e.Status {
	case http.StatusBadRequest:
		body.Error = "Validation Error"
		field := "body"
		if len(e.Fields) > 0 {
			field = e.Fields[0].Field
		}
		body.Message = "Campo '" + field + "' inválido"
	case http.StatusUnauthorized:
		body.Message = MsgUnauthorized
	case http.StatusUnprocessableEntity:
		body.Message = MsgValidationFailed
		for _, f := range e.Fields {
			body.Details = append(body.Details, FieldError{Field: f.Field, Message: f.Message})
		}
	case http.StatusInternalServerError:
		body.Message = MsgInternal
	}
	if body.Error == "" {
		body.Error = "Error"
	}
	httpx.WriteJSON(w, r, e.Status, body)
}

// Handler serves the Open Keys ITP routes.
type Handler struct {
	Service  *Service
	Verifier httpx.TokenVerifier
	Logger   *slog.Logger
}

// Register adds the routes to mux, each requiring a token with scope "app".
func (h *Handler) Register(mux *http.ServeMux) {
	guard := func(f http.HandlerFunc) http.Handler { return httpx.RequireScope(h.Verifier, Scope, ErrorWriter{}, f) }
	mux.Handle("GET "+JourneysPath, guard(h.journeys))
	mux.Handle("POST "+SessionsPath, guard(h.create))
	mux.Handle("GET "+SessionsPath, guard(h.list))
	mux.Handle("GET "+SessionsPath+"/{id}", guard(h.get))
	mux.Handle("POST "+SessionsPath+"/{id}/verify-expired", guard(h.verifyExpired))
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string, fields ...httpx.FieldError) {
	ErrorWriter{}.WriteError(w, r, &httpx.Error{Status: status, Message: msg, Fields: fields})
}

// serviceError answers err from the service, logging server faults.
func (h *Handler) serviceError(w http.ResponseWriter, r *http.Request, err error) {
	var verr *ValidationError
	switch {
	case errors.As(err, &verr):
		fields := make([]httpx.FieldError, len(verr.Fields))
		for i, f := range verr.Fields {
			fields[i] = httpx.FieldError{Field: f.Field, Message: f.Message}
		}
		h.fail(w, r, http.StatusUnprocessableEntity, MsgValidationFailed, fields...)
	case errors.Is(err, ErrApplicationNotFound):
		h.fail(w, r, http.StatusForbidden, MsgApplicationNotFound)
	case errors.Is(err, ErrJourneyNotFound):
		h.fail(w, r, http.StatusForbidden, MsgJourneyNotFound)
	case errors.Is(err, ErrRedirectNotAllowed):
		h.fail(w, r, http.StatusForbidden, MsgRedirectNotAllowed)
	case errors.Is(err, ErrExternalIDTaken):
		h.fail(w, r, http.StatusConflict, MsgExternalIDTaken)
	case errors.Is(err, ErrNotFound):
		h.fail(w, r, http.StatusNotFound, MsgSessionNotFound)
	default:
		h.Logger.ErrorContext(r.Context(), "journey sessions: internal error", "err", err)
		h.fail(w, r, http.StatusInternalServerError, MsgInternal)
	}
}

// createBody is the POST body; pointers tell absent from wrong.
type createBody struct {
	JourneyID   *string         `json:"journeyId"`
	RedirectURL *string         `json:"redirectUrl"`
	BrandID     *string         `json:"brandId"`
	ExternalID  *string         `json:"externalId"`
	Settings    []settingBody   `json:"settings"`
	Tags        json.RawMessage `json:"tags"`
}

type settingBody struct {
	Key   *string         `json:"key"`
	Value json.RawMessage `json:"value"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	raw, herr := httpx.ReadBody(w, r)
	if herr != nil {
		ErrorWriter{}.WriteError(w, r, herr)
		return
	}
	var body createBody
	if herr := httpx.DecodeObject(raw, &body); herr != nil {
		ErrorWriter{}.WriteError(w, r, herr)
		return
	}
	req := CreateRequest{JourneyID: deref(body.JourneyID), RedirectURL: deref(body.RedirectURL),
		BrandID: deref(body.BrandID), ExternalID: deref(body.ExternalID)}
	if len(body.Tags) > 0 && string(body.Tags) != "null" {
		tags, err := decodeTags(body.Tags)
		if err != nil || tags == nil {
			h.fail(w, r, http.StatusBadRequest, "", httpx.FieldError{Field: "tags", Message: "must be an object"})
			return
		}
		req.Tags = tags
	}
	for _, st := range body.Settings {
		req.Settings = append(req.Settings, Setting{Key: deref(st.Key), Value: st.Value})
	}
	created, err := h.Service.CreateSession(r.Context(), httpx.PrincipalFrom(r.Context()).ClientID, req)
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	httpx.WriteRawJSON(w, http.StatusOK, created.createdJSON())
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	body, err := h.Service.sessionJSON(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, r.PathValue("id"))
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	httpx.WriteRawJSON(w, http.StatusOK, body)
}

func (h *Handler) verifyExpired(w http.ResponseWriter, r *http.Request) {
	sess, err := h.Service.VerifyExpired(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, r.PathValue("id"))
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	httpx.WriteJSON(w, r, http.StatusOK, sessionResponse(sess))
}

type listResponse struct {
	Data       []SessionJSON `json:"data"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	f, fields := parseListFilter(r)
	if len(fields) > 0 {
		h.fail(w, r, http.StatusUnprocessableEntity, MsgValidationFailed, fields...)
		return
	}
	list, next, err := h.Service.ListSessions(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, f)
	if errors.Is(err, ErrBadCursor) {
		h.fail(w, r, http.StatusUnprocessableEntity, MsgValidationFailed, httpx.FieldError{Field: "cursor", Message: "Invalid format"})
		return
	}
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	out := listResponse{Data: make([]SessionJSON, len(list)), NextCursor: next}
	for i, s := range list {
		out.Data[i] = sessionResponse(s)
	}
	httpx.WriteJSON(w, r, http.StatusOK, out)
}

// parseListFilter reads the list's query parameters: status (repeatable or
// comma-separated), externalId, brandId, tag (key:value), createdFrom and
// createdTo (RFC 3339), limit (1–100) and cursor.
func parseListFilter(r *http.Request) (ListFilter, []httpx.FieldError) {
	q := r.URL.Query()
	var (
		f      ListFilter
		fields []httpx.FieldError
	)
	for _, v := range q["status"] {
		for _, st := range strings.Split(v, ",") {
			st := Status(strings.TrimSpace(st))
			valid := false
			for _, known := range Statuses {
				valid = valid || st == known
			}
			if !valid {
				fields = append(fields, httpx.FieldError{Field: "status", Message: "must be one of PENDING, AWAITING_AUTHORISATION, AUTHORISED, REJECTED, CANCELLED, EXPIRED, FINISHED"})
				break
			}
			f.Statuses = append(f.Statuses, st)
		}
	}
	f.ExternalID, f.BrandID, f.Cursor = q.Get("externalId"), q.Get("brandId"), q.Get("cursor")
	if tag := q.Get("tag"); tag != "" {
		k, v, ok := strings.Cut(tag, ":")
		if !ok || k == "" {
			fields = append(fields, httpx.FieldError{Field: "tag", Message: "must be key:value"})
		}
		f.TagKey, f.TagValue = k, v
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"createdFrom", &f.CreatedFrom}, {"createdTo", &f.CreatedTo}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				fields = append(fields, httpx.FieldError{Field: p.name, Message: "must be an RFC 3339 date-time"})
			}
			*p.dst = &t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			fields = append(fields, httpx.FieldError{Field: "limit", Message: "must be an integer from 1 to " + strconv.Itoa(MaxListLimit)})
		}
		f.Limit = n
	}
	return f, fields
}

// JourneyJSON is a journey as GET /journeys shows it.
type JourneyJSON struct {
	ID        string    `json:"id"`
	Alias     string    `json:"alias"`
	Name      string    `json:"name"`
	BrandIDs  []string  `json:"brandIds"`
	Settings  []Setting `json:"settings"`
	CreatedAt string    `json:"createdAt"`
	UpdatedAt string    `json:"updatedAt"`
}

func (h *Handler) journeys(w http.ResponseWriter, r *http.Request) {
	list, err := h.Service.Journeys(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID)
	if err != nil {
		h.serviceError(w, r, err)
		return
	}
	out := struct {
		Data []JourneyJSON `json:"data"`
	}{Data: make([]JourneyJSON, len(list))}
	for i, j := range list {
		out.Data[i] = JourneyJSON{ID: j.ID, Alias: j.Alias, Name: j.Name, BrandIDs: orEmpty(j.BrandIDs),
			Settings: orEmpty(j.Settings), CreatedAt: formatTime(j.CreatedAt), UpdatedAt: formatTime(j.UpdatedAt)}
	}
	httpx.WriteJSON(w, r, http.StatusOK, out)
}

// SessionJSON is a journey session as the API shows it, field for field
// seed 003's example. JourneySessionURL (it holds the one-time token) is
// only in the create response; ConsentID appears once a consent exists.
type SessionJSON struct {
	ID                   string         `json:"id"`
	JourneyID            string         `json:"journeyId"`
	JourneySessionURL    string         `json:"journeySessionUrl,omitempty"`
	ApplicationClientID  string         `json:"applicationClientId"`
	ApplicationID        string         `json:"applicationId"`
	TokenID              string         `json:"tokenId"`
	Status               Status         `json:"status"`
	PaymentInitiationAPI string         `json:"paymentInitiationApi"`
	RedirectURL          string         `json:"redirectUrl,omitempty"`
	BrandID              string         `json:"brandId,omitempty"`
	ExternalID           string         `json:"externalId,omitempty"`
	ConsentID            string         `json:"consentId,omitempty"`
	Settings             []Setting      `json:"settings"`
	Tags                 map[string]any `json:"tags"`
	StatusHistory        []historyEntry `json:"statusHistory"`
	CreatedAt            string         `json:"createdAt"`
	UpdatedAt            string         `json:"updatedAt"`
}

func sessionResponse(s *Session) SessionJSON {
	out := SessionJSON{ID: s.ID, JourneyID: s.JourneyID, ApplicationClientID: s.ApplicationClientID, ApplicationID: s.ApplicationID,
		TokenID: s.TokenID, Status: s.Status, PaymentInitiationAPI: PaymentInitiationAPI, RedirectURL: s.RedirectURL,
		BrandID: s.BrandID, ExternalID: s.ExternalID, ConsentID: s.ConsentID, Settings: orEmpty(s.Settings), Tags: s.Tags,
		StatusHistory: make([]historyEntry, len(s.StatusHistory)), CreatedAt: formatTime(s.CreatedAt), UpdatedAt: formatTime(s.UpdatedAt)}
	if out.Tags == nil {
		out.Tags = map[string]any{}
	}
	for i, c := range s.StatusHistory {
		out.StatusHistory[i] = historyEntry{UpdatedAt: formatTime(c.UpdatedAt), Status: c.Status}
	}
	return out
}
