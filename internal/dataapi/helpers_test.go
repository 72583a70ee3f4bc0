package dataapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/officialspec"
	"github.com/ponte-ofb/ponte/internal/store"
)

// specFiles are the official specifications, by the path prefix of their
// servers; they come through PONTE_SPECS_DIR (package officialspec).
var specFiles = map[string]string{
	"/open-banking/resources/v3": "resources-3.1.0.yml",
	"/open-banking/accounts/v2":  "accounts-2.4.2.yml",
}

// specHost stands in for the test server's host when routing a request in
// an official specification (whose servers are the banks' own).
const specHost = "http://ponte.test"

var (
	specOnce sync.Once
	specAPIs []officialspec.API
)

// officialSpecs loads both specifications once; nil when PONTE_SPECS_DIR is unset.
func officialSpecs(t testing.TB) []officialspec.API {
	t.Helper()
	specOnce.Do(func() { specAPIs = officialspec.Routers(t, specHost, specFiles) })
	return specAPIs
}

// validateExchange checks a request and its response against the official
// specification of its API: the request's parameters and headers, the
// response's status being documented, its body against the documented
// schema, and the x-fapi-interaction-id header.
func validateExchange(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	u, _ := url.Parse(specHost + req.URL.RequestURI())
	r2 := req.Clone(context.Background())
	r2.URL, r2.Host, r2.RequestURI = u, u.Host, ""
	checkInteractionID(t, req, status, header)
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, body)
	}
	apis := officialSpecs(t)
	if apis == nil {
		return
	}
	var api *officialspec.API
	for i := range apis {
		if strings.HasPrefix(req.URL.Path, apis[i].Prefix) {
			api = &apis[i]
		}
	}
	if api == nil {
		t.Fatalf("%s is in no official specification", req.URL.Path)
	}
	route, params, err := api.Router.FindRoute(r2)
	if err != nil {
		t.Fatalf("%s %s: not in the official specification: %v", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: r2, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	// The x-fapi-interaction-id tests send bad headers on purpose.
	if status != http.StatusBadRequest && status != http.StatusUnprocessableEntity {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("request %s does not match the official specification: %v", req.URL, err)
		}
	}
	resp := route.Operation.Responses.Status(status)
	if resp == nil || resp.Value == nil {
		t.Fatalf("%s %s: status %d is not documented", req.Method, route.Path, status)
	}
	var schema *openapi3.Schema
	for _, mt := range resp.Value.Content {
		schema = mt.Schema.Value
	}
	if schema == nil {
		t.Fatalf("%s %s: status %d has no schema", req.Method, route.Path, status)
	}
	if err := schema.VisitJSON(v); err != nil {
		t.Errorf("%s %s → %d does not match the official schema: %v\nbody: %.2000s", req.Method, req.URL, status, err, body)
	}
}

// checkInteractionID checks the response's x-fapi-interaction-id: always
// present, and the request's own unless the request was refused for it.
func checkInteractionID(t testing.TB, req *http.Request, status int, header http.Header) {
	t.Helper()
	if id := header.Get(dataapi.InteractionHeader); id == "" {
		t.Errorf("response without %s", dataapi.InteractionHeader)
	} else if want := req.Header.Get(dataapi.InteractionHeader); status != http.StatusBadRequest && id != want {
		t.Errorf("%s = %q, want the request's %q", dataapi.InteractionHeader, id, want)
	}
}

// memGrants keeps real consent grants in memory: the Consents v3 service's
// stand-in for these tests.
type memGrants struct {
	mu sync.Mutex
	m  map[string]dataapi.Grant
}

func (g *memGrants) Grant(_ context.Context, id string) (*dataapi.Grant, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gr, ok := g.m[id]
	if !ok {
		return nil, dataapi.ErrGrantNotFound
	}
	gr.Permissions, gr.AccountIDs = slices.Clone(gr.Permissions), slices.Clone(gr.AccountIDs)
	return &gr, nil
}

func (g *memGrants) put(gr dataapi.Grant) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.m[gr.ConsentID] = gr
}

func (g *memGrants) update(id string, fn func(*dataapi.Grant)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gr := g.m[id]
	fn(&gr)
	g.m[id] = gr
}

// memTokens are the authorization server's introspection results for the
// tokens the tests use.
type memTokens struct {
	mu sync.Mutex
	m  map[string]dataapi.Token
}

func (v *memTokens) VerifyToken(_ context.Context, raw string) (*dataapi.Token, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t, ok := v.m[raw]
	if !ok {
		return nil, dataapi.ErrInvalidToken
	}
	return &t, nil
}

func (v *memTokens) issue(t dataapi.Token) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	raw := uuid.NewString()
	v.m[raw] = t
	return raw
}

var allPermissions = []string{dataapi.PermResourcesRead, dataapi.PermAccountsRead, dataapi.PermBalancesRead,
	dataapi.PermTransactionsRead, dataapi.PermOverdraftLimitsRead}

// fixture is a Ponte data API on one database: holder partner A (the
// sandbox data set), holder partner B serving the same person with an
// account of its own, and receiver R holding consents.
type fixture struct {
	db       *store.DB
	clock    *clock.Fake
	svc      *dataapi.Service
	cs       *customers.Service
	grants   *memGrants
	tokens   *memTokens
	srv      *httptest.Server
	admin    *auth.Tokens
	holderA  *auth.Application
	holderB  *auth.Application
	receiver *auth.Application
	accounts []string // partner A's accounts of the sandbox customer: checking, savings, prepaid
	accountB string
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{db: db, clock: clock.NewFake(time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)),
		grants: &memGrants{m: map[string]dataapi.Grant{}}, tokens: &memTokens{m: map[string]dataapi.Token{}}}
	apps := auth.NewApplications(db, f.clock)
	var err error
	mk := func(name string, scopes ...string) *auth.Application {
		a, _, err := apps.Create(ctx, auth.NewApplication{Name: name, CompanyKey: strings.ToUpper(name[:4]), Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	f.holderA, f.holderB, f.receiver = mk("alpha holder", dataapi.ScopeAdminWrite), mk("beta holder", dataapi.ScopeAdminWrite), mk("receiver", "payments")
	f.cs = customers.NewService(db, f.clock)
	if _, err := f.cs.EnsureSandbox(ctx, f.holderA.ID); err != nil {
		t.Fatal(err)
	}
	f.svc = dataapi.NewService(db, f.clock, f.grants)
	if err := f.svc.EnsureSandbox(ctx, f.cs, f.holderA.ID); err != nil {
		t.Fatal(err)
	}
	list, err := f.cs.Accounts(ctx, f.holderA.ID, dataapi.SandboxDocument)
	if err != nil {
		t.Fatal(err)
	}
	// Checking, savings, prepaid: the sandbox's order of creation.
	for _, number := range []string{"1234567", "23456789", "998877665"} {
		for _, a := range list {
			if a.Number == number {
				f.accounts = append(f.accounts, a.ID)
			}
		}
	}
	if _, err := f.cs.CreateCustomer(ctx, f.holderB.ID, dataapi.SandboxDocument, "Maria da Silva"); err != nil {
		t.Fatal(err)
	}
	b, err := f.cs.AddAccount(ctx, f.holderB.ID, dataapi.SandboxDocument, customers.Account{ISPB: "11111111", Issuer: "0002", Number: "55554444", AccountType: customers.TypeCACC})
	if err != nil {
		t.Fatal(err)
	}
	f.accountB = b.ID
	key, err := auth.LoadOrCreateKey(filepath.Join(t.TempDir(), "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if f.admin, err = auth.NewTokens(key, "http://ponte.test", time.Hour, f.clock, apps); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	logger := slog.New(slog.DiscardHandler)
	(&dataapi.Handler{Service: f.svc, Tokens: f.tokens, Admin: f.admin, Institution: dataapi.SandboxInstitution,
		BaseURL: "https://ponte.example.com", Logger: logger}).Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// consent stores an AUTHORISED grant of the receiver for partner A's
// customer and returns a token bound to it.
func (f *fixture) consent(perms []string, accounts []string) (consentID, token string) {
	consentID = "urn:ponte:" + uuid.NewString()
	f.grants.put(dataapi.Grant{ConsentID: consentID, ApplicationID: f.receiver.ID, Document: dataapi.SandboxDocument,
		Status: dataapi.ConsentAuthorised, Permissions: perms, AccountIDs: accounts, ExpiresAt: f.clock.Now().AddDate(0, 6, 0)})
	return consentID, f.tokenFor(consentID, f.receiver.ID)
}

func (f *fixture) tokenFor(consentID, appID string) string {
	return f.tokens.issue(dataapi.Token{ApplicationID: appID, ClientID: appID,
		Scopes: []string{"openid", "accounts", "resources", "consent:" + consentID}, ExpiresAt: f.clock.Now().Add(time.Hour)})
}

// get calls a data route and validates the exchange against the official
// specification; it returns the status and the decoded body.
func (f *fixture) get(t testing.TB, token, pathAndQuery string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+pathAndQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(dataapi.InteractionHeader, uuid.NewString())
	return f.do(t, req)
}

func (f *fixture) do(t testing.TB, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	validateExchange(t, req, resp.StatusCode, resp.Header, body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("not JSON: %s", body)
	}
	return resp.StatusCode, m
}

func errorCode(m map[string]any) string {
	errs, _ := m["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	return errs[0].(map[string]any)["code"].(string)
}

func dataList(m map[string]any) []map[string]any {
	var out []map[string]any
	for _, x := range m["data"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}
