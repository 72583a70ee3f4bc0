package pcm

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/store"
)

// Funnel is the conversion funnel of a query. Every figure counts consents,
// each once, with one set of rules (the dashboard's "Como contamos" says the
// same in Portuguese):
//
//   - A consent's journey is the steps recorded for it on the query's side
//     (both sides without one) and of its application and brand filters.
//   - It counts in the period, and on the day, of its first recorded step,
//     with every step it recorded later, whenever that was.
//   - It counts on the platform and system of that first step, so a journey
//     handed from a desktop browser to a phone app stays the desktop's; the
//     platform and os filters select consents by that same device.
//   - It counts in a funnel stage when it recorded that stage or a later
//     one (reaching a later stage means it went through the earlier ones);
//     every counted consent is in the first stage. So no stage exceeds the
//     one before it.
//   - Consent requests are the first stage; authorised ones the stage of
//     REDIRECT_TO_CLIENT AUTHORISED at the holder (REDIRECT_TARGET_WITHOUT_ERRORS
//     at the initiator), so a platform's, a system's or a day's authorised
//     never exceed its requests.
//   - Steps counts the consents that recorded each step, as reported: a
//     partner that skips a step has fewer there than the funnel's stage.
type Funnel struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Side     string `json:"side,omitempty"`
	Brand    string `json:"brand,omitempty"`
	Platform string `json:"platform,omitempty"`
	OS       string `json:"os,omitempty"`

	ConsentRequests int64 `json:"consentRequests"`
	Authorised      int64 `json:"authorised"`
	// ConversionRate is Authorised / ConsentRequests (0 without requests).
	ConversionRate float64 `json:"conversionRate"`

	// Steps counts consents per step, in journey order, with each type.
	Steps []StepCount `json:"steps"`
	// Stages is the funnel: each stage's consents and its rate from the
	// previous stage and from the first.
	Stages []Stage `json:"stages"`

	ByPlatform []Breakdown `json:"byPlatform"`
	ByOS       []Breakdown `json:"byOs"`
	// Days is the daily series (groupBy=day), every day of the range.
	Days []Day `json:"days,omitempty"`
}

// StepCount is one step's count.
type StepCount struct {
	Step  string           `json:"step"`
	Side  string           `json:"side"`
	Count int64            `json:"count"`
	Types map[string]int64 `json:"types,omitempty"`
}

// Stage is one stage of the funnel.
type Stage struct {
	Step  string `json:"step"`
	Type  string `json:"type,omitempty"`
	Count int64  `json:"count"`
	// RateFromPrevious is Count / the previous stage's count (1 for the
	// first stage, 0 when the previous is 0).
	RateFromPrevious float64 `json:"rateFromPrevious"`
	RateFromFirst    float64 `json:"rateFromFirst"`
}

// Breakdown is the conversion of one platform or OS.
type Breakdown struct {
	Key             string  `json:"key"`
	ConsentRequests int64   `json:"consentRequests"`
	Authorised      int64   `json:"authorised"`
	ConversionRate  float64 `json:"conversionRate"`
}

// Day is the conversion of one day (UTC, or the query's Location).
type Day struct {
	Date            string  `json:"date"`
	ConsentRequests int64   `json:"consentRequests"`
	Authorised      int64   `json:"authorised"`
	ConversionRate  float64 `json:"conversionRate"`
}

// stage is a funnel stage definition.
type stage struct{ step, typ string }

func stagesFor(side string) []stage {
	switch side {
	case SideInitiator:
		return []stage{{StepRedirectToServer, ""}, {StepRedirectTargetWithoutErrors, ""}}
	case SideHolder:
		return []stage{{StepRedirectTarget, ""}, {StepAuthenticated, ""}, {StepRedirectToClient, TypeAuthorised}}
	}
	return []stage{{StepRedirectToServer, ""}, {StepRedirectTarget, ""}, {StepAuthenticated, ""},
		{StepRedirectToClient, TypeAuthorised}, {StepRedirectTargetWithoutErrors, ""}}
}

// authorisedStage is the index in stagesFor(side) of the stage whose
// consents are authorised.
func authorisedStage(side string) int {
	switch side {
	case SideInitiator:
		return 1
	case SideHolder:
		return 2
	}
	return 3
}

// stepTypes lists the types a step is reported with.
var stepTypes = map[string][]string{
	StepRedirectTarget:   {TypeAwaitingHandoff, TypeAwaitingUserAuth, TypeAwaitingRedirectToApp},
	StepRedirectToClient: {TypeAuthorised, TypeRejected},
}

// A consent's steps travel from SQL as a bit mask: one bit per step, then
// one per typed (step, type) pair, so the query groups consents by what
// they reached instead of returning them one by one.
type maskBit struct{ step, typ string }

var maskBits = func() []maskBit {
	var out []maskBit
	for _, s := range Steps {
		out = append(out, maskBit{s, ""})
	}
	for _, s := range Steps {
		for _, t := range stepTypes[s] {
			out = append(out, maskBit{s, t})
		}
	}
	return out
}()

func maskOf(step, typ string) int64 {
	for i, b := range maskBits {
		if b.step == step && b.typ == typ {
			return 1 << i
		}
	}
	return 0
}

// maskSQL is the SQL expression of a consent's mask over its rows of
// pcm_events (grouped by consent). Each bit is a MAX, not a SUM: a step
// reported with two types sets its step bit once.
var maskSQL = func() string {
	var terms []string
	for i, b := range maskBits {
		cond := "step = '" + b.step + "'"
		if b.typ != "" {
			cond += " AND type = '" + b.typ + "'"
		}
		terms = append(terms, fmt.Sprintf("MAX(CASE WHEN %s THEN %d ELSE 0 END)", cond, int64(1)<<i))
	}
	return strings.Join(terms, " + ")
}()

// stepOrderSQL ranks a row's step in journey order: steps recorded in the
// same millisecond come first by the order they happen in.
var stepOrderSQL = func() string {
	var b strings.Builder
	b.WriteString("CASE step")
	for i, s := range Steps {
		fmt.Fprintf(&b, " WHEN '%s' THEN %d", s, i)
	}
	b.WriteString(" ELSE 99 END")
	return b.String()
}()

// furthest is the index of the last stage a consent with mask m reached
// (0 when it recorded none: it still made a request).
func furthest(stages []stage, m int64) int {
	last := 0
	for i, st := range stages {
		if m&maskOf(st.step, st.typ) != 0 {
			last = i
		}
	}
	return last
}

func rate(num, den int64) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}

// where renders the query's event filters (application, side, brand) on
// table alias a, their values added to p.
func (q Query) where(a string, p *store.Params) string {
	var cond []string
	add := func(column, v string) {
		if v != "" {
			cond = append(cond, a+"."+column+" = "+p.Add(v))
		}
	}
	add("application_id", q.ApplicationID)
	add("side", q.Side)
	add("brand_id", q.BrandID)
	if len(cond) == 0 {
		return ""
	}
	return " AND " + strings.Join(cond, " AND ")
}

// startedOn renders the query's device filters (platform, system) on a
// consent's first step, alias r, their values added to p.
func (q Query) startedOn(p *store.Params) string {
	cond := ""
	if q.Platform != "" {
		cond += " AND r.platform = " + p.Add(q.Platform)
	}
	if q.OS != "" {
		cond += " AND r.os = " + p.Add(q.OS)
	}
	return cond
}

// bucketMS is the width of the time buckets the query groups consents'
// starts into: days when the days are UTC ones, else hours, which the
// daily series then places in Location's days (whole-hour offsets, as
// America/Sao_Paulo's).
func (q Query) bucketMS() int64 {
	switch {
	case !q.ByDay:
		return 0
	case q.location() == time.UTC:
		return msPerDay
	}
	return int64(time.Hour / time.Millisecond)
}

func (q Query) location() *time.Location {
	if q.Location == nil {
		return time.UTC
	}
	return q.Location
}

// Funnel counts the query's consents (see Funnel for the rules).
func (s *Service) Funnel(ctx context.Context, q Query) (*Funnel, error) {
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	bucket := "0"
	if b := q.bucketMS(); b > 0 {
		bucket = "r.occurred_at / " + strconv.FormatInt(b, 10)
	}
	// scope: every in-scope event of the consents with one in the window;
	// ranked: their first step; masks: what each reached. Consents whose
	// first step is before the window belong to an earlier period. Its
	// placeholders must follow the text's order (store.Params): it is one
	// expression, whose calls Go evaluates left to right.
	p := store.NewParams(s.DB.Engine())
	query := `WITH scope AS (
			SELECT e.id, e.consent_id, e.step, e.type, e.platform, e.os, e.occurred_at FROM pcm_events e
			WHERE e.consent_id IN (SELECT w.consent_id FROM pcm_events w WHERE w.occurred_at >= ` + p.Add(from) + ` AND w.occurred_at < ` + p.Add(to) + q.where("w", p) + `)` + q.where("e", p) + `
		), ranked AS (
			SELECT consent_id, platform, os, occurred_at,
				ROW_NUMBER() OVER (PARTITION BY consent_id ORDER BY occurred_at, ` + stepOrderSQL + `, id) AS n
			FROM scope
		), masks AS (
			SELECT consent_id, ` + maskSQL + ` AS mask FROM scope GROUP BY consent_id
		)
		SELECT r.platform, r.os, ` + bucket + ` AS bucket, m.mask, COUNT(*)
		FROM ranked r JOIN masks m ON m.consent_id = r.consent_id
		WHERE r.n = 1 AND r.occurred_at >= ` + p.Add(from) + ` AND r.occurred_at < ` + p.Add(to) + q.startedOn(p) + `
		GROUP BY r.platform, r.os, bucket, m.mask`
	rows, err := s.DB.Read().QueryContext(ctx, query, p.Args()...)
	if err != nil {
		return nil, fmt.Errorf("pcm: funnel: %w", err)
	}
	defer rows.Close()
	var groups []countGroup
	for rows.Next() {
		var g countGroup
		if err := rows.Scan(&g.platform, &g.os, &g.bucket, &g.mask, &g.n); err != nil {
			return nil, fmt.Errorf("pcm: funnel: %w", err)
		}
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pcm: funnel: %w", err)
	}
	return q.count(groups), nil
}

// countGroup is n consents of one start device, time bucket and mask.
type countGroup struct {
	platform, os    string
	bucket, mask, n int64
}

// count makes the funnel of the query from its consents' groups.
func (q Query) count(groups []countGroup) *Funnel {
	f := &Funnel{From: q.From.UTC().Format(time.RFC3339), To: q.To.UTC().Format(time.RFC3339), Side: q.Side, Brand: q.BrandID,
		Platform: q.Platform, OS: q.OS}
	stages := stagesFor(q.Side)
	authAt := authorisedStage(q.Side)
	stageCounts := make([]int64, len(stages))
	steps := map[string]*StepCount{}
	for _, st := range Steps {
		if q.Side == "" || SideOf(st) == q.Side {
			steps[st] = &StepCount{Step: st, Side: SideOf(st)}
		}
	}
	byPlatform, byOS := map[string]*Breakdown{}, map[string]*Breakdown{}
	loc := q.location()
	byDay := map[string]*Day{}
	bump := func(m map[string]*Breakdown, key string, n, auth int64) {
		b := m[key]
		if b == nil {
			b = &Breakdown{Key: key}
			m[key] = b
		}
		b.ConsentRequests += n
		b.Authorised += auth
	}
	for _, g := range groups {
		last := furthest(stages, g.mask)
		for i := 0; i <= last; i++ {
			stageCounts[i] += g.n
		}
		var auth int64
		if last >= authAt {
			auth = g.n
		}
		f.ConsentRequests += g.n
		f.Authorised += auth
		for i, b := range maskBits {
			sc := steps[b.step]
			if sc == nil || g.mask&(1<<i) == 0 {
				continue
			}
			if b.typ == "" {
				sc.Count += g.n
				continue
			}
			if sc.Types == nil {
				sc.Types = map[string]int64{}
			}
			sc.Types[b.typ] += g.n
		}
		bump(byPlatform, g.platform, g.n, auth)
		bump(byOS, g.os, g.n, auth)
		if q.ByDay {
			date := time.UnixMilli(g.bucket * q.bucketMS()).In(loc).Format(dayLayout)
			d := byDay[date]
			if d == nil {
				d = &Day{Date: date}
				byDay[date] = d
			}
			d.ConsentRequests += g.n
			d.Authorised += auth
		}
	}
	f.ConversionRate = rate(f.Authorised, f.ConsentRequests)
	for _, st := range Steps {
		if sc := steps[st]; sc != nil {
			f.Steps = append(f.Steps, *sc)
		}
	}
	for i, st := range stages {
		s := Stage{Step: st.step, Type: st.typ, Count: stageCounts[i], RateFromFirst: rate(stageCounts[i], stageCounts[0])}
		switch {
		case i > 0:
			s.RateFromPrevious = rate(stageCounts[i], stageCounts[i-1])
		case stageCounts[0] > 0:
			s.RateFromPrevious = 1
		}
		f.Stages = append(f.Stages, s)
	}
	f.ByPlatform, f.ByOS = sorted(byPlatform), sorted(byOS)
	if q.ByDay {
		// Every day of the range, in its location, with or without journeys.
		first, last := q.From.In(loc), q.To.Add(-time.Millisecond).In(loc)
		day := time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, loc)
		for end := last.Format(dayLayout); ; day = day.AddDate(0, 0, 1) {
			date := day.Format(dayLayout)
			d := Day{Date: date}
			if got := byDay[date]; got != nil {
				d = *got
			}
			d.ConversionRate = rate(d.Authorised, d.ConsentRequests)
			f.Days = append(f.Days, d)
			if date >= end {
				break
			}
		}
	}
	return f
}

// sorted lists breakdowns by consent requests, most first, then by key.
func sorted(m map[string]*Breakdown) []Breakdown {
	out := make([]Breakdown, 0, len(m))
	for _, b := range m {
		b.ConversionRate = rate(b.Authorised, b.ConsentRequests)
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ConsentRequests != out[j].ConsentRequests {
			return out[i].ConsentRequests > out[j].ConsentRequests
		}
		return out[i].Key < out[j].Key
	})
	return out
}
