// Package sandboxapp is Ponte's sandbox stand-in for a holder partner's
// mobile app: the page the demo partner's deep link opens. Like a real
// partner app it logs its user in, asks Ponte for a consent-flow ticket over
// HTTP with the partner's credentials (seed 000) and opens the WebView,
// handing the user's login over as a signed accessToken. It exists only in
// sandbox mode, so the whole redirect journey runs in one browser.
package sandboxapp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
)

// Routes.
const (
	PathApp   = "/sandbox/partner-app"
	PathToken = "/sandbox/partner-app/token"
	// PathDone is the sandbox demo application's redirect URL: where a
	// journey session returns the user, with its id and status.
	PathDone = "/sandbox/done"
)

// Password is every sandbox demo user's password.
const Password = "sandbox"

// LoginTokenLifetime is how long the accessTokens the demo partner signs live.
const LoginTokenLifetime = 5 * time.Minute

// Users tells whether the demo partner serves a customer with this CPF.
type Users interface {
	DemoUser(ctx context.Context, document string) (name string, ok bool)
}

// App is the sandbox partner app.
type App struct {
	// PublicURL is Ponte's public URL: the app calls Ponte's API there, as
	// a partner's backend would, and its login tokens are addressed to it.
	PublicURL    string
	ClientID     string // the demo partner application's credentials
	ClientSecret string
	// Key signs the demo partner's login tokens; its public half is
	// registered on the demo application.
	Key    *auth.SigningKey
	Users  Users
	Clock  clock.Clock
	HTTP   *http.Client
	Pages  *template.Template
	Logger *slog.Logger
}

// Register adds the app's routes to mux.
func (a *App) Register(mux *http.ServeMux) {
	errs := httpx.Bankly{}
	mux.Handle("GET "+PathApp, httpx.Recover(errs, a.Logger, http.HandlerFunc(a.show)))
	mux.Handle("POST "+PathApp, httpx.Recover(errs, a.Logger, http.HandlerFunc(a.open)))
	mux.Handle("POST "+PathToken, httpx.Recover(errs, a.Logger, http.HandlerFunc(a.token)))
	mux.Handle("GET "+PathDone, httpx.Recover(errs, a.Logger, http.HandlerFunc(a.done)))
}

// done is where the sandbox demo application's journeys end: it shows what
// a partner's app would read from the redirect.
func (a *App) done(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	q := r.URL.Query()
	if err := a.Pages.ExecuteTemplate(&buf, "sandbox_done", map[string]string{"ID": q.Get("id"), "Status": q.Get("status")}); err != nil {
		a.Logger.ErrorContext(r.Context(), "render sandbox done", "err", err)
		http.Error(w, "Falha temporária", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", csp)
	_, _ = w.Write(buf.Bytes())
}

// LoginToken signs the accessToken that proves document's login to Ponte.
func (a *App) LoginToken(document string) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: a.Key.Private},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", a.Key.KeyID))
	if err != nil {
		return "", fmt.Errorf("sandboxapp: signer: %w", err)
	}
	now := a.Clock.Now()
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: a.ClientID, Subject: document, Audience: jwt.Audience{strings.TrimSuffix(a.PublicURL, "/")},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(LoginTokenLifetime)), ID: hex.EncodeToString(jti[:]),
	}).Serialize()
}

// PublicJWKS is the demo partner's public key set, as registered on its application.
func (a *App) PublicJWKS() ([]byte, error) {
	return json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &a.Key.Private.PublicKey, KeyID: a.Key.KeyID, Algorithm: string(jose.PS256), Use: "sig",
	}}})
}

type page struct {
	RequestURI, ClientID, Document, Error string
}

const csp = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (a *App) render(w http.ResponseWriter, r *http.Request, status int, p page) {
	var buf bytes.Buffer
	if err := a.Pages.ExecuteTemplate(&buf, "sandbox_app", p); err != nil {
		a.Logger.ErrorContext(r.Context(), "render sandbox app", "err", err)
		http.Error(w, "Falha temporária", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", csp)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// show is the deep link's landing: the app's login, with the request_uri and
// client_id the deep link carried (seed 000's values).
func (a *App) show(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := page{RequestURI: q.Get("request_uri"), ClientID: q.Get("client_id")}
	if p.RequestURI == "" || p.ClientID == "" {
		p.Error = "Este link está incompleto. Volte à instituição que fez o pedido e comece de novo."
		a.render(w, r, http.StatusBadRequest, p)
		return
	}
	a.render(w, r, http.StatusOK, p)
}

// open logs the user in, asks Ponte for a ticket and opens the WebView.
func (a *App) open(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		a.render(w, r, http.StatusBadRequest, page{Error: "Formulário inválido."})
		return
	}
	p := page{RequestURI: r.PostForm.Get("request_uri"), ClientID: r.PostForm.Get("client_id"), Document: r.PostForm.Get("document")}
	if p.RequestURI == "" || p.ClientID == "" {
		p.Error = "Este link está incompleto. Volte à instituição que fez o pedido e comece de novo."
		a.render(w, r, http.StatusBadRequest, p)
		return
	}
	if !a.authenticate(r.Context(), p.Document, r.PostForm.Get("password")) {
		p.Error = "CPF ou senha inválidos."
		a.render(w, r, http.StatusUnauthorized, p)
		return
	}
	login, err := a.LoginToken(p.Document)
	if err != nil {
		a.fail(w, r, p, err)
		return
	}
	ticketID, err := a.ticket(r.Context(), p)
	var refused *refusedError
	if errors.As(err, &refused) {
		p.Error = refused.text()
		a.render(w, r, http.StatusBadRequest, p)
		return
	}
	if err != nil {
		a.fail(w, r, p, err)
		return
	}
	target := strings.TrimSuffix(a.PublicURL, "/") + "/openfinance/consent-flow/webview?" + url.Values{"ticket": {ticketID}}.Encode() +
		"#accessToken=" + url.QueryEscape(login)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (a *App) fail(w http.ResponseWriter, r *http.Request, p page, err error) {
	a.Logger.ErrorContext(r.Context(), "sandbox partner app", "err", err)
	p.Error = "Falha temporária ao falar com o Ponte. Tente novamente."
	a.render(w, r, http.StatusBadGateway, p)
}

func (a *App) authenticate(ctx context.Context, document, password string) bool {
	if password != Password {
		return false
	}
	_, ok := a.Users.DemoUser(ctx, document)
	return ok
}

// token mints a login token for the WebView's sandbox login form.
func (a *App) token(w http.ResponseWriter, r *http.Request) {
	errs := httpx.Bankly{}
	body, herr := httpx.ReadBody(w, r)
	if herr != nil {
		errs.WriteError(w, r, herr)
		return
	}
	var in struct {
		Document string `json:"document" required:"true"`
		Password string `json:"password" required:"true"`
	}
	if herr := httpx.DecodeObject(body, &in); herr != nil {
		errs.WriteError(w, r, herr)
		return
	}
	if !a.authenticate(r.Context(), in.Document, in.Password) {
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusUnauthorized, Message: "CPF ou senha inválidos"})
		return
	}
	tok, err := a.LoginToken(in.Document)
	if err != nil {
		a.Logger.ErrorContext(r.Context(), "sandbox login token", "err", err)
		errs.WriteError(w, r, httpx.Internal())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, r, http.StatusOK, map[string]string{"accessToken": tok})
}

// refusedError is Ponte's 400 to the ticket request: the field it names
// (Bankly's propertyName) and its message, which is for developers.
type refusedError struct{ field, message string }

func (e *refusedError) Error() string { return e.field + ": " + e.message }

// text is what the user reads: Portuguese, chosen by the field, never the
// API's English message.
func (e *refusedError) text() string {
	switch e.field {
	case "documentNumber":
		return "O CPF informado não é o do cliente deste pedido. Entre com o CPF de quem vai autorizar."
	case "requestUri":
		return "Este pedido de autorização expirou ou não existe mais. Volte para a instituição que fez o pedido e comece de novo."
	}
	return "Não foi possível abrir este pedido de autorização. Volte para a instituição que fez o pedido e comece de novo."
}

// ticket does what a partner's backend does: a client_credentials token,
// then POST /openfinance/consent-flow/ticket.
func (a *App) ticket(ctx context.Context, p page) (string, error) {
	base := strings.TrimSuffix(a.PublicURL, "/")
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"openfinance.ticket.write"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(url.QueryEscape(a.ClientID), url.QueryEscape(a.ClientSecret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := a.call(req, http.StatusOK, &tok); err != nil {
		return "", fmt.Errorf("sandboxapp: token: %w", err)
	}
	body, _ := json.Marshal(map[string]string{"requestUri": p.RequestURI, "clientId": p.ClientID, "documentNumber": p.Document})
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/openfinance/consent-flow/ticket", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("idempotencyKey", hex.EncodeToString(key[:]))
	var ticket struct {
		TicketID string `json:"ticketId"`
	}
	if err := a.call(req, http.StatusCreated, &ticket); err != nil {
		return "", err
	}
	return ticket.TicketID, nil
}

func (a *App) call(req *http.Request, want int, out any) error {
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusBadRequest {
		var e struct {
			Errors []struct {
				Message      string `json:"message"`
				PropertyName string `json:"propertyName"`
			} `json:"errors"`
		}
		if json.Unmarshal(b, &e) == nil && len(e.Errors) > 0 {
			return &refusedError{field: e.Errors[0].PropertyName, message: e.Errors[0].Message}
		}
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d", req.Method, req.URL.Path, resp.StatusCode)
	}
	return json.Unmarshal(b, out)
}
