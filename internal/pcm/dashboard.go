package pcm

import (
	"fmt"
	"strconv"
	"strings"
)

// The dashboard's charts are SVG drawn here: the template only places the
// shapes and labels computed below.

// dashboardView is what pcm_dashboard renders.
type dashboardView struct {
	Funnel   *Funnel
	Problems []string
	Form     dashboardForm

	RatePct, FloorPct string
	FloorIsDefault    bool

	FunnelHeight int
	Bars         []funnelBar

	Line lineChart

	Platforms, OSes []breakdownRow
}

type dashboardForm struct {
	From, To, Side, Brand, Platform, OS string
}

// funnelBar is one stage: its label on a line of its own above the bar, so
// both fit a phone's width, and the count and rate right of the bar.
type funnelBar struct {
	Label         string
	Count         int64
	Pct           string // from the previous stage
	LabelY, Y     int
	ValueY, Width int
	ValueX        int
}

type lineChart struct {
	Points      string // polyline points
	Dots        []lineDot
	FloorY      int
	FloorLabelY int
	Ticks       []tick
	XLabels     []xLabel
	Empty       bool
}

type lineDot struct {
	X, Y  int
	Title string
	Below bool
}

type tick struct {
	Y     int
	Label string
}

type xLabel struct {
	X     int
	Label string
}

type breakdownRow struct {
	Key                  string
	Requests, Authorised int64
	RatePct              string
	Width                int
}

// Geometry of the charts (SVG user units).
const (
	// A stage's row: the label's line (room for the phone's larger font,
	// see pcm.css), then the bar; bars leave room on their right for
	// "123456 · 100.0%" in that font.
	funnelBarMax    = 460
	funnelRow       = 62
	funnelBarTop    = 30
	funnelBarHeight = 24
	lineLeft        = 44
	lineRight       = 624
	lineTop         = 16
	lineBottom      = 196
)

var stageLabels = map[string]string{
	StepRedirectToServer:            "Enviados à detentora (REDIRECT_TO_SERVER)",
	StepRedirectTarget:              "Chegaram à detentora (REDIRECT_TARGET)",
	StepAuthenticated:               "Autenticados (AUTHENTICATED)",
	StepRedirectToClient:            "Autorizados (REDIRECT_TO_CLIENT)",
	StepRedirectTargetWithoutErrors: "Retorno sem erro (WITHOUT_ERRORS)",
}

func pct(r float64) string {
	return strconv.FormatFloat(r*100, 'f', 1, 64) + "%"
}

func newDashboardView(f *Funnel, floor float64) *dashboardView {
	v := &dashboardView{Funnel: f, RatePct: pct(f.ConversionRate)}
	if floor <= 0 {
		floor, v.FloorIsDefault = 0.8*f.ConversionRate, true
	}
	v.FloorPct = pct(floor)

	var first int64
	if len(f.Stages) > 0 {
		first = f.Stages[0].Count
	}
	for i, s := range f.Stages {
		w := 0
		if first > 0 {
			w = int(float64(funnelBarMax) * float64(s.Count) / float64(first))
		}
		if s.Count > 0 && w < 2 {
			w = 2
		}
		top := i * funnelRow
		v.Bars = append(v.Bars, funnelBar{Label: stageLabels[s.Step], Count: s.Count, Pct: pct(s.RateFromPrevious),
			LabelY: top + 20, Y: top + funnelBarTop, ValueY: top + funnelBarTop + funnelBarHeight/2 + 6, Width: w, ValueX: w + 8})
	}
	v.FunnelHeight = len(f.Stages) * funnelRow

	v.Line = drawLine(f.Days, floor)
	v.Platforms, v.OSes = rows(f.ByPlatform), rows(f.ByOS)
	return v
}

func yOf(rate float64) int {
	if rate < 0 {
		rate = 0
	}
	if rate > 1 {
		rate = 1
	}
	return lineBottom - int(rate*float64(lineBottom-lineTop)+0.5)
}

func drawLine(days []Day, floor float64) lineChart {
	var c lineChart
	for _, r := range []float64{0, 0.25, 0.5, 0.75, 1} {
		c.Ticks = append(c.Ticks, tick{Y: yOf(r), Label: strconv.Itoa(int(r*100)) + "%"})
	}
	c.FloorY = yOf(floor)
	c.FloorLabelY = c.FloorY - 4
	if c.FloorLabelY < lineTop+8 {
		c.FloorLabelY = c.FloorY + 12
	}
	if len(days) == 0 {
		c.Empty = true
		return c
	}
	step := 0.0
	if len(days) > 1 {
		step = float64(lineRight-lineLeft) / float64(len(days)-1)
	}
	var pts []string
	every := (len(days) + 6) / 7
	for i, d := range days {
		x := lineLeft + int(step*float64(i)+0.5)
		if len(days) == 1 {
			x = (lineLeft + lineRight) / 2
		}
		if i%every == 0 || i == len(days)-1 {
			c.XLabels = append(c.XLabels, xLabel{X: x, Label: d.Date[5:]})
		}
		if d.ConsentRequests == 0 {
			continue // no journeys that day: no rate to draw
		}
		y := yOf(d.ConversionRate)
		pts = append(pts, fmt.Sprintf("%d,%d", x, y))
		c.Dots = append(c.Dots, lineDot{X: x, Y: y, Below: d.ConversionRate < floor,
			Title: fmt.Sprintf("%s: %s (%d de %d)", d.Date, pct(d.ConversionRate), d.Authorised, d.ConsentRequests)})
	}
	c.Points = strings.Join(pts, " ")
	c.Empty = len(pts) == 0
	return c
}

func rows(bs []Breakdown) []breakdownRow {
	var max int64
	for _, b := range bs {
		if b.ConsentRequests > max {
			max = b.ConsentRequests
		}
	}
	out := make([]breakdownRow, 0, len(bs))
	for _, b := range bs {
		w := 0
		if max > 0 {
			w = int(160 * float64(b.ConsentRequests) / float64(max))
		}
		out = append(out, breakdownRow{Key: b.Key, Requests: b.ConsentRequests, Authorised: b.Authorised, RatePct: pct(b.ConversionRate), Width: w})
	}
	return out
}
