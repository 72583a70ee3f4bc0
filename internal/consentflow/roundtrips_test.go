package consentflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// pgServer starts Ponte on a fresh PostgreSQL schema with a webhook
// subscription to the ticket event, whose deliveries land in got.
func pgServer(t testing.TB) (s *apptest.Server, p *httpx.Principal, got func() [][]byte) {
	t.Helper()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	s = apptest.Start(t, apptest.Options{DatabaseURL: storetest.FreshSchema(t, base)})
	var (
		mu     sync.Mutex
		bodies [][]byte
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	sub := s.Do(t, "POST", "/webhooks/v1/subscriptions", bearer(s.Token(t, "")),
		fmt.Sprintf(`{"url":%q,"events":[%q]}`, receiver.URL, consentflow.EventTicketUsed))
	if sub.Status != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", sub.Status, sub.Body)
	}
	return s, &httpx.Principal{ApplicationID: s.App.Demo.ID, CompanyKey: s.App.Demo.CompanyKey}, func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return append([][]byte(nil), bodies...)
	}
}

// roundTrips runs fn under a round-trip counter and returns the count.
func roundTrips(t *testing.T, fn func(ctx context.Context)) int64 {
	t.Helper()
	ctx, n := store.CountRoundTrips(t.Context())
	fn(ctx)
	return n.N()
}

// TestTicketRoundTripsOnPostgres holds the ticket hot paths to their round
// trips on PostgreSQL (issue 17 §2), counted by the driver's tracer after
// a warm-up (statements are prepared once per connection): a ticket
// created, got or redeemed (with its webhook event, delivery and job) is
// one; a replay of a key, or a key reused with another body, two.
func TestTicketRoundTripsOnPostgres(t *testing.T) {
	t.Parallel()
	s, p, got := pgServer(t)
	tickets := s.App.Tickets
	in := consentflow.CreateTicket{RequestURI: "urn:ietf:params:oauth:request_uri:rt", ClientID: "c", DocumentNumber: "47742663023"}
	other := in
	other.ClientID = "another"

	var last *consentflow.Ticket
	cycle := func(ctx context.Context, key string) {
		c, err := tickets.Create(ctx, p, in, key, "POST /openfinance/consent-flow/ticket")
		if err != nil || c.Replayed {
			t.Fatalf("create: %+v %v", c, err)
		}
		last = c.Ticket
	}
	for i := range 3 { // warm-up: every statement prepared on the connection
		cycle(t.Context(), fmt.Sprintf("warm-%d", i))
		cycle(t.Context(), "")
		if _, err := tickets.Create(t.Context(), p, in, fmt.Sprintf("warm-%d", i), "POST /openfinance/consent-flow/ticket"); err != nil {
			t.Fatal(err)
		}
		if _, err := tickets.Get(t.Context(), p, last.TicketID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tickets.Redeem(t.Context(), last.TicketID); err != nil {
			t.Fatal(err)
		}
	}

	if n := roundTrips(t, func(ctx context.Context) { cycle(ctx, "fresh") }); n != 1 {
		t.Errorf("create with a key: %d round trips, want 1", n)
	}
	if n := roundTrips(t, func(ctx context.Context) { cycle(ctx, "") }); n != 1 {
		t.Errorf("create without a key: %d round trips, want 1", n)
	}
	created := last
	if n := roundTrips(t, func(ctx context.Context) {
		c, err := tickets.Create(ctx, p, in, "fresh", "POST /openfinance/consent-flow/ticket")
		if err != nil || !c.Replayed || c.Ticket.TicketID == created.TicketID {
			t.Errorf("replay: %+v %v", c, err)
		}
	}); n != 2 {
		t.Errorf("replay: %d round trips, want 2 (the insert that finds the key taken, the read of the ticket)", n)
	}
	if n := roundTrips(t, func(ctx context.Context) {
		if _, err := tickets.Create(ctx, p, other, "fresh", "POST /openfinance/consent-flow/ticket"); !errors.Is(err, idempotency.ErrKeyReused) {
			t.Errorf("key reused: %v", err)
		}
	}); n != 2 {
		t.Errorf("key reused with another body: %d round trips, want 2", n)
	}
	if n := roundTrips(t, func(ctx context.Context) {
		if g, err := tickets.Get(ctx, p, created.TicketID); err != nil || g.TicketID != created.TicketID {
			t.Errorf("get: %+v %v", g, err)
		}
	}); n != 1 {
		t.Errorf("get: %d round trips, want 1", n)
	}
	if n := roundTrips(t, func(ctx context.Context) {
		tk, sess, err := tickets.Redeem(ctx, created.TicketID)
		if err != nil || tk.Status != consentflow.TicketUsed || sess.Token == "" {
			t.Errorf("redeem: %+v %+v %v", tk, sess, err)
		}
	}); n != 1 {
		t.Errorf("redeem: %d round trips, want 1", n)
	}
	if n := roundTrips(t, func(ctx context.Context) {
		if _, _, err := tickets.Redeem(ctx, created.TicketID); !errors.Is(err, consentflow.ErrTicketUsed) {
			t.Errorf("redeem again: %v", err)
		}
	}); n != 1 {
		t.Errorf("redeem a used ticket: %d round trips, want 1", n)
	}

	// The event the statement recorded reaches the subscriber, as Emit's would.
	if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, b := range got() {
		var env struct {
			EntityID, CompanyKey, Name string
			Data                       map[string]string
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("event %s: %v", b, err)
		}
		if env.EntityID == created.TicketID {
			found = true
			want := map[string]string{"ticketId": created.TicketID, "status": "USED", "clientId": in.ClientID, "requestUri": in.RequestURI}
			if env.Name != consentflow.EventTicketUsed || env.CompanyKey != p.CompanyKey || fmt.Sprint(env.Data) != fmt.Sprint(want) {
				t.Errorf("event %s", b)
			}
		}
	}
	if !found || len(got()) != 4 {
		t.Errorf("receiver got %d events (ticket's found: %v), want 4: three warm-up redemptions and this one", len(got()), found)
	}
}

// TestTicketRequestRoundTripsOnPostgres measures what a whole HTTP request
// pays on PostgreSQL, middleware and token verification included, and
// holds it there: the ticket API's requests pay only the service's round
// trips (verifying the bearer token reads nothing while auth caches the
// application, 2 s; the test's clock stands still); the WebView's page is
// the redemption alone, which reads the names it shows.
func TestTicketRequestRoundTripsOnPostgres(t *testing.T) {
	t.Parallel()
	s, _, _ := pgServer(t)
	h := s.App.Handler()
	token := s.Token(t, "")
	do := func(ctx context.Context, method, target string, header map[string]string, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
		for k, v := range header {
			r.Header.Set(k, v)
		}
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	var tk consentflow.TicketJSON
	create := func(ctx context.Context, key string) int {
		w := do(ctx, "POST", ticketPath, bearer(token, "idempotencyKey", key), seedBody)
		if err := json.Unmarshal(w.Body.Bytes(), &tk); err != nil {
			t.Fatalf("create: %d %s", w.Code, w.Body)
		}
		return w.Code
	}
	for i := range 3 {
		create(t.Context(), fmt.Sprint("warm-", i))
		create(t.Context(), fmt.Sprint("warm-", i))
		do(t.Context(), "GET", ticketPath+"/"+tk.TicketID, bearer(token), "")
		do(t.Context(), "GET", consentflow.PathWebView+"?ticket="+tk.TicketID, nil, "")
	}

	for _, c := range []struct {
		name   string
		status int
		max    int64
		run    func(ctx context.Context) int
	}{
		{"POST ticket", http.StatusCreated, 1, func(ctx context.Context) int { return create(ctx, "measured") }},
		{"POST ticket (replay)", http.StatusCreated, 2, func(ctx context.Context) int { return create(ctx, "measured") }},
		{"GET ticket", http.StatusOK, 1, func(ctx context.Context) int {
			return do(ctx, "GET", ticketPath+"/"+tk.TicketID, bearer(token), "").Code
		}},
		// The redemption's statement also reads the names the page shows
		// (the initiator's registered name, the partner's).
		{"GET webview", http.StatusOK, 1, func(ctx context.Context) int {
			w := do(ctx, "GET", consentflow.PathWebView+"?ticket="+tk.TicketID, nil, "")
			// The names the statement read: the sandbox demo partner's; no
			// initiator is registered with the ticket's clientId.
			if body := w.Body.String(); !strings.Contains(body, s.App.Demo.Name+" · Open Finance") || strings.Contains(body, `id="initiator"`) {
				t.Errorf("webview page: %s", body)
			}
			return w.Code
		}},
	} {
		var status int
		n := roundTrips(t, func(ctx context.Context) { status = c.run(ctx) })
		t.Logf("%s: %d round trips for the whole request", c.name, n)
		if status != c.status {
			t.Errorf("%s: status %d, want %d", c.name, status, c.status)
		}
		if n > c.max {
			t.Errorf("%s: %d round trips for the whole request, want at most %d", c.name, n, c.max)
		}
	}
}

// TestTicketRacesOnPostgres: twenty redemptions of one ticket at once open
// one session and record one event, the others get ErrTicketUsed; twenty
// creations with one key make one ticket and all answer it.
func TestTicketRacesOnPostgres(t *testing.T) {
	t.Parallel()
	s, p, _ := pgServer(t)
	tickets := s.App.Tickets
	in := consentflow.CreateTicket{RequestURI: "r", ClientID: "c", DocumentNumber: "47742663023"}
	const n = 20

	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := tickets.Create(t.Context(), p, in, "race", "POST /openfinance/consent-flow/ticket")
			if err == nil {
				ids[i] = c.Ticket.TicketID
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("create %d: %s %v, want %s", i, ids[i], errs[i], ids[0])
		}
	}

	won := 0
	for i := range n {
		wg.Go(func() {
			_, _, errs[i] = tickets.Redeem(t.Context(), ids[0])
		})
	}
	wg.Wait()
	for i := range n {
		switch {
		case errs[i] == nil:
			won++
		case !errors.Is(errs[i], consentflow.ErrTicketUsed):
			t.Errorf("redeem %d: %v, want ErrTicketUsed", i, errs[i])
		}
	}
	count := func(query string) int {
		var c int
		if err := s.App.DB.Read().QueryRow(query).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if won != 1 || count(`SELECT COUNT(*) FROM consent_flow_tickets`) != 1 || count(`SELECT COUNT(*) FROM holder_sessions`) != 1 ||
		count(`SELECT COUNT(*) FROM webhook_events`) != 1 || count(`SELECT COUNT(*) FROM webhook_deliveries`) != 1 {
		t.Errorf("%d winners, %d tickets, %d sessions, %d events, %d deliveries; want one each", won,
			count(`SELECT COUNT(*) FROM consent_flow_tickets`), count(`SELECT COUNT(*) FROM holder_sessions`),
			count(`SELECT COUNT(*) FROM webhook_events`), count(`SELECT COUNT(*) FROM webhook_deliveries`))
	}
}

// TestTicketEventInTransactionOnPostgres: a ticket whose requestUri holds
// a run of digits that may be a card number (webhooks.SuspectPattern)
// cannot be checked by the one statement; its redemption takes the
// transaction, where Emit decides as on SQLite: an event for a harmless
// number, a refusal (and nothing written) for a card number. A digit run
// that cannot be a card stays on the one-statement path.
func TestTicketEventInTransactionOnPostgres(t *testing.T) {
	t.Parallel()
	s, p, _ := pgServer(t)
	tickets := s.App.Tickets
	redeem := func(uri string) (int64, error) {
		c, err := tickets.Create(t.Context(), p, consentflow.CreateTicket{RequestURI: uri, ClientID: "c", DocumentNumber: "47742663023"}, "", "POST /openfinance/consent-flow/ticket")
		if err != nil {
			t.Fatal(err)
		}
		var rerr error
		n := roundTrips(t, func(ctx context.Context) { _, _, rerr = tickets.Redeem(ctx, c.Ticket.TicketID) })
		return n, rerr
	}
	events := func() (n int) {
		if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM webhook_events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Warm up both paths, so that the counts below are the steady state
	// (a statement the guard failed is prepared again on its next use).
	for _, uri := range []string{"urn:x:4111111111111112", "urn:x:warm", "urn:x:warm"} {
		if _, err := redeem(uri); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := redeem("urn:x:1234567890123"); err != nil || n != 1 || events() != 4 {
		t.Errorf("digits that cannot be a card: %v after %d round trips, %d events; want one statement, 4 events", err, n, events())
	}
	if n, err := redeem("urn:x:4111111111111112"); err != nil || n < 3 || events() != 5 {
		t.Errorf("digits like a card, not one (Luhn): %v after %d round trips, %d events; want redeemed in a transaction, 5 events", err, n, events())
	}
	if _, err := redeem("urn:x:4111111111111111"); err == nil || events() != 5 {
		t.Errorf("card number: %v, %d events; want refused, 5 events", err, events())
	}
	var sessions int
	if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM holder_sessions`).Scan(&sessions); err != nil || sessions != 5 {
		t.Errorf("%d sessions (%v), want 5", sessions, err)
	}
}
