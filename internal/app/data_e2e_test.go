package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/officialspec"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// receiverConsentBody asks for every account group Ponte serves — Saldos,
// Limites and Extratos, each complete with RESOURCES_READ — of the sandbox
// customer until 2025-04-15 (six months after apptest.Epoch).
const receiverConsentBody = `{"data":{
  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
  "permissions":["RESOURCES_READ","ACCOUNTS_READ","ACCOUNTS_BALANCES_READ","ACCOUNTS_TRANSACTIONS_READ","ACCOUNTS_OVERDRAFT_LIMITS_READ"],
  "expirationDateTime":"2025-04-15T18:55:15Z"}}`

// receiverScope is what the receiver pushes: the consents API plus both
// data APIs' scopes and the consent.
func receiverScope(consentID string) string {
	return "openid consents resources accounts consent:" + consentID
}

// Sandbox accounts of 47742663023 (internal/dataapi/sandbox.go).
const (
	sandboxChecking = "1234567" // 1,600 transactions
	sandboxSavings  = "23456789"
	sandboxPrepaid  = "998877665"
)

// TestDataSharingEndToEnd is the data transmitter end to end over HTTP, on
// both databases, with a REAL authorization_code token: a receiver (the
// demo partner's client id, registered as an OIDC initiator with its own
// JWKS) creates a Consents v3 consent for all the account groups; pushes
// "openid consents resources accounts consent:<id>"; the user goes
// authorize → deep link → sandbox partner app → ticket → WebView, logs in
// and shares ONE of three accounts (the checking account); the receiver
// redeems the code and, with that token, reads /resources (exactly the
// shared account), /accounts, the account, its balances and overdraft
// limits, and pages through its 1,600 transactions at page-size 1000 with
// no duplicate and no gap; the accounts it was not given are refused with
// 403 FORBIDDEN. The user then revokes the sharing from "Meus
// compartilhamentos" and the very next call with the same token is 401
// UNAUTHORIZED, the consent REJECTED / CUSTOMER_MANUALLY_REVOKED. Every
// exchange with the consents, resources and accounts APIs is validated
// against the official specifications.
func TestDataSharingEndToEnd(t *testing.T) {
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			start := time.Now()
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
			rc := newReceiver(s)
			ids := sandboxAccountIDs(t, s)
			consentID := rc.createConsent(t, receiverConsentBody)

			// The journey, as the phone would run it (no JavaScript): the
			// WebView shows the three account groups and, after login, the
			// customer's three accounts; the user shares only the checking one.
			req := oidctest.NewRequest(consentID)
			j, interactionID, loginToken := openDataWebView(t, s, in, req, authorizeURL(s, in, pushPAR(t, s, in, req, receiverScope(consentID))))
			r := j.step(t, interactionID, "login", loginBody(loginToken))
			var logged consentflow.InteractionJSON
			r.JSON(t, &logged)
			if r.Status != 200 {
				t.Fatalf("login: %d %s", r.Status, r.Body)
			}
			for _, n := range []string{sandboxChecking, sandboxSavings, sandboxPrepaid} {
				if !hasAccount(logged.Accounts, n) {
					t.Errorf("the WebView's login lists %+v, without account %s", logged.Accounts, n)
				}
			}
			checking := `{"ispb":"37241230","issuer":"0001","number":"` + sandboxChecking + `","accountType":"CACC"}`
			r = j.step(t, interactionID, "consent", `{"partialApproval":false,"debtorAccount":`+checking+`,"accounts":[`+checking+`],"device":`+device+`}`)
			var approved consentflow.InteractionJSON
			r.JSON(t, &approved)
			if r.Status != 200 || approved.Status != consentflow.InteractionApproved || approved.RedirectURI == "" {
				t.Fatalf("approve: %d %s", r.Status, r.Body)
			}
			cb := location(t, j.get(t, approved.RedirectURI))
			token := redeemDataCode(t, s, in, req, cb)

			// The consent, as the receiver reads it: AUTHORISED.
			if st, body := rc.call(t, http.MethodGet, dataconsents.ConsentsPath+"/"+consentID, s.Token(t, dataconsents.Scope), ""); st != 200 ||
				dig(body, "data", "status") != "AUTHORISED" {
				t.Fatalf("consent after approval: %d %v", st, body)
			}

			rc.readSharedAccount(t, token, ids[sandboxChecking], []string{ids[sandboxSavings], ids[sandboxPrepaid]})
			t.Logf("%s: journey and reads in %s", e.Name, time.Since(start).Round(time.Millisecond))

			// "Meus compartilhamentos": the partner's app asks for a ticket,
			// the customer opens the page and ends the sharing.
			browser := newBrowser(t)
			ticket := ticketID(t, mySharingTicket(t, s, s.Token(t, "openfinance.ticket.write"), s.App.Demo.ClientID, "47742663023"))
			status, page := openMySharing(t, s, browser, ticket)
			if status != 200 || !strings.Contains(page, `value="`+consentID+`"`) || !strings.Contains(page, "conta "+sandboxChecking) ||
				strings.Contains(page, "conta "+sandboxSavings) || !strings.Contains(page, "Compartilhamento com Test initiator "+in.ClientID) { // as the WebView named the receiver
				t.Fatalf("my sharing: %d %s", status, page)
			}
			for _, group := range []string{"Saldos", "Limites", "Extratos"} {
				if !strings.Contains(page, group) {
					t.Errorf("my sharing does not show %s", group)
				}
			}
			// A browser sends the revoke form's Origin only if the page's
			// referrer policy lets it: under no-referrer it sends "Origin: null".
			if resp, err := browser.Get(s.URL + dataconsents.PathMySharing); err != nil {
				t.Fatal(err)
			} else if resp.Body.Close(); resp.StatusCode != 200 || resp.Header.Get("Referrer-Policy") != "same-origin" {
				t.Errorf("my sharing: %d, Referrer-Policy %q", resp.StatusCode, resp.Header.Get("Referrer-Policy"))
			}
			form, _ := http.NewRequest(http.MethodPost, s.URL+dataconsents.PathMySharingRevoke, strings.NewReader(url.Values{"consentId": {consentID}}.Encode()))
			form.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			form.Header.Set("Origin", s.URL)
			resp, err := browser.Do(form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("revoke: %d", resp.StatusCode)
			}
			if status, page := getPage(t, s, browser, resp.Header.Get("Location")); status != 200 ||
				!strings.Contains(page, "Compartilhamento encerrado") || strings.Contains(page, `value="`+consentID+`"`) {
				t.Errorf("page after the revocation: %d %s", status, page)
			}

			rc.expectRevoked(t, token, consentID, ids[sandboxChecking])
			t.Logf("%s: end to end in %s", e.Name, time.Since(start).Round(time.Millisecond))
		})
	}
}

// sandboxAccountIDs maps the sandbox customer's account numbers to their ids.
func sandboxAccountIDs(t *testing.T, s *apptest.Server) map[string]string {
	t.Helper()
	list, err := s.App.Customers.Accounts(t.Context(), s.App.Demo.ID, "47742663023")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, a := range list {
		ids[a.Number] = a.ID
	}
	for _, n := range []string{sandboxChecking, sandboxSavings, sandboxPrepaid} {
		if ids[n] == "" {
			t.Fatalf("sandbox account %s missing from %+v", n, list)
		}
	}
	return ids
}

// openDataWebView follows authorize → deep link → sandbox partner app →
// ticket → WebView in a cookie-keeping client with a phone's user agent and
// checks the page shows the account groups in Portuguese; it returns the
// journey, the interaction id and the partner app's login token.
func openDataWebView(t *testing.T, s *apptest.Server, in *oidctest.Initiator, req oidctest.Request, authorize string) (*journey, string, string) {
	t.Helper()
	j, wv := openPhoneJourney(t, s, in, req.ConsentID, req, authorize)
	expectInPage(t, wv.body, "Compartilhar dados via Open Finance", `data-kind="data"`, `data-needs-accounts="true"`, "<dt>Contas</dt>",
		"<strong>Saldos</strong>", "<strong>Limites</strong>", "<strong>Extratos</strong>", "Até 15/04/2025 às 15:55",
		"Test initiator "+in.ClientID, "Contas compartilhadas")
	return j, wv.interactionID, wv.loginToken
}

// redeemDataCode checks the callback's fragment (code, id_token, state, no
// error), redeems the code and returns the access token, whose scope must
// carry both data APIs and the consent.
func redeemDataCode(t *testing.T, s *apptest.Server, in *oidctest.Initiator, req oidctest.Request, cb *url.URL) string {
	t.Helper()
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != in.RedirectURI {
		t.Fatalf("callback at %s, want %s", got, in.RedirectURI)
	}
	frag, err := url.ParseQuery(cb.Fragment)
	code := frag.Get("code")
	if err != nil || code == "" || frag.Get("id_token") == "" || frag.Get("state") != req.State || frag.Get("error") != "" {
		t.Fatalf("callback fragment = %q (%v)", cb.Fragment, err)
	}
	if claims := verifyIDToken(t, s, frag.Get("id_token")); claims["nonce"] != req.Nonce || claims["c_hash"] != halfHash(code) {
		t.Errorf("id_token claims = %v", claims)
	}
	status, tok := in.ExchangeCode(t, oidctest.NoRedirects(), s.URL, code, req)
	token, _ := tok["access_token"].(string)
	scope, _ := tok["scope"].(string)
	granted := strings.Fields(scope)
	if status != 200 || token == "" {
		t.Fatalf("code exchange: %d %v", status, tok)
	}
	for _, want := range []string{"resources", "accounts", "consent:" + req.ConsentID} {
		if !slices.Contains(granted, want) {
			t.Errorf("token scope %q lacks %s", scope, want)
		}
	}
	return token
}

// receiver is the receiving institution's HTTP client for Ponte's consents
// and data APIs; every exchange is validated against the official files.
type receiver struct {
	s      *apptest.Server
	client *http.Client
}

func newReceiver(s *apptest.Server) *receiver {
	return &receiver{s: s, client: &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// createConsent creates a data-sharing consent with the partner's
// client_credentials token (scope consents) and returns its id.
func (rc *receiver) createConsent(t *testing.T, body string) string {
	t.Helper()
	status, resp := rc.call(t, http.MethodPost, dataconsents.ConsentsPath, rc.s.Token(t, dataconsents.Scope), body)
	id, _ := dig(resp, "data", "consentId").(string)
	if status != http.StatusCreated || id == "" || dig(resp, "data", "status") != "AWAITING_AUTHORISATION" {
		t.Fatalf("create consent: %d %v", status, resp)
	}
	return id
}

// call sends one request (target is a path or one of Ponte's absolute
// links) with a fresh x-fapi-interaction-id, validates the exchange and
// returns the status and the decoded body.
func (rc *receiver) call(t *testing.T, method, target, token, body string) (int, map[string]any) {
	t.Helper()
	if strings.HasPrefix(target, "/") {
		target = rc.s.URL + target
	} else if !strings.HasPrefix(target, rc.s.URL+"/") {
		t.Fatalf("link %s is not Ponte's (%s)", target, rc.s.URL)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(dataapi.InteractionHeader, uuid.NewString())
	req.Header.Set("Accept", "application/json")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := rc.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	validateOfficial(t, req, []byte(body), resp.StatusCode, resp.Header, got)
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatalf("%s %s → %d: not JSON: %s", method, target, resp.StatusCode, got)
	}
	if resp.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("%s %s → 401 without a Bearer challenge", method, target)
	}
	return resp.StatusCode, m
}

// readSharedAccount reads everything the token gives access to: the one
// shared account in /resources and /accounts, its details, balances and
// limits, and all of its transactions; the other accounts are refused.
func (rc *receiver) readSharedAccount(t *testing.T, token, shared string, notShared []string) {
	t.Helper()
	const accounts = dataapi.AccountsPath
	status, body := rc.call(t, http.MethodGet, dataapi.ResourcesPath, token, "")
	if got := dataItems(body); status != 200 || len(got) != 1 || got[0]["resourceId"] != shared || got[0]["type"] != "ACCOUNT" ||
		got[0]["status"] != "AVAILABLE" || dig(body, "meta", "totalRecords") != 1.0 {
		t.Fatalf("resources: %d %v", status, body)
	}
	status, body = rc.call(t, http.MethodGet, accounts, token, "")
	if got := dataItems(body); status != 200 || len(got) != 1 || got[0]["accountId"] != shared || got[0]["number"] != "00123456" ||
		got[0]["checkDigit"] != "7" || got[0]["type"] != "CONTA_DEPOSITO_A_VISTA" || got[0]["branchCode"] != "0001" ||
		got[0]["brandName"] != dataapi.SandboxInstitution.BrandName || dig(body, "meta", "totalRecords") != 1.0 {
		t.Fatalf("accounts: %d %v", status, body)
	}
	if status, body := rc.call(t, http.MethodGet, accounts+"/"+shared, token, ""); status != 200 || dig(body, "data", "number") != "00123456" ||
		dig(body, "data", "currency") != "BRL" {
		t.Errorf("account: %d %v", status, body)
	}
	if status, body := rc.call(t, http.MethodGet, accounts+"/"+shared+"/balances", token, ""); status != 200 ||
		dig(body, "data", "availableAmount", "amount") != "5320.47" || dig(body, "data", "blockedAmount", "amount") != "150.00" {
		t.Errorf("balances: %d %v", status, body)
	}
	if status, body := rc.call(t, http.MethodGet, accounts+"/"+shared+"/overdraft-limits", token, ""); status != 200 ||
		dig(body, "data", "overdraftContractedLimit", "amount") != "2000.00" {
		t.Errorf("overdraft limits: %d %v", status, body)
	}
	if status, body := rc.call(t, http.MethodGet, accounts+"/"+shared+"/transactions-current", token, ""); status != 200 {
		t.Errorf("transactions-current: %d %v", status, body)
	}

	ids := rc.walkTransactions(t, token, shared, 1000)
	want := make([]string, 1600)
	for i := range want {
		want[i] = fmt.Sprintf("SBX-%s-%05d", sandboxChecking, i+1)
	}
	sorted := slices.Sorted(slices.Values(ids))
	if len(ids) != 1600 || !slices.Equal(sorted, want) {
		t.Errorf("walked %d transactions (%d distinct); want exactly the 1,600 of the sandbox statement", len(ids), len(slices.Compact(sorted)))
	}

	for _, other := range notShared {
		for _, p := range []string{"", "/balances", "/overdraft-limits", "/transactions"} {
			if status, body := rc.call(t, http.MethodGet, accounts+"/"+other+p, token, ""); status != http.StatusForbidden || errorCodeOf(body) != "FORBIDDEN" {
				t.Errorf("%s%s, not shared: %d %v", other, p, status, body)
			}
		}
	}
}

// walkTransactions follows links.next from the first page of the last 12
// months (plus the future entries) and returns the transaction ids in the
// order served, checking newest first and the links of every page.
func (rc *receiver) walkTransactions(t *testing.T, token, accountID string, size int) []string {
	t.Helper()
	today := rc.s.Clock.Now().In(time.FixedZone("BRT", -3*3600))
	q := url.Values{"fromBookingDate": {today.AddDate(-1, 0, 0).Format("2006-01-02")}, "toBookingDate": {today.AddDate(0, 1, 0).Format("2006-01-02")},
		"page-size": {strconv.Itoa(size)}}
	next := dataapi.AccountsPath + "/" + accountID + "/transactions?" + q.Encode()
	var ids []string
	var last time.Time
	for page := 1; next != ""; page++ {
		if page > 1600/size+2 {
			t.Fatalf("still a next page after %d pages", page-1)
		}
		status, body := rc.call(t, http.MethodGet, next, token, "")
		if status != 200 {
			t.Fatalf("transactions page %d: %d %v", page, status, body)
		}
		items := dataItems(body)
		for _, tr := range items {
			at, err := time.Parse("2006-01-02T15:04:05.000Z", tr["transactionDateTime"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) > 0 && at.After(last) {
				t.Fatalf("page %d: %s is newer than the one before it", page, tr["transactionId"])
			}
			last = at
			ids = append(ids, tr["transactionId"].(string))
		}
		links, _ := body["links"].(map[string]any)
		self, _ := links["self"].(string)
		if u, err := url.Parse(self); err != nil || u.Query().Get("page") != strconv.Itoa(page) || u.Query().Get("page-size") != strconv.Itoa(size) ||
			u.Query().Get("fromBookingDate") != q.Get("fromBookingDate") {
			t.Errorf("page %d: links.self = %s", page, self)
		}
		if (page > 1) != (links["prev"] != nil) || (page > 1) != (links["first"] != nil) {
			t.Errorf("page %d: links = %v", page, links)
		}
		next, _ = links["next"].(string)
		if next != "" && len(items) != size {
			t.Errorf("page %d has %d transactions and a next page", page, len(items))
		}
	}
	return ids
}

// expectRevoked: after the revocation the token reads nothing, and the
// consent says why.
func (rc *receiver) expectRevoked(t *testing.T, token, consentID, accountID string) {
	t.Helper()
	for _, p := range []string{dataapi.ResourcesPath, dataapi.AccountsPath, dataapi.AccountsPath + "/" + accountID + "/balances",
		dataapi.AccountsPath + "/" + accountID + "/transactions"} {
		if status, body := rc.call(t, http.MethodGet, p, token, ""); status != http.StatusUnauthorized || errorCodeOf(body) != "UNAUTHORIZED" {
			t.Errorf("%s after the revocation: %d %v", p, status, body)
		}
	}
	status, body := rc.call(t, http.MethodGet, dataconsents.ConsentsPath+"/"+consentID, rc.s.Token(t, dataconsents.Scope), "")
	if status != 200 || dig(body, "data", "status") != "REJECTED" || dig(body, "data", "rejection", "rejectedBy") != "USER" ||
		dig(body, "data", "rejection", "reason", "code") != "CUSTOMER_MANUALLY_REVOKED" {
		t.Errorf("consent after the revocation: %d %v", status, body)
	}
}

// dig walks nested JSON objects.
func dig(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

func dataItems(m map[string]any) []map[string]any {
	list, _ := m["data"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		o, _ := x.(map[string]any)
		out = append(out, o)
	}
	return out
}

func errorCodeOf(m map[string]any) string {
	errs, _ := m["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	code, _ := dig(map[string]any{"e": errs[0]}, "e", "code").(string)
	return code
}

// officialSpecFiles are the official specifications, by the path prefix of
// their servers; they come through PONTE_SPECS_DIR (package officialspec).
var officialSpecFiles = map[string]string{
	"/open-banking/consents/v3":  "consents-3.3.1.yml",
	"/open-banking/resources/v3": "resources-3.1.0.yml",
	"/open-banking/accounts/v2":  "accounts-2.4.2.yml",
}

// officialHost stands in for Ponte's host when routing a request in an
// official specification (whose servers are the banks' own).
const officialHost = "http://ponte.test"

var (
	officialOnce sync.Once
	officialAPIs []officialspec.API
)

// loadOfficialSpecs loads the specifications once; nil when PONTE_SPECS_DIR is unset.
func loadOfficialSpecs(t testing.TB) []officialspec.API {
	t.Helper()
	officialOnce.Do(func() { officialAPIs = officialspec.Routers(t, officialHost, officialSpecFiles) })
	return officialAPIs
}

// validateOfficial checks a request (with its body) and its response
// against the official specification of its API: the request's
// parameters, headers and body; the status being documented; the body
// against the documented schema; the x-fapi-interaction-id echoed.
func validateOfficial(t testing.TB, req *http.Request, reqBody []byte, status int, header http.Header, body []byte) {
	t.Helper()
	if id, want := header.Get(dataapi.InteractionHeader), req.Header.Get(dataapi.InteractionHeader); id != want {
		t.Errorf("%s %s: %s = %q, want the request's %q", req.Method, req.URL.Path, dataapi.InteractionHeader, id, want)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, body)
	}
	apis := loadOfficialSpecs(t)
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
	u, _ := url.Parse(officialHost + req.URL.RequestURI())
	r2 := req.Clone(context.Background())
	r2.URL, r2.Host, r2.RequestURI = u, u.Host, ""
	r2.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := api.Router.FindRoute(r2)
	if err != nil {
		t.Fatalf("%s %s: not in the official specification: %v", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: r2, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		t.Errorf("request %s %s does not match the official specification: %v", req.Method, req.URL, err)
	}
	resp := route.Operation.Responses.Status(status)
	if resp == nil || resp.Value == nil {
		t.Fatalf("%s %s: status %d is not documented (body %.500s)", req.Method, route.Path, status, body)
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
