package httpx

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCheckJSON(t *testing.T) {
	for _, tc := range []struct {
		body  string
		field string // "" for clean
	}{
		{`{"a":"b","c":[1,"x"],"d":{"e":null}}`, ""},
		{`{"a":"caf\u00e9 ☕"}`, ""},
		{`{"a":"\\u0000"}`, ""}, // a backslash, then the text u0000
		{`{"a":"\\\u0000"}`, "a"},
		{`{"a":"x\u0000y"}`, "a"},
		{`{"a":{"b":"\u0000"}}`, "a.b"},
		{`{"a":[ "ok", "\u0000" ]}`, "a[1]"},
		{`[{"x":1},{"device":{"os":"\u0000"}}]`, "[1].device.os"},
		{"{\"a\":\"\xff\"}", "a"},
		{"{\"k\xff\":1}", "k\uFFFD"},
		{`"\u0000"`, "body"},
		{"{\"a\":\"\x00\"}", "body"}, // a raw NUL is not JSON at all
		{"\xff", "body"},
		{`{"a":1,"b":"\u0000"`, "b"}, // cut short after the bad string
	} {
		err := CheckJSON([]byte(tc.body))
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("CheckJSON(%q) = %v, want clean", tc.body, err)
		case tc.field != "" && (err == nil || err.Status != http.StatusBadRequest || len(err.Fields) != 1 || err.Fields[0].Field != tc.field):
			t.Errorf("CheckJSON(%q) = %+v, want a 400 naming %q", tc.body, err, tc.field)
		}
	}
}

func TestCheckJWS(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	h := enc(`{"alg":"PS256"}`)
	for body, bad := range map[string]bool{
		h + "." + enc(`{"data":{"name":"ok"}}`) + ".sig":       false,
		h + "." + enc(`{"data":{"name":"a\u0000b"}}`) + ".sig": true,
		h + "." + enc("{\"data\":\"\xff\"}") + ".sig":          true,
		"www.example.com": false, // not a JWS: "example" decodes to binary
		"not a jws":       false,
	} {
		if got := CheckJWS([]byte(body)) != nil; got != bad {
			t.Errorf("CheckJWS(%q) refused = %v, want %v", body, got, bad)
		}
	}
}

// TestTextReader checks the streaming check at every split of the input, so
// a rune or an escape cut between two reads is still caught.
func TestTextReader(t *testing.T) {
	for in, bad := range map[string]bool{
		`{"a":"café ☕ \\u0000"}`: false,
		`{"a":"x\u0000"}`:        true,
		`{"a":"\\\u0000"}`:       true,
		"{\"a\":\"\xe2\x98\"}":   true, // a cut rune at the end
		"ok\x00":                 true,
		"\xff":                   true,
	} {
		for split := 0; split <= len(in); split++ {
			r := &textReader{r: io.MultiReader(&oneRead{[]byte(in[:split])}, &oneRead{[]byte(in[split:])})}
			_, err := io.ReadAll(r)
			if got := errors.Is(err, ErrBadText); got != bad {
				t.Errorf("textReader(%q split at %d) refused = %v (%v), want %v", in, split, got, err, bad)
			}
		}
	}
}

// oneRead returns its bytes in one Read, then EOF.
type oneRead struct{ b []byte }

func (o *oneRead) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, o.b)
	o.b = o.b[n:]
	return n, nil
}

type recordingWriter struct{ name string }

func (f recordingWriter) WriteError(w http.ResponseWriter, r *http.Request, e *Error) {
	WriteJSON(w, r, e.Status, map[string]any{"family": f.name, "field": e.Fields[0].Field})
}

func TestGuard(t *testing.T) {
	mux := http.NewServeMux()
	var reached []byte
	ok := func(w http.ResponseWriter, r *http.Request) {
		reached, _ = io.ReadAll(r.Body)
		if err := r.ParseForm(); err == nil && r.PostForm.Get("k") != "" {
			reached = []byte(r.PostForm.Get("k"))
		}
		w.WriteHeader(http.StatusNoContent)
	}
	mux.HandleFunc("GET /keys/{id}/x", ok)
	mux.HandleFunc("POST /keys/{id}/x", ok)
	mux.HandleFunc("POST /pages/form", ok)
	h := Guard{Mux: mux, Families: []Family{{"/keys/", recordingWriter{"keys"}}, {"/pages/", recordingWriter{"pages"}}},
		Fallback: recordingWriter{"fallback"}, Headers: []string{"idempotencyKey"}}.Handler()
	bigClean := `{"a":"` + strings.Repeat("x", MaxBody) + `"}`
	for _, tc := range []struct {
		name, method, target, ctype, body string
		header                            [2]string
		basic                             [2]string
		family, field                     string // "" when the request passes
	}{
		{name: "clean", method: "GET", target: "/keys/abc/x?q=1"},
		{name: "path param", method: "GET", target: "/keys/a%00b/x", family: "keys", field: "id"},
		{name: "path 0xFF", method: "GET", target: "/keys/a%FFb/x", family: "keys", field: "id"},
		{name: "query value", method: "GET", target: "/keys/a/x?subscriptionId=a%00b", family: "keys", field: "subscriptionId"},
		{name: "query key", method: "GET", target: "/keys/a/x?a%FF=1", family: "keys", field: "a\uFFFD"},
		{name: "read header", method: "GET", target: "/keys/a/x", header: [2]string{"idempotencyKey", "a\xffb"}, family: "keys", field: "idempotencyKey"},
		{name: "unread header", method: "GET", target: "/keys/a/x", header: [2]string{"X-Other", "a\xffb"}},
		{name: "basic auth", method: "GET", target: "/keys/a/x", basic: [2]string{"a%00b", "s"}, family: "keys", field: "Authorization"},
		{name: "json", method: "POST", target: "/keys/a/x", ctype: "application/json", body: `{"clientId":"a\u0000b"}`, family: "keys", field: "clientId"},
		{name: "json without type", method: "POST", target: "/keys/a/x", body: "{\"clientId\":\"\xff\"}", family: "keys", field: "clientId"},
		{name: "json clean", method: "POST", target: "/keys/a/x", ctype: "application/json", body: `{"clientId":"ok"}`},
		{name: "form", method: "POST", target: "/pages/form", ctype: "application/x-www-form-urlencoded", body: "k=a%00b", family: "pages", field: "k"},
		{name: "form clean", method: "POST", target: "/pages/form", ctype: "application/x-www-form-urlencoded", body: "k=v"},
		{name: "multipart", method: "POST", target: "/pages/form", ctype: "multipart/form-data; boundary=XX",
			body: "--XX\r\nContent-Disposition: form-data; name=\"client_id\"\r\n\r\na\x00b\r\n--XX--\r\n", family: "pages", field: "client_id"},
		{name: "other type", method: "POST", target: "/keys/a/x", ctype: "application/octet-stream", body: "\x00\xff"},
		{name: "big clean body", method: "POST", target: "/keys/a/x", ctype: "application/json", body: bigClean},
		{name: "no route", method: "GET", target: "/nowhere/%00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached = nil
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.body == "" {
				req.Body = http.NoBody
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.header[0] != "" {
				req.Header.Set(tc.header[0], tc.header[1])
			}
			if tc.basic[0] != "" {
				req.SetBasicAuth(tc.basic[0], tc.basic[1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if tc.family == "" {
				if rec.Code == http.StatusBadRequest {
					t.Fatalf("refused: %s", rec.Body)
				}
				if tc.body != "" && !bytes.Equal(reached, []byte(tc.body)) && string(reached) != "v" {
					t.Fatalf("the handler read %d bytes, want the body unchanged (%d bytes)", len(reached), len(tc.body))
				}
				return
			}
			var got struct{ Family, Field string }
			if rec.Code != http.StatusBadRequest || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.Family != tc.family || got.Field != tc.field {
				t.Fatalf("got %d %s, want a 400 from %s naming %q", rec.Code, rec.Body, tc.family, tc.field)
			}
			if reached != nil {
				t.Fatal("the handler ran")
			}
			if req.Pattern == "" {
				t.Error("the refusal has no route pattern for the access log")
			}
		})
	}
}

// TestGuardSignedFormValue: a request object or client assertion in a form
// is checked by its claims.
func TestGuardSignedFormValue(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/par", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	h := Guard{Mux: mux, Fallback: OAuth{}}.Handler()
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	jws := enc(`{"alg":"PS256"}`) + "." + enc(`{"iss":"a\u0000b"}`) + ".c2ln"
	req := httptest.NewRequest("POST", "/oauth/par", strings.NewReader(url.Values{"request": {jws}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var got struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if rec.Code != http.StatusBadRequest || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.Error != "invalid_request" ||
		got.ErrorDescription != "request "+BadTextMessage || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}

// TestClientGoneIsNotAServerError: a request whose client hung up is counted
// and logged as 499 at INFO, and the errors its handler logs because of the
// hang-up are INFO too; a panic keeps its level.
func TestClientGoneIsNotAServerError(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(LogHandler{slog.NewJSONHandler(&logs, nil)})
	reg := prometheus.NewRegistry()
	h := Correlate(Observe(logger, NewMetrics(reg), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // the client is gone
		logger.ErrorContext(r.Context(), "store failed", "err", r.Context().Err())
		logger.ErrorContext(r.Context(), "a panic", "panic", "x")
		w.WriteHeader(http.StatusInternalServerError)
	})))
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	cancel()
	h.ServeHTTP(httptest.NewRecorder(), req)
	levels := map[string]string{}
	var access map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		levels[m["msg"].(string)] = m["level"].(string)
		if m["msg"] == "request" {
			access = m
		}
	}
	if levels["store failed"] != "INFO" || levels["a panic"] != "ERROR" || access["status"] != float64(499) || access["level"] != "INFO" {
		t.Fatalf("levels %v, access %v", levels, access)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "ponte_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "status" {
					counted[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if len(counted) != 1 || counted["499"] != 1 {
		t.Fatalf("requests counted by status: %v, want one 499", counted)
	}
}

// TestGuardLargeBody: past MaxBody (only the data import takes more) the
// body is checked as the handler reads it, and bad text fails the read.
func TestGuardLargeBody(t *testing.T) {
	mux := http.NewServeMux()
	var readErr error
	mux.HandleFunc("POST /import", func(w http.ResponseWriter, r *http.Request) {
		_, readErr = io.ReadAll(r.Body)
	})
	h := Guard{Mux: mux, Fallback: Bankly{}}.Handler()
	for tail, want := range map[string]error{`"}`: nil, `\u0000"}`: ErrBadText, "\xff\"}": ErrBadText} {
		req := httptest.NewRequest("POST", "/import", strings.NewReader(`{"a":"`+strings.Repeat("x", 2*MaxBody)+tail))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(httptest.NewRecorder(), req)
		if !errors.Is(readErr, want) && readErr != want {
			t.Errorf("tail %q: read error %v, want %v", tail, readErr, want)
		}
	}
}
