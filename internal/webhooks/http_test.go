package webhooks_test

import (
	"context"
	"database/sql"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

const subsPath = "/webhooks/v1/subscriptions"

func eachEngine(t *testing.T, fn func(t *testing.T, s *apptest.Server)) {
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			fn(t, apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)}))
		})
	}
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

type subJSON struct {
	ID                      string   `json:"id"`
	URL                     string   `json:"url"`
	Events                  []string `json:"events"`
	Status                  string   `json:"status"`
	DisabledReason          string   `json:"disabledReason"`
	PreviousSecretExpiresAt string   `json:"previousSecretExpiresAt"`
	CreatedAt               string   `json:"createdAt"`
	Secret                  string   `json:"secret"`
}

type banklyErrors struct {
	Errors []struct {
		Code         string `json:"code"`
		Message      string `json:"message"`
		PropertyName string `json:"propertyName"`
	} `json:"errors"`
}

func (b banklyErrors) fields() string {
	var f []string
	for _, e := range b.Errors {
		f = append(f, e.PropertyName)
	}
	return strings.Join(f, ",")
}

// otherApp registers a second partner application and returns its token.
func otherApp(t *testing.T, s *apptest.Server, scopes ...string) string {
	t.Helper()
	a, secret, err := s.App.Apps.Create(context.Background(), auth.NewApplication{Name: "Other", CompanyKey: "OTHER", Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return s.TokenFor(t, a.ClientID, secret, "")
}

var secretPattern = regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`)

func TestSubscriptionsAPI(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "")
		resp := s.Do(t, "POST", subsPath, bearer(tok), `{"url":"http://127.0.0.1:9/hooks","events":["CARD_WAS_REMOVED_FROM_WALLET","CARD_WAS_ADDED_TO_WALLET","CARD_WAS_ADDED_TO_WALLET"]}`)
		if resp.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", resp.Status, resp.Body)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q on a response with a secret", cc)
		}
		var created subJSON
		resp.JSON(t, &created)
		if !secretPattern.MatchString(created.Secret) || created.Status != "ENABLED" || created.CreatedAt != "2024-10-15T18:55:15" ||
			strings.Join(created.Events, ",") != "CARD_WAS_ADDED_TO_WALLET,CARD_WAS_REMOVED_FROM_WALLET" {
			t.Errorf("created: %+v", created)
		}
		list := s.Do(t, "GET", subsPath, bearer(tok), "")
		one := s.Do(t, "GET", subsPath+"/"+created.ID, bearer(tok), "")
		for _, r := range []*apptest.Response{list, one} {
			if r.Status != 200 || strings.Contains(string(r.Body), "secret") || strings.Contains(string(r.Body), strings.TrimPrefix(created.Secret, "whsec_")) {
				t.Errorf("read shows a secret or fails: %d %s", r.Status, r.Body)
			}
		}
		var got subJSON
		one.JSON(t, &got)
		if got.ID != created.ID || got.URL != created.URL {
			t.Errorf("GET: %+v", got)
		}

		s.Clock.Advance(time.Minute)
		rot := s.Do(t, "POST", subsPath+"/"+created.ID+"/rotate-secret", bearer(tok), "")
		var rotated subJSON
		rot.JSON(t, &rotated)
		if rot.Status != 200 || !secretPattern.MatchString(rotated.Secret) || rotated.Secret == created.Secret ||
			rotated.PreviousSecretExpiresAt != "2024-10-16T18:56:15" || rot.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("rotate: %d %s", rot.Status, rot.Body)
		}

		// Another application sees none of it.
		other := otherApp(t, s, "webhooks.read", "webhooks.write")
		for _, r := range []*apptest.Response{
			s.Do(t, "GET", subsPath+"/"+created.ID, bearer(other), ""),
			s.Do(t, "POST", subsPath+"/"+created.ID+"/rotate-secret", bearer(other), ""),
			s.Do(t, "DELETE", subsPath+"/"+created.ID, bearer(other), ""),
		} {
			var e banklyErrors
			r.JSON(t, &e)
			if r.Status != 404 || e.Errors[0].Code != "NOT_FOUND" {
				t.Errorf("other tenant: %d %s", r.Status, r.Body)
			}
		}
		if r := s.Do(t, "GET", subsPath, bearer(other), ""); string(r.Body) != `{"data":[]}` {
			t.Errorf("other tenant's list: %s", r.Body)
		}

		// Scopes.
		readOnly := s.Token(t, "webhooks.read")
		writeOnly := s.Token(t, "webhooks.write")
		if r := s.Do(t, "POST", subsPath, bearer(readOnly), `{"url":"http://127.0.0.1:9/x"}`); r.Status != 403 {
			t.Errorf("create with webhooks.read: %d", r.Status)
		}
		if r := s.Do(t, "GET", subsPath, bearer(writeOnly), ""); r.Status != 403 {
			t.Errorf("list with webhooks.write: %d", r.Status)
		}
		if r := s.Do(t, "GET", "/webhooks/v1/deliveries", bearer(writeOnly), ""); r.Status != 403 {
			t.Errorf("deliveries with webhooks.write: %d", r.Status)
		}
		if r := s.Do(t, "DELETE", subsPath+"/"+created.ID, nil, ""); r.Status != 401 {
			t.Errorf("delete without a token: %d", r.Status)
		}

		if r := s.Do(t, "DELETE", subsPath+"/"+created.ID, bearer(tok), ""); r.Status != 204 || len(r.Body) != 0 {
			t.Errorf("delete: %d %s", r.Status, r.Body)
		}
		for _, r := range []*apptest.Response{
			s.Do(t, "GET", subsPath+"/"+created.ID, bearer(tok), ""),
			s.Do(t, "DELETE", subsPath+"/"+created.ID, bearer(tok), ""),
			s.Do(t, "GET", subsPath+"/not-a-uuid", bearer(tok), ""),
		} {
			if r.Status != 404 {
				t.Errorf("after delete: %d %s", r.Status, r.Body)
			}
		}
		if r := s.Do(t, "GET", subsPath, bearer(tok), ""); string(r.Body) != `{"data":[]}` {
			t.Errorf("list after delete: %s", r.Body)
		}
	})
}

func TestCreateSubscriptionValidation(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	tok := s.Token(t, "")
	tests := []struct{ name, body, fields string }{
		{"missing url", `{}`, "url"},
		{"null url", `{"url":null}`, "url"},
		{"wrong types", `{"url":1,"events":"CARD"}`, "url,events"},
		{"bad scheme and event", `{"url":"ftp://partner.example/x","events":["bad name!"]}`, "url,events"},
		{"userinfo", `{"url":"https://u:p@partner.example/x"}`, "url"},
		{"fragment", `{"url":"https://partner.example/x#y"}`, "url"},
		{"relative", `{"url":"/hooks"}`, "url"},
		{"link-local even in the sandbox", `{"url":"http://169.254.169.254/latest"}`, "url"},
		{"too many events", `{"url":"https://partner.example/x","events":[` + strings.TrimSuffix(strings.Repeat(`"E",`, 51), ",") + `]}`, "events"},
		{"malformed JSON", `{"url":`, "body"},
		{"not an object", `["url"]`, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.Do(t, "POST", subsPath, bearer(tok), tt.body)
			var e banklyErrors
			r.JSON(t, &e)
			if r.Status != 400 || e.fields() != tt.fields {
				t.Errorf("%d fields %q, want 400 naming %q: %s", r.Status, e.fields(), tt.fields, r.Body)
			}
			for _, x := range e.Errors {
				if x.Code != "INVALID_PARAMETER" || !strings.HasPrefix(x.Message, x.PropertyName+" ") {
					t.Errorf("error %+v", x)
				}
			}
		})
	}
	if r := s.Do(t, "POST", subsPath, map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "text/plain"}, `{"url":"https://partner.example"}`); r.Status != 415 {
		t.Errorf("text/plain body: %d", r.Status)
	}
}

func TestProductionRefusesInternalURLs(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{Mode: config.Production})
	tok := otherApp(t, s, "webhooks.read", "webhooks.write")
	for _, url := range []string{
		"http://127.0.0.1/hooks", "https://127.0.0.1/hooks", "https://10.0.0.1/hooks", "https://192.168.0.10/hooks",
		"https://169.254.169.254/latest/meta-data/", "https://[::1]/hooks", "https://[fd00::1]/hooks",
		"https://100.64.0.1/hooks", "https://0.0.0.0/hooks", "https://localhost/hooks",
	} {
		r := s.Do(t, "POST", subsPath, bearer(tok), `{"url":"`+url+`"}`)
		var e banklyErrors
		r.JSON(t, &e)
		if r.Status != 400 || e.fields() != "url" {
			t.Errorf("production subscription to %s: %d %s", url, r.Status, r.Body)
		}
	}
}

type deliveryJSON struct {
	ID             string `json:"id"`
	SubscriptionID string `json:"subscriptionId"`
	EventID        string `json:"eventId"`
	Status         string `json:"status"`
	AttemptCount   int    `json:"attemptCount"`
	LastStatusCode int    `json:"lastStatusCode"`
	NextAttemptAt  string `json:"nextAttemptAt"`
	Attempts       []struct {
		Attempt    int `json:"attempt"`
		StatusCode int `json:"statusCode"`
	} `json:"attempts"`
}

type deliveryList struct {
	Data       []deliveryJSON `json:"data"`
	NextCursor string         `json:"nextCursor"`
}

func emitDemo(t *testing.T, s *apptest.Server, name, entity string) {
	t.Helper()
	err := s.App.DB.Write(context.Background(), func(tx *sql.Tx) error {
		return s.App.Webhooks.Emit(context.Background(), tx, webhooks.Event{
			ApplicationID: s.App.Demo.ID, Context: "ConsentFlow", Name: name, EntityID: entity, Data: map[string]any{"ticketId": entity, "status": "USED"},
		})
	})
	if err != nil {
		t.Fatalf("emit: %v", err)
	}
}

// runJobs runs the due jobs and returns how many delivery attempts they
// made: other features' periodic jobs may run too.
func runJobs(t *testing.T, s *apptest.Server) int {
	t.Helper()
	attempts := func() int {
		var n int
		if err := s.App.DB.Read().QueryRow(`SELECT COALESCE(SUM(attempt), 0) FROM jobs WHERE kind = $1`, webhooks.JobKind).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := attempts()
	if _, err := s.App.Jobs.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	return attempts() - before
}

// TestRestartMidRetryLosesNothing: the receiver is down, Ponte restarts
// between attempts, and the event still arrives — once, with the webhook-id
// and body of the first attempt, signed with the secret sealed before the restart.
func TestRestartMidRetryLosesNothing(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		var up atomic.Bool
		rc := newReceiver(t, func(int, *http.Request) (int, map[string]string) {
			if up.Load() {
				return http.StatusOK, nil
			}
			return http.StatusInternalServerError, nil
		})
		tok := s.Token(t, "")
		var sub subJSON
		s.Do(t, "POST", subsPath, bearer(tok), `{"url":"`+rc.URL()+`","events":["TICKET_WAS_USED"]}`).JSON(t, &sub)
		emitDemo(t, s, "TICKET_WAS_USED", "ticket-1")
		emitDemo(t, s, "IGNORED_EVENT", "ticket-1")
		if n := runJobs(t, s); n != 1 {
			t.Fatalf("ran %d jobs", n)
		}
		var page deliveryList
		s.Do(t, "GET", "/webhooks/v1/deliveries", bearer(tok), "").JSON(t, &page)
		if len(page.Data) != 1 || page.Data[0].Status != "failed" || page.Data[0].AttemptCount != 1 || page.Data[0].LastStatusCode != 500 ||
			(page.Data[0].NextAttemptAt != "2024-10-15T18:55:19" && page.Data[0].NextAttemptAt != "2024-10-15T18:55:20") { // 5 s ± 10 %
			t.Fatalf("after the first attempt: %+v", page.Data)
		}

		s = s.Restart(t)
		s.Clock.Advance(6 * time.Second) // 5 s ± 10 % jitter
		if n := runJobs(t, s); n != 1 {
			t.Fatalf("after restart, ran %d jobs", n)
		}
		up.Store(true)
		s.Clock.Advance(6 * time.Minute)
		runJobs(t, s)
		tok = s.Token(t, "") // the clock moved past the first token's lifetime

		var delivered deliveryList
		s.Do(t, "GET", "/webhooks/v1/deliveries?status=delivered&subscriptionId="+sub.ID, bearer(tok), "").JSON(t, &delivered)
		if len(delivered.Data) != 1 || delivered.Data[0].AttemptCount != 3 || len(delivered.Data[0].Attempts) != 3 {
			t.Fatalf("after recovery: %+v", delivered.Data)
		}
		reqs := rc.requests()
		if len(reqs) != 3 {
			t.Fatalf("receiver got %d requests", len(reqs))
		}
		for _, r := range reqs {
			if r.Header.Get("webhook-id") != delivered.Data[0].EventID || string(r.Body) != string(reqs[0].Body) {
				t.Errorf("attempt with another id or body: %s", r.Header.Get("webhook-id"))
			}
			if err := verifySignatureAt(sub.Secret, r, r.Header.Get("webhook-timestamp")); err != nil {
				t.Errorf("signature after restart: %v", err)
			}
		}
		one := s.Do(t, "GET", "/webhooks/v1/deliveries/"+delivered.Data[0].ID, bearer(tok), "")
		if one.Status != 200 {
			t.Errorf("GET delivery: %d", one.Status)
		}
		if r := s.Do(t, "POST", "/webhooks/v1/deliveries/"+delivered.Data[0].ID+"/retry", bearer(tok), ""); r.Status != 409 {
			t.Errorf("retry of a delivered delivery: %d %s", r.Status, r.Body)
		}
	})
}

func TestDeliveriesAPI(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		var up atomic.Bool
		rc := newReceiver(t, func(int, *http.Request) (int, map[string]string) {
			if up.Load() {
				return http.StatusOK, nil
			}
			return http.StatusBadGateway, nil
		})
		tok := s.Token(t, "")
		var sub subJSON
		s.Do(t, "POST", subsPath, bearer(tok), `{"url":"`+rc.URL()+`"}`).JSON(t, &sub)
		for i := 0; i < 3; i++ {
			emitDemo(t, s, "TICKET_WAS_USED", "ticket-"+string(rune('a'+i)))
			s.Clock.Advance(time.Second)
		}
		for i := 0; i < webhooks.MaxAttempts+1; i++ {
			runJobs(t, s)
			s.Clock.Advance(25 * time.Hour)
		}
		tok = s.Token(t, "") // the clock moved past the first token's lifetime
		var page deliveryList
		s.Do(t, "GET", "/webhooks/v1/deliveries?limit=2", bearer(tok), "").JSON(t, &page)
		if len(page.Data) != 2 || page.NextCursor == "" || page.Data[0].Status != "exhausted" || len(page.Data[0].Attempts) != webhooks.MaxAttempts {
			t.Fatalf("first page: %+v", page)
		}
		var rest deliveryList
		s.Do(t, "GET", "/webhooks/v1/deliveries?limit=2&cursor="+page.NextCursor, bearer(tok), "").JSON(t, &rest)
		if len(rest.Data) != 1 || rest.NextCursor != "" {
			t.Fatalf("second page: %+v", rest)
		}

		up.Store(true)
		id := rest.Data[0].ID
		r := s.Do(t, "POST", "/webhooks/v1/deliveries/"+id+"/retry", bearer(tok), "")
		var retried deliveryJSON
		r.JSON(t, &retried)
		if r.Status != 202 || retried.Status != "pending" {
			t.Fatalf("retry: %d %s", r.Status, r.Body)
		}
		if r := s.Do(t, "POST", "/webhooks/v1/deliveries/"+id+"/retry", bearer(tok), ""); r.Status != 409 {
			t.Errorf("retry while pending: %d", r.Status)
		}
		runJobs(t, s)
		var after deliveryJSON
		s.Do(t, "GET", "/webhooks/v1/deliveries/"+id, bearer(tok), "").JSON(t, &after)
		if after.Status != "delivered" || after.AttemptCount != webhooks.MaxAttempts+1 {
			t.Errorf("after the manual retry: %+v", after)
		}

		other := otherApp(t, s, "webhooks.read", "webhooks.write")
		for _, r := range []*apptest.Response{
			s.Do(t, "GET", "/webhooks/v1/deliveries/"+id, bearer(other), ""),
			s.Do(t, "POST", "/webhooks/v1/deliveries/"+id+"/retry", bearer(other), ""),
			s.Do(t, "GET", "/webhooks/v1/deliveries/nope", bearer(tok), ""),
		} {
			if r.Status != 404 {
				t.Errorf("foreign or unknown delivery: %d", r.Status)
			}
		}
		if r := s.Do(t, "GET", "/webhooks/v1/deliveries", bearer(other), ""); string(r.Body) != `{"data":[]}` {
			t.Errorf("other tenant's log: %s", r.Body)
		}
		for q, field := range map[string]string{"limit=0": "limit", "limit=x": "limit", "limit=201": "limit", "status=lost": "status", "cursor=%21%21": "cursor"} {
			r := s.Do(t, "GET", "/webhooks/v1/deliveries?"+q, bearer(tok), "")
			var e banklyErrors
			r.JSON(t, &e)
			if r.Status != 400 || e.fields() != field {
				t.Errorf("?%s: %d %s", q, r.Status, r.Body)
			}
		}
	})
}
