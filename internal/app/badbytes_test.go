package app_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// badValues are the texts PostgreSQL cannot store: a NUL and an invalid
// UTF-8 byte. (HTTP clients cannot send a NUL in a header; net/http refuses
// one on its own.)
var badValues = []struct {
	name   string
	raw    string // as the handler would see it
	json   string // how it is written inside a JSON string
	header bool   // sendable in a header
}{
	{"NUL", "a\x00b", `a\u0000b`, false},
	{"0xFF", "a\xffb", "a\xffb", true},
}

// badCase is one request with bad text in one input.
type badCase struct {
	name, method, tmpl, path, query, contentType string
	header                                       http.Header
	body                                         []byte
	field                                        string // what the refusal names
}

// TestBadTextEveryRoute walks every operation of api/openapi.yaml and puts a
// NUL or an invalid UTF-8 byte in each of its inputs in turn — path and query
// parameters, header parameters, every string of the JSON body (inside the
// claims of a signed body too) and every form field — on each database
// engine: each is a 400 in the route's family shape naming the input, never
// a 5xx, and nothing is logged at ERROR.
func TestBadTextEveryRoute(t *testing.T) {
	t.Parallel()
	doc := apptest.LoadContract(t).Doc
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			// A valid token, so that nothing stops a bad value before the
			// store but the refusal under test.
			auth := "Bearer " + s.Token(t, "")
			var cases []badCase
			for _, path := range doc.Paths.InMatchingOrder() {
				item := doc.Paths.Value(path)
				for method, op := range item.Operations() {
					cases = append(cases, badCases(t, path, method, append(item.Parameters, op.Parameters...), op)...)
				}
			}
			if len(cases) < 200 {
				t.Fatalf("only %d cases: the walk missed the contract", len(cases))
			}
			routes := map[string]bool{}
			for _, c := range cases {
				routes[c.method+" "+c.tmpl] = true
				req, err := http.NewRequest(c.method, s.URL+c.path+c.query, bytes.NewReader(c.body))
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				req.Header = c.header.Clone()
				if req.Header.Get("Authorization") == "" {
					req.Header.Set("Authorization", auth)
				}
				if c.contentType != "" {
					req.Header.Set("Content-Type", c.contentType)
				}
				// s.Client checks every answer against api/openapi.yaml too.
				resp, err := s.Client.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					t.Errorf("%s: %d %s", c.name, resp.StatusCode, body)
					continue
				}
				if err := refusedByFamily(c, resp, body); err != nil {
					t.Errorf("%s: %v\n%d %.400s", c.name, err, resp.StatusCode, body)
				}
			}
			t.Logf("%d requests over %d operations", len(cases), len(routes))
			for _, line := range s.Logs.Lines() {
				if line["level"] == "ERROR" {
					t.Errorf("logged at ERROR: %v", line)
				}
			}
		})
	}
}

// refusedByFamily checks the 400 is in the shape of the path's API family
// and names the input.
func refusedByFamily(c badCase, resp *http.Response, body []byte) error {
	if resp.StatusCode != http.StatusBadRequest {
		return fmt.Errorf("status %d, want 400", resp.StatusCode)
	}
	want := c.field + " " + httpx.BadTextMessage
	var v struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Message     string `json:"message"`
		Errors      []struct {
			Code, Message, PropertyName, Title, Detail string
		} `json:"errors"`
		Meta struct {
			RequestDateTime string `json:"requestDateTime"`
		} `json:"meta"`
	}
	family := familyOf(c.path)
	if c.method == http.MethodHead {
		return nil // no body to check
	}
	if family == "page" {
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "Endereço inválido") ||
			!strings.Contains(string(body), `lang="pt-BR"`) {
			return fmt.Errorf("not the Portuguese error page")
		}
		return nil
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("%s family: body is not JSON: %v", family, err)
	}
	switch family {
	case "oauth":
		if v.Error != "invalid_request" || v.Description != want {
			return fmt.Errorf("want OAuth invalid_request %q", want)
		}
	case "bankly":
		if len(v.Errors) != 1 || v.Errors[0].Code != "INVALID_PARAMETER" || v.Errors[0].PropertyName != c.field || v.Errors[0].Message != want {
			return fmt.Errorf("want Bankly INVALID_PARAMETER on %q", c.field)
		}
	case "brick", "openfinance":
		if len(v.Errors) != 1 || v.Errors[0].Code != "PARAMETRO_INVALIDO" || !strings.Contains(v.Errors[0].Detail, want) || v.Meta.RequestDateTime == "" {
			return fmt.Errorf("want PARAMETRO_INVALIDO naming %q", c.field)
		}
		if family == "openfinance" && resp.Header.Get("x-fapi-interaction-id") == "" {
			return fmt.Errorf("no x-fapi-interaction-id")
		}
	case "openkeys":
		if v.Error != "Validation Error" || v.Message != "Campo '"+c.field+"' inválido" {
			return fmt.Errorf("want Open Keys Validation Error on %q", c.field)
		}
	default:
		return fmt.Errorf("no family for %s", c.path)
	}
	return nil
}

// familyOf is DESIGN.md §3's table of API families by path.
func familyOf(path string) string {
	has := func(prefixes ...string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(path, p) {
				return true
			}
		}
		return false
	}
	switch {
	case has("/oauth/", "/.well-known/", "/register"):
		return "oauth"
	case has("/openfinance/consent-flow/webview", "/openfinance/consent-flow/my-sharing", "/journey/", "/admin/pcm", "/sandbox/partner-app?", "/sandbox/done"),
		path == "/sandbox/partner-app":
		return "page"
	case has("/openfinance/", "/cards-pci/", "/admin/v1/cards", "/admin/v1/directory/", "/webhooks/", "/sandbox/"):
		return "bankly"
	case has("/api/", "/admin/v1/customers/", "/admin/v1/settlements/"):
		return "brick"
	case has("/open-banking/"):
		return "openfinance"
	case has("/open-keys/"):
		return "openkeys"
	}
	return ""
}

// badCases lists the requests of one operation with bad text in one input.
func badCases(t *testing.T, pathTmpl, method string, params openapi3.Parameters, op *openapi3.Operation) []badCase {
	var out []badCase
	type param struct{ name, in string }
	var ps []param
	for _, p := range params {
		if p.Value != nil && p.Value.Name != httpx.CorrelationHeader {
			ps = append(ps, param{p.Value.Name, p.Value.In})
		}
	}
	path := func(bad, value string) string {
		p := pathTmpl
		for _, q := range ps {
			if q.in == "path" {
				v := "abc"
				if q.name == bad {
					v = value
				}
				p = strings.ReplaceAll(p, "{"+q.name+"}", url.PathEscape(v))
			}
		}
		return p
	}
	good := path("", "")
	for _, bv := range badValues {
		for _, p := range ps {
			c := badCase{name: fmt.Sprintf("%s %s %s %s %s", method, pathTmpl, p.in, p.name, bv.name), method: method,
				tmpl: pathTmpl, path: good, header: http.Header{}, field: p.name}
			switch p.in {
			case "path":
				c.path = path(p.name, bv.raw)
			case "query":
				c.query = "?" + url.Values{p.name: {bv.raw}}.Encode()
			case "header":
				if !bv.header {
					continue
				}
				c.header[http.CanonicalHeaderKey(p.name)] = []string{bv.raw}
				if strings.EqualFold(p.name, "Authorization") {
					c.field = "Authorization"
				}
			default:
				continue
			}
			out = append(out, c)
		}
		if op.RequestBody == nil || op.RequestBody.Value == nil {
			continue
		}
		for ctype, mt := range op.RequestBody.Value.Content {
			if mt.Schema == nil || mt.Schema.Value == nil {
				continue
			}
			switch ctype {
			case "application/json":
				var leaves []string
				tree := sample(mt.Schema.Value, "", &leaves, 0)
				for _, leaf := range leaves {
					out = append(out, badCase{name: fmt.Sprintf("%s %s json %s %s", method, pathTmpl, leaf, bv.name), method: method,
						tmpl: pathTmpl, path: good, header: http.Header{}, contentType: ctype, body: withBad(t, tree, leaf, bv.json), field: leaf})
				}
				// A signed body carries the same data in its claims.
				if _, signed := op.RequestBody.Value.Content["application/jwt"]; signed {
					for _, leaf := range leaves {
						out = append(out, badCase{name: fmt.Sprintf("%s %s jwt %s %s", method, pathTmpl, leaf, bv.name), method: method,
							path: good, header: http.Header{}, contentType: "application/jwt", body: jws(withBad(t, tree, leaf, bv.json)), field: leaf})
					}
				}
			case "application/x-www-form-urlencoded":
				var names []string
				for name := range mt.Schema.Value.Properties {
					names = append(names, name)
				}
				sort.Strings(names)
				for _, bad := range names {
					// Plausible values around the bad one (grant_type
					// client_credentials), so it travels as far as it can.
					form := url.Values{}
					for _, n := range names {
						form.Set(n, "x")
						if p := mt.Schema.Value.Properties[n].Value; p != nil && len(p.Enum) > 0 {
							form.Set(n, fmt.Sprint(p.Enum[0]))
						}
					}
					form.Set(bad, bv.raw)
					out = append(out, badCase{name: fmt.Sprintf("%s %s form %s %s", method, pathTmpl, bad, bv.name), method: method,
						tmpl: pathTmpl, path: good, header: http.Header{}, contentType: ctype, body: []byte(form.Encode()), field: bad})
				}
			}
		}
	}
	return out
}

const placeholder = "\x01BAD\x01"

// sample builds a value for schema, recording the path of every string in
// leaves ("data.creditor.name", "items[0]").
func sample(s *openapi3.Schema, at string, leaves *[]string, depth int) any {
	if depth > 8 {
		return nil
	}
	if len(s.AllOf) > 0 {
		merged := map[string]any{}
		for _, sub := range s.AllOf {
			if m, ok := sample(sub.Value, at, leaves, depth+1).(map[string]any); ok {
				for k, v := range m {
					merged[k] = v
				}
			}
		}
		return merged
	}
	for _, alt := range [][]*openapi3.SchemaRef{s.OneOf, s.AnyOf} {
		if len(alt) > 0 {
			return sample(alt[0].Value, at, leaves, depth+1)
		}
	}
	join := func(name string) string {
		if at == "" {
			return name
		}
		return at + "." + name
	}
	switch {
	case s.Type.Is("object") || len(s.Properties) > 0:
		m := map[string]any{}
		for name, p := range s.Properties {
			m[name] = sample(p.Value, join(name), leaves, depth+1)
		}
		return m
	case s.Type.Is("array"):
		if s.Items == nil {
			return []any{}
		}
		idx := at + "[0]"
		if at == "" {
			idx = "[0]"
		}
		return []any{sample(s.Items.Value, idx, leaves, depth+1)}
	case s.Type.Is("string"):
		*leaves = append(*leaves, at)
		if len(s.Enum) > 0 {
			return s.Enum[0]
		}
		return "x"
	case s.Type.Is("integer"), s.Type.Is("number"):
		return 1
	case s.Type.Is("boolean"):
		return true
	}
	return nil
}

// withBad encodes tree with the string at leaf replaced by bad (JSON text).
func withBad(t *testing.T, tree any, leaf, bad string) []byte {
	t.Helper()
	b, err := json.Marshal(set(tree, leaf, placeholder))
	if err != nil {
		t.Fatal(err)
	}
	// Marshal escapes the placeholder's control bytes; bad goes in verbatim
	// (an invalid UTF-8 byte would be turned into U+FFFD by Marshal).
	return bytes.Replace(b, []byte(`\u0001BAD\u0001`), []byte(bad), 1)
}

// set returns a copy of tree with the value at path replaced.
func set(tree any, path, v string) any {
	if path == "" {
		return v
	}
	switch n := tree.(type) {
	case map[string]any:
		head, rest := path, ""
		if i := strings.IndexAny(path, ".["); i >= 0 {
			head, rest = path[:i], strings.TrimPrefix(path[i:], ".")
		}
		out := map[string]any{}
		for k, val := range n {
			out[k] = val
		}
		out[head] = set(n[head], rest, v)
		return out
	case []any:
		rest := strings.TrimPrefix(strings.TrimPrefix(path, "[0]"), ".")
		return []any{set(n[0], rest, v)}
	}
	return v
}

// jws wraps claims in a compact JWS; the signature does not matter, the
// refusal comes first.
func jws(claims []byte) []byte {
	enc := base64.RawURLEncoding.EncodeToString
	return []byte(enc([]byte(`{"alg":"PS256","typ":"JWT","kid":"k1"}`)) + "." + enc(claims) + "." + enc([]byte("sig")))
}
