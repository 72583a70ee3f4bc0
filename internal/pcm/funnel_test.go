package pcm_test

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// step is one recorded step of a test journey, minutes after its start.
type step struct {
	step, typ string
	dev       ofb.Device
	at        time.Duration
}

// record stores the journeys' steps through the Recorder, as Ponte and
// partners' reports do.
func record(t *testing.T, db *store.DB, journeys map[string][]step, start func(consent string) time.Time) *pcm.Service {
	t.Helper()
	r := &pcm.Recorder{Clock: clock.NewFake(day0)}
	err := db.Write(t.Context(), func(tx *sql.Tx) error {
		for consent, steps := range journeys {
			for _, s := range steps {
				e := pcm.Event{ConsentID: consent, Step: s.step, Type: s.typ, Device: s.dev, ApplicationID: "A", OccurredAt: start(consent).Add(s.at)}
				if s.step == pcm.StepRedirectTargetWithErrors {
					e.Error = "access_denied"
				}
				if _, _, err := r.Record(t.Context(), tx, e); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return &pcm.Service{DB: db, Clock: r.Clock, Recorder: r}
}

// TestFunnelHandOff: journeys started on a desktop browser and finished on
// a phone app (the QR hand-off: steps with the desktop's device data, then
// the phone's) count on the desktop's platform and system, in every figure;
// no stage exceeds the one before it, also when an initiator-only journey
// (an external holder) came back authorised. The dashboard showed
// APP with 0 requests and 6 authorised, and a stage at 111.1%.
func TestFunnelHandOff(t *testing.T) {
	t.Parallel()
	desktop := dev("BROWSER", "WINDOWS")
	phone := dev("APP", "IOS")
	handOff := []step{
		{pcm.StepRedirectToServer, "", desktop, 0},
		{pcm.StepRedirectTarget, pcm.TypeAwaitingHandoff, desktop, time.Minute},
		{pcm.StepRedirectTarget, pcm.TypeAwaitingRedirectToApp, phone, 2 * time.Minute},
		{pcm.StepAuthenticated, "", phone, 3 * time.Minute},
		{pcm.StepRedirectToClient, pcm.TypeAuthorised, phone, 4 * time.Minute},
		{pcm.StepRedirectTargetWithoutErrors, "", desktop, 5 * time.Minute},
	}
	journeys := map[string][]step{}
	for i := range 9 {
		journeys[fmt.Sprintf("handoff-%d", i)] = handOff
	}
	// Handed off and rejected on the phone.
	journeys["rejected"] = []step{handOff[0], handOff[1], handOff[2], handOff[3],
		{pcm.StepRedirectToClient, pcm.TypeRejected, phone, 4 * time.Minute}, {pcm.StepRedirectTargetWithErrors, "", desktop, 5 * time.Minute}}
	// Sent from the desktop to a holder Ponte does not run; it came back
	// without errors, so it was authorised there.
	journeys["external"] = []step{{pcm.StepRedirectToServer, "", desktop, 0}, {pcm.StepRedirectTargetWithoutErrors, "", phone, 3 * time.Minute}}
	// Started in the phone's app, abandoned after logging in.
	journeys["app-only"] = []step{{pcm.StepRedirectToServer, "", phone, 0}, {pcm.StepRedirectTarget, pcm.TypeAwaitingUserAuth, phone, time.Minute},
		{pcm.StepAuthenticated, "", phone, 2 * time.Minute}}

	storetest.Each(t, func(t *testing.T, db *store.DB) {
		svc := record(t, db, journeys, func(string) time.Time { return day0 })
		from, to := day0.Add(-time.Hour), day0.Add(time.Hour)
		type breakdown struct{ requests, authorised int64 }
		cases := []struct {
			name                 string
			q                    pcm.Query
			requests, authorised int64
			stages               []int64
			platforms, systems   map[string]breakdown
		}{
			{name: "both sides", requests: 12, authorised: 10, stages: []int64{12, 12, 12, 10, 10},
				platforms: map[string]breakdown{"BROWSER": {11, 10}, "APP": {1, 0}},
				systems:   map[string]breakdown{"WINDOWS": {11, 10}, "IOS": {1, 0}}},
			{name: "holder", q: pcm.Query{Side: pcm.SideHolder}, requests: 11, authorised: 9, stages: []int64{11, 11, 9},
				platforms: map[string]breakdown{"BROWSER": {10, 9}, "APP": {1, 0}},
				systems:   map[string]breakdown{"WINDOWS": {10, 9}, "IOS": {1, 0}}},
			{name: "initiator", q: pcm.Query{Side: pcm.SideInitiator}, requests: 12, authorised: 10, stages: []int64{12, 10},
				platforms: map[string]breakdown{"BROWSER": {11, 10}, "APP": {1, 0}},
				systems:   map[string]breakdown{"WINDOWS": {11, 10}, "IOS": {1, 0}}},
			// The platform filter selects consents by their first step too:
			// the handed-off ones are not the app's.
			{name: "app", q: pcm.Query{Platform: "APP"}, requests: 1, authorised: 0, stages: []int64{1, 1, 1, 0, 0},
				platforms: map[string]breakdown{"APP": {1, 0}}, systems: map[string]breakdown{"IOS": {1, 0}}},
			{name: "windows", q: pcm.Query{OS: "WINDOWS"}, requests: 11, authorised: 10, stages: []int64{11, 11, 11, 10, 10},
				platforms: map[string]breakdown{"BROWSER": {11, 10}}, systems: map[string]breakdown{"WINDOWS": {11, 10}}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				q := c.q
				q.From, q.To = from, to
				f, err := svc.Funnel(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				var stages []int64
				for _, s := range f.Stages {
					stages = append(stages, s.Count)
				}
				if f.ConsentRequests != c.requests || f.Authorised != c.authorised || !slices.Equal(stages, c.stages) {
					t.Errorf("requests %d, authorised %d, stages %v; want %d, %d, %v", f.ConsentRequests, f.Authorised, stages, c.requests, c.authorised, c.stages)
				}
				got := func(bs []pcm.Breakdown) map[string]breakdown {
					m := map[string]breakdown{}
					for _, b := range bs {
						m[b.Key] = breakdown{b.ConsentRequests, b.Authorised}
					}
					return m
				}
				if p := got(f.ByPlatform); !reflect.DeepEqual(p, c.platforms) {
					t.Errorf("by platform %v, want %v", p, c.platforms)
				}
				if s := got(f.ByOS); !reflect.DeepEqual(s, c.systems) {
					t.Errorf("by system %v, want %v", s, c.systems)
				}
				checkInvariants(t, f)
			})
		}
	})
}

// TestFunnelPeriodAndDays: a consent counts in the period and on the day
// its journey started, with the steps it reached afterwards (also past the
// period's end); days are the query's Location's.
func TestFunnelPeriodAndDays(t *testing.T) {
	saoPaulo := time.FixedZone("-03", -3*60*60)
	browser := dev("BROWSER", "LINUX")
	full := []step{{pcm.StepRedirectToServer, "", browser, 0}, {pcm.StepRedirectTargetWithoutErrors, "", browser, 10 * time.Minute}}
	// Times in UTC; the window is 2024-10-14 and 15 in São Paulo,
	// [10-14 03:00Z, 10-16 03:00Z).
	starts := map[string]time.Time{
		"before":      time.Date(2024, 10, 14, 2, 55, 0, 0, time.UTC), // authorised at 03:05Z, in the window: an earlier period's
		"first-night": time.Date(2024, 10, 15, 1, 0, 0, 0, time.UTC),  // 10-14 22:00 in São Paulo
		"second-day":  time.Date(2024, 10, 15, 12, 0, 0, 0, time.UTC),
		"late":        time.Date(2024, 10, 16, 2, 55, 0, 0, time.UTC), // authorised after the window ends: counted
		"after":       time.Date(2024, 10, 16, 3, 0, 0, 0, time.UTC),
	}
	journeys := map[string][]step{}
	for c := range starts {
		journeys[c] = full
	}
	journeys["second-day"] = full[:1]
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		svc := record(t, db, journeys, func(c string) time.Time { return starts[c] })
		q, ps := pcm.ParseQueryIn(func(k string) string {
			return map[string]string{"from": "2024-10-14", "to": "2024-10-15", "groupBy": "day"}[k]
		}, day0, saoPaulo)
		if len(ps) > 0 {
			t.Fatal(ps)
		}
		if q.From != time.Date(2024, 10, 14, 3, 0, 0, 0, time.UTC) || q.To != time.Date(2024, 10, 16, 3, 0, 0, 0, time.UTC) {
			t.Fatalf("range %s .. %s", q.From, q.To)
		}
		f, err := svc.Funnel(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if f.ConsentRequests != 3 || f.Authorised != 2 {
			t.Errorf("requests %d, authorised %d; want 3, 2", f.ConsentRequests, f.Authorised)
		}
		want := []pcm.Day{{Date: "2024-10-14", ConsentRequests: 1, Authorised: 1, ConversionRate: 1},
			{Date: "2024-10-15", ConsentRequests: 2, Authorised: 1, ConversionRate: 0.5}}
		if !reflect.DeepEqual(f.Days, want) {
			t.Errorf("days %+v, want %+v", f.Days, want)
		}
		checkInvariants(t, f)
	})
}

// checkInvariants asserts what no funnel may contradict: no stage above the
// one before it; requests are the first stage and authorised a later one;
// each platform's, system's and day's authorised within its requests, and
// each breakdown adding up to the totals.
func checkInvariants(t *testing.T, f *pcm.Funnel) {
	t.Helper()
	for i := 1; i < len(f.Stages); i++ {
		if f.Stages[i].Count > f.Stages[i-1].Count || f.Stages[i].RateFromPrevious > 1 {
			t.Errorf("stage %s (%d) exceeds %s (%d)", f.Stages[i].Step, f.Stages[i].Count, f.Stages[i-1].Step, f.Stages[i-1].Count)
		}
	}
	if len(f.Stages) == 0 || f.Stages[0].Count != f.ConsentRequests {
		t.Errorf("first stage %+v, requests %d", f.Stages, f.ConsentRequests)
	}
	authorisedStage := false
	for _, s := range f.Stages {
		authorisedStage = authorisedStage || (s.Count == f.Authorised && s.Step != f.Stages[0].Step)
	}
	if !authorisedStage && f.ConsentRequests > 0 {
		t.Errorf("authorised %d is no stage's count: %+v", f.Authorised, f.Stages)
	}
	if f.Authorised > f.ConsentRequests || f.ConversionRate > 1 {
		t.Errorf("authorised %d of %d requests", f.Authorised, f.ConsentRequests)
	}
	sum := func(name string, rows []pcm.Breakdown) {
		var req, auth int64
		for _, b := range rows {
			if b.Authorised > b.ConsentRequests || b.ConsentRequests == 0 {
				t.Errorf("%s %s: %d authorised of %d requests", name, b.Key, b.Authorised, b.ConsentRequests)
			}
			req, auth = req+b.ConsentRequests, auth+b.Authorised
		}
		if req != f.ConsentRequests || auth != f.Authorised {
			t.Errorf("%s adds up to %d/%d, totals %d/%d", name, req, auth, f.ConsentRequests, f.Authorised)
		}
	}
	sum("platform", f.ByPlatform)
	sum("system", f.ByOS)
	if f.Days != nil {
		var days []pcm.Breakdown
		for _, d := range f.Days {
			if d.ConsentRequests > 0 {
				days = append(days, pcm.Breakdown{Key: d.Date, ConsentRequests: d.ConsentRequests, Authorised: d.Authorised})
			} else if d.Authorised > 0 {
				t.Errorf("day %s: %d authorised without requests", d.Date, d.Authorised)
			}
		}
		sum("day", days)
	}
}

// kinds are the (step, type) pairs a journey records.
var kinds = []struct{ step, typ string }{
	{pcm.StepRedirectToServer, ""},
	{pcm.StepRedirectTarget, pcm.TypeAwaitingHandoff}, {pcm.StepRedirectTarget, pcm.TypeAwaitingUserAuth},
	{pcm.StepRedirectTarget, pcm.TypeAwaitingRedirectToApp},
	{pcm.StepAuthenticated, ""},
	{pcm.StepRedirectToClient, pcm.TypeAuthorised}, {pcm.StepRedirectToClient, pcm.TypeRejected},
	{pcm.StepRedirectTargetWithErrors, ""}, {pcm.StepRedirectTargetWithoutErrors, ""},
}

// TestFunnelRandomJourneys: random step sequences (any subset of the steps,
// in or out of journey order, each on a random device, starting around the
// period's edges) give funnels that keep the invariants and match a direct
// count of the definitions, for every side and filter, on both databases.
func TestFunnelRandomJourneys(t *testing.T) {
	t.Parallel()
	devices := []ofb.Device{dev("BROWSER", "WINDOWS"), dev("BROWSER", "IOS"), dev("APP", "IOS"), dev("APP", "ANDROID"), dev("BROWSER", "ANDROID")}
	from, to := day0, day0.Add(48*time.Hour)
	for _, seed := range []uint64{1, 2, 3} {
		rnd := rand.New(rand.NewPCG(seed, 13))
		journeys, starts := map[string][]step{}, map[string]time.Time{}
		for i := range 60 {
			consent := fmt.Sprintf("r%d-%d", seed, i)
			starts[consent] = from.Add(time.Duration(rnd.IntN(60*60)-6*60) * time.Minute) // 6 h either side
			picked := rnd.Perm(len(kinds))[:1+rnd.IntN(len(kinds))]
			if rnd.IntN(3) > 0 {
				slices.Sort(picked) // mostly in journey order
			}
			var steps []step
			var at time.Duration
			for _, k := range picked {
				steps = append(steps, step{kinds[k].step, kinds[k].typ, devices[rnd.IntN(len(devices))], at})
				at += time.Duration(1+rnd.IntN(90)) * time.Minute
			}
			journeys[consent] = steps
		}
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				svc := record(t, db, journeys, func(c string) time.Time { return starts[c] })
				for _, q := range []pcm.Query{
					{ByDay: true}, {Side: pcm.SideHolder, ByDay: true}, {Side: pcm.SideInitiator},
					{Platform: "APP"}, {OS: "IOS", Side: pcm.SideHolder}, {Platform: "BROWSER", OS: "WINDOWS", ByDay: true},
					{ByDay: true, Location: time.FixedZone("-03", -3*60*60)},
				} {
					q.From, q.To = from, to
					t.Run(fmt.Sprintf("%s/%s/%s/%v", q.Side, q.Platform, q.OS, q.Location), func(t *testing.T) {
						f, err := svc.Funnel(t.Context(), q)
						if err != nil {
							t.Fatal(err)
						}
						checkInvariants(t, f)
						if got, want := summarise(f), expectFunnel(q, journeys, starts); !reflect.DeepEqual(got, want) {
							t.Errorf("funnel\n%+v\nwant\n%+v", got, want)
						}
					})
				}
			})
		})
	}
}

// summary is what TestFunnelRandomJourneys compares.
type summary struct {
	Requests, Authorised int64
	Stages               []int64
	Steps                map[string]int64 // step or step/type
	Platforms, Systems   map[string][2]int64
	Days                 map[string][2]int64
}

func summarise(f *pcm.Funnel) summary {
	s := summary{Requests: f.ConsentRequests, Authorised: f.Authorised, Steps: map[string]int64{},
		Platforms: map[string][2]int64{}, Systems: map[string][2]int64{}, Days: map[string][2]int64{}}
	for _, st := range f.Stages {
		s.Stages = append(s.Stages, st.Count)
	}
	for _, st := range f.Steps {
		if st.Count > 0 {
			s.Steps[st.Step] = st.Count
		}
		for k, n := range st.Types {
			s.Steps[st.Step+"/"+k] = n
		}
	}
	for _, b := range f.ByPlatform {
		s.Platforms[b.Key] = [2]int64{b.ConsentRequests, b.Authorised}
	}
	for _, b := range f.ByOS {
		s.Systems[b.Key] = [2]int64{b.ConsentRequests, b.Authorised}
	}
	for _, d := range f.Days {
		if d.ConsentRequests > 0 {
			s.Days[d.Date] = [2]int64{d.ConsentRequests, d.Authorised}
		}
	}
	return s
}

// expectFunnel counts the journeys by the definitions, directly: the steps
// of the query's side; the consent's first step places it in time and on a
// device; a stage counts consents that recorded it or a later stage.
func expectFunnel(q pcm.Query, journeys map[string][]step, starts map[string]time.Time) summary {
	stages := [][2]string{{pcm.StepRedirectToServer, ""}, {pcm.StepRedirectTarget, ""}, {pcm.StepAuthenticated, ""},
		{pcm.StepRedirectToClient, pcm.TypeAuthorised}, {pcm.StepRedirectTargetWithoutErrors, ""}}
	authorisedAt := 3
	switch q.Side {
	case pcm.SideInitiator:
		stages, authorisedAt = [][2]string{stages[0], stages[4]}, 1
	case pcm.SideHolder:
		stages, authorisedAt = stages[1:4], 2
	}
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	s := summary{Stages: make([]int64, len(stages)), Steps: map[string]int64{},
		Platforms: map[string][2]int64{}, Systems: map[string][2]int64{}, Days: map[string][2]int64{}}
	for consent, steps := range journeys {
		var mine []step
		seen := map[[2]string]bool{}
		for _, st := range steps {
			if (q.Side == "" || pcm.SideOf(st.step) == q.Side) && !seen[[2]string{st.step, st.typ}] {
				seen[[2]string{st.step, st.typ}] = true
				mine = append(mine, st)
			}
		}
		if len(mine) == 0 {
			continue
		}
		first := slices.MinFunc(mine, func(a, b step) int {
			if a.at != b.at {
				return int(a.at - b.at)
			}
			return slices.Index(pcm.Steps, a.step) - slices.Index(pcm.Steps, b.step)
		})
		at := starts[consent].Add(first.at)
		if at.Before(q.From) || !at.Before(q.To) || (q.Platform != "" && first.dev.Platform != q.Platform) || (q.OS != "" && first.dev.OS != q.OS) {
			continue
		}
		last := 0
		for i, stg := range stages {
			for _, st := range mine {
				if st.step == stg[0] && (stg[1] == "" || st.typ == stg[1]) {
					last = i
				}
			}
		}
		var auth int64
		if last >= authorisedAt {
			auth = 1
		}
		for i := 0; i <= last; i++ {
			s.Stages[i]++
		}
		s.Requests++
		s.Authorised += auth
		counted := map[string]bool{}
		for _, st := range mine {
			if !counted[st.step] {
				counted[st.step] = true
				s.Steps[st.step]++
			}
			if st.typ != "" {
				s.Steps[st.step+"/"+st.typ]++
			}
		}
		add := func(m map[string][2]int64, k string) { m[k] = [2]int64{m[k][0] + 1, m[k][1] + auth} }
		add(s.Platforms, first.dev.Platform)
		add(s.Systems, first.dev.OS)
		if q.ByDay {
			add(s.Days, at.In(loc).Format("2006-01-02"))
		}
	}
	return s
}
