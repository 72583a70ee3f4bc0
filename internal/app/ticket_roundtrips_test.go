package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

// pushedPaymentRequest makes, on s, a payment consent for the logged user
// 47742663023 and its pushed authorization request, and returns the
// request's request_uri and the initiator's client id.
func pushedPaymentRequest(t testing.TB, s *apptest.Server) (requestURI, clientID string) {
	t.Helper()
	itp, _, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Initiator", CompanyKey: "ITP",
		Scopes: []string{"payments"}, AcceptPlainJSON: true})
	if err != nil {
		t.Fatal(err)
	}
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, itp.ClientID)
	status, cc := in.ClientCredentials(t, oidctest.NoRedirects(), s.URL, "payments")
	if status != http.StatusOK {
		t.Fatalf("client_credentials: %d %v", status, cc)
	}
	r := s.Do(t, "POST", "/open-banking/payments/v4/consents", map[string]string{
		"Authorization": "Bearer " + cc["access_token"].(string), "x-fapi-interaction-id": "d78fc4e5-37ca-4da3-adf2-9b082bf92280",
		"x-idempotency-key": "consent-1"}, consentBody)
	if r.Status != 201 {
		t.Fatalf("consent: %d %s", r.Status, r.Body)
	}
	var consent struct {
		Data struct {
			ConsentID string `json:"consentId"`
		} `json:"data"`
	}
	r.JSON(t, &consent)
	resp := in.PAR(t, oidctest.NoRedirects(), s.URL, oidctest.NewRequest(consent.Data.ConsentID))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("par: %d %s", resp.StatusCode, body)
	}
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	if err := json.Unmarshal(body, &par); err != nil {
		t.Fatal(err)
	}
	return par.RequestURI, in.ClientID
}

// TestProductionTicketRoundTripsOnPostgres holds a ticket create outside
// the sandbox to its round trips on PostgreSQL (issue 17 §2), counted by
// the driver's tracer after a warm-up: the check of the pushed request and
// of its consent's logged user is part of the insert's statement, so an
// accepted ticket is one round trip, with or without a key; a refusal is
// one too (with a key, two: the read that shows the key holds no replay);
// a replay two. A refusal writes nothing, and leaves its key free. The
// whole HTTP request is the create's one round trip.
func TestProductionTicketRoundTripsOnPostgres(t *testing.T) {
	t.Parallel()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	s := apptest.Start(t, apptest.Options{DatabaseURL: storetest.FreshSchema(t, base), Mode: config.Production})
	partner, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Holder partner", CompanyKey: "ACESSO",
		Scopes: []string{"openfinance.ticket.write"}, AcceptPlainJSON: true})
	if err != nil {
		t.Fatal(err)
	}
	p := &httpx.Principal{ApplicationID: partner.ID, CompanyKey: partner.CompanyKey}
	requestURI, clientID := pushedPaymentRequest(t, s)
	token := s.TokenFor(t, partner.ClientID, secret, "")
	const route = "POST /openfinance/consent-flow/ticket"
	good := consentflow.CreateTicket{RequestURI: requestURI, ClientID: clientID, DocumentNumber: "47742663023"}
	unknown, otherClient, otherDocument := good, good, good
	unknown.RequestURI = "urn:ietf:params:oauth:request_uri:unknown"
	otherClient.ClientID = "another-client"
	otherDocument.DocumentNumber = "52998224725"
	tickets := func() (n int) {
		if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM consent_flow_tickets`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	create := func(ctx context.Context, in consentflow.CreateTicket, key string) (consentflow.Created, error) {
		return s.App.Tickets.Create(ctx, p, in, key, route)
	}
	for i := range 3 { // warm-up: every statement prepared on the connections
		for _, in := range []consentflow.CreateTicket{good, unknown, otherDocument} {
			_, _ = create(t.Context(), in, "")
			_, _ = create(t.Context(), in, fmt.Sprint("warm-", i))
		}
		_, _ = create(t.Context(), good, fmt.Sprint("warm-", i))
	}

	for _, c := range []struct {
		name     string
		in       consentflow.CreateTicket
		key      string
		want     error // nil: created (replayed when replay)
		replay   bool
		trips    int64
		advance  time.Duration
		inserted int
	}{
		{"accepted", good, "", nil, false, 1, 0, 1},
		{"accepted with a key", good, "k1", nil, false, 1, 0, 1},
		{"replay", good, "k1", nil, true, 2, 0, 0},
		{"key reused with another body", otherDocument, "k1", idempotency.ErrKeyReused, false, 2, 0, 0},
		{"requestUri not found", unknown, "", consentflow.ErrRequestURINotFound, false, 1, 0, 0},
		{"another client's request", otherClient, "", consentflow.ErrRequestURINotFound, false, 1, 0, 0},
		{"another document", otherDocument, "", consentflow.ErrDocumentMismatch, false, 1, 0, 0},
		{"another document with a key", otherDocument, "k2", consentflow.ErrDocumentMismatch, false, 2, 0, 0},
		{"the refused request's key is free", good, "k2", nil, false, 1, 0, 1},
		{"expired at 60 s", good, "", consentflow.ErrRequestURINotFound, false, 1, time.Minute, 0},
	} {
		s.Clock.Advance(c.advance)
		before := tickets()
		var (
			out  consentflow.Created
			cerr error
		)
		ctx, n := store.CountRoundTrips(t.Context())
		out, cerr = create(ctx, c.in, c.key)
		switch {
		case c.want != nil:
			if !errors.Is(cerr, c.want) {
				t.Errorf("%s: %v, want %v", c.name, cerr, c.want)
			}
		case cerr != nil || out.Replayed != c.replay || out.Ticket == nil:
			t.Errorf("%s: %+v %v, want created (replayed %v)", c.name, out, cerr, c.replay)
		}
		if n.N() != c.trips {
			t.Errorf("%s: %d round trips, want %d", c.name, n.N(), c.trips)
		}
		if got := tickets() - before; got != c.inserted {
			t.Errorf("%s: %d tickets written, want %d", c.name, got, c.inserted)
		}
	}

	// The whole HTTP request, token verification included (auth caches the
	// application; the test's clock stands still): the create's one.
	requestURI, clientID = pushedPaymentRequest(t, s)
	body, _ := json.Marshal(map[string]string{"requestUri": requestURI, "clientId": clientID, "documentNumber": "47742663023"})
	post := func(ctx context.Context) int {
		r := httptest.NewRequestWithContext(ctx, "POST", "/openfinance/consent-flow/ticket", strings.NewReader(string(body)))
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.App.Handler().ServeHTTP(w, r)
		return w.Code
	}
	for range 3 {
		post(t.Context())
	}
	ctx, trips := store.CountRoundTrips(t.Context())
	if status := post(ctx); status != http.StatusCreated || trips.N() != 1 {
		t.Errorf("POST ticket: %d after %d round trips, want 201 after 1", status, trips.N())
	}

	// Twenty creates with one key at once, on a live request: one ticket,
	// every caller answered with it.
	requestURI, clientID = pushedPaymentRequest(t, s)
	race := consentflow.CreateTicket{RequestURI: requestURI, ClientID: clientID, DocumentNumber: "47742663023"}
	const n = 20
	ids, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	before := tickets()
	for i := range n {
		wg.Go(func() {
			out, err := create(t.Context(), race, "race")
			if err == nil {
				ids[i] = out.Ticket.TicketID
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("racing create %d: %s %v, want %s", i, ids[i], errs[i], ids[0])
		}
	}
	if got := tickets() - before; got != 1 {
		t.Errorf("racing creates wrote %d tickets, want 1", got)
	}
}

// TestJourneyWebViewRoundTripsOnPostgres holds what the WebView costs on
// PostgreSQL when its ticket leads to an open interaction (the journey
// page), for each kind of consent: the redemption's statement (which also
// reads the initiator's name and the interaction), the partner (by its id)
// and the consent the page shows, read straight from the read pool — one
// query whatever its kind (recurring and data-sharing kinds refuse
// another's id without reading). Interactions.Consent alone is held to one
// round trip too, an unknown id included.
func TestJourneyWebViewRoundTripsOnPostgres(t *testing.T) {
	t.Parallel()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	// The initiator is the demo application, whose client id is a random
	// UUID: one that webhooks.SuspectPattern takes for a possible card
	// number (rare) leaves the redemption to the transaction, so such a
	// server is started again.
	suspect := regexp.MustCompile(webhooks.SuspectPattern)
	s := apptest.Start(t, apptest.Options{DatabaseURL: storetest.FreshSchema(t, base)})
	for i := 0; suspect.MatchString(s.App.Demo.ClientID); i++ {
		if i == 5 {
			t.Fatalf("demo client ids like card numbers five times (%s)", s.App.Demo.ClientID)
		}
		s = apptest.Start(t, apptest.Options{DatabaseURL: storetest.FreshSchema(t, base)})
	}
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
	h := s.App.Handler()
	p := &httpx.Principal{ApplicationID: s.App.Demo.ID, CompanyKey: s.App.Demo.CompanyKey}
	// authorize pushes consentID's request with scope and follows
	// /authorize to the partner app's deep link.
	authorize := func(consentID, scope string) *url.URL {
		req := oidctest.NewRequest(consentID)
		j := newJourney(s, in)
		return location(t, j.get(t, authorizeURL(s, in, pushPAR(t, s, in, req, scope))))
	}
	for _, c := range []struct {
		kind, marker string
		deepLink     func() *url.URL
	}{
		{"payment", `data-kind-name="payment"`, func() *url.URL { _, resp := startJourney(t, s, in, phoneUA, ""); return location(t, resp) }},
		{"sweeping", `data-kind-name="sweeping"`, func() *url.URL { id := createRecurring(t, s); return authorize(id, sweepingScope(id)) }},
		{"data", `data-kind-name="data"`, func() *url.URL {
			id := createDataConsent(t, s)
			return authorize(id, "openid consents consent:"+id)
		}},
	} {
		page := func() (trips int64) {
			deepLink := c.deepLink()
			created, err := s.App.Tickets.Create(t.Context(), p, consentflow.CreateTicket{RequestURI: deepLink.Query().Get("request_uri"),
				ClientID: deepLink.Query().Get("client_id"), DocumentNumber: "47742663023"}, "", "POST /openfinance/consent-flow/ticket")
			if err != nil {
				t.Fatal(err)
			}
			ctx, n := store.CountRoundTrips(t.Context())
			r := httptest.NewRequestWithContext(ctx, "GET", consentflow.PathWebView+"?ticket="+created.Ticket.TicketID, nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			body := w.Body.String()
			if w.Code != http.StatusOK || !strings.Contains(body, `data-interaction="`) || !strings.Contains(body, "Test initiator "+in.ClientID) ||
				!strings.Contains(body, c.marker) {
				t.Fatalf("%s webview: %d %s", c.kind, w.Code, body)
			}
			return n.N()
		}
		page() // warm-up: statements prepared on the connections
		page()
		n := page()
		t.Logf("the %s journey page: %d round trips for the whole request", c.kind, n)
		if n != 3 {
			t.Errorf("the %s journey page: %d round trips, want 3 (redemption, partner, consent)", c.kind, n)
		}
	}

	ids := map[string]string{"payment": createConsent(t, s, s.Token(t, "payments"), consentBody),
		"sweeping": createRecurring(t, s), "data": createDataConsent(t, s), "unknown": "urn:ponte:" + uuid.NewString()}
	for kind, id := range ids {
		ctx, n := store.CountRoundTrips(t.Context())
		v, err := s.App.Interactions.Consent(ctx, &consentflow.Interaction{ConsentID: id})
		switch {
		case kind == "unknown":
			if !errors.Is(err, consentflow.ErrConsentNotFound) {
				t.Errorf("unknown consent: %v, %v; want ErrConsentNotFound", v, err)
			}
		case err != nil || v.Kind != kind || v.ID != id:
			t.Errorf("%s consent: %+v, %v", kind, v, err)
		}
		if n.N() != 1 {
			t.Errorf("%s consent: %d round trips, want 1", kind, n.N())
		}
	}
}

// BenchmarkProductionTicketCreateOnPostgres creates tickets outside the
// sandbox on PostgreSQL, the requestUri check included, one at a time and
// from parallel callers.
func BenchmarkProductionTicketCreateOnPostgres(b *testing.B) {
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		b.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	s := apptest.Start(b, apptest.Options{DatabaseURL: storetest.FreshSchema(b, base), Mode: config.Production})
	partner, _, err := s.App.Apps.Create(b.Context(), auth.NewApplication{Name: "Holder partner", CompanyKey: "ACESSO",
		Scopes: []string{"openfinance.ticket.write"}, AcceptPlainJSON: true})
	if err != nil {
		b.Fatal(err)
	}
	p := &httpx.Principal{ApplicationID: partner.ID, CompanyKey: partner.CompanyKey}
	requestURI, clientID := pushedPaymentRequest(b, s)
	in := consentflow.CreateTicket{RequestURI: requestURI, ClientID: clientID, DocumentNumber: "47742663023"}
	create := func() {
		if _, err := s.App.Tickets.Create(b.Context(), p, in, "", "POST /openfinance/consent-flow/ticket"); err != nil {
			b.Error(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			create()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				create()
			}
		})
	})
}

// BenchmarkWebViewOnPostgres opens the WebView for sandbox tickets (the
// page without an interaction) on PostgreSQL over the whole HTTP handler,
// a ticket created before each: with the names read by the redemption's
// statement, and read by the page as before (PageNames unset).
func BenchmarkWebViewOnPostgres(b *testing.B) {
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		b.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	s := apptest.Start(b, apptest.Options{DatabaseURL: storetest.FreshSchema(b, base)})
	p := &httpx.Principal{ApplicationID: s.App.Demo.ID, CompanyKey: s.App.Demo.CompanyKey}
	in := consentflow.CreateTicket{RequestURI: "urn:ietf:params:oauth:request_uri:bench", ClientID: "c", DocumentNumber: "47742663023"}
	h := s.App.Handler()
	open := func(b *testing.B) {
		for b.Loop() {
			c, err := s.App.Tickets.Create(b.Context(), p, in, "", "POST /openfinance/consent-flow/ticket")
			if err != nil {
				b.Fatal(err)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", consentflow.PathWebView+"?ticket="+c.Ticket.TicketID, nil))
			if w.Code != http.StatusOK {
				b.Fatalf("webview: %d", w.Code)
			}
		}
	}
	b.Run("names in the statement", open)
	s.App.Tickets.ReadPageNames(nil)
	b.Run("names read by the page", open)
}
