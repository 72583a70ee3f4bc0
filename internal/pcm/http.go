package pcm

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// Routes.
const (
	RouteReport    = "POST /api/journey/v1/consents/{consentId}/report"
	RouteFunnel    = "GET /api/journey/v1/funnel"
	RouteDashboard = "GET /admin/pcm"
)

// Handler serves the report API, the funnel and the admin dashboard.
type Handler struct {
	Service  *Service
	Verifier httpx.TokenVerifier
	// AdminToken is the admin credential ("" turns the dashboard off and the
	// funnel API serves partners only).
	AdminToken string
	// Floor is the conversion-rate floor drawn on the dashboard; 0 means 80%
	// of the period's average conversion rate.
	Floor  float64
	Pages  *template.Template
	Logger *slog.Logger
}

func (h *Handler) errs() httpx.OpenFinance { return httpx.OpenFinance{Now: h.Service.Clock.Now} }

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	errs := h.errs()
	mux.Handle(RouteReport, httpx.Recover(errs, h.Logger, httpx.RequireScope(h.Verifier, ScopeReport, errs, http.HandlerFunc(h.report))))
	partnerFunnel := httpx.RequireScope(h.Verifier, ScopeReport, errs, http.HandlerFunc(h.funnel))
	mux.Handle(RouteFunnel, httpx.Recover(errs, h.Logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.admin(r) {
			h.funnel(w, r)
			return
		}
		partnerFunnel.ServeHTTP(w, r)
	})))
	mux.Handle(RouteDashboard, httpx.Recover(errs, h.Logger, http.HandlerFunc(h.dashboard)))
}

// admin reports whether the request carries the admin credential: as a
// bearer token, or as the password of HTTP Basic (any user name).
func (h *Handler) admin(r *http.Request) bool {
	if h.AdminToken == "" {
		return false
	}
	auth := r.Header.Get("Authorization")
	var given string
	if scheme, tok, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
		given = strings.TrimSpace(tok)
	} else if _, pw, ok := r.BasicAuth(); ok {
		given = pw
	}
	if given == "" {
		return false
	}
	// Compare digests: constant time whatever the lengths.
	a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(h.AdminToken))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// reportResponse is the 201 of a report.
type reportResponse struct {
	Data EventJSON `json:"data"`
	Meta struct {
		RequestDateTime string `json:"requestDateTime"`
	} `json:"meta"`
}

func (h *Handler) report(w http.ResponseWriter, r *http.Request) {
	body, herr := httpx.ReadBody(w, r)
	if herr != nil {
		h.errs().WriteError(w, r, herr)
		return
	}
	var in ReportRequest
	if herr := httpx.DecodeObject(body, &in); herr != nil {
		h.errs().WriteError(w, r, herr)
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	e, created, problems, err := h.Service.Report(r.Context(), p.ApplicationID, r.PathValue("consentId"), in)
	switch {
	case err == nil:
	case errors.Is(err, ErrInvalid):
		code := "PARAMETRO_INVALIDO"
		for _, pr := range problems {
			if pr.Missing {
				code = "PARAMETRO_NAO_INFORMADO"
			}
		}
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusUnprocessableEntity, Code: code, Message: "invalid report", Fields: fieldErrors(problems)})
		return
	case errors.Is(err, ErrConsentNotFound):
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusNotFound, Code: "CONSENTIMENTO_NAO_ENCONTRADO",
			Message: "consentId names no consent of this application (created at Ponte's holder or initiated through Ponte)"})
		return
	default:
		h.Logger.ErrorContext(r.Context(), "pcm report", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	if created {
		h.Logger.InfoContext(r.Context(), "pcm step reported", "consent_id", e.ConsentID, "step", e.Step, "event_id", e.ID)
	}
	var out reportResponse
	out.Data = e.JSON()
	out.Meta.RequestDateTime = h.Service.Clock.Now().UTC().Format("2006-01-02T15:04:05Z")
	httpx.WriteJSON(w, r, http.StatusCreated, out)
}

// funnelResponse is the funnel API's answer.
type funnelResponse struct {
	Data *Funnel `json:"data"`
	Meta struct {
		RequestDateTime string `json:"requestDateTime"`
	} `json:"meta"`
}

func (h *Handler) funnel(w http.ResponseWriter, r *http.Request) {
	q, problems := ParseQuery(r.URL.Query().Get, h.Service.Clock.Now())
	if len(problems) > 0 {
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: "invalid query", Fields: fieldErrors(problems)})
		return
	}
	if p := httpx.PrincipalFrom(r.Context()); p != nil {
		q.ApplicationID = p.ApplicationID // a partner sees its own events only
	}
	f, err := h.Service.Funnel(r.Context(), q)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "pcm funnel", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	out := funnelResponse{Data: f}
	out.Meta.RequestDateTime = h.Service.Clock.Now().UTC().Format("2006-01-02T15:04:05Z")
	httpx.WriteJSON(w, r, http.StatusOK, out)
}

// dashboardWindow is the dashboard's default range.
const dashboardWindow = 30 * 24 * time.Hour

func (h *Handler) dashboard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if h.AdminToken == "" {
		http.Error(w, "The PCM dashboard is off: configure an admin credential (--admin-token or PONTE_ADMIN_TOKEN).", http.StatusNotFound)
		return
	}
	if !h.admin(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Ponte admin", charset="UTF-8"`)
		http.Error(w, "The admin credential is required (HTTP Basic with the admin token as password, or Authorization: Bearer).", http.StatusUnauthorized)
		return
	}
	now := h.Service.Clock.Now()
	values := r.URL.Query()
	get := func(name string) string {
		if name == "from" && values.Get("from") == "" {
			to, _ := ParseQuery(values.Get, now)
			return to.To.Add(-dashboardWindow).Format(time.RFC3339)
		}
		return values.Get(name)
	}
	q, problems := ParseQuery(get, now)
	q.ByDay = true
	var view *dashboardView
	if len(problems) == 0 {
		f, err := h.Service.Funnel(r.Context(), q)
		if err != nil {
			h.Logger.ErrorContext(r.Context(), "pcm dashboard", "err", err)
			http.Error(w, "The funnel could not be read; try again.", http.StatusInternalServerError)
			return
		}
		view = newDashboardView(f, h.Floor)
	} else {
		view = &dashboardView{}
		for _, p := range problems {
			view.Problems = append(view.Problems, p.Field+" "+p.Message)
		}
	}
	view.Form = dashboardForm{From: values.Get("from"), To: values.Get("to"), Side: values.Get("side"), Brand: values.Get("brand"),
		Platform: values.Get("platform"), OS: values.Get("os")}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	status := http.StatusOK
	if len(problems) > 0 {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	if err := h.Pages.ExecuteTemplate(w, "pcm_dashboard", view); err != nil {
		h.Logger.ErrorContext(r.Context(), "render pcm dashboard", "err", err)
	}
}
