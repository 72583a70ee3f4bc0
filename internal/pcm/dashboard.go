package pcm

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"
)

// The dashboard's charts are SVG drawn here: the template only places the
// shapes and labels computed below. Its readers are Brazilian: numbers are
// written as pt-BR does ("1.234", "57,9%") and dates are days of
// America/Sao_Paulo (DashboardLocation).

// DashboardLocation is the time zone of the dashboard's dates, days and
// period: Brasília time.
var DashboardLocation = saoPaulo

// dashboardDays is the dashboard's default period: today and the 6 days
// before it, the funnel API's 7 days as whole days a person can type back
// into the form.
const dashboardDays = 7

// dashboardView is what pcm_dashboard renders.
type dashboardView struct {
	Funnel   *Funnel
	Problems []string
	Form     dashboardForm

	// Period is the range in words; DefaultPeriod says it is the default.
	Period        string
	DefaultPeriod bool

	Requests, Authorised string
	RatePct, FloorPct    string
	FloorIsDefault       bool

	FunnelHeight int
	Bars         []funnelBar
	Steps        []stepRow

	Line lineChart

	Platforms, OSes []breakdownRow

	PlatformChoices, OSChoices []option // the form's
}

type dashboardForm struct {
	From, To, Side, Brand, Platform, OS string
}

type option struct{ Value, Label string }

// funnelBar is one stage: its label on a line of its own above the bar, so
// both fit a phone's width, and the count and rate right of the bar.
type funnelBar struct {
	Label         string
	Count         string
	Pct           string // from the previous stage
	LabelY, Y     int
	ValueY, Width int
	ValueX        int
}

// stepRow is a row of the steps table.
type stepRow struct {
	Step  string
	Label string
	Code  template.HTML // breakable at its underscores only
	Side  string
	Count string
	Types []typeCount
}

type typeCount struct {
	Code  template.HTML
	Count string
}

type lineChart struct {
	Left, Right, TickX, Height, XLabelY int // geometry, for the template

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
	Key, Label           string
	Requests, Authorised string
	RatePct              string
}

// Geometry of the charts (SVG user units, 640 wide). On a phone the charts
// shrink to about half and pcm.css doubles their font (24 units) to keep it
// at 11 px or more; the geometry leaves room for that font.
const (
	// A stage's row: the label's line, then the bar; bars leave room on
	// their right for "123.456 · 100,0%".
	funnelBarMax    = 400
	funnelRow       = 64
	funnelBarTop    = 32
	funnelBarHeight = 24
	// The daily line: tick labels end left of lineLeft, day labels sit
	// centred under their day, so the last one needs room right of
	// lineRight.
	lineLeft   = 84
	lineRight  = 596
	tickRight  = 76 // where tick labels end
	lineTop    = 16
	lineBottom = 196
	lineHeight = 240 // day labels' baseline (xLabelY), and their descent
	xLabelY    = 230
)

var stageLabels = map[string]string{
	StepRedirectToServer:            "Enviados à detentora",
	StepRedirectTarget:              "Chegaram à detentora",
	StepAuthenticated:               "Autenticados",
	StepRedirectToClient:            "Autorizados",
	StepRedirectTargetWithErrors:    "Retorno com erro",
	StepRedirectTargetWithoutErrors: "Retorno sem erro",
}

var sideLabels = map[string]string{SideInitiator: "Iniciadora", SideHolder: "Detentora"}

var platformLabels = map[string]string{"BROWSER": "Navegador", "APP": "Aplicativo"}

var osLabels = map[string]string{"ANDROID": "Android", "IOS": "iOS", "WINDOWS": "Windows", "MACOS": "macOS", "LINUX": "Linux",
	"UNIX": "Unix", "OTHER": "Outro"}

// label is a code's name for people, or the code itself.
func label(names map[string]string, code string) string {
	if n, ok := names[code]; ok {
		return n
	}
	return code
}

// breakable is code, escaped, with a line-break opportunity after each
// underscore: step and type names wrap there, never inside a word.
func breakable(code string) template.HTML {
	parts := strings.Split(code, "_")
	for i, p := range parts {
		parts[i] = template.HTMLEscapeString(p)
	}
	return template.HTML(strings.Join(parts, "_<wbr>"))
}

// formatInt writes n as pt-BR does: a dot between thousands.
func formatInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// pct writes a rate as a pt-BR percentage with one decimal: "57,9%".
func pct(r float64) string {
	s := strconv.FormatFloat(r*100, 'f', 1, 64)
	whole, frac, _ := strings.Cut(s, ".")
	n, _ := strconv.ParseInt(whole, 10, 64)
	return formatInt(n) + "," + frac + "%"
}

// shortDate is "15/10"; longDate "15/10/2024".
func shortDate(t time.Time) string { return t.Format("02/01") }
func longDate(t time.Time) string  { return t.Format("02/01/2006") }

// period says [from, to) in loc's days: "01/12/2026 – 07/12/2026", one
// date for one day, with times when an end is not midnight.
func period(from, to time.Time, loc *time.Location) string {
	from, to = from.In(loc), to.In(loc)
	midnight := func(t time.Time) bool {
		return t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0
	}
	if !midnight(from) || !midnight(to) {
		return from.Format("02/01/2006 15:04") + " – " + to.Format("02/01/2006 15:04")
	}
	last := to.AddDate(0, 0, -1)
	if longDate(last) == longDate(from) {
		return longDate(from)
	}
	return longDate(from) + " – " + longDate(last)
}

func newDashboardView(f *Funnel, floor float64, loc *time.Location) *dashboardView {
	v := &dashboardView{Funnel: f, Requests: formatInt(f.ConsentRequests), Authorised: formatInt(f.Authorised), RatePct: pct(f.ConversionRate)}
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
		code := s.Step
		if s.Step == StepRedirectTargetWithoutErrors {
			code = "WITHOUT_ERRORS" // the full name does not fit a phone's line
		}
		v.Bars = append(v.Bars, funnelBar{Label: stageLabels[s.Step] + " (" + code + ")", Count: formatInt(s.Count), Pct: pct(s.RateFromPrevious),
			LabelY: top + 22, Y: top + funnelBarTop, ValueY: top + funnelBarTop + funnelBarHeight/2 + 7, Width: w, ValueX: w + 8})
	}
	v.FunnelHeight = len(f.Stages) * funnelRow

	for _, s := range f.Steps {
		r := stepRow{Step: s.Step, Label: stageLabels[s.Step], Code: breakable(s.Step), Side: label(sideLabels, s.Side), Count: formatInt(s.Count)}
		for _, t := range stepTypes[s.Step] {
			if n, ok := s.Types[t]; ok {
				r.Types = append(r.Types, typeCount{Code: breakable(t), Count: formatInt(n)})
			}
		}
		v.Steps = append(v.Steps, r)
	}

	v.Line = drawLine(f.Days, floor, loc)
	v.Platforms, v.OSes = rows(f.ByPlatform, platformLabels), rows(f.ByOS, osLabels)
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

func drawLine(days []Day, floor float64, loc *time.Location) lineChart {
	c := lineChart{Left: lineLeft, Right: lineRight, TickX: tickRight, Height: lineHeight, XLabelY: xLabelY}
	for _, r := range []float64{0, 0.25, 0.5, 0.75, 1} {
		c.Ticks = append(c.Ticks, tick{Y: yOf(r), Label: strconv.Itoa(int(r*100)) + "%"})
	}
	c.FloorY = yOf(floor)
	c.FloorLabelY = c.FloorY - 6
	if c.FloorLabelY < lineTop+16 {
		c.FloorLabelY = c.FloorY + 20
	}
	if len(days) == 0 {
		c.Empty = true
		return c
	}
	step := 0.0
	if len(days) > 1 {
		step = float64(lineRight-lineLeft) / float64(len(days)-1)
	}
	// Day labels are about 67 units wide in the phone's font: from the
	// last day (today) back, label a day when 80 units clear its neighbour.
	labelX := lineRight + 80
	var pts []string
	for i := len(days) - 1; i >= 0; i-- {
		d := days[i]
		x := lineLeft + int(step*float64(i)+0.5)
		if len(days) == 1 {
			x = (lineLeft + lineRight) / 2
		}
		day, err := time.ParseInLocation(dayLayout, d.Date, loc)
		if err != nil {
			continue // Funnel writes every date with dayLayout
		}
		if labelX-x >= 80 {
			c.XLabels = append([]xLabel{{X: x, Label: shortDate(day)}}, c.XLabels...)
			labelX = x
		}
		if d.ConsentRequests == 0 {
			continue // no journeys that day: no rate to draw
		}
		y := yOf(d.ConversionRate)
		pts = append([]string{fmt.Sprintf("%d,%d", x, y)}, pts...)
		c.Dots = append([]lineDot{{X: x, Y: y, Below: d.ConversionRate < floor,
			Title: fmt.Sprintf("%s: %s (%s de %s)", longDate(day), pct(d.ConversionRate), formatInt(d.Authorised), formatInt(d.ConsentRequests))}}, c.Dots...)
	}
	c.Points = strings.Join(pts, " ")
	c.Empty = len(pts) == 0
	return c
}

func rows(bs []Breakdown, names map[string]string) []breakdownRow {
	out := make([]breakdownRow, 0, len(bs))
	for _, b := range bs {
		out = append(out, breakdownRow{Key: b.Key, Label: label(names, b.Key), Requests: formatInt(b.ConsentRequests),
			Authorised: formatInt(b.Authorised), RatePct: pct(b.ConversionRate)})
	}
	return out
}

// fieldLabels name the form's fields as the page does.
var fieldLabels = map[string]string{"from": "De", "to": "Até", "side": "Lado", "platform": "Plataforma", "os": "Sistema", "brand": "Marca (id)"}

// problemText words a filter problem for people; the funnel API keeps its
// English Message.
func problemText(p Problem) string {
	field := label(fieldLabels, p.Field)
	switch p.reason {
	case reasonDate:
		return "“" + field + "” não é uma data válida: escolha uma no calendário."
	case reasonOrder:
		return "A data em “De” não pode ser depois da data em “Até”."
	case reasonTooLong:
		return "O período pode ter no máximo 366 dias: aproxime “De” e “Até”."
	case reasonEnum:
		return "“" + field + "” tem um valor que não existe: escolha uma das opções da lista."
	case reasonTooLarge:
		return "“" + field + "” pode ter no máximo 100 caracteres."
	}
	return "O filtro “" + field + "” não é válido."
}

// formOptions are the form's platform and system choices.
func formOptions() (platforms, systems []option) {
	for _, p := range []string{"BROWSER", "APP"} {
		platforms = append(platforms, option{p, platformLabels[p]})
	}
	for _, s := range []string{"ANDROID", "IOS", "WINDOWS", "MACOS", "LINUX", "UNIX", "OTHER"} {
		systems = append(systems, option{s, osLabels[s]})
	}
	return platforms, systems
}
