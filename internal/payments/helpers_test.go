package payments_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/officialspec"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// officialSpec loads the official Payments 4.0.0 specification through
// PONTE_SPECS_DIR, or returns nil when it is unset. Its document-wide Validate
// is not called: the x-idempotency-key parameter's pattern ^(?!\s)(.*)(\S)$
// is an ECMAScript lookahead Go's regexp cannot compile, and no ECMAScript
// engine is a dependency of this module. The schemas the tests check
// (requests, responses, errors) use only patterns Go compiles.
func officialSpec(t testing.TB) *openapi3.T {
	t.Helper()
	return officialspec.Load(t, "payments-4.0.0.yml")
}

// productionSelf stands in for the test server's http://127.0.0.1:port in
// links.self: the specification's LinkSingle pattern requires an https URL
// with a domain name, which a loopback test server cannot have.
const productionSelf = "https://ponte.example.com"

// validateSpec checks body against the named schema of the official specification.
func validateSpec(t testing.TB, s *apptest.Server, schema string, body []byte) {
	t.Helper()
	if s != nil {
		body = []byte(strings.ReplaceAll(string(body), s.URL, productionSelf))
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	doc := officialSpec(t)
	if doc == nil {
		return
	}
	ref := doc.Components.Schemas[schema]
	if ref == nil || ref.Value == nil {
		t.Fatalf("schema %s not in the official specification", schema)
	}
	if err := ref.Value.VisitJSON(v); err != nil {
		t.Errorf("does not match the official schema %s: %v\nbody: %s", schema, err, body)
	}
}

// eachEngine runs fn against a fresh Ponte on every available database.
func eachEngine(t *testing.T, fn func(t *testing.T, s *apptest.Server)) {
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			fn(t, apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)}))
		})
	}
}

// mutate decodes body, applies fn to it and re-encodes it.
func mutate(t testing.TB, body string, fn func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// at walks a path of object keys in m.
func at(m map[string]any, path ...string) map[string]any {
	for _, k := range path {
		m = m[k].(map[string]any)
	}
	return m
}
