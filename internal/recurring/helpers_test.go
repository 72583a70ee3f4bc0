package recurring_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/officialspec"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// officialSpec loads the official Automatic Payments 2.0.0 specification through
// PONTE_SPECS_DIR, or returns nil when it is unset. As for Payments 4.0.0, its
// document-wide Validate is not called (the x-idempotency-key pattern is an
// ECMAScript lookahead Go's regexp cannot compile); the schemas the tests
// check use only patterns Go compiles.
func officialSpec(t testing.TB) *openapi3.T {
	t.Helper()
	return officialspec.Load(t, "automatic-payments-2.0.0.yml")
}

// productionSelf stands in for the loopback test server's URL in links.self.
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

const consentsPath = recurring.ConsentsPath

// The demo customer (CPF 477.426.630-23) sweeping into his own account elsewhere.
const happyBody = `{"data":{
  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
  "creditors":[{"personType":"PESSOA_NATURAL","cpfCnpj":"47742663023","name":"Marco Antonio de Brito"}],
  "expirationDateTime":"2025-10-15T18:55:15Z",
  "additionalInformation":"Transferências Inteligentes",
  "recurringConfiguration":{"sweeping":{
    "totalAllowedAmount":"50000.00","transactionLimit":"1000.00",
    "periodicLimits":{"day":{"quantityLimit":2,"transactionLimit":"1500.00"},"week":{"quantityLimit":10},
      "month":{"transactionLimit":"20000.00"},"year":{"quantityLimit":100,"transactionLimit":"50000.00"}},
    "startDateTime":"2024-10-16T03:00:00Z"}}}}`

// pjBody is a business entity's consent: creditors share its CNPJ root.
const pjBody = `{"data":{
  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
  "businessEntity":{"document":{"identification":"11222333000181","rel":"CNPJ"}},
  "creditors":[{"personType":"PESSOA_JURIDICA","cpfCnpj":"11222333000181","name":"Empresa Matriz"},
    {"personType":"PESSOA_JURIDICA","cpfCnpj":"11222333000262","name":"Empresa Filial"}],
  "debtorAccount":{"ispb":"37241230","issuer":"0001","number":"1234567","accountType":"CACC"},
  "recurringConfiguration":{"sweeping":{}}}}`

const interactionID = "d78fc4e5-37ca-4da3-adf2-9b082bf92280"

func headers(token, key string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + token, "x-fapi-interaction-id": interactionID}
	if key != "" {
		h["x-idempotency-key"] = key
	}
	return h
}

type consentResp struct {
	Data struct {
		RecurringConsentID     string                `json:"recurringConsentId"`
		CreationDateTime       string                `json:"creationDateTime"`
		ExpirationDateTime     string                `json:"expirationDateTime"`
		StatusUpdateDateTime   string                `json:"statusUpdateDateTime"`
		AuthorisedAtDateTime   string                `json:"authorisedAtDateTime"`
		Status                 string                `json:"status"`
		DebtorAccount          map[string]any        `json:"debtorAccount"`
		Rejection              *recurring.Rejection  `json:"rejection"`
		Revocation             *recurring.Revocation `json:"revocation"`
		RecurringConfiguration struct {
			Sweeping map[string]any `json:"sweeping"`
		} `json:"recurringConfiguration"`
	} `json:"data"`
	Links struct {
		Self string `json:"self"`
	} `json:"links"`
}

type errorResp struct {
	Errors []struct {
		Code, Title, Detail string
	} `json:"errors"`
}

func (e errorResp) codes() []string {
	var out []string
	for _, x := range e.Errors {
		out = append(out, x.Code)
	}
	return out
}

func token(t *testing.T, s *apptest.Server) string { return s.Token(t, recurring.Scope) }

// create creates a consent as the demo application (plain JSON), checking
// the request and the answer against the official file.
func create(t *testing.T, s *apptest.Server, body string) consentResp {
	t.Helper()
	validateSpec(t, nil, "CreateRecurringConsent", []byte(body))
	resp := s.Do(t, "POST", consentsPath, headers(token(t, s), uuid.NewString()), body)
	if resp.Status != http.StatusCreated {
		t.Fatalf("create: status %d: %s", resp.Status, resp.Body)
	}
	validateSpec(t, s, "ResponsePostRecurringConsent", resp.Body)
	var c consentResp
	resp.JSON(t, &c)
	return c
}

// get reads a consent with a fresh demo token (tests move the clock past token lifetimes).
func get(t *testing.T, s *apptest.Server, id string) consentResp {
	t.Helper()
	resp := s.Do(t, "GET", consentsPath+"/"+id, headers(token(t, s), ""), "")
	if resp.Status != http.StatusOK {
		t.Fatalf("get: status %d: %s", resp.Status, resp.Body)
	}
	validateSpec(t, s, "ResponseRecurringConsent", resp.Body)
	var c consentResp
	resp.JSON(t, &c)
	return c
}
