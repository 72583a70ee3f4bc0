package pcm_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/web"
)

// TestDashboardPagesInPortuguese: the dashboard's refusals and its filter
// errors are Portuguese pages for people, while the funnel API answers the
// same bad filters with its English contract texts.
func TestDashboardPagesInPortuguese(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		svc := &pcm.Service{DB: db, Clock: clock.NewFake(day0), Recorder: &pcm.Recorder{Clock: clock.NewFake(day0)}}
		h := &pcm.Handler{Service: svc, AdminToken: "s3cret", Pages: web.Templates(), Logger: slog.New(slog.DiscardHandler)}
		off := &pcm.Handler{Service: svc, Pages: web.Templates(), Logger: slog.New(slog.DiscardHandler)}
		cases := []struct {
			name    string
			h       *pcm.Handler
			path    string
			auth    string
			status  int
			want    []string
			notWant []string
		}{
			{"off", off, "/admin/pcm", "", 404, []string{`<html lang="pt-BR">`, "<h1>Painel desligado</h1>", "--admin-token ou PONTE_ADMIN_TOKEN"}, nil},
			{"no credential", h, "/admin/pcm", "", 401, []string{"<h1>Acesso restrito</h1>"}, []string{"credential is required"}},
			{"wrong credential", h, "/admin/pcm", "Bearer nope", 401, []string{"<h1>Acesso restrito</h1>"}, nil},
			{"bad filters", h, "/admin/pcm?from=2024-10-20&to=2024-10-01&platform=TV&brand=" + strings.Repeat("b", 101), "Bearer s3cret", 400,
				[]string{"A data em “De” não pode ser depois da data em “Até”.", "“Plataforma” tem um valor que não existe", "“Marca (id)” pode ter no máximo 100 caracteres."},
				[]string{"must be", "must not"}},
			{"api keeps its texts", h, "/api/journey/v1/funnel?from=2024-10-20&to=2024-10-01&platform=TV", "Bearer s3cret", 400,
				[]string{"must be before to", "must be one of BROWSER, APP"}, []string{"não"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				mux := http.NewServeMux()
				c.h.Register(mux)
				r := httptest.NewRequest("GET", c.path, nil)
				if c.auth != "" {
					r.Header.Set("Authorization", c.auth)
				}
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, r)
				body := w.Body.String()
				if w.Code != c.status {
					t.Errorf("status %d, want %d: %s", w.Code, c.status, body)
				}
				for _, s := range c.want {
					if !strings.Contains(body, s) {
						t.Errorf("body without %q:\n%s", s, body)
					}
				}
				for _, s := range c.notWant {
					if strings.Contains(body, s) {
						t.Errorf("body with %q:\n%s", s, body)
					}
				}
			})
		}
	})
}
