package pcm_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/officialspec"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

var (
	specOnce sync.Once
	specVal  *pcm.SpecValidator
	specErr  error
)

// officialValidator loads the official PCM hybrid-flow file through
// PONTE_SPECS_DIR; nil when the variable is unset.
func officialValidator(t testing.TB) *pcm.SpecValidator {
	t.Helper()
	path, ok := officialspec.Path(t, "pcm-hybrid-flow-1.0.4.yaml")
	if !ok {
		return nil
	}
	specOnce.Do(func() { specVal, specErr = pcm.LoadSpecValidator(path) })
	if specErr != nil {
		t.Fatalf("load the official PCM specification: %v", specErr)
	}
	return specVal
}

const orgID = "56411f7e-d58b-44a8-8a2b-ff326d3f2955"

// stepEvent returns the i-th test event: the six steps in turn, each with
// the fields it takes.
func stepEvent(i int, at time.Time) pcm.Event {
	e := pcm.Event{ConsentID: fmt.Sprintf("urn:ponte:c%05d", i), Step: pcm.Steps[i%len(pcm.Steps)], ApplicationID: "A", OccurredAt: at,
		Device: dev("BROWSER", "LINUX")}
	e.Device.OSVersion = "20.04"
	switch e.Step {
	case pcm.StepRedirectToServer:
		e.URI = "https://bank.example/oauth/authorize"
	case pcm.StepRedirectTarget:
		e.Type, e.URI = pcm.TypeAwaitingUserAuth, "https://ponte.example/oauth/authorize"
	case pcm.StepRedirectToClient:
		e.Type, e.URI = pcm.TypeAuthorised, "https://tpp.example/callback"
	case pcm.StepRedirectTargetWithErrors:
		e.Error = "access_denied"
	}
	return e
}

// recordEvents stores n events with their outbox rows, as the app wires it.
func recordEvents(t testing.TB, db *store.DB, c clock.Clock, first, n int) {
	t.Helper()
	r := &pcm.Recorder{Clock: c, AfterInsert: pcm.Enqueue}
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
		for i := first; i < first+n; i++ {
			if _, created, err := r.Record(context.Background(), tx, stepEvent(i, c.Now().Add(-time.Minute))); err != nil || !created {
				return fmt.Errorf("record %d: created %v: %w", i, created, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// pcmServer is a loopback PCM: the Receiver validating against the
// official file, behind a script of failures the test controls.
type pcmServer struct {
	*httptest.Server
	rc *pcm.Receiver

	mu       sync.Mutex
	script   []string // per request: "ok", "429", "500", "hang"; then "ok"
	requests int
	invalid  []string // bodies the official schema refused
	received chan struct{}
}

func newPCMServer(t *testing.T, refuse map[string]bool) *pcmServer {
	t.Helper()
	v := officialValidator(t)
	s := &pcmServer{received: make(chan struct{}, 1000)}
	var items pcm.ItemValidator // the built-in rules without the official file
	if v != nil {
		items = v
	}
	s.rc = &pcm.Receiver{Validator: items, Token: "pcm-token", Refuse: func(_ string, item map[string]any) string {
		if refuse[item["consentId"].(string)] {
			return "consentId unknown to the PCM"
		}
		return ""
	}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests++
		mode := "ok"
		if len(s.script) > 0 {
			mode, s.script = s.script[0], s.script[1:]
		}
		if v != nil {
			if err := v.ValidateBody(strings.TrimPrefix(r.URL.Path, pcm.HybridFlowPrefix), body); err != nil {
				s.invalid = append(s.invalid, err.Error())
			}
		}
		s.mu.Unlock()
		select {
		case s.received <- struct{}{}:
		default:
		}
		switch mode {
		case "429":
			w.Header().Set("Retry-After", "2")
			http.Error(w, `{"message":"Too Many Requests"}`, http.StatusTooManyRequests)
		case "500":
			http.Error(w, `{"message":"Internal Server Error"}`, http.StatusInternalServerError)
		case "hang":
			// Until the forwarder's timeout ends the request; nothing is processed.
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute):
			}
		default:
			r.Body = io.NopCloser(bytes.NewReader(body))
			s.rc.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *pcmServer) setScript(modes ...string) {
	s.mu.Lock()
	s.script = modes
	s.mu.Unlock()
}

// staticToken is the PCM token of the tests.
type staticToken struct{}

func (staticToken) Token(context.Context) (string, error) { return "pcm-token", nil }
func (staticToken) Invalidate()                           {}

// newForwarder's request timeout is generous: a batch the PCM accepted but
// answered after the timeout is sent again (at least once is the contract),
// so a short timeout on a slow machine (the race detector, a loaded CI)
// would make the exactly-once assertions fail. A "hang" answer ends when
// the forwarder gives up, so only hanging tests pay for the timeout.
func newForwarder(db *store.DB, c clock.Clock, url string, mod func(*pcm.ForwarderOptions)) *pcm.Forwarder {
	o := pcm.ForwarderOptions{DB: db, Clock: c, BaseURL: url, OrgID: orgID, Token: staticToken{}, Timeout: 5 * time.Second,
		RetryBase: time.Second, RetryMax: time.Minute, Jitter: func() float64 { return 1 }, Workers: 2}
	if mod != nil {
		mod(&o)
	}
	return pcm.NewForwarder(o)
}

// settle drains until nothing is pending, moving the clock past retries.
func settle(t *testing.T, f *pcm.Forwarder, db *store.DB, c *clock.Fake) pcm.OutboxStatus {
	t.Helper()
	for range 30 {
		if _, err := f.Drain(context.Background()); err != nil {
			t.Fatalf("drain: %v", err)
		}
		st, err := pcm.Status(context.Background(), db.Read(), c.Now())
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending == 0 {
			return st
		}
		c.Advance(2 * time.Minute)
	}
	t.Fatal("items still pending after 30 rounds")
	return pcm.OutboxStatus{}
}

// assertExactlyOnce checks the receiver accepted every recorded item but
// the refused ones exactly once, with the fields the spec names.
func assertExactlyOnce(t *testing.T, s *pcmServer, n int, refused map[string]bool) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range s.rc.Accepted() {
		seen[r.Endpoint+" "+r.ConsentID]++
		var item map[string]any
		if err := json.Unmarshal(r.Item, &item); err != nil {
			t.Fatal(err)
		}
		ts, _ := item["timestamp"].(string)
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", ts); err != nil {
			t.Errorf("timestamp %q is not UTC with milliseconds", ts)
		}
		for _, k := range []string{"consentId", "os", "osVersion"} {
			if item[k] == nil {
				t.Errorf("item without %s: %s", k, r.Item)
			}
		}
	}
	for i := range n {
		e := stepEvent(i, time.Time{})
		key := pcm.EndpointOf(e.Step) + " " + e.ConsentID
		want := 1
		if refused[e.ConsentID] {
			want = 0
		}
		if seen[key] != want {
			t.Errorf("%s accepted %d times, want %d", key, seen[key], want)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.invalid) > 0 {
		t.Errorf("%d requests do not match the official PCM specification, first: %s", len(s.invalid), s.invalid[0])
	}
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		at, want  string
		beforeSix bool
	}{
		{"morning in São Paulo", "2024-10-15T12:00:00Z", "2024-10-16T11:00:00Z", false},
		{"23:59 local is still the same day", "2024-10-16T02:59:59.999Z", "2024-10-16T11:00:00Z", false},
		{"local midnight starts the next day", "2024-10-16T03:00:00Z", "2024-10-17T11:00:00Z", false},
		{"month end", "2024-10-31T20:00:00Z", "2024-11-01T11:00:00Z", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, _ := time.Parse(time.RFC3339Nano, tc.at)
			if got := pcm.Deadline(at).Format(time.RFC3339); got != tc.want {
				t.Errorf("Deadline(%s) = %s, want %s", tc.at, got, tc.want)
			}
		})
	}
}

// TestItemsMatchTheOfficialSpecification renders each step as it is sent
// and checks it against the official schema of its endpoint, and holds the
// built-in validator (the sandbox's without --pcm-spec) to the official one.
func TestItemsMatchTheOfficialSpecification(t *testing.T) {
	v := officialValidator(t)
	for i := range pcm.Steps {
		e := stepEvent(i, day0)
		ep := pcm.EndpointOf(e.Step)
		if err := (pcm.BuiltinValidator{}).ValidateItem(ep, itemMap(t, pcm.ItemOf(&e, orgID))); err != nil {
			t.Errorf("%s: the built-in validator refuses %+v: %v", e.Step, e, err)
		}
		if v == nil {
			continue
		}
		b, _ := json.Marshal([]pcm.Item{pcm.ItemOf(&e, orgID)})
		if err := v.ValidateBody(ep, b); err != nil {
			t.Errorf("%s: %s does not match the official schema: %v", e.Step, b, err)
		}
	}
	valid := func(ep string) map[string]any {
		e := stepEvent(indexOf(ep), day0)
		return itemMap(t, pcm.ItemOf(&e, orgID))
	}
	for _, tc := range []struct {
		name string
		ep   string
		mut  func(m map[string]any)
		ok   bool
	}{
		{"valid", "server/authenticated", func(map[string]any) {}, true},
		{"platform lowercase (v1.0.2)", "server/authenticated", func(m map[string]any) { m["platform"] = "browser" }, false},
		{"os unknown", "client/redirect-to-server", func(m map[string]any) { m["os"] = "BEOS" }, false},
		{"consentId leading space", "server/authenticated", func(m map[string]any) { m["consentId"] = " c1" }, false},
		{"consentId trailing space", "server/authenticated", func(m map[string]any) { m["consentId"] = "c1 " }, false},
		{"consentId empty", "server/authenticated", func(m map[string]any) { m["consentId"] = "" }, false},
		{"uri with query", "client/redirect-to-server", func(m map[string]any) { m["uriAuthorizationEndpoint"] = "https://b.example/a?x=1" }, false},
		{"uri_callback missing", "server/redirect-to-client", func(m map[string]any) { delete(m, "uri_callback") }, false},
		{"type wrong for step", "server/redirect-to-client", func(m map[string]any) { m["type"] = "AWAITING_HANDOFF" }, false},
		{"serverOrgId not a UUID", "server/redirect-target", func(m map[string]any) { m["serverOrgId"] = "" }, false},
		{"clientOrgId missing", "client/redirect-target-without-errors", func(m map[string]any) { delete(m, "clientOrgId") }, false},
		{"error missing", "client/redirect-target-with-errors", func(m map[string]any) { delete(m, "error") }, false},
		{"timestamp not a date-time", "server/authenticated", func(m map[string]any) { m["timestamp"] = "yesterday" }, false},
		{"redirect-target without uri", "server/redirect-target", func(m map[string]any) { delete(m, "uriAuthorizationEndpoint") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := valid(tc.ep)
			tc.mut(m)
			builtin := pcm.BuiltinValidator{}.ValidateItem(tc.ep, m)
			if v != nil {
				if official := v.ValidateItem(tc.ep, m); (official == nil) != tc.ok {
					t.Errorf("official validator: %v, want ok=%v", official, tc.ok)
				}
			}
			if (builtin == nil) != tc.ok {
				t.Errorf("built-in validator: %v, want ok=%v", builtin, tc.ok)
			}
		})
	}
}

// itemMap is item as the PCM receives it: decoded JSON.
func itemMap(t testing.TB, item pcm.Item) map[string]any {
	t.Helper()
	b, err := json.Marshal(item)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func indexOf(ep string) int {
	for i, s := range pcm.Steps {
		if pcm.EndpointOf(s) == ep {
			return i
		}
	}
	return -1
}

// TestForwardingOutcomes: the PCM answers 500, 429, hangs past the
// timeout, then 200 and 207 with mixed results. Every item is accepted
// exactly once but the refused ones, which are kept with the reason and
// never sent again, until replayed.
func TestForwardingOutcomes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := clock.NewFake(day0)
		const n = 2600 // about 433 per endpoint: several batches of 100 each
		recordEvents(t, db, c, 0, n)
		refused := map[string]bool{"urn:ponte:c00007": true, "urn:ponte:c01000": true, "urn:ponte:c02599": true}
		s := newPCMServer(t, refused)
		s.setScript("500", "429", "hang", "ok", "500")
		reg := prometheus.NewRegistry()
		f := newForwarder(db, c, s.URL, func(o *pcm.ForwarderOptions) {
			o.BatchSize = 100
			o.Metrics = pcm.NewForwardMetrics(reg)
		})
		st := settle(t, f, db, c)
		if st.Accepted != n-3 || st.Rejected != 3 || st.Pending != 0 {
			t.Fatalf("status %+v, want %d accepted, 3 rejected", st, n-3)
		}
		assertExactlyOnce(t, s, n, refused)
		rows, err := pcm.OutboxRows(context.Background(), db.Read())
		if err != nil {
			t.Fatal(err)
		}
		retried := 0
		for _, r := range rows {
			switch {
			case refused[stepEvent(indexOfRow(r.EventID, db, t), time.Time{}).ConsentID]:
				if r.State != pcm.OutboxRejected || !strings.Contains(r.Reason, "consentId unknown to the PCM") {
					t.Errorf("refused item %s: state %s, reason %q", r.EventID, r.State, r.Reason)
				}
			case r.State != pcm.OutboxAccepted || r.ReportID == "":
				t.Errorf("item %s: state %s, reportId %q", r.EventID, r.State, r.ReportID)
			}
			if r.Attempts > 1 {
				retried++
				if r.LastError == "" {
					t.Errorf("retried item %s has no last error", r.EventID)
				}
			}
		}
		if retried < 300 { // the 500, 429 and hang batches (100 items each) went again
			t.Errorf("%d items were retried, want at least 300", retried)
		}
		// Nothing more is sent: rejected items are not resent blindly.
		before := s.requests
		c.Advance(time.Hour)
		if _, err := f.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s.requests != before {
			t.Errorf("%d more requests after everything settled", s.requests-before)
		}
		if got := metricSum(t, reg, "ponte_pcm_items_total"); got != n {
			t.Errorf("ponte_pcm_items_total = %v, want %d", got, n)
		}
		// After the fix at the PCM, replay re-queues the rejected items only.
		clear(refused)
		var replayed int64
		if err := db.Write(context.Background(), func(tx *sql.Tx) error {
			var err error
			replayed, err = pcm.Replay(context.Background(), tx, c.Now(), day0.Add(-24*time.Hour), day0.Add(24*time.Hour), "")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if replayed != 3 {
			t.Fatalf("replayed %d, want 3", replayed)
		}
		st = settle(t, f, db, c)
		if st.Accepted != n || st.Rejected != 0 {
			t.Fatalf("after replay: %+v", st)
		}
		assertExactlyOnce(t, s, n, nil)
	})
}

// indexOfRow finds the test index of an outbox row's event.
func indexOfRow(eventID string, db *store.DB, t *testing.T) int {
	var consent string
	if err := db.Read().QueryRow(`SELECT consent_id FROM pcm_events WHERE id = $1`, eventID).Scan(&consent); err != nil {
		t.Fatal(err)
	}
	var i int
	fmt.Sscanf(strings.TrimPrefix(consent, "urn:ponte:c"), "%d", &i)
	return i
}

// TestForwardingRestartMidBatch: a forwarder dies while its batch is in
// flight (the PCM never answered); a new forwarder on the reopened
// database leaves the batch alone while its lease runs, then sends it once.
func TestForwardingRestartMidBatch(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			url := e.URL(t)
			db, err := store.Open(context.Background(), store.Options{URL: url})
			if err != nil {
				t.Fatal(err)
			}
			c := clock.NewFake(day0)
			const n = 1800
			recordEvents(t, db, c, 0, n)
			s := newPCMServer(t, nil)
			s.setScript("hang")
			f := newForwarder(db, c, s.URL, func(o *pcm.ForwarderOptions) {
				o.Workers, o.Timeout, o.Lease = 1, 5*time.Second, time.Minute
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = f.Drain(ctx)
			}()
			<-s.received // the first batch is at the PCM, unanswered
			cancel()     // the process dies
			<-done
			db.Close()

			db = storetest.Open(t, url)
			f2 := newForwarder(db, c, s.URL, nil)
			if _, err := f2.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			st, err := pcm.Status(context.Background(), db.Read(), c.Now())
			if err != nil {
				t.Fatal(err)
			}
			if st.Pending == 0 || st.Accepted == 0 {
				t.Fatalf("before the lease ends the abandoned batch must wait while the rest goes: %+v", st)
			}
			c.Advance(2 * time.Minute)
			st = settle(t, f2, db, c)
			if st.Accepted != n {
				t.Fatalf("status %+v, want %d accepted", st, n)
			}
			assertExactlyOnce(t, s, n, nil)
		})
	}
}

// TestForwardingTwoInstances: two forwarders drain one database at once;
// each item is accepted exactly once. On PostgreSQL each has its own pool,
// as two instances have, and claims use SKIP LOCKED; SQLite is one
// process's database, so there the two share it and its single writer
// serialises their claims.
func TestForwardingTwoInstances(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			url := e.URL(t)
			db1 := storetest.Open(t, url)
			db2 := db1
			if e.Name == "postgres" {
				db2 = storetest.Open(t, url)
			}
			c := clock.NewFake(day0)
			const n = 4000
			recordEvents(t, db1, c, 0, n)
			s := newPCMServer(t, nil)
			s.setScript("500", "ok", "429")
			mod := func(o *pcm.ForwarderOptions) { o.BatchSize, o.Workers, o.Timeout = 50, 4, 5*time.Second }
			f1, f2 := newForwarder(db1, c, s.URL, mod), newForwarder(db2, c, s.URL, mod)
			for range 10 {
				var wg sync.WaitGroup
				for _, f := range []*pcm.Forwarder{f1, f2} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := f.Drain(context.Background()); err != nil {
							t.Error(err)
						}
					}()
				}
				wg.Wait()
				c.Advance(2 * time.Minute)
			}
			st, err := pcm.Status(context.Background(), db1.Read(), c.Now())
			if err != nil {
				t.Fatal(err)
			}
			if st.Accepted != n || st.Pending != 0 {
				t.Fatalf("status %+v, want %d accepted", st, n)
			}
			assertExactlyOnce(t, s, n, nil)
		})
	}
}

// TestDeadlineWatch: items close to their 08:00 deadline show in the
// metrics and a warning; forwarding off keeps them pending.
func TestDeadlineWatch(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := clock.NewFake(day0) // 09:00 in São Paulo: deadline tomorrow 08:00 (11:00 UTC)
		recordEvents(t, db, c, 0, 6)
		reg := prometheus.NewRegistry()
		var logs bytes.Buffer
		f := pcm.NewForwarder(pcm.ForwarderOptions{DB: db, Clock: c, Metrics: pcm.NewForwardMetrics(reg),
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if f.Enabled() {
			t.Fatal("forwarding without a URL")
		}
		st, err := f.Watch(context.Background())
		if err != nil || st.Pending != 6 || st.AtRisk != 0 {
			t.Fatalf("watch %+v, %v", st, err)
		}
		if strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("warning too early: %s", logs.String())
		}
		c.Set(time.Date(2024, 10, 16, 9, 30, 0, 0, time.UTC)) // 06:30 local: 1h30 before the deadline
		if st, err = f.Watch(context.Background()); err != nil || st.AtRisk != 6 {
			t.Fatalf("watch %+v, %v", st, err)
		}
		if !strings.Contains(logs.String(), "within 2h of their deadline") {
			t.Errorf("no deadline warning: %s", logs.String())
		}
		want := map[string]float64{"ponte_pcm_items_at_risk": 6, "ponte_pcm_items_pending": 6,
			"ponte_pcm_items_pending_oldest_seconds": (21*time.Hour + 31*time.Minute).Seconds(),
			"ponte_pcm_next_deadline_seconds":        (90 * time.Minute).Seconds()}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if w, ok := want[mf.GetName()]; ok {
				if got := mf.GetMetric()[0].GetGauge().GetValue(); got != w {
					t.Errorf("%s = %v, want %v", mf.GetName(), got, w)
				}
				delete(want, mf.GetName())
			}
		}
		if len(want) > 0 {
			t.Errorf("metrics missing: %v", want)
		}
	})
}

// TestClientCredentials: the token is fetched once, reused, and fetched
// again after the PCM refuses it (401).
func TestClientCredentials(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	issued := 0
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "client_credentials" || r.Form.Get("client_id") != "ss-client" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		issued++
		tok := fmt.Sprintf("tok-%d", issued)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":300}`, tok)
	}))
	defer tokenSrv.Close()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		mu.Lock()
		issued = 0
		mu.Unlock()
		c := clock.NewFake(day0)
		recordEvents(t, db, c, 0, 12)
		s := newPCMServer(t, nil)
		s.rc.Token = "tok-2" // the first token is refused
		cc := &pcm.ClientCredentials{TokenURL: tokenSrv.URL, ClientID: "ss-client", HTTP: tokenSrv.Client(), Clock: c}
		f := newForwarder(db, c, s.URL, func(o *pcm.ForwarderOptions) { o.Token, o.Workers = cc, 1 })
		st := settle(t, f, db, c)
		if st.Accepted != 12 {
			t.Fatalf("status %+v", st)
		}
		if issued != 2 {
			t.Errorf("%d tokens issued, want 2 (one refused, one used)", issued)
		}
		assertExactlyOnce(t, s, 12, nil)
	})
}

// metricSum adds up every series of the named metric (counters and gauges).
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// TestForwardingLegacyRows: outbox rows written before their item was
// stored with them (migration 00019, or an older instance) are sent with the
// item rendered from their event, also when a batch needs several lookups.
func TestForwardingLegacyRows(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := clock.NewFake(day0)
		const n = 3600 // 600 per endpoint, each in one batch: a lookup of 500 ids and one of 100
		recordEvents(t, db, c, 0, n)
		if err := db.Write(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE pcm_outbox SET item = ''`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		s := newPCMServer(t, nil)
		f := newForwarder(db, c, s.URL, func(o *pcm.ForwarderOptions) {
			o.BatchSize = 1000
			// A batch of 600 checked against the official file can take a
			// while on a busy machine; past the timeout it would be sent again.
			o.Timeout = time.Minute
		})
		if st := settle(t, f, db, c); st.Accepted != n {
			t.Fatalf("status %+v, want %d accepted", st, n)
		}
		assertExactlyOnce(t, s, n, nil)
	})
}
