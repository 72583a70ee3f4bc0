package app_test

import (
	"database/sql"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// wantStep is an expected PCM event, compared field by field.
type wantStep struct {
	step, side, typ, errCode, uri string
	device                        ofb.Device
}

var (
	phoneDevice = ofb.Device{Platform: "BROWSER", OS: "IOS", OSVersion: "17.5"}
	appDevice   = ofb.Device{Platform: "APP", OS: "IOS", OSVersion: "17.5"}
	brickDevice = ofb.Device{Platform: "BROWSER", OS: "LINUX", OSVersion: "20.04"}
)

func checkSteps(t *testing.T, s *apptest.Server, consentID string, want []wantStep) {
	t.Helper()
	got, err := s.App.PCM.Service.Events(t.Context(), consentID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		var names []string
		for _, e := range got {
			names = append(names, e.Step+"/"+e.Type)
		}
		t.Fatalf("consent %s: %d events %v, want %d", consentID, len(got), names, len(want))
	}
	for i, w := range want {
		e := got[i]
		if e.Step != w.step || e.Side != w.side || e.Type != w.typ || e.Error != w.errCode || e.URI != w.uri || e.Device != w.device ||
			e.Source != pcm.SourcePayload || e.ID == "" || e.OccurredAt.IsZero() {
			t.Errorf("event %d = %+v, want %+v", i, e, w)
		}
	}
}

func countEvents(t *testing.T, s *apptest.Server) int {
	t.Helper()
	var n int
	if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM pcm_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPCMStepsInJourneys: each step is recorded at the moment of its state
// change, with the device, in the hosted sweeping journey (approve, cancel at
// the holder, cancel on the journey page) and the Brick payment initiation
// (error callback), on both databases.
func TestPCMStepsInJourneys(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			f := newSessionFlow(t, e.URL(t))
			s := f.s
			authorizeEndpoint := s.URL + "/oauth/authorize"
			callback := s.URL + "/journey/callback"

			// Approve: the initiator sends the user (REDIRECT_TO_SERVER); the
			// holder records the landing before the hand-off to the partner
			// app, the login and the approval; the callback closes it.
			id, pageURL := f.create(t, "pcm-1")
			authorize := f.confirm(t, pageURL)
			_, _, consentID := f.session(t, id)
			checkSteps(t, s, consentID, []wantStep{{step: pcm.StepRedirectToServer, side: pcm.SideInitiator, uri: authorizeEndpoint, device: phoneDevice}})
			back := f.user.Decide(t, s, authorize, true)
			checkSteps(t, s, consentID, []wantStep{
				{step: pcm.StepRedirectToServer, side: pcm.SideInitiator, uri: authorizeEndpoint, device: phoneDevice},
				{step: pcm.StepRedirectTarget, side: pcm.SideHolder, typ: pcm.TypeAwaitingHandoff, uri: authorizeEndpoint, device: phoneDevice},
				{step: pcm.StepAuthenticated, side: pcm.SideHolder, device: appDevice},
				{step: pcm.StepRedirectToClient, side: pcm.SideHolder, typ: pcm.TypeAuthorised, uri: callback, device: appDevice},
			})
			if resp, page := f.callback(t, back); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("callback: %d %s", resp.StatusCode, page)
			}
			approved := []wantStep{
				{step: pcm.StepRedirectToServer, side: pcm.SideInitiator, uri: authorizeEndpoint, device: phoneDevice},
				{step: pcm.StepRedirectTarget, side: pcm.SideHolder, typ: pcm.TypeAwaitingHandoff, uri: authorizeEndpoint, device: phoneDevice},
				{step: pcm.StepAuthenticated, side: pcm.SideHolder, device: appDevice},
				{step: pcm.StepRedirectToClient, side: pcm.SideHolder, typ: pcm.TypeAuthorised, uri: callback, device: appDevice},
				{step: pcm.StepRedirectTargetWithoutErrors, side: pcm.SideInitiator, device: phoneDevice},
			}
			checkSteps(t, s, consentID, approved)
			// A replayed callback changes nothing, so records nothing.
			if resp, _ := f.callback(t, back); resp.StatusCode != http.StatusConflict {
				t.Errorf("replayed callback: %d", resp.StatusCode)
			}
			checkSteps(t, s, consentID, approved)

			// Cancelled on the journey page: no consent was asked for, no step.
			before := countEvents(t, s)
			id2, pageURL2 := f.create(t, "pcm-2")
			u, _ := url.Parse(pageURL2)
			resp, _ := f.browse(t, "POST", s.URL+u.Path+"/cancel", url.Values{"id": {id2}, "token": {u.Query().Get("token")}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("cancel on the page: %d", resp.StatusCode)
			}
			if n := countEvents(t, s); n != before {
				t.Errorf("cancelling on the journey page recorded %d events", n-before)
			}

			// Cancelled at the holder: REDIRECT_TO_CLIENT REJECTED, then the
			// callback carries error=access_denied.
			_, pageURL3 := f.create(t, "pcm-3")
			back3 := f.user.Decide(t, s, f.confirm(t, pageURL3), false)
			if resp, _ := f.callback(t, back3); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("callback after cancel: %d", resp.StatusCode)
			}
			_, _, consent3 := f.session(t, strings.TrimSpace(sessionID(t, pageURL3)))
			checkSteps(t, s, consent3, []wantStep{
				{step: pcm.StepRedirectToServer, side: pcm.SideInitiator, uri: authorizeEndpoint, device: phoneDevice},
				{step: pcm.StepRedirectTarget, side: pcm.SideHolder, typ: pcm.TypeAwaitingHandoff, uri: authorizeEndpoint, device: phoneDevice},
				{step: pcm.StepAuthenticated, side: pcm.SideHolder, device: appDevice},
				{step: pcm.StepRedirectToClient, side: pcm.SideHolder, typ: pcm.TypeRejected, uri: callback, device: appDevice},
				{step: pcm.StepRedirectTargetWithErrors, side: pcm.SideInitiator, errCode: "access_denied", device: phoneDevice},
			})
		})
	}
}

func sessionID(t *testing.T, pageURL string) string {
	t.Helper()
	u, err := url.Parse(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("id")
}

// TestPCMStepsBrick: the Brick initiator endpoints record their steps with
// the device of their bodies; an error callback is
// REDIRECT_TARGET_WITH_ERRORS with the brand's error code.
func TestPCMStepsBrick(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Clock: wallClock(t)})
			fintech, tok := brickFintech(t, s)
			consentID := decideBrickConsent(t, s, tok, brickConsentBody(s.Clock.Now(), s.App.SandboxBrandID), false)
			checkSteps(t, s, consentID, []wantStep{
				{step: pcm.StepRedirectToServer, side: pcm.SideInitiator, uri: s.URL + "/oauth/authorize", device: brickDevice},
				{step: pcm.StepRedirectTarget, side: pcm.SideHolder, typ: pcm.TypeAwaitingHandoff, uri: s.URL + "/oauth/authorize", device: phoneDevice},
				{step: pcm.StepAuthenticated, side: pcm.SideHolder, device: appDevice},
				{step: pcm.StepRedirectToClient, side: pcm.SideHolder, typ: pcm.TypeRejected, uri: fintechCallback, device: appDevice},
				{step: pcm.StepRedirectTargetWithErrors, side: pcm.SideInitiator, errCode: "access_denied", device: brickDevice},
			})
			events, _ := s.App.PCM.Service.Events(t.Context(), consentID)
			if events[0].ApplicationID != fintech.ID || events[0].BrandID != s.App.SandboxBrandID {
				t.Errorf("initiator event application/brand = %s/%s", events[0].ApplicationID, events[0].BrandID)
			}
		})
	}
}

// TestPCMReportAPI: the seed's six bodies, validation per step, ownership,
// idempotency, and the funnel the reports make, on both databases.
func TestPCMReportAPI(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Clock: wallClock(t)})
			_, tok := brickFintech(t, s, pcm.ScopeReport)
			r := s.Do(t, "POST", "/api/admin/payment-initiation/v1/consents", tok, brickConsentBody(s.Clock.Now(), s.App.SandboxBrandID))
			if r.Status != 201 {
				t.Fatalf("consent: %d %s", r.Status, r.Body)
			}
			var created struct {
				Data struct{ ConsentID string } `json:"data"`
			}
			r.JSON(t, &created)
			// A payment consent the demo application created at the holder.
			today := s.Clock.Now().In(time.FixedZone("BRT", -3*3600)).Format("2006-01-02")
			holderConsent := createConsent(t, s, s.Token(t, "payments"), strings.ReplaceAll(consentBody, "2024-10-15", today))
			demoTok := map[string]string{"Authorization": "Bearer " + s.Token(t, pcm.ScopeReport)}

			report := func(tok map[string]string, consentID, body string) *apptest.Response {
				t.Helper()
				return s.Do(t, "POST", "/api/journey/v1/consents/"+url.PathEscape(consentID)+"/report", tok, body)
			}
			const dev = `"platform":"BROWSER","osVersion":"20.04","os":"LINUX"`
			// Seed 002's six bodies.
			seed := []struct {
				tok       map[string]string
				consentID string
				body      string
				typ       string
				source    string
			}{
				// Ponte recorded this step itself when the consent was
				// created: the report gets that event back.
				{tok, created.Data.ConsentID, `{"step":"REDIRECT_TO_SERVER","data":{"uriAuthorizationEndpoint":"https://api.banco.com.br/open-banking/api/v1/resource",` + dev + `}}`, "", pcm.SourcePayload},
				{demoTok, holderConsent, `{"step":"REDIRECT_TARGET","data":{"uriAuthorizationEndpoint":"https://api.banco.com.br/open-banking/api/v1/resource",` + dev + `,"type":"AWAITING_HANDOFF"}}`, "AWAITING_HANDOFF", pcm.SourceAPI},
				{demoTok, holderConsent, `{"step":"AUTHENTICATED","data":{` + dev + `}}`, "", pcm.SourceAPI},
				{demoTok, holderConsent, `{"step":"REDIRECT_TO_CLIENT","data":{"uri_callback":"https://api.banco.com.br/open-banking/api/v1/resource",` + dev + `,"type":"AUTHORISED"}}`, "AUTHORISED", pcm.SourceAPI},
				{tok, created.Data.ConsentID, `{"step":"REDIRECT_TARGET_WITH_ERRORS","data":{` + dev + `,"error":"Código de erro retornado no payload do Hybrid Flow"}}`, "", pcm.SourceAPI},
				{tok, created.Data.ConsentID, `{"step":"REDIRECT_TARGET_WITHOUT_ERRORS","data":{` + dev + `}}`, "", pcm.SourceAPI},
			}
			for _, c := range seed {
				r := report(c.tok, c.consentID, c.body)
				if r.Status != 201 {
					t.Fatalf("report %s: %d %s", c.body, r.Status, r.Body)
				}
				var ev struct {
					Data pcm.EventJSON `json:"data"`
				}
				r.JSON(t, &ev)
				if ev.Data.ConsentID != c.consentID || ev.Data.Source != c.source || ev.Data.Data.Type != c.typ || ev.Data.Data.OS != "LINUX" ||
					len(ev.Data.Timestamp) != len("2006-01-02T15:04:05.000Z") {
					t.Errorf("stored event = %+v", ev.Data)
				}
				// The same report again: the first event, unchanged.
				again := report(c.tok, c.consentID, strings.Replace(c.body, "20.04", "22.04", 1))
				var ev2 struct {
					Data pcm.EventJSON `json:"data"`
				}
				again.JSON(t, &ev2)
				if again.Status != 201 || ev2.Data.ID != ev.Data.ID || ev2.Data.Data.OSVersion != "20.04" {
					t.Errorf("repeated report: %d %+v", again.Status, ev2.Data)
				}
			}

			// Validation, each naming the field.
			bad := []struct {
				name, body string
				status     int
				code       string
				field      string
			}{
				{"unknown step", `{"step":"LOGIN","data":{` + dev + `}}`, 422, "PARAMETRO_INVALIDO", "step"},
				{"no step", `{"data":{` + dev + `}}`, 400, "PARAMETRO_INVALIDO", "step"},
				{"no data", `{"step":"AUTHENTICATED"}`, 400, "PARAMETRO_INVALIDO", "data"},
				{"malformed", `{"step":`, 400, "PARAMETRO_INVALIDO", "body"},
				{"bad platform", `{"step":"AUTHENTICATED","data":{"platform":"DESKTOP","os":"LINUX","osVersion":"1"}}`, 422, "PARAMETRO_INVALIDO", "data.platform"},
				{"bad os", `{"step":"AUTHENTICATED","data":{"platform":"APP","os":"SYMBIAN","osVersion":"1"}}`, 422, "PARAMETRO_INVALIDO", "data.os"},
				{"no osVersion", `{"step":"AUTHENTICATED","data":{"platform":"APP","os":"IOS"}}`, 422, "PARAMETRO_NAO_INFORMADO", "data.osVersion"},
				{"server without uri", `{"step":"REDIRECT_TO_SERVER","data":{` + dev + `}}`, 422, "PARAMETRO_NAO_INFORMADO", "data.uriAuthorizationEndpoint"},
				{"uri with query", `{"step":"REDIRECT_TO_SERVER","data":{"uriAuthorizationEndpoint":"https://b.example/authorize?x=1",` + dev + `}}`, 422, "PARAMETRO_INVALIDO", "data.uriAuthorizationEndpoint"},
				{"target without type", `{"step":"REDIRECT_TARGET","data":{` + dev + `}}`, 422, "PARAMETRO_NAO_INFORMADO", "data.type"},
				{"target wrong type", `{"step":"REDIRECT_TARGET","data":{` + dev + `,"type":"AUTHORISED"}}`, 422, "PARAMETRO_INVALIDO", "data.type"},
				{"client without uri_callback", `{"step":"REDIRECT_TO_CLIENT","data":{` + dev + `,"type":"REJECTED"}}`, 422, "PARAMETRO_NAO_INFORMADO", "data.uri_callback"},
				{"client without type", `{"step":"REDIRECT_TO_CLIENT","data":{"uri_callback":"https://f.example/cb",` + dev + `}}`, 422, "PARAMETRO_NAO_INFORMADO", "data.type"},
				{"with errors without error", `{"step":"REDIRECT_TARGET_WITH_ERRORS","data":{` + dev + `}}`, 422, "PARAMETRO_NAO_INFORMADO", "data.error"},
				{"error on a clean callback", `{"step":"REDIRECT_TARGET_WITHOUT_ERRORS","data":{` + dev + `,"error":"x"}}`, 422, "PARAMETRO_INVALIDO", "data.error"},
				{"type on authenticated", `{"step":"AUTHENTICATED","data":{` + dev + `,"type":"AUTHORISED"}}`, 422, "PARAMETRO_INVALIDO", "data.type"},
			}
			for _, c := range bad {
				r := report(tok, created.Data.ConsentID, c.body)
				if r.Status != c.status || !strings.Contains(string(r.Body), `"code":"`+c.code+`"`) || !strings.Contains(string(r.Body), `"detail":"`+c.field+` `) {
					t.Errorf("%s: %d %s, want %d %s naming %s", c.name, r.Status, r.Body, c.status, c.code, c.field)
				}
			}
			// Another application's consent, an unknown one, no scope, no token.
			if r := report(demoTok, created.Data.ConsentID, seed[0].body); r.Status != 404 {
				t.Errorf("another's consent: %d %s", r.Status, r.Body)
			}
			if r := report(tok, "urn:ponte:unknown", seed[2].body); r.Status != 404 {
				t.Errorf("unknown consent: %d %s", r.Status, r.Body)
			}
			if r := report(map[string]string{"Authorization": "Bearer " + s.Token(t, "payments")}, holderConsent, seed[2].body); r.Status != 403 {
				t.Errorf("without pcm.report: %d %s", r.Status, r.Body)
			}
			if r := report(nil, holderConsent, seed[2].body); r.Status != 401 {
				t.Errorf("without token: %d %s", r.Status, r.Body)
			}

			// The funnel: the fintech's own events (initiator side), the
			// admin's view of all of them.
			var fun struct {
				Data pcm.Funnel `json:"data"`
			}
			r = s.Do(t, "GET", "/api/journey/v1/funnel?groupBy=day", tok, "")
			if r.Status != 200 {
				t.Fatalf("funnel: %d %s", r.Status, r.Body)
			}
			r.JSON(t, &fun)
			if fun.Data.ConsentRequests != 1 || fun.Data.Authorised != 1 || fun.Data.ConversionRate != 1 || len(fun.Data.Days) != 8 {
				t.Errorf("fintech funnel = %+v", fun.Data)
			}
			admin := map[string]string{"Authorization": "Bearer " + s.App.PCM.AdminToken}
			r = s.Do(t, "GET", "/api/journey/v1/funnel?side=HOLDER", admin, "")
			r.JSON(t, &fun)
			if r.Status != 200 || fun.Data.ConsentRequests != 1 || fun.Data.Authorised != 1 || len(fun.Data.Stages) != 3 {
				t.Errorf("admin holder funnel: %d %+v", r.Status, fun.Data)
			}
			if r := s.Do(t, "GET", "/api/journey/v1/funnel?side=BOTH&os=PALM", tok, ""); r.Status != 400 ||
				!strings.Contains(string(r.Body), `"detail":"side `) || !strings.Contains(string(r.Body), `"detail":"os `) {
				t.Errorf("bad funnel query: %d %s", r.Status, r.Body)
			}
			if r := s.Do(t, "GET", "/api/journey/v1/funnel", map[string]string{"Authorization": "Bearer not-the-admin"}, ""); r.Status != 401 {
				t.Errorf("funnel with a wrong credential: %d", r.Status)
			}

			// The dashboard: admin only.
			if r := s.Do(t, "GET", "/admin/pcm", nil, ""); r.Status != 401 || r.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("dashboard without credential: %d", r.Status)
			}
			req, _ := http.NewRequest("GET", s.URL+"/admin/pcm", nil)
			req.SetBasicAuth("admin", s.App.PCM.AdminToken)
			resp, err := s.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(page), `id="funnel-chart"`) || !strings.Contains(string(page), `<dd id="consent-requests">2</dd>`) {
				t.Errorf("dashboard: %d %s", resp.StatusCode, page)
			}
		})
	}
}

// TestPCMReportOwnership: the report API takes the steps of the caller's
// consents of every kind — payment, recurring and data-sharing consents it
// created at Ponte's holder, and consents Ponte initiated for it at a brand
// — and answers 404 for another application's and unknown ones, on both
// databases.
func TestPCMReportOwnership(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			fintech, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Fintech", CompanyKey: "FINTECH",
				Scopes: []string{itpflow.ScopePaymentsAdmin, pcm.ScopeReport}, RedirectURLs: []string{fintechCallback}})
			if err != nil {
				t.Fatal(err)
			}
			fintechTok := map[string]string{"Authorization": "Bearer " + s.TokenFor(t, fintech.ClientID, secret, "")}
			demoTok := map[string]string{"Authorization": "Bearer " + s.Token(t, pcm.ScopeReport)}
			// A consent Ponte initiated for the fintech at a brand, asked for
			// twice (a retried journey): the latest authorization's brand is
			// the event's.
			initiated := "urn:brand:" + uuid.NewString()
			err = s.App.DB.Write(t.Context(), func(tx *sql.Tx) error {
				for i, brand := range []string{"older-brand", "latest-brand"} {
					at := s.Clock.Now().Add(time.Duration(i-2) * time.Minute).UnixMilli()
					if _, err := tx.ExecContext(t.Context(), `INSERT INTO itp_authorizations (id, state_hash, application_id, kind, brand_id,
						consent_id, consent_path, scope, nonce, code_verifier, redirect_uri, authorization_url, status, created_at, updated_at, expires_at)
						VALUES ($1, $2, $3, 'PAYMENT_INITIATION', $4, $5, '/c', 'openid payments', 'n', 'v', $6, 'https://b.example/authorize',
						'PENDING', $7, $7, $7)`, uuid.NewString(), uuid.NewString(), fintech.ID, brand, initiated, fintechCallback, at); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			payment := createConsent(t, s, s.Token(t, "payments"), consentBody)
			recurringID := createRecurring(t, s)
			data := createDataConsent(t, s)

			const authenticated = `{"step":"AUTHENTICATED","data":{"platform":"APP","osVersion":"17.5","os":"IOS"}}`
			const callback = `{"step":"REDIRECT_TARGET_WITHOUT_ERRORS","data":{"platform":"BROWSER","osVersion":"17.5","os":"IOS"}}`
			cases := []struct {
				name      string
				tok       map[string]string
				consentID string
				body      string
				status    int
				brand     string // the stored event's brand
			}{
				{"payment consent of the caller", demoTok, payment, authenticated, 201, ""},
				{"recurring consent of the caller", demoTok, recurringID, authenticated, 201, ""},
				{"data-sharing consent of the caller", demoTok, data, authenticated, 201, ""},
				{"data-sharing consent, initiator step", demoTok, data, callback, 201, ""},
				{"consent initiated for the caller", fintechTok, initiated, callback, 201, "latest-brand"},
				{"another's data-sharing consent", fintechTok, data, authenticated, 404, ""},
				{"another's payment consent", fintechTok, payment, authenticated, 404, ""},
				{"another's recurring consent", fintechTok, recurringID, authenticated, 404, ""},
				{"a consent initiated for another", demoTok, initiated, authenticated, 404, ""},
				{"unknown consent", demoTok, "urn:ponte:" + uuid.NewString(), authenticated, 404, ""},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					r := s.Do(t, "POST", "/api/journey/v1/consents/"+url.PathEscape(c.consentID)+"/report", c.tok, c.body)
					if r.Status != c.status {
						t.Fatalf("%d %s, want %d", r.Status, r.Body, c.status)
					}
					if c.status != 201 {
						if !strings.Contains(string(r.Body), `"code":"CONSENTIMENTO_NAO_ENCONTRADO"`) {
							t.Errorf("404 body = %s", r.Body)
						}
						return
					}
					var ev struct {
						Data pcm.EventJSON `json:"data"`
					}
					r.JSON(t, &ev)
					if ev.Data.ConsentID != c.consentID || ev.Data.Source != pcm.SourceAPI || ev.Data.BrandID != c.brand {
						t.Errorf("stored event = %+v", ev.Data)
					}
				})
			}
			// Nothing was stored for the refused reports: the data consent
			// has exactly the demo partner's two steps.
			events, err := s.App.PCM.Service.Events(t.Context(), data)
			if err != nil || len(events) != 2 || events[0].ApplicationID != s.App.Demo.ID || events[1].ApplicationID != s.App.Demo.ID {
				t.Errorf("data consent events = %+v, %v", events, err)
			}
		})
	}
}
