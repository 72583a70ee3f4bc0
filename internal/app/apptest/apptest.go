// Package apptest starts a real Ponte (the app wiring on a loopback httptest
// server, a real database, an injectable clock) and talks to it with a client
// that validates every response against api/openapi.yaml.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
)

// Epoch is where test clocks start.
var Epoch = time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)

// Options configure a test server.
type Options struct {
	DatabaseURL string // "" → SQLite in DataDir
	DataDir     string // "" → a new temporary directory
	// KeysDir is --keys-dir, a key set from `ponte keys init`; "" keeps
	// the keys in DataDir, generated on first start.
	KeysDir    string
	Mode       string // "" → sandbox
	Settlement string // "" → the mode's default (config: ledger in sandbox, partner otherwise)
	// OrganisationID is Ponte's --org-id; "" → generated in the sandbox,
	// TestOrganisationID in production (where config requires one).
	OrganisationID string
	// LedgerPixLimit is --ledger-pix-limit ("" → no limit).
	LedgerPixLimit string
	Clock          *clock.Fake
	// Addr is the loopback address to listen on; "" picks a free port.
	// Restart reuses the address, so the public URL (the token issuer) stays.
	Addr string
}

// Server is a running Ponte under test.
type Server struct {
	URL      string
	App      *app.App
	Clock    *clock.Fake
	Logs     *LogBuffer
	Options  Options
	Client   *http.Client
	contract *Contract
	srv      *httptest.Server
	// official checks the Open Finance exchanges against the official files.
	official *official
}

// Start starts Ponte and stops it when the test ends.
// TestOrganisationID is the organisation id of a production-mode test server
// started without one.
const TestOrganisationID = "0b7e5f3a-6c2d-4f1e-8a9b-3c4d5e6f7a8b"

func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Mode == "" {
		opts.Mode = config.Sandbox
	}
	if opts.Clock == nil {
		opts.Clock = clock.NewFake(Epoch)
	}
	s := &Server{Clock: opts.Clock, Options: opts, Logs: &LogBuffer{}, contract: LoadContract(t)}
	s.srv = httptest.NewUnstartedServer(nil)
	if opts.Addr != "" {
		s.srv.Listener.Close()
		ln, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			t.Fatalf("listen on %s again: %v", opts.Addr, err)
		}
		s.srv.Listener = ln
	}
	s.Options.Addr = s.srv.Listener.Addr().String()
	s.URL = "http://" + s.srv.Listener.Addr().String()
	cfg := config.Config{
		Addr: s.srv.Listener.Addr().String(), DatabaseURL: opts.DatabaseURL, DataDir: opts.DataDir,
		Mode: opts.Mode, PublicURL: s.URL, KeysDir: opts.KeysDir,
		TokenTTL: 300 * time.Second, LogFormat: "json", ShutdownTimeout: 5 * time.Second, SweepInterval: time.Hour,
		Settlement: opts.Settlement, LedgerPixLimit: opts.LedgerPixLimit, OrganisationID: opts.OrganisationID,
	}
	if opts.KeysDir == "" {
		cfg.SigningKeyFile = filepath.Join(opts.DataDir, "signing-key.pem")
	}
	if cfg.OrganisationID == "" && opts.Mode == config.Production && opts.KeysDir == "" {
		cfg.OrganisationID = TestOrganisationID
	}
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, app.NewLogger(s.Logs, "json"), app.WithClock(opts.Clock))
	if err != nil {
		t.Fatalf("start ponte: %v", err)
	}
	s.App = a
	s.official = newOfficial(t, s)
	s.srv.Config.Handler = s.official.wrap(a, a.Handler())
	if s.official != nil {
		t.Cleanup(func() { // runs after Stop: every exchange is counted
			c := s.Official()
			t.Logf("official files: %d exchanges validated, %d plain-JSON extension exchanges, %d failed", c.Validated, c.Extension, c.Failed)
		})
	}
	s.srv.Start()
	s.Client = &http.Client{Transport: &contractTransport{t: t, c: s.contract, base: http.DefaultTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(s.Stop)
	return s
}

// Stop stops the server and closes the database; safe to call twice.
func (s *Server) Stop() {
	if s.App == nil {
		return
	}
	s.srv.Close()
	s.App.Close()
	s.App = nil
}

// Restart stops this server and starts a new one on the same database, data
// directory and clock, as a process restart would.
func (s *Server) Restart(t testing.TB) *Server {
	t.Helper()
	s.Stop()
	return Start(t, s.Options)
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test if it is not JSON.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response body is not JSON (%v): %s", err, r.Body)
	}
}

// Do sends a request; header values are set verbatim.
func (s *Server) Do(t testing.TB, method, path string, header map[string]string, body string) *Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Token gets an access token for the demo application (client_secret_basic);
// scope "" asks for every granted scope.
func (s *Server) Token(t testing.TB, scope string) string {
	t.Helper()
	return s.TokenFor(t, s.App.Demo.ClientID, s.App.DemoSecret, scope)
}

// TokenFor gets an access token for any client.
func (s *Server) TokenFor(t testing.TB, clientID, secret, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		t.Fatalf("token request: status %d, err %v", resp.StatusCode, err)
	}
	return out.AccessToken
}

// LogBuffer collects log output safely from many goroutines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Lines returns the JSON log records logged so far.
func (l *LogBuffer) Lines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// FollowWallClock keeps c from falling behind the wall clock until the test
// ends, or until stop (a test that then holds time still calls it once the
// journey's tokens are checked). The authorization server (go-oidc) stamps id tokens and checks client
// assertions with the wall clock while Ponte checks them with c, so in a long
// journey test on a loaded machine a clock left at the test's start would
// see id tokens issued "in the future". c still advances when the test says
// so and is never moved back.
func FollowWallClock(t testing.TB, c *clock.Fake) (stop func()) {
	c.CatchUp(time.Now())
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				c.CatchUp(now)
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(done); <-stopped }) }
	t.Cleanup(stop)
	return stop
}

// ChromiumOptions are the options every browser test starts Debian's
// chromium with: headless, no sandbox or GPU, no background traffic, a fresh
// profile in userDataDir, and its output to out (logged when a test fails).
func ChromiumOptions(chromium, userDataDir string, out io.Writer) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(userDataDir),
		chromedp.CombinedOutput(out),
	}
}
