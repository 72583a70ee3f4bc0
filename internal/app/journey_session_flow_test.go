package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

const fintechDone = "https://fintech.example/sweeping/done"

type sessionFlow struct {
	s    *apptest.Server
	tok  map[string]string
	user *apptest.SandboxUser
	// clientID and secret are the fintech's, for a new token after the
	// fake clock moved past the first one's expiry.
	clientID, secret string
}

// renewToken gets the fintech a fresh token.
func (f *sessionFlow) renewToken(t *testing.T) {
	t.Helper()
	f.tok = map[string]string{"Authorization": "Bearer " + f.s.TokenFor(t, f.clientID, f.secret, "")}
}

// wallClock is the fake clock of a test whose journey goes through the
// authorization server, which stamps id tokens with the wall clock: it
// starts now and never falls behind (apptest.FollowWallClock).
func wallClock(t *testing.T) *clock.Fake {
	c := clock.NewFake(time.Now())
	apptest.FollowWallClock(t, c)
	return c
}

func newSessionFlow(t *testing.T, dbURL string) *sessionFlow {
	t.Helper()
	s := apptest.Start(t, apptest.Options{DatabaseURL: dbURL, Clock: wallClock(t)})
	fintech, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Fintech", CompanyKey: "FINTECH",
		Scopes: []string{"app"}, RedirectURLs: []string{fintechDone}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.ITP.CreateJourney(t.Context(), itp.Journey{Alias: "sweeping", Name: "Sweeping",
		Settings: []itp.Setting{{Key: "SWEEPING_CONFIGURATION", Value: json.RawMessage(`{"transactionLimit":"500.00","periodicLimits":{"day":{"quantityLimit":3}}}`)}}}); err != nil {
		t.Fatal(err)
	}
	return &sessionFlow{s: s, tok: map[string]string{"Authorization": "Bearer " + s.TokenFor(t, fintech.ClientID, secret, "")},
		user: apptest.NewSandboxUser("47742663023", "1234567"), clientID: fintech.ClientID, secret: secret}
}

// create makes a journey session and returns its id and journeySessionUrl.
func (f *sessionFlow) create(t *testing.T, externalID string) (string, string) {
	t.Helper()
	r := f.s.Do(t, "POST", "/open-keys/itp/api/v2/sweeping-accounts/v2/journeys-sessions", f.tok,
		`{"journeyId":"sweeping","redirectUrl":"`+fintechDone+`","externalId":"`+externalID+`"}`)
	if r.Status != 200 {
		t.Fatalf("create session: %d %s", r.Status, r.Body)
	}
	var out struct {
		ID                string `json:"id"`
		JourneySessionURL string `json:"journeySessionUrl"`
	}
	r.JSON(t, &out)
	return out.ID, out.JourneySessionURL
}

func (f *sessionFlow) browse(t *testing.T, method, target string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, target, body)
	req.Header.Set("User-Agent", apptest.PhoneUA)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := f.user.Browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// confirm opens the hosted page and confirms at the sandbox brand; it
// returns the brand's authorize URL.
func (f *sessionFlow) confirm(t *testing.T, pageURL string) string {
	t.Helper()
	resp, page := f.browse(t, "GET", pageURL, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "Ponte Sandbox") || !strings.Contains(page, "Até 3 transferências por dia") ||
		!strings.Contains(page, "Limite por transferência: R$ 500,00") {
		t.Fatalf("journey page: %d %s", resp.StatusCode, page)
	}
	u, _ := url.Parse(pageURL)
	form := url.Values{"id": {u.Query().Get("id")}, "token": {u.Query().Get("token")}, "brandId": {f.s.App.SandboxBrandID},
		"document": {"47742663023"}, "name": {"Maria da Silva"}}
	resp, page = f.browse(t, "POST", f.s.URL+u.Path+"/confirm", form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirm: %d %s", resp.StatusCode, page)
	}
	return resp.Header.Get("Location")
}

// callback posts the fragment the brand returned, as callback.js does.
func (f *sessionFlow) callback(t *testing.T, back *url.URL) (*http.Response, string) {
	t.Helper()
	if !strings.HasPrefix(back.String(), f.s.URL+"/journey/callback#") {
		t.Fatalf("the brand returned the user to %s", back)
	}
	fields, _ := url.ParseQuery(back.Fragment)
	return f.browse(t, "POST", f.s.URL+"/journey/callback", fields)
}

func (f *sessionFlow) session(t *testing.T, id string) (string, []string, string) {
	t.Helper()
	r := f.s.Do(t, "GET", "/open-keys/itp/api/v2/sweeping-accounts/v2/journeys-sessions/"+id, f.tok, "")
	var out struct {
		Status        string `json:"status"`
		ConsentID     string `json:"consentId"`
		StatusHistory []struct {
			Status string `json:"status"`
		} `json:"statusHistory"`
	}
	r.JSON(t, &out)
	var history []string
	for _, h := range out.StatusHistory {
		history = append(history, h.Status)
	}
	return out.Status, history, out.ConsentID
}

// TestJourneySessionLoop: partner session → hosted page → sandbox brand
// (Ponte's holder side) → WebView approval → callback → FINISHED at the
// partner's redirectUrl; and the cancel paths on both sides.
func TestJourneySessionLoop(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			f := newSessionFlow(t, e.URL(t))
			id, pageURL := f.create(t, "loop-1")
			authorize := f.confirm(t, pageURL)
			if st, _, _ := f.session(t, id); st != "AWAITING_AUTHORISATION" {
				t.Fatalf("after confirm: %s", st)
			}
			back := f.user.Decide(t, f.s, authorize, true)
			fragment := back.Fragment

			// A forged callback changes nothing.
			forged := *back
			fields, _ := url.ParseQuery(fragment)
			fields.Set("code", "forged-code")
			forged.Fragment = fields.Encode()
			if resp, _ := f.callback(t, &forged); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("forged callback: %d", resp.StatusCode)
			}
			resp, page := f.callback(t, back)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("callback: %d %s", resp.StatusCode, page)
			}
			done, _ := url.Parse(resp.Header.Get("Location"))
			if !strings.HasPrefix(done.String(), fintechDone+"?") || done.Query().Get("id") != id || done.Query().Get("status") != "FINISHED" {
				t.Fatalf("sent back to %s", done)
			}
			st, history, consentID := f.session(t, id)
			if st != "FINISHED" || strings.Join(history, ",") != "PENDING,AWAITING_AUTHORISATION,AUTHORISED,FINISHED" || !strings.HasPrefix(consentID, "urn:ponte:rc:") {
				t.Fatalf("session = %s %v %s", st, history, consentID)
			}
			var holderStatus string
			if err := f.s.App.DB.Read().QueryRow(`SELECT status FROM recurring_consents WHERE id = $1`, consentID).Scan(&holderStatus); err != nil || holderStatus != "AUTHORISED" {
				t.Errorf("recurring consent at the holder: %q %v", holderStatus, err)
			}
			// Replayed: refused, nothing changes.
			if resp, _ := f.callback(t, back); resp.StatusCode != http.StatusConflict {
				t.Errorf("replayed callback: %d", resp.StatusCode)
			}

			// Cancelled on the journey page.
			id2, pageURL2 := f.create(t, "loop-2")
			u, _ := url.Parse(pageURL2)
			resp, _ = f.browse(t, "POST", f.s.URL+u.Path+"/cancel", url.Values{"id": {id2}, "token": {u.Query().Get("token")}})
			if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusSeeOther || loc.Query().Get("status") != "CANCELLED" {
				t.Fatalf("cancel on the page: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}

			// Cancelled at the holder.
			id3, pageURL3 := f.create(t, "loop-3")
			back3 := f.user.Decide(t, f.s, f.confirm(t, pageURL3), false)
			resp, _ = f.callback(t, back3)
			if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusSeeOther || loc.Query().Get("status") != "REJECTED" {
				t.Fatalf("cancel at the holder: %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
			if st, history, _ := f.session(t, id3); st != "REJECTED" || strings.Join(history, ",") != "PENDING,AWAITING_AUTHORISATION,REJECTED" {
				t.Errorf("session after the holder's cancel: %s %v", st, history)
			}

			// A wrong token shows nothing.
			bad := strings.Replace(pageURL3, "token=", "token=x", 1)
			if resp, _ := f.browse(t, "GET", bad, nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("wrong token: %d", resp.StatusCode)
			}
		})
	}
}
