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

// dashboardMessage is the pcm_message page: a refusal or a failure, said
// to a person.
type dashboardMessage struct{ Title, Text string }

// message answers the dashboard's refusals and failures with a short
// Portuguese page (the browser shows it, e.g. after the login prompt is
// cancelled).
func (h *Handler) message(w http.ResponseWriter, r *http.Request, status int, m dashboardMessage) {
	h.pageHeaders(w)
	w.WriteHeader(status)
	if err := h.Pages.ExecuteTemplate(w, "pcm_message", m); err != nil {
		h.Logger.ErrorContext(r.Context(), "render pcm message", "err", err)
	}
}

func (h *Handler) pageHeaders(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
}

func (h *Handler) dashboard(w http.ResponseWriter, r *http.Request) {
	if h.AdminToken == "" {
		h.message(w, r, http.StatusNotFound, dashboardMessage{Title: "Painel desligado",
			Text: "O painel de conversão precisa de uma credencial de administrador: inicie a Ponte com --admin-token ou PONTE_ADMIN_TOKEN."})
		return
	}
	if !h.admin(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Ponte admin", charset="UTF-8"`)
		h.message(w, r, http.StatusUnauthorized, dashboardMessage{Title: "Acesso restrito",
			Text: "Este painel é só para administradores. Entre com qualquer nome de usuário e o token de administrador da Ponte como senha (ou envie Authorization: Bearer com o token)."})
		return
	}
	loc := DashboardLocation
	now := h.Service.Clock.Now().In(loc)
	values := r.URL.Query()
	// The default period is whole days of Brasília time, written into the
	// form, so applying the form unchanged shows the same figures.
	form := dashboardForm{From: values.Get("from"), To: values.Get("to"), Side: values.Get("side"), Brand: values.Get("brand"),
		Platform: values.Get("platform"), OS: values.Get("os")}
	defaulted := form.From == "" && form.To == ""
	if form.To == "" {
		form.To = now.Format(dayLayout)
	}
	if form.From == "" {
		end := now
		if d, err := time.ParseInLocation(dayLayout, form.To, loc); err == nil {
			end = d
		} else if t, err := time.Parse(time.RFC3339, form.To); err == nil {
			end = t.In(loc)
		}
		form.From = end.AddDate(0, 0, -(dashboardDays - 1)).Format(dayLayout)
	}
	get := func(name string) string {
		switch name {
		case "from":
			return form.From
		case "to":
			return form.To
		case "groupBy":
			return "day" // the dashboard always draws the days
		}
		return values.Get(name)
	}
	q, problems := ParseQueryIn(get, now, loc)
	var view *dashboardView
	if len(problems) == 0 {
		f, err := h.Service.Funnel(r.Context(), q)
		if err != nil {
			h.Logger.ErrorContext(r.Context(), "pcm dashboard", "err", err)
			h.message(w, r, http.StatusInternalServerError, dashboardMessage{Title: "Painel indisponível",
				Text: "Não foi possível ler os números agora. Tente de novo em instantes."})
			return
		}
		view = newDashboardView(f, h.Floor, loc)
		view.Period, view.DefaultPeriod = period(q.From, q.To, loc), defaulted
	} else {
		view = &dashboardView{}
		for _, p := range problems {
			view.Problems = append(view.Problems, problemText(p))
		}
	}
	view.Form = form
	view.PlatformChoices, view.OSChoices = formOptions()
	h.pageHeaders(w)
	status := http.StatusOK
	if len(problems) > 0 {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	if err := h.Pages.ExecuteTemplate(w, "pcm_dashboard", view); err != nil {
		h.Logger.ErrorContext(r.Context(), "render pcm dashboard", "err", err)
	}
}
