package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
)

// rawGet sends method path with an Accept header, outside the contract
// checks (unknown paths are in no contract), and returns the response and body.
func rawGet(t *testing.T, s *apptest.Server, method, path, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

// TestUnknownPathsAndRoot: people (a browser's Accept) get Portuguese HTML
// pages at "/" and at unknown paths; API clients (JSON or no text/html in
// Accept) get the service JSON at "/" and, at unknown paths, a 404 in the
// path's API family's error shape; a known path with the wrong method keeps
// its 405.
func TestUnknownPathsAndRoot(t *testing.T) {
	s := apptest.Start(t, apptest.Options{})
	tests := []struct {
		name, method, path, accept string
		status                     int
		contentType                string
		want                       []string // in the body
	}{
		{"root, browser", "GET", "/", browserAccept, 200, "text/html", []string{`<html lang="pt-BR">`, "Autorizações Open Finance", "/static/ponte.css", `href="/openapi.yaml"`}},
		{"root, JSON", "GET", "/", "application/json", 200, "application/json", []string{`"service":"ponte"`, `"mode":"sandbox"`}},
		{"root, curl", "GET", "/", "*/*", 200, "application/json", []string{`"service":"ponte"`}},
		{"root, no Accept", "GET", "/", "", 200, "application/json", []string{`"service":"ponte"`}},
		{"root, html and json", "GET", "/", "text/html, application/json", 200, "application/json", []string{`"service":"ponte"`}},
		{"unknown, browser", "GET", "/nada/aqui", browserAccept, 404, "text/html", []string{"<title>Página não encontrada · Ponte</title>", "Página não encontrada", "/static/ponte.css", `href="/"`}},
		{"unknown, Open Finance", "GET", "/open-banking/nothing", "application/json", 404, "application/json", []string{`"code":"NOT_FOUND"`, `"detail":"no route for GET /open-banking/nothing"`, `"requestDateTime"`}},
		{"unknown, Bankly", "POST", "/openfinance/consent-flow/nothing", "", 404, "application/json", []string{`{"errors":[{"code":"NOT_FOUND","message":"no route for POST /openfinance/consent-flow/nothing"}]}`}},
		{"unknown, Open Keys", "GET", "/open-keys/itp/api/v2/nothing", "application/json", 404, "application/json", []string{`{"error":"Not Found","message":"no route for GET /open-keys/itp/api/v2/nothing"}`}},
		{"unknown static file, browser", "GET", "/static/nothing.css", browserAccept, 404, "text/html", []string{"Página não encontrada"}},
		{"static directory", "GET", "/static/", "", 404, "application/json", []string{`"code":"NOT_FOUND"`}},
		{"static file", "GET", "/static/ponte.css", browserAccept, 200, "text/css", []string{"[hidden]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := rawGet(t, s, tt.method, tt.path, tt.accept)
			if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.contentType) {
				t.Fatalf("%s %s (Accept %q): %d %s\n%s", tt.method, tt.path, tt.accept, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q:\n%s", w, body)
				}
			}
			if strings.Contains(body, "404 page not found") {
				t.Errorf("Go's plain 404: %s", body)
			}
			if tt.path == "/" || tt.status == 404 {
				if !strings.Contains(resp.Header.Get("Vary"), "Accept") {
					t.Errorf("Vary = %q, want Accept", resp.Header.Get("Vary"))
				}
			}
		})
	}

	// A known path with another method: 405 with Allow, as the mux answers.
	resp, _ := rawGet(t, s, "DELETE", "/healthz", "application/json")
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "GET") {
		t.Errorf("DELETE /healthz: %d Allow %q, want 405 naming GET", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, _ = rawGet(t, s, "GET", "/openfinance/consent-flow/ticket", "application/json")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET on the ticket route: %d Allow %q, want 405 Allow POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// A person reopening a form's address (POST only) reads Portuguese.
	resp, body := rawGet(t, s, "GET", "/journey/some-journey/confirm", browserAccept)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" || !strings.Contains(body, "Página não encontrada") {
		t.Errorf("GET a POST-only page in a browser: %d Allow %q\n%s", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
	// The root's JSON stays what API clients read, contract-checked.
	r := s.Do(t, "GET", "/", map[string]string{"Accept": "application/json"}, "")
	var root map[string]string
	r.JSON(t, &root)
	if root["openapi"] != s.URL+"/openapi.yaml" {
		t.Errorf("root JSON = %v", root)
	}
}

// TestHandOffPageNamesTheConsentKind: the desktop QR hand-off page says what
// the phone will authorise — a payment, automatic transfers between the
// user's accounts, or sharing data — never "pagamento" for the other kinds.
func TestHandOffPageNamesTheConsentKind(t *testing.T) {
	s := apptest.Start(t, apptest.Options{})
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
	sweeping := createRecurring(t, s)
	data := createDataConsent(t, s)
	payment := createConsent(t, s, s.Token(t, "payments"), consentBody)
	tests := []struct {
		kind, consentID, scope, want string
	}{
		{"payment", payment, paymentScope(payment), "pediu uma autorização de pagamento"},
		{"sweeping", sweeping, sweepingScope(sweeping), "pediu autorização para transferências automáticas entre as suas contas"},
		{"data", data, "openid consents consent:" + data, "pediu para receber dados da sua conta"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			j := &journey{s: s, in: in, browser: newBrowser(t), ua: desktopUA}
			resp := j.get(t, authorizeURL(s, in, pushPAR(t, s, in, oidctest.NewRequest(tt.consentID), tt.scope)))
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page := string(b)
			if resp.StatusCode != 200 || !strings.Contains(page, `id="handoff"`) {
				t.Fatalf("hand-off page: %d %s", resp.StatusCode, page)
			}
			if !strings.Contains(page, tt.want) {
				t.Errorf("the hand-off page lacks %q", tt.want)
			}
			if tt.kind != "payment" && strings.Contains(strings.ToLower(page), "pagamento") {
				t.Errorf("the %s hand-off page speaks of a payment", tt.kind)
			}
		})
	}
}

// TestSandboxInitiatorName: Ponte-as-initiator is registered at its sandbox
// brand under a Portuguese name, and a registration left by an older
// version under the English name is renamed at start.
func TestSandboxInitiatorName(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	brand, err := s.App.ITP.Brand(t.Context(), s.App.SandboxBrandID)
	if err != nil {
		t.Fatal(err)
	}
	st := s.App.AuthServer.Storage()
	if name, _ := st.ClientName(t.Context(), brand.ClientID); name != app.SandboxInitiatorName {
		t.Fatalf("sandbox initiator name = %q, want %q", name, app.SandboxInitiatorName)
	}
	c, err := st.Clients().Client(t.Context(), brand.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(c.PublicJWKS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.RegisterInitiator(t.Context(), oidc.Initiator{ClientID: brand.ClientID, Name: "Ponte (initiator)", JWKS: jwks, RedirectURIs: c.RedirectURIs}); err != nil {
		t.Fatal(err)
	}
	s = s.Restart(t)
	if name, _ := s.App.AuthServer.Storage().ClientName(t.Context(), brand.ClientID); name != app.SandboxInitiatorName {
		t.Errorf("after a restart, the old registration's name = %q, want %q", name, app.SandboxInitiatorName)
	}
	after, err := s.App.AuthServer.Storage().Clients().Client(t.Context(), brand.ClientID)
	if err != nil || len(after.RedirectURIs) != len(c.RedirectURIs) {
		t.Errorf("redirect URIs after the rename: %v (before %v) %v", after.RedirectURIs, c.RedirectURIs, err)
	}
}

// TestSandboxAppRefusesInPortuguese: when Ponte refuses the sandbox partner
// app's ticket request (here a request_uri longer than the ticket API
// takes), the app says so in Portuguese, never with the API's English message.
func TestSandboxAppRefusesInPortuguese(t *testing.T) {
	s := apptest.Start(t, apptest.Options{})
	j := &journey{s: s, browser: newBrowser(t), ua: phoneUA}
	form := url.Values{"request_uri": {"urn:ietf:params:oauth:request_uri:" + strings.Repeat("x", 2048)}, "client_id": {s.App.Demo.ClientID},
		"document": {"47742663023"}, "password": {"sandbox"}}
	page := j.postForm(t, s.URL+"/sandbox/partner-app", form)
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	body := string(b)
	if page.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Este pedido de autorização expirou ou não existe mais.") {
		t.Fatalf("partner app: %d %s", page.StatusCode, body)
	}
	for _, english := range []string{"must be valid text", "requestUri must", "recusou o ticket"} {
		if strings.Contains(body, english) {
			t.Errorf("the partner app shows %q", english)
		}
	}
}

// TestAuthorizeErrorsInPortuguese: an authorization link that cannot go
// back to the initiator (its pushed request expired or never existed, or
// the journey's callback is unknown) shows a browser a Portuguese page;
// API clients keep the authorization server's JSON.
func TestAuthorizeErrorsInPortuguese(t *testing.T) {
	s := apptest.Start(t, apptest.Options{})
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
	unknown := authorizeURL(s, in, "urn:ietf:params:oauth:request_uri:unknown")
	for _, path := range []string{strings.TrimPrefix(unknown, s.URL), oidc.PathAuthorize + "/unknown-callback"} {
		resp, body := rawGet(t, s, "GET", path, browserAccept)
		if resp.StatusCode < 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(body, "Pedido de autorização inválido") || !strings.Contains(body, `lang="pt-BR"`) {
			t.Errorf("GET %s in a browser: %d %s\n%s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if strings.Contains(body, "invalid_request") || strings.Contains(body, "error_description") {
			t.Errorf("GET %s in a browser shows the JSON error: %s", path, body)
		}
		resp, body = rawGet(t, s, "GET", path, "application/json")
		if resp.StatusCode < 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !strings.Contains(body, `"error":"`) {
			t.Errorf("GET %s as an API client: %d %s\n%s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}

// TestSandboxPagesSpeakPortuguese: the sandbox partner app's broken-link
// message and the sandbox "done" page tell a person what happened in
// Portuguese; the parameters the partner receives stay, marked as such.
func TestSandboxPagesSpeakPortuguese(t *testing.T) {
	s := apptest.Start(t, apptest.Options{})
	tests := []struct {
		path   string
		status int
		want   []string
		not    []string
	}{
		{"/sandbox/partner-app", 400, []string{"Este link está incompleto."}, []string{"request_uri", "client_id"}},
		{"/sandbox/done?id=s-1&status=FINISHED", 200, []string{"Transferências automáticas autorizadas", "<code>s-1</code>", "FINISHED"}, nil},
		{"/sandbox/done?id=s-2&status=REJECTED", 200, []string{"Autorização recusada na instituição"}, nil},
		{"/sandbox/done?id=s-3&status=CANCELLED", 200, []string{"Jornada cancelada"}, nil},
	}
	for _, tt := range tests {
		resp, body := rawGet(t, s, "GET", tt.path, browserAccept)
		if resp.StatusCode != tt.status {
			t.Errorf("GET %s: %d, want %d", tt.path, resp.StatusCode, tt.status)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q:\n%s", tt.path, w, body)
			}
		}
		for _, w := range tt.not {
			if strings.Contains(body, w) {
				t.Errorf("GET %s shows %q", tt.path, w)
			}
		}
	}
}
