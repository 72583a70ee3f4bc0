package app

import (
	"bytes"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/web"
)

// pagesCSP lets Ponte's plain pages load only its own stylesheet and icon.
const pagesCSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// wantsHTML reports whether the client is a person's browser: it asks for
// text/html and not for JSON. API clients (Accept: application/json, */*, or
// nothing) get JSON.
func wantsHTML(r *http.Request) bool {
	accept := strings.ToLower(strings.Join(r.Header.Values("Accept"), ","))
	return strings.Contains(accept, "text/html") && !strings.Contains(accept, "application/json")
}

// site answers what belongs to no API: the home page, paths no route
// serves, the static assets and the authorization errors a person reads.
type site struct {
	pages  *template.Template
	logger *slog.Logger
	clock  clock.Clock
	cfg    config.Config
	// sandbox says the home page is the sandbox's (the demo application exists).
	sandbox bool
}

// homePage is the template's data for "/".
type homePage struct {
	Sandbox bool
}

// root answers "/": a short Portuguese page for people, and for API clients
// the service's JSON description.
func (s *site) root(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Accept")
	if !wantsHTML(r) {
		httpx.WriteJSON(w, r, http.StatusOK, map[string]string{"service": "ponte", "mode": s.cfg.Mode,
			"openapi": s.cfg.PublicURL + "/openapi.yaml"})
		return
	}
	s.renderPage(w, r, http.StatusOK, "home", homePage{Sandbox: s.sandbox})
}

// probeMethods are the methods tried to tell a wrong method (405) from an
// unknown path (404).
var probeMethods = []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions,
	http.MethodPatch, http.MethodPost, http.MethodPut}

// fallback is mux's "/" route: it serves every request no other route
// matches. A path some route serves with another method keeps the mux's 405
// (the "/" route would otherwise hide it); an unknown path gets a
// Portuguese page for people and JSON in the path's API family's error shape
// for API clients.
func (s *site) fallback(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range probeMethods {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 && !slices.Contains(allowed, r.Method) {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			if wantsHTML(r) { // a person who typed or reopened a form's address
				w.Header().Add("Vary", "Accept")
				s.renderPage(w, r, http.StatusMethodNotAllowed, "not_found", nil)
				return
			}
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		s.notFound(w, r)
	}
}

// notFound answers a path no route serves: the Portuguese page for people,
// JSON in the path's API family's error shape for API clients.
func (s *site) notFound(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Accept")
	if wantsHTML(r) {
		s.renderPage(w, r, http.StatusNotFound, "not_found", nil)
		return
	}
	e := &httpx.Error{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: "no route for " + r.Method + " " + r.URL.Path}
	families, fallback := s.families()
	errs := httpx.FamilyOf(families, r.URL.Path, fallback)
	if _, page := errs.(httpx.Page); page {
		errs = fallback // a page's path asked for by an API client: JSON, not the page
	}
	errs.WriteError(w, r, e)
}

// static serves the embedded assets; any other name under /static/ (a
// directory included: no listings) is an unknown path.
func (s *site) static() http.Handler {
	files := web.Static()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !web.StaticFile(strings.TrimPrefix(r.URL.Path, "/static/")) {
			s.notFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// renderAuthorizeError shows a person the authorization errors that cannot
// go back to the initiator (an expired or unknown request_uri, say) as a
// Portuguese page; API clients keep go-oidc's JSON (the error is returned).
func (s *site) renderAuthorizeError(w http.ResponseWriter, r *http.Request, err error) error {
	if !wantsHTML(r) {
		return err
	}
	status := http.StatusBadRequest
	var oerr goidc.Error
	if errors.As(err, &oerr) {
		status = oerr.StatusCode()
	}
	w.Header().Set("Cache-Control", "no-store")
	s.renderPage(w, r, status, "ticket_error", struct{ Title, Message string }{"Pedido de autorização inválido",
		"Este pedido de autorização expirou ou não é válido."})
	return nil
}

// renderPage writes one of Ponte's plain pages (home, not_found).
func (s *site) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.logger.ErrorContext(r.Context(), "render page", "page", name, "err", err)
		http.Error(w, "Falha temporária", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", pagesCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}
