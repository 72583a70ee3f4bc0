package pcm_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

var day0 = time.Date(2024, 10, 15, 12, 0, 0, 0, time.UTC)

func dev(platform, os string) ofb.Device {
	return ofb.Device{Platform: platform, OS: os, OSVersion: "1"}
}

// fixture is the hand-counted set of events the funnel tests use.
//
//	initiator (application A, brand B1):
//	  c0 REDIRECT_TO_SERVER the day before the window (not counted)
//	  c1 REDIRECT_TO_SERVER BROWSER/IOS day 0, WITHOUT_ERRORS day 0
//	  c2 REDIRECT_TO_SERVER APP/ANDROID day 0, WITH_ERRORS day 0
//	  c3 REDIRECT_TO_SERVER BROWSER/LINUX day 1, WITHOUT_ERRORS day 1
//	holder (application H):
//	  h1 REDIRECT_TARGET AWAITING_HANDOFF BROWSER/IOS, AUTHENTICATED APP/IOS, REDIRECT_TO_CLIENT AUTHORISED APP/IOS (day 0)
//	  h2 REDIRECT_TARGET AWAITING_USER_AUTH BROWSER/WINDOWS, AUTHENTICATED, REDIRECT_TO_CLIENT REJECTED (day 1)
//	  h3 REDIRECT_TARGET AWAITING_HANDOFF BROWSER/ANDROID, then AWAITING_REDIRECT_TO_APP APP/ANDROID (day 1)
func fixture(t *testing.T, db *store.DB) *pcm.Service {
	t.Helper()
	c := clock.NewFake(day0)
	r := &pcm.Recorder{Clock: c}
	events := []pcm.Event{
		{ConsentID: "c0", Step: pcm.StepRedirectToServer, Device: dev("BROWSER", "IOS"), ApplicationID: "A", BrandID: "B1", OccurredAt: day0.Add(-24 * time.Hour)},
		{ConsentID: "c1", Step: pcm.StepRedirectToServer, Device: dev("BROWSER", "IOS"), ApplicationID: "A", BrandID: "B1", OccurredAt: day0},
		{ConsentID: "c1", Step: pcm.StepRedirectTargetWithoutErrors, Device: dev("BROWSER", "IOS"), ApplicationID: "A", BrandID: "B1", OccurredAt: day0.Add(time.Minute)},
		{ConsentID: "c2", Step: pcm.StepRedirectToServer, Device: dev("APP", "ANDROID"), ApplicationID: "A", BrandID: "B1", OccurredAt: day0},
		{ConsentID: "c2", Step: pcm.StepRedirectTargetWithErrors, Error: "access_denied", Device: dev("APP", "ANDROID"), ApplicationID: "A", BrandID: "B1", OccurredAt: day0.Add(time.Minute)},
		{ConsentID: "c3", Step: pcm.StepRedirectToServer, Device: dev("BROWSER", "LINUX"), ApplicationID: "A", BrandID: "B1", OccurredAt: day0.Add(24 * time.Hour)},
		{ConsentID: "c3", Step: pcm.StepRedirectTargetWithoutErrors, Device: dev("BROWSER", "LINUX"), ApplicationID: "A", BrandID: "B1", OccurredAt: day0.Add(24*time.Hour + time.Minute)},
		{ConsentID: "h1", Step: pcm.StepRedirectTarget, Type: pcm.TypeAwaitingHandoff, Device: dev("BROWSER", "IOS"), ApplicationID: "H", OccurredAt: day0},
		{ConsentID: "h1", Step: pcm.StepAuthenticated, Device: dev("APP", "IOS"), ApplicationID: "H", OccurredAt: day0.Add(time.Minute)},
		{ConsentID: "h1", Step: pcm.StepRedirectToClient, Type: pcm.TypeAuthorised, Device: dev("APP", "IOS"), ApplicationID: "H", OccurredAt: day0.Add(2 * time.Minute)},
		{ConsentID: "h2", Step: pcm.StepRedirectTarget, Type: pcm.TypeAwaitingUserAuth, Device: dev("BROWSER", "WINDOWS"), ApplicationID: "H", OccurredAt: day0.Add(24 * time.Hour)},
		{ConsentID: "h2", Step: pcm.StepAuthenticated, Device: dev("BROWSER", "WINDOWS"), ApplicationID: "H", OccurredAt: day0.Add(24*time.Hour + time.Minute)},
		{ConsentID: "h2", Step: pcm.StepRedirectToClient, Type: pcm.TypeRejected, Device: dev("BROWSER", "WINDOWS"), ApplicationID: "H", OccurredAt: day0.Add(24*time.Hour + 2*time.Minute)},
		{ConsentID: "h3", Step: pcm.StepRedirectTarget, Type: pcm.TypeAwaitingHandoff, Device: dev("BROWSER", "ANDROID"), ApplicationID: "H", OccurredAt: day0.Add(24 * time.Hour)},
		{ConsentID: "h3", Step: pcm.StepRedirectTarget, Type: pcm.TypeAwaitingRedirectToApp, Device: dev("APP", "ANDROID"), ApplicationID: "H", OccurredAt: day0.Add(24*time.Hour + time.Minute)},
	}
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
		for _, e := range events {
			if _, created, err := r.Record(context.Background(), tx, e); err != nil || !created {
				t.Fatalf("record %+v: created %v, %v", e, created, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return &pcm.Service{DB: db, Clock: c, Recorder: r}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestFunnelFixtures(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		svc := fixture(t, db)
		from, to := time.Date(2024, 10, 15, 0, 0, 0, 0, time.UTC), time.Date(2024, 10, 17, 0, 0, 0, 0, time.UTC)
		type stage struct {
			count int64
			prev  float64
		}
		cases := []struct {
			name                 string
			q                    pcm.Query
			requests, authorised int64
			rate                 float64
			stages               []stage
			days                 [][2]int64
		}{
			// Every consent is in the first stage; c1 and c3 came back
			// without errors, so they passed the holder's stages too.
			{name: "both sides", q: pcm.Query{ByDay: true}, requests: 6, authorised: 3, rate: 0.5,
				stages: []stage{{6, 1}, {5, 5.0 / 6}, {4, 4.0 / 5}, {3, 3.0 / 4}, {2, 2.0 / 3}},
				days:   [][2]int64{{3, 2}, {3, 1}}},
			{name: "initiator", q: pcm.Query{Side: pcm.SideInitiator}, requests: 3, authorised: 2, rate: 2.0 / 3,
				stages: []stage{{3, 1}, {2, 2.0 / 3}}},
			{name: "holder", q: pcm.Query{Side: pcm.SideHolder}, requests: 3, authorised: 1, rate: 1.0 / 3,
				stages: []stage{{3, 1}, {2, 2.0 / 3}, {1, 0.5}}},
			{name: "application A", q: pcm.Query{ApplicationID: "A"}, requests: 3, authorised: 2, rate: 2.0 / 3},
			{name: "brand B1", q: pcm.Query{BrandID: "B1", Side: pcm.SideInitiator}, requests: 3, authorised: 2, rate: 2.0 / 3},
			// A consent is its first step's: h1 (authorised in the app) and
			// h3 started in the browser; only c2 started in an app.
			{name: "browser", q: pcm.Query{Platform: "BROWSER"}, requests: 5, authorised: 3, rate: 0.6},
			{name: "app", q: pcm.Query{Platform: "APP"}, requests: 1, authorised: 0, rate: 0},
			{name: "ios", q: pcm.Query{OS: "IOS"}, requests: 2, authorised: 2, rate: 1},
			{name: "day 1 only", q: pcm.Query{From: to.Add(-24 * time.Hour)}, requests: 3, authorised: 1, rate: 1.0 / 3},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				q := c.q
				if q.From.IsZero() {
					q.From = from
				}
				q.To = to
				f, err := svc.Funnel(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				if f.ConsentRequests != c.requests || f.Authorised != c.authorised || !near(f.ConversionRate, c.rate) {
					t.Errorf("requests/authorised/rate = %d/%d/%v, want %d/%d/%v", f.ConsentRequests, f.Authorised, f.ConversionRate, c.requests, c.authorised, c.rate)
				}
				if c.stages != nil {
					if len(f.Stages) != len(c.stages) {
						t.Fatalf("stages = %+v", f.Stages)
					}
					for i, s := range c.stages {
						if f.Stages[i].Count != s.count || !near(f.Stages[i].RateFromPrevious, s.prev) {
							t.Errorf("stage %d = %+v, want %d %v", i, f.Stages[i], s.count, s.prev)
						}
					}
				}
				for i, d := range c.days {
					if len(f.Days) != len(c.days) || f.Days[i].ConsentRequests != d[0] || f.Days[i].Authorised != d[1] {
						t.Errorf("days = %+v, want %v", f.Days, c.days)
						break
					}
				}
			})
		}
		// Step counts and types, both sides.
		f, err := svc.Funnel(t.Context(), pcm.Query{From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(f.Steps)
		want := `[{"step":"REDIRECT_TO_SERVER","side":"INITIATOR","count":3},` +
			`{"step":"REDIRECT_TARGET","side":"HOLDER","count":3,"types":{"AWAITING_HANDOFF":2,"AWAITING_REDIRECT_TO_APP":1,"AWAITING_USER_AUTH":1}},` +
			`{"step":"AUTHENTICATED","side":"HOLDER","count":2},` +
			`{"step":"REDIRECT_TO_CLIENT","side":"HOLDER","count":2,"types":{"AUTHORISED":1,"REJECTED":1}},` +
			`{"step":"REDIRECT_TARGET_WITH_ERRORS","side":"INITIATOR","count":1},` +
			`{"step":"REDIRECT_TARGET_WITHOUT_ERRORS","side":"INITIATOR","count":2}]`
		if string(got) != want {
			t.Errorf("steps = %s\nwant    %s", got, want)
		}
		plat, _ := json.Marshal(f.ByPlatform)
		if string(plat) != `[{"key":"BROWSER","consentRequests":5,"authorised":3,"conversionRate":0.6},{"key":"APP","consentRequests":1,"authorised":0,"conversionRate":0}]` {
			t.Errorf("byPlatform = %s", plat)
		}
	})
}

// TestRecorderIdempotent: the same consent, step and type is stored once;
// the first event wins and AfterInsert runs for it only.
func TestRecorderIdempotent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var after []string
		r := &pcm.Recorder{Clock: clock.NewFake(day0), AfterInsert: func(_ context.Context, _ *sql.Tx, e *pcm.Event) error {
			after = append(after, e.ID)
			return nil
		}}
		var first, second *pcm.Event
		err := db.Write(t.Context(), func(tx *sql.Tx) error {
			var err error
			e := pcm.Event{ConsentID: "c", Step: pcm.StepRedirectToServer, Device: dev("APP", "IOS"), URI: "https://b.example/authorize?request_uri=x", ApplicationID: "A"}
			if first, _, err = r.Record(t.Context(), tx, e); err != nil {
				return err
			}
			e.Device = dev("BROWSER", "LINUX")
			second, _, err = r.Record(t.Context(), tx, e)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if first.ID != second.ID || second.Device.OS != "IOS" || first.URI != "https://b.example/authorize" || len(after) != 1 ||
			first.Side != pcm.SideInitiator || first.OccurredAt != day0 {
			t.Errorf("first %+v, second %+v, after %v", first, second, after)
		}
	})
}

func str(s string) *string { return &s }

// TestReportValidation: each step's required and foreign fields.
func TestReportValidation(t *testing.T) {
	t.Parallel()
	const uri = "https://api.banco.com.br/open-banking/api/v1/resource"
	data := func(mod func(d *pcm.ReportData)) *pcm.ReportData {
		d := &pcm.ReportData{Platform: str("BROWSER"), OS: str("LINUX"), OSVersion: str("20.04")}
		if mod != nil {
			mod(d)
		}
		return d
	}
	cases := []struct {
		name string
		step string
		data *pcm.ReportData
		want string // "field:missing" or "field" joined by commas; "" valid
	}{
		{"server ok", pcm.StepRedirectToServer, data(func(d *pcm.ReportData) { d.URIAuthorizationEndpoint = str(uri) }), ""},
		{"server no uri", pcm.StepRedirectToServer, data(nil), "data.uriAuthorizationEndpoint:missing"},
		{"server query", pcm.StepRedirectToServer, data(func(d *pcm.ReportData) { d.URIAuthorizationEndpoint = str(uri + "?a=b") }), "data.uriAuthorizationEndpoint"},
		{"server relative", pcm.StepRedirectToServer, data(func(d *pcm.ReportData) { d.URIAuthorizationEndpoint = str("/authorize") }), "data.uriAuthorizationEndpoint"},
		{"server callback", pcm.StepRedirectToServer, data(func(d *pcm.ReportData) { d.URIAuthorizationEndpoint, d.URICallback = str(uri), str(uri) }), "data.uri_callback"},
		{"target ok", pcm.StepRedirectTarget, data(func(d *pcm.ReportData) { d.Type = str(pcm.TypeAwaitingHandoff) }), ""},
		{"target with uri", pcm.StepRedirectTarget, data(func(d *pcm.ReportData) { d.Type, d.URIAuthorizationEndpoint = str(pcm.TypeAwaitingUserAuth), str(uri) }), ""},
		{"target no type", pcm.StepRedirectTarget, data(nil), "data.type:missing"},
		{"target bad type", pcm.StepRedirectTarget, data(func(d *pcm.ReportData) { d.Type = str(pcm.TypeRejected) }), "data.type"},
		{"authenticated ok", pcm.StepAuthenticated, data(nil), ""},
		{"authenticated error", pcm.StepAuthenticated, data(func(d *pcm.ReportData) { d.Error = str("x") }), "data.error"},
		{"client ok", pcm.StepRedirectToClient, data(func(d *pcm.ReportData) { d.Type, d.URICallback = str(pcm.TypeRejected), str(uri) }), ""},
		{"client nothing", pcm.StepRedirectToClient, data(nil), "data.uri_callback:missing,data.type:missing"},
		{"with errors ok", pcm.StepRedirectTargetWithErrors, data(func(d *pcm.ReportData) { d.Error = str("access_denied") }), ""},
		{"with errors blank", pcm.StepRedirectTargetWithErrors, data(func(d *pcm.ReportData) { d.Error = str(" ") }), "data.error"},
		{"with errors long", pcm.StepRedirectTargetWithErrors, data(func(d *pcm.ReportData) { d.Error = str(strings.Repeat("x", 201)) }), "data.error"},
		{"without errors ok", pcm.StepRedirectTargetWithoutErrors, data(nil), ""},
		{"without errors type", pcm.StepRedirectTargetWithoutErrors, data(func(d *pcm.ReportData) { d.Type = str(pcm.TypeAuthorised) }), "data.type"},
		{"unknown step", "LOGIN", data(nil), "step"},
		{"bad device", pcm.StepAuthenticated, data(func(d *pcm.ReportData) { d.Platform, d.OS, d.OSVersion = str("TV"), str("BEOS"), str("") }), "data.platform,data.os,data.osVersion"},
		{"no device", pcm.StepAuthenticated, &pcm.ReportData{}, "data.platform:missing,data.os:missing,data.osVersion:missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := pcm.ReportRequest{Step: str(c.step), Data: c.data}
			var got []string
			for _, p := range in.Validate() {
				s := p.Field
				if p.Missing {
					s += ":missing"
				}
				got = append(got, s)
			}
			if strings.Join(got, ",") != c.want {
				t.Errorf("problems = %v, want %s", got, c.want)
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)
	cases := []struct {
		name     string
		values   map[string]string
		from, to string
		problems string
	}{
		{"defaults", nil, "2024-10-08T18:55:15Z", "2024-10-15T18:55:15Z", ""},
		{"dates", map[string]string{"from": "2024-10-01", "to": "2024-10-02"}, "2024-10-01T00:00:00Z", "2024-10-03T00:00:00Z", ""},
		{"instants", map[string]string{"from": "2024-10-01T10:00:00Z", "to": "2024-10-01T11:00:00-03:00"}, "2024-10-01T10:00:00Z", "2024-10-01T14:00:00Z", ""},
		{"reversed", map[string]string{"from": "2024-10-05", "to": "2024-10-01"}, "", "", "from"},
		{"too long", map[string]string{"from": "2023-01-01", "to": "2024-10-01"}, "", "", "to"},
		{"garbage", map[string]string{"from": "yesterday", "side": "BOTH", "platform": "TV", "os": "X", "groupBy": "week"}, "", "", "from,side,platform,os,groupBy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, ps := pcm.ParseQuery(func(k string) string { return c.values[k] }, now)
			var fields []string
			for _, p := range ps {
				fields = append(fields, p.Field)
			}
			if strings.Join(fields, ",") != c.problems {
				t.Fatalf("problems = %v, want %s", ps, c.problems)
			}
			if c.problems == "" && (q.From.Format(time.RFC3339) != c.from || q.To.Truncate(time.Second).Format(time.RFC3339) != c.to) {
				t.Errorf("range = %s .. %s, want %s .. %s", q.From, q.To, c.from, c.to)
			}
		})
	}
}
