package dataconsents_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/officialspec"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

var (
	validateOnce sync.Once
	validateErr  error
)

// officialSpec loads the official Consents 3.3.1 specification through
// PONTE_SPECS_DIR (and checks it is a valid OpenAPI document: every pattern
// of this file compiles in Go); nil when the variable is unset.
func officialSpec(t testing.TB) *openapi3.T {
	t.Helper()
	doc := officialspec.Load(t, "consents-3.3.1.yml")
	if doc == nil {
		return nil
	}
	validateOnce.Do(func() { validateErr = doc.Validate(context.Background()) })
	if validateErr != nil {
		t.Fatalf("the official Consents 3.3.1 specification is not valid OpenAPI: %v", validateErr)
	}
	return doc
}

// productionSelf stands in for the loopback test server's URL in links: the
// specification's servers are https URLs with a domain name.
const productionSelf = "https://ponte.example.com"

// specPrefix is the servers' path: the specification's paths start after it.
const specPrefix = "/open-banking/consents/v3"

// exchange is one request sent to Ponte and its response.
type exchange struct {
	method, path string // path as sent, e.g. /open-banking/consents/v3/consents/urn:...
	header       map[string]string
	body         string
	resp         *apptest.Response
}

// route finds the specification's operation for an exchange.
func route(t testing.TB, method, path string) (*routers.Route, map[string]string) {
	t.Helper()
	doc := officialSpec(t)
	rel := strings.TrimPrefix(path, specPrefix)
	if i := strings.IndexByte(rel, '?'); i >= 0 {
		rel = rel[:i]
	}
	params := map[string]string{}
	tmpl := rel
	if rest, ok := strings.CutPrefix(rel, "/consents/"); ok {
		tmpl = "/consents/{consentId}"
		for _, tail := range []string{"/extends", "/extensions"} {
			if id, ok := strings.CutSuffix(rest, tail); ok {
				rest, tmpl = id, tmpl+tail
			}
		}
		params["consentId"] = rest
	}
	item := doc.Paths.Value(tmpl)
	if item == nil {
		t.Fatalf("no path %s (from %s) in the specification", tmpl, path)
	}
	op := item.GetOperation(method)
	if op == nil {
		t.Fatalf("no operation %s %s in the specification", method, tmpl)
	}
	return &routers.Route{Spec: doc, Path: tmpl, PathItem: item, Method: method, Operation: op}, params
}

func (x *exchange) request(t testing.TB) *openapi3filter.RequestValidationInput {
	t.Helper()
	var body io.Reader
	if x.body != "" {
		body = strings.NewReader(x.body)
	}
	req, err := http.NewRequest(x.method, productionSelf+x.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range x.header {
		req.Header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	if x.body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	r, params := route(t, x.method, x.path)
	return &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: r,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
}

// requestError validates the request against the specification.
func (x *exchange) requestError(t testing.TB) error {
	t.Helper()
	return openapi3filter.ValidateRequest(context.Background(), x.request(t))
}

// validate checks the exchange against the specification: the response
// always (status declared, headers, body); the request must be valid unless
// the test sent an invalid one on purpose (schemaInvalid), and then the
// specification must refuse it too.
func (x *exchange) validate(t testing.TB, s *apptest.Server, schemaInvalid bool) {
	t.Helper()
	if id := x.resp.Header.Get(dataconsents.InteractionHeader); !interactionPattern(id) {
		t.Errorf("%s %s: x-fapi-interaction-id %q in the response", x.method, x.path, id)
	}
	if v := x.resp.Header.Get("x-v"); v != dataconsents.Version {
		t.Errorf("%s %s: x-v %q", x.method, x.path, v)
	}
	if officialSpec(t) == nil {
		return
	}
	err := x.requestError(t)
	switch {
	case schemaInvalid && err == nil:
		t.Errorf("%s %s: the specification accepts this request, which Ponte refused with %d", x.method, x.path, x.resp.Status)
	case !schemaInvalid && err != nil:
		t.Errorf("%s %s: request does not match the specification: %v\nbody: %s", x.method, x.path, err, x.body)
	}
	in := x.request(t)
	body := bytes.ReplaceAll(x.resp.Body, []byte(s.URL), []byte(productionSelf))
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: x.resp.Status, Header: x.resp.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s → %d: response does not match the specification: %v\nbody: %s", x.method, x.path, x.resp.Status, err, x.resp.Body)
	}
}

func interactionPattern(id string) bool {
	return len(id) == 36 && strings.Count(id, "-") == 4
}

// eachEngine runs fn against a fresh Ponte on every available database.
func eachEngine(t *testing.T, fn func(t *testing.T, s *apptest.Server)) {
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			fn(t, apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)}))
		})
	}
}

const (
	consentsPath  = dataconsents.ConsentsPath
	interactionID = "d78fc4e5-37ca-4da3-adf2-9b082bf92280"
	// demoCPF is the sandbox demo customer (477.426.630-23).
	demoCPF = "47742663023"
	// validCNPJ is an all-digit CNPJ with valid check digits; alphaCNPJ an
	// alphanumeric one (IN RFB 2.229/2024's example).
	validCNPJ = "11222333000181"
	alphaCNPJ = "12ABC34501DE35"
)

// body builds a creation request.
func body(cpf string, perms []string, expiration string, extra map[string]any) string {
	data := map[string]any{"loggedUser": map[string]any{"document": map[string]any{"identification": cpf, "rel": "CPF"}},
		"permissions": perms}
	if expiration != "" {
		data["expirationDateTime"] = expiration
	}
	for k, v := range extra {
		data[k] = v
	}
	b, _ := json.Marshal(map[string]any{"data": data})
	return string(b)
}

// accountsPerms are the three account groups (Saldos, Limites, Extratos).
var accountsPerms = []string{"ACCOUNTS_READ", "ACCOUNTS_BALANCES_READ", "ACCOUNTS_TRANSACTIONS_READ", "ACCOUNTS_OVERDRAFT_LIMITS_READ", "RESOURCES_READ"}

// happyBody: the demo customer shares his accounts until 2025-10-15 (12 months from apptest.Epoch).
var happyBody = body(demoCPF, accountsPerms, "2025-10-15T18:55:15Z", nil)

func headers(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token, dataconsents.InteractionHeader: interactionID}
}

type consentResp struct {
	Data struct {
		ConsentID            string                  `json:"consentId"`
		CreationDateTime     string                  `json:"creationDateTime"`
		Status               string                  `json:"status"`
		StatusUpdateDateTime string                  `json:"statusUpdateDateTime"`
		Permissions          []string                `json:"permissions"`
		ExpirationDateTime   string                  `json:"expirationDateTime"`
		Rejection            *dataconsents.Rejection `json:"rejection"`
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

func token(t *testing.T, s *apptest.Server) string { return s.Token(t, dataconsents.Scope) }

// call sends a request and validates the exchange against the specification.
func call(t *testing.T, s *apptest.Server, method, path string, header map[string]string, reqBody string, schemaInvalid bool) *apptest.Response {
	t.Helper()
	x := &exchange{method: method, path: path, header: header, body: reqBody}
	x.resp = s.Do(t, method, path, header, reqBody)
	x.validate(t, s, schemaInvalid)
	return x.resp
}

// create creates a consent as the demo application.
func create(t *testing.T, s *apptest.Server, reqBody string) consentResp {
	t.Helper()
	resp := call(t, s, "POST", consentsPath, headers(token(t, s)), reqBody, false)
	if resp.Status != http.StatusCreated {
		t.Fatalf("create: status %d: %s", resp.Status, resp.Body)
	}
	var c consentResp
	resp.JSON(t, &c)
	return c
}

// get reads a consent with a fresh demo token (tests move the clock past token lifetimes).
func get(t *testing.T, s *apptest.Server, id string) consentResp {
	t.Helper()
	resp := call(t, s, "GET", consentsPath+"/"+id, headers(token(t, s)), "", false)
	if resp.Status != http.StatusOK {
		t.Fatalf("get: status %d: %s", resp.Status, resp.Body)
	}
	var c consentResp
	resp.JSON(t, &c)
	return c
}

// wantError checks a refusal's status and codes.
func wantError(t *testing.T, resp *apptest.Response, status int, codes ...string) {
	t.Helper()
	var e errorResp
	resp.JSON(t, &e)
	if resp.Status != status || strings.Join(e.codes(), ",") != strings.Join(codes, ",") {
		t.Errorf("got %d %v, want %d %v: %s", resp.Status, e.codes(), status, codes, resp.Body)
	}
}

// demoAccounts returns the demo customer's accounts at the demo partner.
func demoAccounts(t *testing.T, s *apptest.Server) []*customers.Account {
	t.Helper()
	list, err := customers.AccountsTx(t.Context(), s.App.DB.Read(), s.App.Demo.ID, demoCPF)
	if err != nil || len(list) == 0 {
		t.Fatalf("demo accounts: %v %v", list, err)
	}
	return list
}

// authorise approves consent id in the journey's place, sharing accountIDs.
func authorise(t *testing.T, s *apptest.Server, id string, accountIDs ...string) {
	t.Helper()
	err := s.App.DB.Write(t.Context(), func(tx *sql.Tx) error {
		_, err := s.App.DataConsents.AuthoriseTx(t.Context(), tx, id, s.App.Demo.ID, accountIDs)
		return err
	})
	if err != nil {
		t.Fatalf("authorise %s: %v", id, err)
	}
}

// storedStatus reads a consent's status straight from the database, so the
// GET's own timeout check does not hide whether the job ran.
func storedStatus(t *testing.T, s *apptest.Server, id string) string {
	t.Helper()
	var st string
	if err := s.App.DB.Read().QueryRow(`SELECT status FROM data_consents WHERE id = $1`, id).Scan(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func runDue(t *testing.T, s *apptest.Server) int {
	t.Helper()
	n, err := s.App.Jobs.RunDue(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// journeyToken runs the redirect journey for consent id as the demo user
// (PAR asking for "openid consents consent:<id>", authorize, sandbox partner
// app, WebView approval with account 1234567) and returns the
// authorization_code access token and its scope.
func journeyToken(t *testing.T, s *apptest.Server, in *oidctest.Initiator, id string) (string, string) {
	t.Helper()
	req := oidctest.NewRequest(id)
	uri := push(t, s, in, req)
	cb := apptest.NewSandboxUser(demoCPF, "1234567").Decide(t, s,
		s.URL+oidc.PathAuthorize+"?"+url.Values{"client_id": {in.ClientID}, "request_uri": {uri}}.Encode(), true)
	frag, _ := url.ParseQuery(cb.Fragment)
	if frag.Get("code") == "" {
		t.Fatalf("callback = %s", cb)
	}
	status, tok := in.ExchangeCode(t, oidctest.NoRedirects(), s.URL, frag.Get("code"), req)
	access, _ := tok["access_token"].(string)
	scope, _ := tok["scope"].(string)
	if status != http.StatusOK || access == "" {
		t.Fatalf("code exchange: %d %v", status, tok)
	}
	return access, scope
}

// push pushes a request object asking for "openid consents consent:<id>".
func push(t *testing.T, s *apptest.Server, in *oidctest.Initiator, req oidctest.Request) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: in.Key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", in.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sum := sha256.Sum256([]byte(req.Verifier))
	object, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": in.ClientID, "aud": in.Issuer, "jti": uuid.NewString(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"client_id": in.ClientID, "response_type": "code id_token", "redirect_uri": in.RedirectURI,
		"scope": "openid consents consent:" + req.ConsentID, "state": req.State, "nonce": req.Nonce,
		"code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]), "code_challenge_method": "S256",
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"client_id": {in.ClientID}, "request": {object},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {in.ClientAssertion(t)}}
	resp, err := oidctest.NoRedirects().Post(s.URL+oidc.PathPAR, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &par) != nil {
		t.Fatalf("par: %d %s", resp.StatusCode, b)
	}
	return par.RequestURI
}
