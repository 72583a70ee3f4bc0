package app_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"os/exec"
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
// (the test clock is apptest.Epoch, 2024-10-15 18:55:15 UTC), recorded
// through the Recorder as the journeys would.
//
//	c1 10-14 approved, every step BROWSER/ANDROID
//	c2 10-14 rejected at the holder, BROWSER/ANDROID
//	c3 10-15 approved, handed to the app: BROWSER/IOS, then APP/IOS
//	c4 10-15 sent to the holder and abandoned, BROWSER/WINDOWS
//	c5 10-13 landed at the holder and abandoned, APP/ANDROID
//
// Hand-computed, both sides pooled:
//
//	steps: REDIRECT_TO_SERVER 5, REDIRECT_TARGET 4 (AWAITING_HANDOFF 1,
//	AWAITING_USER_AUTH 3), AUTHENTICATED 3, REDIRECT_TO_CLIENT 3 (AUTHORISED 2,
//	REJECTED 1), REDIRECT_TARGET_WITH_ERRORS 1, REDIRECT_TARGET_WITHOUT_ERRORS 2
//	consent requests 5 + 4 = 9; authorised 2 + 2 = 4; rate 4/9 = 44.4%
//	floor (default, 80% of the average) 0.8 × 4/9 = 35.6%
//	stages 5 (100.0%), 4 (80.0%), 3 (75.0%), 2 (66.7%), 2 (100.0%)
//	days 10-13 0 of 2 (0.0%, below the floor), 10-14 2 of 4 (50.0%),
//	     10-15 2 of 3 (66.7%)
//	platforms BROWSER 7 requests, 3 authorised (42.9%); APP 2, 1 (50.0%)
//	systems ANDROID 6, 2 (33.3%); IOS 2, 2 (100.0%); WINDOWS 1, 0 (0.0%)
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
// credential (HTTP Basic), shows the fixture's hand-computed counts and
// rates in its summary, its server-drawn SVG funnel and daily line, and its
// breakdowns; with no console errors or CSP violations; laid out without
// horizontal scrolling on a laptop and on a phone. On both databases. It
// runs when chromium is on PATH.
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
			if _, err := chromedp.Call(b.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": basic}}); err != nil {
				t.Fatal(err)
			}
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
					resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(s.URL+"/admin/pcm"))
					if err != nil {
						t.Fatalf("open the dashboard: %v", err)
					}
					if resp.Status != 200 {
						t.Fatalf("dashboard: %d", resp.Status)
					}
					if err := chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.ID("funnel-chart"))); err != nil {
						t.Fatal(err)
					}
					checkDashboard(t, b.ctx)
					checkLayout(t, b.ctx, vp.width)
					b.screenshot(t, "pcm-dashboard-"+strings.ToLower(e.Name)+"-"+vp.name+".png")
				})
			}
			// Without the credential the browser gets the Basic challenge.
			if _, err := chromedp.Call(b.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{}}); err != nil {
				t.Fatal(err)
			}
			if r := s.Do(t, "GET", "/admin/pcm", nil, ""); r.Status != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("dashboard without the credential: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
			}
		})
	}
	b.checkNoProblems(t)
}

// startDashboardBrowser starts headless Chromium with the flags of the other
// browser tests, collecting console errors, exceptions and CSP violations.
func startDashboardBrowser(t *testing.T, chromium string) *phone {
	t.Helper()
	b, _ := startChromium(t, chromium, 120*time.Second)
	return b
}

// checkDashboard compares what the page shows with the fixture's
// hand-computed figures (see dashboardEvents).
func checkDashboard(t *testing.T, ctx context.Context) {
	t.Helper()
	text := func(js string) string { return jsValue[string](t, ctx, js) }
	// Summary.
	for id, want := range map[string]string{"consent-requests": "9", "authorised": "4", "conversion-rate": "44.4%"} {
		if got := text(`document.getElementById("` + id + `").textContent.trim()`); got != want {
			t.Errorf("#%s shows %q, want %q", id, got, want)
		}
	}
	if got := text(`document.getElementById("floor").textContent.replace(/\s+/g, " ").trim()`); got != "35.6% (80% da média do período)" {
		t.Errorf("#floor shows %q", got)
	}
	// The funnel: one bar per stage, as wide as its share of the first
	// (460 units for 5), labelled with its count and step-to-step rate.
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
		{"Enviados à detentora (REDIRECT_TO_SERVER)", "5 · 100.0%", "5", "460"},
		{"Chegaram à detentora (REDIRECT_TARGET)", "4 · 80.0%", "4", "368"},
		{"Autenticados (AUTHENTICATED)", "3 · 75.0%", "3", "276"},
		{"Autorizados (REDIRECT_TO_CLIENT)", "2 · 66.7%", "2", "184"},
		{"Retorno sem erro (WITHOUT_ERRORS)", "2 · 100.0%", "2", "184"},
	}
	if fmt.Sprint(bars) != fmt.Sprint(want) {
		t.Errorf("funnel bars =\n%v\nwant\n%v", bars, want)
	}
	// Step counts with their types.
	steps := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("table.steps tbody tr")).map(r =>
		Array.from(r.cells).map(c => c.textContent.trim()).join("|"))`)
	wantSteps := []string{
		"REDIRECT_TO_SERVER|INITIATOR|5|",
		"REDIRECT_TARGET|HOLDER|4|AWAITING_HANDOFF: 1 AWAITING_USER_AUTH: 3",
		"AUTHENTICATED|HOLDER|3|",
		"REDIRECT_TO_CLIENT|HOLDER|3|AUTHORISED: 2 REJECTED: 1",
		"REDIRECT_TARGET_WITH_ERRORS|INITIATOR|1|",
		"REDIRECT_TARGET_WITHOUT_ERRORS|INITIATOR|2|",
	}
	if strings.Join(steps, "\n") != strings.Join(wantSteps, "\n") {
		t.Errorf("step table =\n%s\nwant\n%s", strings.Join(steps, "\n"), strings.Join(wantSteps, "\n"))
	}
	// The daily line: a dot for each day with journeys, the one under the
	// floor marked, and the floor drawn.
	dots := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("#daily-chart circle")).map(c =>
		c.querySelector("title").textContent + (c.classList.contains("below") ? " below" : ""))`)
	wantDots := []string{"2024-10-13: 0.0% (0 de 2) below", "2024-10-14: 50.0% (2 de 4)", "2024-10-15: 66.7% (2 de 3)"}
	if strings.Join(dots, "\n") != strings.Join(wantDots, "\n") {
		t.Errorf("daily dots = %q, want %q", dots, wantDots)
	}
	if got := jsValue[int](t, ctx, `document.querySelectorAll("#daily-chart polyline.rate").length`); got != 1 {
		t.Errorf("%d rate lines, want 1", got)
	}
	if got := text(`document.querySelector("#daily-chart .floor-label").textContent`); got != "piso 35.6%" {
		t.Errorf("floor label = %q", got)
	}
	// Breakdowns, most requests first.
	for id, want := range map[string][]string{
		"by-platform": {"BROWSER|7|3|42.9%", "APP|2|1|50.0%"},
		"by-os":       {"ANDROID|6|2|33.3%", "IOS|2|2|100.0%", "WINDOWS|1|0|0.0%"},
	} {
		got := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("#`+id+` tbody tr")).map(r =>
			Array.from(r.cells).map(c => c.textContent.trim()).join("|"))`)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("#%s rows = %q, want %q", id, got, want)
		}
	}
}

// checkLayout checks the page fits the viewport (no horizontal scrolling,
// no element past its right edge), that the funnel's texts stay clear of its
// bars and inside the chart, and that they are readable (at least 10 px).
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
	if got := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("body *")).filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
		.map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " " + Math.round(e.getBoundingClientRect().right))`); len(got) > 0 {
		t.Errorf("elements past the viewport's right edge: %q", got)
	}
	// In SVG units: a label ends above its bar; a value ends inside the chart.
	if got := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("#funnel-chart g.stage")).filter(g => {
		const l = g.querySelector("text.label").getBBox(), r = g.querySelector("rect.bar").getBBox(), v = g.querySelector("text.value").getBBox();
		return l.y + l.height > r.y + 0.5 || l.x + l.width > 640 || v.x + v.width > 640;
	}).map(g => g.querySelector("text.label").textContent)`); len(got) > 0 {
		t.Errorf("funnel stages whose texts overlap a bar or leave the chart: %q", got)
	}
	if got := jsValue[[]string](t, ctx, `Array.from(document.querySelectorAll("#funnel-chart text")).filter(e => e.getBoundingClientRect().height < 10)
		.map(e => e.textContent + " " + e.getBoundingClientRect().height.toFixed(1) + "px")`); len(got) > 0 {
		t.Errorf("funnel texts too small to read: %q", got)
	}
}
