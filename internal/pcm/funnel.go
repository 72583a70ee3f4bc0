package pcm

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Funnel is the conversion funnel of a query.
//
// Consent requests are journeys that reached their first step on a side:
// REDIRECT_TO_SERVER at the initiator, REDIRECT_TARGET at the holder.
// Authorised ones ended well there: REDIRECT_TARGET_WITHOUT_ERRORS at the
// initiator, REDIRECT_TO_CLIENT of type AUTHORISED at the holder. Without a
// side filter both sides are pooled. Filters (platform, os, brand) apply to
// events, so a journey handed from a browser to an app counts its steps
// where each happened.
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

// Day is the conversion of one UTC day.
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

// isRequest and isAuthorised classify a (step, type) for the conversion rate.
func isRequest(step string) bool {
	return step == StepRedirectToServer || step == StepRedirectTarget
}

func isAuthorised(step, typ string) bool {
	return step == StepRedirectTargetWithoutErrors || (step == StepRedirectToClient && typ == TypeAuthorised)
}

func rate(num, den int64) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}

// where renders the query's filters on table alias e as SQL with $n
// placeholders.
func (q Query) where() (string, []any) {
	cond := "e.occurred_at >= $1 AND e.occurred_at < $2"
	args := []any{q.From.UnixMilli(), q.To.UnixMilli()}
	add := func(column, v string) {
		if v == "" {
			return
		}
		args = append(args, v)
		cond += " AND e." + column + " = $" + strconv.Itoa(len(args))
	}
	add("application_id", q.ApplicationID)
	add("side", q.Side)
	add("brand_id", q.BrandID)
	add("platform", q.Platform)
	add("os", q.OS)
	return cond, args
}

// Funnel counts the query's events.
func (s *Service) Funnel(ctx context.Context, q Query) (*Funnel, error) {
	cond, args := q.where()
	// n counts events (one per consent, step and type); firsts counts those
	// that are their consent's first report of the step, so a step reported
	// with several types (a hand-off reported from the web, then from the
	// app) counts its consent once, where and when it first happened.
	rows, err := s.DB.Read().QueryContext(ctx, `SELECT e.step, e.type, e.platform, e.os, e.occurred_at / `+strconv.FormatInt(msPerDay, 10)+` AS day,
		COUNT(*), CAST(SUM(CASE WHEN EXISTS (SELECT 1 FROM pcm_events p WHERE p.consent_id = e.consent_id AND p.step = e.step
			AND (p.occurred_at < e.occurred_at OR (p.occurred_at = e.occurred_at AND p.id < e.id))) THEN 0 ELSE 1 END) AS BIGINT)
		FROM pcm_events e WHERE `+cond+` GROUP BY e.step, e.type, e.platform, e.os, day`, args...)
	if err != nil {
		return nil, fmt.Errorf("pcm: funnel: %w", err)
	}
	defer rows.Close()
	type group struct {
		step, typ, platform, os string
		day, n, firsts          int64
	}
	var groups []group
	for rows.Next() {
		var g group
		if err := rows.Scan(&g.step, &g.typ, &g.platform, &g.os, &g.day, &g.n, &g.firsts); err != nil {
			return nil, fmt.Errorf("pcm: funnel: %w", err)
		}
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pcm: funnel: %w", err)
	}
	f := &Funnel{From: q.From.UTC().Format(time.RFC3339), To: q.To.UTC().Format(time.RFC3339), Side: q.Side, Brand: q.BrandID,
		Platform: q.Platform, OS: q.OS}
	steps := map[string]*StepCount{}
	for _, st := range Steps {
		if q.Side != "" && SideOf(st) != q.Side {
			continue
		}
		sc := &StepCount{Step: st, Side: SideOf(st)}
		steps[st] = sc
	}
	byPlatform, byOS, byDay := map[string]*Breakdown{}, map[string]*Breakdown{}, map[int64]*Day{}
	bump := func(m map[string]*Breakdown, key string, req, auth int64) {
		b := m[key]
		if b == nil {
			b = &Breakdown{Key: key}
			m[key] = b
		}
		b.ConsentRequests += req
		b.Authorised += auth
	}
	for _, g := range groups {
		sc := steps[g.step]
		if sc == nil {
			continue
		}
		sc.Count += g.firsts
		if g.typ != "" {
			if sc.Types == nil {
				sc.Types = map[string]int64{}
			}
			sc.Types[g.typ] += g.n
		}
		var req, auth int64
		if isRequest(g.step) {
			req = g.firsts
		}
		if isAuthorised(g.step, g.typ) {
			auth = g.n
		}
		if req == 0 && auth == 0 {
			continue
		}
		f.Authorised += auth
		bump(byPlatform, g.platform, req, auth)
		bump(byOS, g.os, req, auth)
		d := byDay[g.day]
		if d == nil {
			d = &Day{}
			byDay[g.day] = d
		}
		d.ConsentRequests += req
		d.Authorised += auth
	}
	for _, st := range Steps {
		if sc := steps[st]; sc != nil {
			f.Steps = append(f.Steps, *sc)
		}
	}
	if sc := steps[StepRedirectToServer]; sc != nil {
		f.ConsentRequests += sc.Count
	}
	if sc := steps[StepRedirectTarget]; sc != nil {
		f.ConsentRequests += sc.Count
	}
	f.ConversionRate = rate(f.Authorised, f.ConsentRequests)

	var first, prev int64
	for i, st := range stagesFor(q.Side) {
		n := int64(0)
		if sc := steps[st.step]; sc != nil {
			n = sc.Count
			if st.typ != "" {
				n = sc.Types[st.typ]
			}
		}
		s := Stage{Step: st.step, Type: st.typ, Count: n}
		if i == 0 {
			first, s.RateFromPrevious = n, 1
		} else {
			s.RateFromPrevious = rate(n, prev)
		}
		s.RateFromFirst = rate(n, first)
		if i == 0 && n == 0 {
			s.RateFromFirst, s.RateFromPrevious = 0, 0
		}
		prev = n
		f.Stages = append(f.Stages, s)
	}
	f.ByPlatform, f.ByOS = sorted(byPlatform), sorted(byOS)
	if q.ByDay {
		start, end := q.From.UnixMilli()/msPerDay, (q.To.UnixMilli()-1)/msPerDay
		for day := start; day <= end; day++ {
			d := Day{Date: time.UnixMilli(day * msPerDay).UTC().Format(dayLayout)}
			if got := byDay[day]; got != nil {
				d.ConsentRequests, d.Authorised = got.ConsentRequests, got.Authorised
			}
			d.ConversionRate = rate(d.Authorised, d.ConsentRequests)
			f.Days = append(f.Days, d)
		}
	}
	return f, nil
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
