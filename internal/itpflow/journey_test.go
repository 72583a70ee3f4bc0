package itpflow_test

import (
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestHostedCallbackRefusals: the hosted callback (the brand's redirect
// to Ponte, in the query or posted from the fragment) answers a refused
// callback with a page saying why, and changes nothing.
func TestHostedCallbackRefusals(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		pages := template.Must(template.New("ticket_error").Parse(`{{.Title}}: {{.Message}}`))
		handler := &itpflow.JourneyHandler{Flow: h.flow, Pages: pages, Logger: discard(), PublicURL: "https://ponte.example"}
		mux := http.NewServeMux()
		handler.Register(mux)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		noRedirect := *srv.Client()
		noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

		send := func(t *testing.T, method string, cb fapiclient.Callback) (int, string) {
			t.Helper()
			form := url.Values{"state": {cb.State}, "code": {cb.Code}, "id_token": {cb.IDToken}, "error": {cb.Error}}
			var res *http.Response
			var err error
			if method == http.MethodGet {
				res, err = noRedirect.Get(srv.URL + itpflow.CallbackPath + "?" + form.Encode())
			} else {
				res, err = noRedirect.PostForm(srv.URL+itpflow.CallbackPath, form)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		tests := []struct {
			name   string
			forge  func(f *forgery)
			status int
			title  string
		}{
			{"state of no journey", func(f *forgery) { f.cb.State = "nope" }, http.StatusBadRequest, "Retorno inválido"},
			{"id_token of another issuer", func(f *forgery) { f.claims["iss"] = "https://other.example" }, http.StatusBadRequest, "Retorno inválido"},
			{"nonce of another request", func(f *forgery) { f.claims["nonce"] = "n" }, http.StatusBadRequest, "Retorno inválido"},
			{"tampered id_token", func(f *forgery) { f.tamper = true }, http.StatusBadRequest, "Retorno inválido"},
		}
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			for _, tt := range tests {
				t.Run(method+" "+tt.name, func(t *testing.T) {
					a, req := h.start(t, "https://ponte.example"+itpflow.CallbackPath)
					_, f := h.forge(req, tt.forge)
					if status, body := send(t, method, f.cb); status != tt.status || !strings.HasPrefix(body, tt.title+": ") {
						t.Fatalf("answer = %d %q, want %d %q", status, body, tt.status, tt.title)
					}
					if status, steps := h.authorization(t, a.ID); status != itpflow.StatusPending || steps != 1 {
						t.Errorf("after the refused callback: %s with %d steps", status, steps)
					}
				})
			}
		}

		t.Run("a Brick request's callback", func(t *testing.T) {
			// A payment-initiation request completes (its callback is
			// genuine), but the hosted page is not where it ends.
			_, req := h.start(t, "https://ponte.example"+itpflow.CallbackPath)
			genuine := h.genuine(req, h.brand.approve(req))
			if status, body := send(t, http.MethodPost, genuine); status != http.StatusBadRequest || !strings.Contains(body, "outro tipo de autorização") {
				t.Errorf("answer = %d %q", status, body)
			}
			if status, body := send(t, http.MethodPost, genuine); status != http.StatusConflict || !strings.HasPrefix(body, "Jornada já concluída") {
				t.Errorf("replay = %d %q", status, body)
			}
		})

		t.Run("late callback", func(t *testing.T) {
			_, req := h.start(t, "https://ponte.example"+itpflow.CallbackPath)
			late := h.genuine(req, h.brand.approve(req))
			h.clock.Advance(itpflow.Lifetime)
			if status, body := send(t, http.MethodGet, late); status != http.StatusGone || !strings.HasPrefix(body, "Tempo esgotado") {
				t.Errorf("answer = %d %q", status, body)
			}
		})
	})
}
