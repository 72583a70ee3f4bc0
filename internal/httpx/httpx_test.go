package httpx

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

type sample struct {
	Name    string `json:"name" required:"true"`
	Count   int    `json:"count"`
	Flag    *bool  `json:"flag" required:"true"`
	Address struct {
		ZipCode string `json:"zipCode" required:"true"`
		City    string `json:"city"`
	} `json:"address" required:"true"`
}

func TestDecodeObject(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		fields []FieldError
	}{
		{"valid", `{"name":"a","count":2,"flag":false,"address":{"zipCode":"05402100"}}`, nil},
		{"every field wrong", `{"name":1,"count":"x","flag":"yes","address":{"zipCode":5,"city":[]}}`, []FieldError{
			{"name", "must be a string"}, {"count", "must be an integer"}, {"flag", "must be a boolean"},
			{"address.zipCode", "must be a string"}, {"address.city", "must be a string"}}},
		{"missing and null", `{"count":1,"flag":null}`, []FieldError{
			{"name", "is required"}, {"flag", "is required"}, {"address", "is required"}}},
		{"nested not object", `{"name":"a","flag":true,"address":"x"}`, []FieldError{{"address", "must be a JSON object"}}},
		{"fraction for integer", `{"name":"a","count":1.5,"flag":true,"address":{"zipCode":"1"}}`, []FieldError{{"count", "must be an integer"}}},
		{"array body", `[1]`, []FieldError{{"body", "must be a JSON object"}}},
		{"null body", `null`, []FieldError{{"body", "must be a JSON object"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s sample
			err := DecodeObject([]byte(tt.body), &s)
			var got []FieldError
			if err != nil {
				if err.Status != http.StatusBadRequest {
					t.Errorf("status %d", err.Status)
				}
				got = err.Fields
			}
			if diff := cmp.Diff(tt.fields, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{``, `{`, `{"name":"a"} x`, `{"name":"a",}`} {
		var s sample
		if err := DecodeObject([]byte(bad), &s); err == nil || len(err.Fields) != 1 || err.Fields[0].Field != "body" {
			t.Errorf("DecodeObject(%q) = %v, want one body error", bad, err)
		}
	}
}

// FuzzDecodeObject: any input decodes or yields a 400 naming fields; never a panic.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{"name":"a","flag":true,"address":{"zipCode":"1"}}`, `{}`, `[]`, `{"address":{"zipCode":{}}}`, "\x00", `{"name":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s sample
		err := DecodeObject(b, &s)
		if err == nil {
			if !json.Valid(b) || s.Flag == nil {
				t.Fatalf("accepted %q without its required fields", b)
			}
			return
		}
		if err.Status != http.StatusBadRequest || len(err.Fields) == 0 {
			t.Fatalf("error %+v for %q", err, b)
		}
	})
}

func TestCorrelationIDAndLogs(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(LogHandler{slog.NewJSONHandler(&logs, nil)})
	h := Correlate(Observe(logger, NewMetrics(prometheus.NewRegistry()), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "inside handler")
		w.WriteHeader(http.StatusNoContent)
	})))
	srv := httptest.NewServer(h)
	defer srv.Close()
	do := func(id string) string {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if id != "" {
			req.Header.Set(CorrelationHeader, id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get(CorrelationHeader)
	}
	if got := do("abc-123"); got != "abc-123" {
		t.Errorf("echo: %q", got)
	}
	gen := do("")
	if len(gen) != 36 {
		t.Errorf("generated id %q is not a UUID", gen)
	}
	if got := do(strings.Repeat("x", 129)); got == strings.Repeat("x", 129) || len(got) != 36 {
		t.Errorf("over-long id kept: %q", got)
	}
	if got := do("bad id"); got == "bad id" {
		t.Errorf("id with a space kept")
	}
	// Every line of a request carries its id: the handler's and the access log's.
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		id, _ := m["correlation_id"].(string)
		if id == "" {
			t.Errorf("log line without correlation_id: %s", line)
		}
		counts[id]++
	}
	if counts["abc-123"] != 2 || counts[gen] != 2 {
		t.Errorf("log lines per id: %v", counts)
	}
}

func TestRecoverKeepsServing(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(LogHandler{slog.NewJSONHandler(&logs, nil)})
	mux := http.NewServeMux()
	mux.Handle("GET /boom", Recover(Bankly{}, logger, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret internal detail: db password hunter2")
	})))
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(Correlate(Observe(logger, NewMetrics(reg), mux)))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/boom", nil)
	req.Header.Set(CorrelationHeader, "panic-corr-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || strings.Contains(string(body), "hunter2") || strings.Contains(string(body), "panic") {
		t.Errorf("panic response: %d %s", resp.StatusCode, body)
	}
	if !json.Valid(body) || !strings.Contains(string(body), "INTERNAL_SERVER_ERROR") {
		t.Errorf("panic body not in the Bankly shape: %s", body)
	}
	if !strings.Contains(logs.String(), `"correlation_id":"panic-corr-1"`) || !strings.Contains(logs.String(), "panic serving request") {
		t.Errorf("panic not logged with its correlation id: %s", logs.String())
	}
	resp, err = http.Get(srv.URL + "/ok")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("server stopped serving after a panic: %v", err)
	}
	resp.Body.Close()
	// Unwrapped handlers are caught by Observe too.
	mux.HandleFunc("GET /raw", func(http.ResponseWriter, *http.Request) { panic("raw") })
	resp, err = http.Get(srv.URL + "/raw")
	if err != nil || resp.StatusCode != 500 {
		t.Fatalf("raw panic: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestMergeKeepsFirstErrorPerField(t *testing.T) {
	e := &Error{Status: 400, Fields: []FieldError{{"a", "must be a string"}}}
	got := e.Merge([]FieldError{{"a", "must not be empty"}, {"b", "is bad"}})
	want := []FieldError{{"a", "must be a string"}, {"b", "is bad"}}
	if diff := cmp.Diff(want, got.Fields); diff != "" {
		t.Error(diff)
	}
	body := &Error{Status: 400, Fields: []FieldError{{"body", "is not valid JSON"}}}
	if got := body.Merge([]FieldError{{"b", "x"}}); len(got.Fields) != 1 {
		t.Errorf("merged rule errors into a malformed-body error")
	}
}

func TestOpenFinanceErrors(t *testing.T) {
	at := time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)
	cases := []struct {
		name string
		err  *Error
		want string
	}{
		{"fields", &Error{Status: 400, Message: "invalid", Fields: []FieldError{{"device.os", "must be one of X"}, {"accessToken", "must be a JWT"}}},
			`{"errors":[{"code":"PARAMETRO_INVALIDO","title":"Bad Request","detail":"device.os must be one of X"},{"code":"PARAMETRO_INVALIDO","title":"Bad Request","detail":"accessToken must be a JWT"}],"meta":{"requestDateTime":"2024-10-15T18:55:15Z"}}`},
		{"code", &Error{Status: 409, Code: "LOGIN_REQUIRED", Message: "login first"},
			`{"errors":[{"code":"LOGIN_REQUIRED","title":"Conflict","detail":"login first"}],"meta":{"requestDateTime":"2024-10-15T18:55:15Z"}}`},
		{"default", &Error{Status: 418, Message: "x"},
			`{"errors":[{"code":"I'M_A_TEAPOT","title":"I'm a teapot","detail":"x"}],"meta":{"requestDateTime":"2024-10-15T18:55:15Z"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			OpenFinance{Now: func() time.Time { return at }}.WriteError(rec, httptest.NewRequest("GET", "/", nil), c.err)
			if rec.Code != c.err.Status || strings.TrimSpace(rec.Body.String()) != c.want {
				t.Errorf("got %d %s\nwant %s", rec.Code, rec.Body, c.want)
			}
		})
	}
}
