package app_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	chromedevice "github.com/chromedp/chromedp/device"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// dashboardEvents is the dashboard's fixture: five journeys over three days
// (the test clock is apptest.Epoch, 2024-10-15 18:55:15 UTC, 15:55 in
// Brasília), recorded through the Recorder as the journeys would.
//
//	c1 10-14 approved, every step BROWSER/ANDROID
//	c2 10-14 rejected at the holder, BROWSER/ANDROID
//	c3 10-15 approved, handed to the app: BROWSER/IOS, then APP/IOS
//	c4 10-15 sent to the holder and abandoned, BROWSER/WINDOWS
//	c5 10-13 landed at the holder and abandoned, APP/ANDROID
//
// Hand-computed by the funnel's rules (each consent once, on its first
// step's device; a stage counts consents that reached it or a later one),
// both sides pooled, default period 09/10 to 15/10 in Brasília:
//
//	consent requests 5; authorised 2 (c1, c3); rate 2/5 = 40,0%
//	floor (default, 80% of the average) 0.8 × 0.4 = 32,0%
//	stages 5 (100,0%), 4 (80,0%), 3 (75,0%), 2 (66,7%), 2 (100,0%)
//	steps REDIRECT_TO_SERVER 5, REDIRECT_TARGET 4 (AWAITING_HANDOFF 1,
//	AWAITING_USER_AUTH 3), AUTHENTICATED 3, REDIRECT_TO_CLIENT 3 (AUTHORISED 2,
//	REJECTED 1), REDIRECT_TARGET_WITH_ERRORS 1, REDIRECT_TARGET_WITHOUT_ERRORS 2
//	days 13/10 0 of 1 (0,0%, below the floor), 14/10 1 of 2 (50,0%),
//	     15/10 1 of 2 (50,0%)
//	platforms BROWSER 4 requests, 2 authorised (50,0%); APP 1, 0 (0,0%)
//	  (c3 was authorised in the app but started in the browser)
//	systems ANDROID 3, 1 (33,3%); IOS 1, 1 (100,0%); WINDOWS 1, 0 (0,0%)
func dashboardEvents() []pcm.Event {
	android := ofb.Device{Platform: "BROWSER", OS: "ANDROID", OSVersion: "14"}
	iosWeb := ofb.Device{Platform: "BROWSER", OS: "IOS", OSVersion: "17.5"}
	iosApp := ofb.Device{Platform: "APP", OS: "IOS", OSVersion: "17.5"}
	windows := ofb.Device{Platform: "BROWSER", OS: "WINDOWS", OSVersion: "11"}
	androidApp := ofb.Device{Platform: "APP", OS: "ANDROID", OSVersion: "14"}
	const authorize, callback = "https://holder.example/authorize", "https://fintech.example/cb"
	type step struct {
		step, typ, errCode, uri string
		dev                     ofb.Device
	}
	journeys := []struct {
		consent string
		day     int // of October 2024
		steps   []step
	}{
		{"urn:dash:c1", 14, []step{{pcm.StepRedirectToServer, "", "", authorize, android}, {pcm.StepRedirectTarget, pcm.TypeAwaitingUserAuth, "", authorize, android},
			{pcm.StepAuthenticated, "", "", "", android}, {pcm.StepRedirectToClient, pcm.TypeAuthorised, "", callback, android},
			{pcm.StepRedirectTargetWithoutErrors, "", "", "", android}}},
		{"urn:dash:c2", 14, []step{{pcm.StepRedirectToServer, "", "", authorize, android}, {pcm.StepRedirectTarget, pcm.TypeAwaitingUserAuth, "", authorize, android},
			{pcm.StepAuthenticated, "", "", "", android}, {pcm.StepRedirectToClient, pcm.TypeRejected, "", callback, android},
			{pcm.StepRedirectTargetWithErrors, "", "access_denied", "", android}}},
		{"urn:dash:c3", 15, []step{{pcm.StepRedirectToServer, "", "", authorize, iosWeb}, {pcm.StepRedirectTarget, pcm.TypeAwaitingHandoff, "", authorize, iosWeb},
			{pcm.StepAuthenticated, "", "", "", iosApp}, {pcm.StepRedirectToClient, pcm.TypeAuthorised, "", callback, iosApp},
			{pcm.StepRedirectTargetWithoutErrors, "", "", "", iosWeb}}},
		{"urn:dash:c4", 15, []step{{pcm.StepRedirectToServer, "", "", authorize, windows}}},
		{"urn:dash:c5", 13, []step{{pcm.StepRedirectToServer, "", "", authorize, androidApp}, {pcm.StepRedirectTarget, pcm.TypeAwaitingUserAuth, "", authorize, androidApp}}},
	}
	var out []pcm.Event
	for _, j := range journeys {
		at := time.Date(2024, 10, j.day, 12, 0, 0, 0, time.UTC)
		for i, s := range j.steps {
			out = append(out, pcm.Event{ConsentID: j.consent, Step: s.step, Type: s.typ, Error: s.errCode, URI: s.uri, Device: s.dev,
				ApplicationID: "dashboard-fixture", Source: pcm.SourcePayload, OccurredAt: at.Add(time.Duration(i) * time.Minute)})
		}
	}
	return out
}

// TestPCMDashboardInChromium: /admin/pcm, opened in Chromium with the admin
// credential (HTTP Basic), shows the fixture's hand-computed figures, written
// for Brazilian readers, in its summary, its server-drawn SVG funnel and daily
// line, and its breakdowns; with no console errors or CSP violations; laid
// out on a laptop (1366×768) and a phone (390×844) with nothing overlapping,
// nothing wider than its container, chart text of 11 px or more and no word
// broken inside. A filtered view, its filter errors and its 401 are in
// Portuguese. On both databases. It runs when chromium is on PATH; full-page
// screenshots go to the test's artifact directory (go test -artifacts).
func TestPCMDashboardInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not on PATH")
	}
	b := startDashboardBrowser(t, chromium)
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			rec := s.App.PCM.Service.Recorder
			err := s.App.DB.Write(t.Context(), func(tx *sql.Tx) error {
				for _, ev := range dashboardEvents() {
					if _, created, err := rec.Record(t.Context(), tx, ev); err != nil || !created {
						return fmt.Errorf("record %s %s: created %v, %v", ev.ConsentID, ev.Step, created, err)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// HTTP Basic, any user name, the admin token as password.
			basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+s.App.PCM.AdminToken))
			setHeaders := func(h network.Headers) {
				t.Helper()
				if _, err := chromedp.Call(b.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h}); err != nil {
					t.Fatal(err)
				}
			}
			open := func(t *testing.T, path string, status int64) {
				t.Helper()
				resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(s.URL+path))
				if err != nil {
					t.Fatalf("open %s: %v", path, err)
				}
				if resp.Status != status {
					t.Fatalf("%s: %d, want %d", path, resp.Status, status)
				}
			}
			setHeaders(network.Headers{"Authorization": basic})
			viewports := []struct {
				name  string
				emu   chromedp.Action[chromedp.Void]
				width int
			}{
				{"laptop", chromedp.EmulateViewport(1366, 768), 1366},
				{"phone", chromedp.Emulate(chromedevice.IPhone13), 390},
			}
			for _, vp := range viewports {
				t.Run(vp.name, func(t *testing.T) {
					if err := chromedp.Do(b.ctx, vp.emu); err != nil {
						t.Fatal(err)
					}
					open(t, "/admin/pcm", 200)
					if err := chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.ID("funnel-chart"))); err != nil {
						t.Fatal(err)
					}
					checkDashboard(t, b.ctx)
					checkLayout(t, b.ctx, vp.width)
					fullScreenshot(t, b.ctx, "pcm-dashboard-"+strings.ToLower(e.Name)+"-"+vp.name+".png")

					// Filtered to journeys started in the app, over three days
					// the form names: c5 only.
					open(t, "/admin/pcm?from=2024-10-13&to=2024-10-15&platform=APP", 200)
					for sel, want := range map[string]string{"#period": "13/10/2024 – 15/10/2024 (horário de Brasília)",
						"#consent-requests": "1", "#authorised": "0", "#conversion-rate": "0,0%", "#platform option:checked": "Aplicativo",
						"#from": "2024-10-13", "#to": "2024-10-15"} {
						if got := jsValue[string](t, b.ctx, `(e => e.value !== undefined && e.tagName == "INPUT" ? e.value : e.textContent.replace(/\s+/g, " ").trim())(document.querySelector("`+sel+`"))`); got != want {
							t.Errorf("filtered: %s shows %q, want %q", sel, got, want)
						}
					}
					checkLayout(t, b.ctx, vp.width)

					// Filter errors, for people.
					open(t, "/admin/pcm?from=ontem&to=2024-10-15&side=AMBOS&os=BEOS", 400)
					problems := jsValue[[]string](t, b.ctx, `Array.from(document.querySelectorAll("#problems p")).map(p => p.textContent)`)
					wantProblems := []string{
						"“De” não é uma data válida: escolha uma no calendário.",
						"“Lado” tem um valor que não existe: escolha uma das opções da lista.",
						"“Sistema” tem um valor que não existe: escolha uma das opções da lista.",
					}
					if strings.Join(problems, "\n") != strings.Join(wantProblems, "\n") {
						t.Errorf("filter errors = %q, want %q", problems, wantProblems)
					}
					checkLayout(t, b.ctx, vp.width)
					fullScreenshot(t, b.ctx, "pcm-dashboard-errors-"+strings.ToLower(e.Name)+"-"+vp.name+".png")
					b.forget("status of 400 (Bad Request) " + s.URL + "/admin/pcm?from=ontem") // the page's own status
				})
			}
			// Without the credential: the Basic challenge, and a Portuguese
			// page for whoever cancels the browser's prompt (headless
			// Chromium fails such a navigation, so the page is read here).
			setHeaders(network.Headers{})
			for _, auth := range []string{"", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:wrong"))} {
				r := s.Do(t, "GET", "/admin/pcm", map[string]string{"Authorization": auth}, "")
				if r.Status != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic ") || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
					t.Errorf("dashboard with %q: %d %q %q", auth, r.Status, r.Header.Get("WWW-Authenticate"), r.Header.Get("Content-Type"))
				}
				for _, want := range []string{`<html lang="pt-BR">`, "<h1>Acesso restrito</h1>", "<p>Este painel é só para administradores. Entre com qualquer nome de usuário e o token de administrador da Ponte como senha"} {
					if !strings.Contains(string(r.Body), want) {
						t.Errorf("401 page without %q:\n%s", want, r.Body)
					}
				}
			}
		})
	}
	b.checkNoProblems(t)
}

// startDashboardBrowser starts headless Chromium with the flags of the other
// browser tests, collecting console errors, exceptions and CSP violations.
func startDashboardBrowser(t *testing.T, chromium string) *phone {
	t.Helper()
	b, _ := startChromium(t, chromium, 180*time.Second)
	return b
}

// forget drops the collected problems that contain s: a page's own error
// status that the test asked for.
func (p *phone) forget(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.problems = slices.DeleteFunc(p.problems, func(pr string) bool { return strings.Contains(pr, s) })
}

// fullScreenshot saves the whole page, not only the viewport, as a PNG in
// the test's artifact directory, and each of its cards at two pixels per
// CSS pixel, small enough to look at on a phone's page.
func fullScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), name), png, 0o644); err != nil {
		t.Error(err)
	}
	dpr := jsValue[float64](t, ctx, `window.devicePixelRatio`)
	cards, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("main > .card, main > .notice")))
	if err != nil {
		t.Errorf("cards: %v", err)
		return
	}
	for i, n := range cards {
		png, err := chromedp.Run(ctx, chromedp.ScreenshotNodes(cards[i:i+1], 2/dpr))
		if err != nil {
			t.Errorf("screenshot of %s: %v", n.AttributeValue("class"), err)
			continue
		}
		card := strings.TrimSuffix(name, ".png") + fmt.Sprintf("-%d.png", i+1)
		if err := os.WriteFile(filepath.Join(t.ArtifactDir(), card), png, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// checkDashboard compares what the page shows with the fixture's
// hand-computed figures (see dashboardEvents).
func checkDashboard(t *testing.T, ctx context.Context) {
	t.Helper()
	text := func(js string) string { return jsValue[string](t, ctx, js) }
	// Summary.
	for id, want := range map[string]string{"consent-requests": "5", "authorised": "2", "conversion-rate": "40,0%",
		"floor": "32,0% (80% da média do período)", "period": "09/10/2024 – 15/10/2024 (horário de Brasília; padrão: últimos 7 dias, hoje incluído)"} {
		if got := text(`document.getElementById("` + id + `").textContent.replace(/\s+/g, " ").trim()`); got != want {
			t.Errorf("#%s shows %q, want %q", id, got, want)
		}
	}
	// The form shows the default period, so applying it keeps the figures.
	if got := text(`document.getElementById("from").value + " " + document.getElementById("to").value`); got != "2024-10-09 2024-10-15" {
		t.Errorf("form period %q", got)
	}
	// The funnel: one bar per stage, as wide as its share of the first
	// (400 units for 5), labelled with its count and step-to-step rate.
	type bar struct {
		Label string `json:"label"`
		Value string `json:"value"`
		Count string `json:"count"`
		Width string `json:"width"`
	}
	bars := jsValue[[]bar](t, ctx, `Array.from(document.querySelectorAll("#funnel-chart g.stage")).map(g => ({
		label: g.querySelector("text.label").textContent, value: g.querySelector("text.value").textContent,
		count: g.querySelector("text.value").dataset.count, width: g.querySelector("rect.bar").getAttribute("width")}))`)
	want := []bar{
		{"Enviados à detentora (REDIRECT_TO_SERVER)", "5 · 100,0%", "5", "400"},
		{"Chegaram à detentora (REDIRECT_TARGET)", "4 · 80,0%", "4", "320"},
		{"Autenticados (AUTHENTICATED)", "3 · 75,0%", "3", "240"},
		{"Autorizados (REDIRECT_TO_CLIENT)", "2 · 66,7%", "2", "160"},
		{"Retorno sem erro (WITHOUT_ERRORS)", "2 · 100,0%", "2", "160"},
	}
	if fmt.Sprint(bars) != fmt.Sprint(want) {
		t.Errorf("funnel bars =\n%v\nwant\n%v", bars, want)
	}
	// Step counts with their types.
	steps := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("table.steps tbody tr")).map(r =>
		[r.dataset.step, r.cells[0].querySelector("code").textContent, r.cells[1].textContent, r.cells[2].textContent,
		 Array.from(r.cells[3].querySelectorAll(".type")).map(e => e.textContent).join(" ")].join("|"))`)
	wantSteps := []string{
		"REDIRECT_TO_SERVER|REDIRECT_TO_SERVER|Iniciadora|5|",
		"REDIRECT_TARGET|REDIRECT_TARGET|Detentora|4|AWAITING_HANDOFF: 1 AWAITING_USER_AUTH: 3",
		"AUTHENTICATED|AUTHENTICATED|Detentora|3|",
		"REDIRECT_TO_CLIENT|REDIRECT_TO_CLIENT|Detentora|3|AUTHORISED: 2 REJECTED: 1",
		"REDIRECT_TARGET_WITH_ERRORS|REDIRECT_TARGET_WITH_ERRORS|Iniciadora|1|",
		"REDIRECT_TARGET_WITHOUT_ERRORS|REDIRECT_TARGET_WITHOUT_ERRORS|Iniciadora|2|",
	}
	if strings.Join(steps, "\n") != strings.Join(wantSteps, "\n") {
		t.Errorf("step table =\n%s\nwant\n%s", strings.Join(steps, "\n"), strings.Join(wantSteps, "\n"))
	}
	// The daily line: a dot for each day with journeys, the one under the
	// floor marked, and the floor drawn; every day of the period labelled.
	dots := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("#daily-chart circle")).map(c =>
		c.querySelector("title").textContent + (c.classList.contains("below") ? " below" : ""))`)
	wantDots := []string{"13/10/2024: 0,0% (0 de 1) below", "14/10/2024: 50,0% (1 de 2)", "15/10/2024: 50,0% (1 de 2)"}
	if strings.Join(dots, "\n") != strings.Join(wantDots, "\n") {
		t.Errorf("daily dots = %q, want %q", dots, wantDots)
	}
	if got := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("#daily-chart .xlabel")).map(e => e.textContent)`); strings.Join(got, " ") !=
		"09/10 10/10 11/10 12/10 13/10 14/10 15/10" {
		t.Errorf("day labels %q", got)
	}
	if got := jsValue[int](t, ctx, `document.querySelectorAll("#daily-chart polyline.rate").length`); got != 1 {
		t.Errorf("%d rate lines, want 1", got)
	}
	if got := text(`document.querySelector("#daily-chart .floor-label").textContent`); got != "piso 32,0%" {
		t.Errorf("floor label = %q", got)
	}
	// Breakdowns, most requests first, each consent on its first step's device.
	for id, want := range map[string][]string{
		"by-platform": {"Navegador|4|2|50,0%", "Aplicativo|1|0|0,0%"},
		"by-os":       {"Android|3|1|33,3%", "iOS|1|1|100,0%", "Windows|1|0|0,0%"},
	} {
		got := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("#`+id+` tbody tr")).map(r =>
			Array.from(r.cells).map(c => c.textContent.trim()).join("|"))`)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("#%s rows = %q, want %q", id, got, want)
		}
	}
	if got := text(`document.querySelector("#how h2").textContent`); got != "Como contamos" {
		t.Errorf("how we count: %q", got)
	}
}

// checkLayout checks the page's geometry: it fits the viewport (no
// horizontal scrolling); no element reaches out of its parent; no two boxes
// (cards, the breakdown tables, cells) overlap unless one holds the other;
// chart texts
// are 11 px or more on screen and stay inside their chart; the funnel's
// labels clear their bars and the day labels each other; no word is broken
// inside (codes wrap only at their underscores).
func checkLayout(t *testing.T, ctx context.Context, width int) {
	t.Helper()
	if w := jsValue[int](t, ctx, `window.innerWidth`); w != width {
		// A phone widens its layout viewport to the content: name what is wider.
		wide := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("body *")).filter(e => e.getBoundingClientRect().right > `+fmt.Sprint(width)+`)
			.map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className == "string" ? "." + e.className : "") + " " + Math.round(e.getBoundingClientRect().right))`)
		t.Errorf("layout viewport is %d px wide, want %d; elements reaching past %[2]d px: %[3]q", w, width, wide)
	}
	if sw, iw := jsValue[int](t, ctx, `document.documentElement.scrollWidth`), jsValue[int](t, ctx, `window.innerWidth`); sw > iw {
		t.Errorf("horizontal scrolling: scrollWidth %d > innerWidth %d", sw, iw)
	}
	const describe = `const name = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className == "string" ? "." + e.className.replace(/ /g, ".") : "") +
		(e.textContent ? " \"" + e.textContent.trim().slice(0, 24) + "\"" : "");
	const boxed = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(e).display != "inline" };
	const html = Array.from(document.querySelectorAll("body *")).filter(e => !e.closest("svg") && boxed(e));`
	if got := jsValue[[]string](t, ctx, `(() => {`+describe+`
		return html.filter(e => e.parentElement != document.body).filter(e => {
			const r = e.getBoundingClientRect(), p = e.parentElement.getBoundingClientRect();
			return r.left < p.left - 1 || r.right > p.right + 1;
		}).map(e => name(e) + " " + Math.round(e.getBoundingClientRect().width) + "px in " + name(e.parentElement) + " " + Math.round(e.parentElement.getBoundingClientRect().width) + "px");
	})()`); len(got) > 0 {
		t.Errorf("elements wider than their container: %q", got)
	}
	if got := jsValue[[]string](t, ctx, `(() => {`+describe+`
		// Any two boxes, neither inside the other: siblings, cousins.
		const out = [];
		for (let i = 0; i < html.length; i++) for (let j = i + 1; j < html.length; j++) {
			const x = html[i], y = html[j];
			if (x.contains(y) || y.contains(x)) continue;
			const a = x.getBoundingClientRect(), b = y.getBoundingClientRect();
			const w = Math.min(a.right, b.right) - Math.max(a.left, b.left), h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
			if (w > 1 && h > 1) out.push(name(x) + " overlaps " + name(y) + " by " + Math.round(w) + "×" + Math.round(h) + "px");
		}
		return out;
	})()`); len(got) > 0 {
		t.Errorf("overlapping boxes: %q", got)
	}
	// Chart text on screen: its font size in user units times the chart's scale.
	if got := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("svg.chart text")).filter(e =>
		parseFloat(getComputedStyle(e).fontSize) * e.getScreenCTM().a < 11)
		.map(e => e.textContent + " " + (parseFloat(getComputedStyle(e).fontSize) * e.getScreenCTM().a).toFixed(1) + "px")`); len(got) > 0 {
		t.Errorf("chart texts under 11 px: %q", got)
	}
	if got := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("svg.chart text")).filter(e => {
		const b = e.getBBox(), v = e.ownerSVGElement.viewBox.baseVal;
		return b.x < -0.5 || b.y < -0.5 || b.x + b.width > v.width + 0.5 || b.y + b.height > v.height + 0.5;
	}).map(e => e.textContent)`); len(got) > 0 {
		t.Errorf("chart texts outside their chart: %q", got)
	}
	// In SVG units: a label ends above its bar.
	if got := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("#funnel-chart g.stage")).filter(g => {
		const l = g.querySelector("text.label").getBBox(), r = g.querySelector("rect.bar").getBBox();
		return l.y + l.height > r.y + 0.5;
	}).map(g => g.querySelector("text.label").textContent)`); len(got) > 0 {
		t.Errorf("funnel labels overlapping their bar: %q", got)
	}
	if got := jsValue[[]string](t, ctx, `(() => {
		const ls = Array.from(document.querySelectorAll("#daily-chart .xlabel")).map(e => [e.textContent, e.getBBox()]);
		return ls.slice(1).filter((l, i) => l[1].x < ls[i][1].x + ls[i][1].width).map(l => l[0]);
	})()`); len(got) > 0 {
		t.Errorf("day labels overlapping the one before: %q", got)
	}
	// A word split over two lines has two client rects.
	if got := jsValue[[]string](t, ctx, `(() => {
		const out = [], walk = document.createTreeWalker(document.querySelector("main"), NodeFilter.SHOW_TEXT);
		for (let n = walk.nextNode(); n; n = walk.nextNode()) {
			if (n.parentElement.closest("svg, option, script, style") || !n.parentElement.getClientRects().length) continue;
			for (const m of n.textContent.matchAll(/\S+/g)) {
				const r = document.createRange();
				r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
				const lines = new Set(Array.from(r.getClientRects()).filter(c => c.width > 0).map(c => Math.round(c.top)));
				if (lines.size > 1) out.push(m[0]);
			}
		}
		return out;
	})()`); len(got) > 0 {
		t.Errorf("words broken over lines: %q", got)
	}
}
