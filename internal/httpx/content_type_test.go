package httpx

import (
	"encoding/json"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestErrorContentTypes: every family's errors, and the last-resort 500s met
// while answering, are labelled for what they are: JSON bodies as JSON (never
// text/plain, as http.Error would), pages as HTML.
func TestErrorContentTypes(t *testing.T) {
	const jsonType, htmlType = "application/json; charset=utf-8", "text/html; charset=utf-8"
	pages := template.Must(template.New("ticket_error").Parse(`<h1>{{.Title}}</h1><p>{{.Message}}</p>`))
	notFound := &Error{Status: http.StatusNotFound, Message: "Card Not Found", Code: "002"}
	invalid := &Error{Status: http.StatusBadRequest, Message: "invalid", Fields: []FieldError{{"a", "is required"}, {"b", "is bad"}}}
	logger := slog.New(slog.DiscardHandler)
	observed := func(h http.HandlerFunc) http.Handler {
		return Observe(logger, NewMetrics(prometheus.NewRegistry()), h)
	}
	cases := []struct {
		name    string
		handler http.Handler
		status  int
		ctype   string
		nosniff bool // http.Error's X-Content-Type-Options, kept where it was used
	}{
		{"Bankly", writeWith(Bankly{}, notFound), 404, jsonType, false},
		{"Bankly validation", writeWith(Bankly{}, invalid), 400, jsonType, false},
		{"Open Finance / Brick", writeWith(OpenFinance{}, invalid), 400, jsonType, false},
		{"OAuth", writeWith(OAuth{}, &Error{Status: http.StatusUnauthorized, Message: "bad client"}), 401, jsonType, false},
		{"page", writeWith(Page{Pages: pages}, &Error{Status: http.StatusBadRequest}), 400, htmlType, true},
		{"unencodable answer", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			WriteJSON(w, r, http.StatusOK, map[string]float64{"x": math.Inf(1)})
		}), 500, jsonType, true},
		{"panic caught by Observe", observed(func(http.ResponseWriter, *http.Request) { panic("boom") }), 500, jsonType, true},
		{"panic caught by Recover", Recover(Bankly{}, logger, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			panic("boom")
		})), 500, jsonType, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.handler.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
			if got := rec.Header().Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); tc.nosniff && got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if tc.ctype == jsonType && !json.Valid(rec.Body.Bytes()) {
				t.Errorf("body is not JSON: %q", rec.Body.String())
			}
		})
	}
}

func writeWith(errs ErrorWriter, e *Error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { errs.WriteError(w, r, e) })
}
