package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/directory"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// instance is one `ponte serve` of several sharing one database.
type instance struct {
	App *app.App
	URL string
}

// startInstances starts n instances of Ponte on one fresh PostgreSQL schema,
// with one key set (the same data directory), one public URL (the token
// issuer: they stand behind one load balancer) and one fake clock. The
// first is started alone, so the sandbox's seed is made once.
func startInstances(t *testing.T, n int) ([]*instance, *clock.Fake) {
	t.Helper()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("several instances share one database only on PostgreSQL: set " + storetest.EnvVar)
	}
	dbURL := storetest.FreshSchema(t, base)
	dir := t.TempDir()
	clk := clock.NewFake(apptest.Epoch)
	lns := make([]net.Listener, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	public := "http://" + lns[0].Addr().String()
	out := make([]*instance, n)
	for i, ln := range lns {
		cfg := config.Config{
			Addr: ln.Addr().String(), DatabaseURL: dbURL, DataDir: dir, Mode: config.Sandbox, PublicURL: public,
			TokenTTL: 300 * time.Second, LogFormat: "json", ShutdownTimeout: 5 * time.Second, SweepInterval: time.Hour,
			Instance: fmt.Sprintf("i%d", i),
		}
		if err := cfg.Finish(); err != nil {
			t.Fatal(err)
		}
		a, err := app.New(t.Context(), cfg, app.NewLogger(io.Discard, "json"), app.WithClock(clk))
		if err != nil {
			t.Fatalf("start instance %d: %v", i, err)
		}
		srv := httptest.NewUnstartedServer(a.Handler())
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		t.Cleanup(func() { srv.Close(); a.Close() })
		out[i] = &instance{App: a, URL: "http://" + ln.Addr().String()}
	}
	return out, clk
}

func (in *instance) do(t *testing.T, method, path string, header map[string]string, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, in.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// token asks in for a client_credentials token; it returns the status and
// the token.
func (in *instance) token(t *testing.T, clientID, secret string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", in.URL+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.AccessToken
}

// The documented bounds (docs/deployment.md, "Caches and their bounds").
const (
	applicationBound = 2 * time.Second  // auth: the enabled-application cache of token verification
	itpConfigBound   = 2 * time.Second  // itp: brands, journeys and settings read by journey-session create
	brandClientBound = 15 * time.Minute // app: a brand's FAPI client with the discovery and JWKS it fetched
)

// cacheCase is one cache of the table in docs/deployment.md: a change made
// through instance A, and how instance B shows it.
type cacheCase struct {
	name string
	// bound is how long B may keep the old value (0: never).
	bound time.Duration
	// setup prepares the case and returns change (made through A) and
	// current, which reports whether B shows the new value (read through B,
	// warming its cache when first called before change).
	setup func(t *testing.T, a, b *instance, clk *clock.Fake) (change func(), current func() bool)
}

// TestCachesAcrossInstances checks each cache that spans requests: after a
// change through instance A, instance B shows the old value until the
// documented bound and the new one from then on (or at once, bound 0).
func TestCachesAcrossInstances(t *testing.T) {
	ins, clk := startInstances(t, 2)
	a, b := ins[0], ins[1]
	for _, c := range []cacheCase{
		{name: "application disabled: its tokens", bound: applicationBound, setup: disabledApplication},
		{name: "client secret rotated", bound: 0, setup: rotatedSecret},
		{name: "plain-JSON flag cleared: payment consent create", bound: 0, setup: clearedPlainJSON},
		{name: "application disabled: journey-session create", bound: 0, setup: disabledSessionApplication},
		{name: "brand organisation changed: the FAPI client at the brand", bound: 0, setup: changedBrandOrganisation},
		{name: "brand's own discovery and keys: the FAPI client at the brand", bound: brandClientBound, setup: rebuiltBrandClient},
		{name: "brand disabled: journey-session create", bound: itpConfigBound, setup: disabledBrand},
		{name: "default journey changed: journey-session create", bound: itpConfigBound, setup: changedDefaultJourney},
		{name: "sandbox keystore JWKS changed: dynamic registration's client keys", bound: 0, setup: changedSandboxJWKS},
	} {
		t.Run(c.name, func(t *testing.T) {
			change, current := c.setup(t, a, b, clk)
			if current() {
				t.Fatal("B shows the new value before the change")
			}
			change()
			if c.bound > 0 {
				clk.Advance(c.bound - time.Millisecond)
				if current() {
					t.Errorf("B shows the new value before the bound: is the cache (bound %v) still there? Update docs/deployment.md", c.bound)
				}
				clk.Advance(time.Millisecond)
			}
			if !current() {
				t.Errorf("B still shows the old value after the change (bound %v)", c.bound)
			}
		})
	}
}

// newApplication makes a partner application through in and returns it and
// its secret.
func newApplication(t *testing.T, in *instance, name string) (*auth.Application, string) {
	t.Helper()
	a, secret, err := in.App.Apps.Create(t.Context(), auth.NewApplication{Name: name, CompanyKey: strings.ToUpper(name),
		Scopes: []string{"app", "openfinance.ticket.read"}, RedirectURLs: []string{fintechDone}})
	if err != nil {
		t.Fatal(err)
	}
	return a, secret
}

func disabledApplication(t *testing.T, a, b *instance, _ *clock.Fake) (func(), func() bool) {
	fintech, secret := newApplication(t, a, "disabled")
	status, tok := a.token(t, fintech.ClientID, secret)
	if status != 200 {
		t.Fatalf("token: %d", status)
	}
	refused := func(in *instance) bool {
		status, body := in.do(t, "GET", "/openfinance/consent-flow/ticket/0123456789abcdef0123456789abcdef",
			map[string]string{"Authorization": "Bearer " + tok}, "")
		switch status {
		case 404: // the token was accepted: no such ticket
			return false
		case 401:
			return true
		}
		t.Fatalf("ticket read: %d %s", status, body)
		return false
	}
	return func() {
			if _, err := a.App.Apps.Disable(t.Context(), fintech.ID); err != nil {
				t.Fatal(err)
			}
			if !refused(a) {
				t.Error("A accepts the disabled application's token")
			}
		}, func() bool {
			return refused(b)
		}
}

func rotatedSecret(t *testing.T, a, b *instance, _ *clock.Fake) (func(), func() bool) {
	fintech, secret := newApplication(t, a, "rotated")
	var fresh string
	return func() {
			var err error
			if _, fresh, err = a.App.Apps.RotateSecret(t.Context(), fintech.ID); err != nil {
				t.Fatal(err)
			}
		}, func() bool {
			old, _ := b.token(t, fintech.ClientID, secret)
			if fresh == "" {
				return old != 200
			}
			now, _ := b.token(t, fintech.ClientID, fresh)
			if (old == 200) == (now == 200) {
				t.Fatalf("B answers %d to the old secret and %d to the new one", old, now)
			}
			return now == 200
		}
}

func clearedPlainJSON(t *testing.T, a, b *instance, _ *clock.Fake) (func(), func() bool) {
	fintech, secret, err := a.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Plain", CompanyKey: "PLAIN",
		Scopes: []string{"payments"}, AcceptPlainJSON: true})
	if err != nil {
		t.Fatal(err)
	}
	status, tok := a.token(t, fintech.ClientID, secret)
	if status != 200 {
		t.Fatalf("token: %d", status)
	}
	return func() {
			if _, err := a.App.Apps.SetAcceptPlainJSON(t.Context(), fintech.ID, false); err != nil {
				t.Fatal(err)
			}
		}, func() bool {
			status, body := b.do(t, "POST", payments.ConsentsPath, map[string]string{"Authorization": "Bearer " + tok,
				"x-fapi-interaction-id": uuid.NewString(), "x-idempotency-key": uuid.NewString()}, consentBody)
			switch {
			case status == 201:
				return false
			case status >= 400 && status < 500:
				return true // a plain JSON body refused
			}
			t.Fatalf("consent: %d %s", status, body)
			return false
		}
}

// disabledSessionApplication: token verification may accept a disabled
// application's token for its 2 s, but journey-session create checks the
// application itself and refuses at once.
func disabledSessionApplication(t *testing.T, a, b *instance, _ *clock.Fake) (func(), func() bool) {
	fintech, tok := sessionFlowOn(t, a, "sessions", "sessions")
	return func() {
			if _, err := a.App.Apps.Disable(t.Context(), fintech.ID); err != nil {
				t.Fatal(err)
			}
		}, func() bool {
			status, resp := b.do(t, "POST", "/open-keys/itp/api/v2/sweeping-accounts/v2/journeys-sessions",
				map[string]string{"Authorization": "Bearer " + tok}, `{"journeyId":"sessions"}`)
			switch {
			case status == 200:
				return false
			case status >= 400 && status < 500:
				return true
			}
			t.Fatalf("create session: %d %s", status, resp)
			return false
		}
}

// sessionFlowOn makes an application and a journey (alias) through a and
// returns a token of the application good on every instance.
func sessionFlowOn(t *testing.T, a *instance, name string, aliases ...string) (*auth.Application, string) {
	t.Helper()
	fintech, secret := newApplication(t, a, name)
	for _, alias := range aliases {
		if _, err := a.App.ITP.CreateJourney(t.Context(), itp.Journey{Alias: alias, Name: alias}); err != nil {
			t.Fatal(err)
		}
	}
	status, tok := a.token(t, fintech.ClientID, secret)
	if status != 200 {
		t.Fatalf("token: %d", status)
	}
	return fintech, tok
}

func createSession(t *testing.T, in *instance, tok, body string) (int, map[string]any) {
	t.Helper()
	status, resp := in.do(t, "POST", "/open-keys/itp/api/v2/sweeping-accounts/v2/journeys-sessions",
		map[string]string{"Authorization": "Bearer " + tok}, body)
	var out map[string]any
	_ = json.Unmarshal([]byte(resp), &out)
	if status != 200 && status != 422 {
		t.Fatalf("create session: %d %s", status, resp)
	}
	return status, out
}

func changedBrandOrganisation(t *testing.T, a, b *instance, _ *clock.Fake) (func(), func() bool) {
	brand, org := a.App.SandboxBrandID, uuid.NewString()
	return func() {
			if _, err := a.App.ITP.SetBrandOrganisation(t.Context(), brand, org); err != nil {
				t.Fatal(err)
			}
		}, func() bool {
			c, err := b.App.ITPFlow.Brands.Client(t.Context(), brand)
			if err != nil {
				t.Fatal(err)
			}
			return c.BrandOrganisationID == org
		}
}

// rebuiltBrandClient: the change is at the brand (its discovery document or
// keys), so it is seen when B builds the brand's client anew and fetches them.
func rebuiltBrandClient(t *testing.T, _, b *instance, _ *clock.Fake) (func(), func() bool) {
	brand := b.App.SandboxBrandID
	first, err := b.App.ITPFlow.Brands.Client(t.Context(), brand)
	if err != nil {
		t.Fatal(err)
	}
	return func() {}, func() bool {
		c, err := b.App.ITPFlow.Brands.Client(t.Context(), brand)
		if err != nil {
			t.Fatal(err)
		}
		return c != first
	}
}

func disabledBrand(t *testing.T, a, b *instance, _ *clock.Fake) (func(), func() bool) {
	_, tok := sessionFlowOn(t, a, "branded", "branded")
	brand := a.App.SandboxBrandID
	return func() {
			if _, err := a.App.ITP.DisableBrand(t.Context(), brand); err != nil {
				t.Fatal(err)
			}
		}, func() bool {
			status, _ := createSession(t, b, tok, `{"journeyId":"branded","brandId":"`+brand+`"}`)
			return status == 422 // brandId: brand not available in this journey
		}
}

func changedDefaultJourney(t *testing.T, a, b *instance, _ *clock.Fake) (func(), func() bool) {
	fintech, tok := sessionFlowOn(t, a, "defaulted", "first", "second")
	if err := a.App.ITP.SetDefaultJourney(t.Context(), fintech.ID, "first"); err != nil {
		t.Fatal(err)
	}
	first, err := a.App.ITP.Journey(t.Context(), "first")
	if err != nil {
		t.Fatal(err)
	}
	return func() {
			if err := a.App.ITP.SetDefaultJourney(t.Context(), fintech.ID, "second"); err != nil {
				t.Fatal(err)
			}
		}, func() bool {
			status, out := createSession(t, b, tok, `{}`)
			if status != 200 {
				t.Fatalf("create session: %d %v", status, out)
			}
			id, _ := out["id"].(string)
			sess, err := b.App.ITP.Session(t.Context(), fintech.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			return sess.JourneyID != first.ID
		}
}

// ecJWKS is a one-key public JWKS with key id kid.
func ecJWKS(t *testing.T, kid string) json.RawMessage {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func changedSandboxJWKS(t *testing.T, a, b *instance, _ *clock.Fake) (func(), func() bool) {
	req := directory.IssueRequest{OrgID: uuid.NewString(), SoftwareID: uuid.NewString(), Roles: []string{directory.RolePayments},
		RedirectURIs: []string{fintechDone}, JWKS: ecJWKS(t, "old")}
	if _, _, err := a.App.Directory.Sandbox.Issue(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	uri := directory.KeystoreJWKSURI(b.App.Directory.Keystore, req.OrgID, req.SoftwareID)
	return func() {
			req.JWKS = ecJWKS(t, "new")
			if _, _, err := a.App.Directory.Sandbox.Issue(t.Context(), req); err != nil {
				t.Fatal(err)
			}
		}, func() bool {
			set, err := b.App.Directory.ClientJWKS(t.Context(), uri)
			if err != nil {
				t.Fatal(err)
			}
			return len(set.Key("new")) == 1
		}
}

// TestJWKSCacheAcrossInstances checks the bound of the JWKS cache for a key
// set served elsewhere (a registered client's jwks_uri at the real keystore,
// the Directory's keys by URL): each instance uses what it fetched for the
// answer's max-age (clamped to 1 minute … 24 hours; 10 minutes without
// one), and fetches again at once, at most once a minute, for a key id it
// does not know.
func TestJWKSCacheAcrossInstances(t *testing.T) {
	ins, clk := startInstances(t, 2)
	var (
		mu      sync.Mutex
		jwks    = ecJWKS(t, "k1")
		fetches int
	)
	keystore := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(keystore.Close)
	uri := keystore.URL + "/org/software/application.jwks"
	kids := func(in *instance) string {
		set, err := in.App.Directory.ClientJWKS(context.Background(), uri)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range set.Keys {
			out = append(out, k.KeyID)
		}
		return strings.Join(out, ",")
	}
	for _, in := range ins {
		if got := kids(in); got != "k1" {
			t.Fatalf("first read: %q", got)
		}
	}
	mu.Lock()
	jwks = ecJWKS(t, "k2") // the software rotates its key at the keystore
	mu.Unlock()
	clk.Advance(300*time.Second - time.Millisecond)
	for i, in := range ins {
		if got := kids(in); got != "k1" {
			t.Errorf("instance %d before max-age: %q, want the cached k1", i, got)
		}
	}
	clk.Advance(time.Millisecond)
	for i, in := range ins {
		if got := kids(in); got != "k2" {
			t.Errorf("instance %d at max-age: %q, want k2", i, got)
		}
	}

	// A key id the cache does not know is fetched at once (a rotation seen
	// by the signer first), once a minute at most.
	mu.Lock()
	jwks = ecJWKS(t, "k3")
	mu.Unlock()
	clk.Advance(time.Minute)
	if _, err := ins[1].App.Directory.Keys.Key(context.Background(), uri, "k3"); err != nil {
		t.Errorf("unknown kid k3: %v, want it fetched", err)
	}
	mu.Lock()
	n := fetches
	mu.Unlock()
	if n != 5 {
		t.Errorf("%d fetches of the key set, want 5 (2 first reads, 2 after max-age, 1 for the unknown kid)", n)
	}
}
