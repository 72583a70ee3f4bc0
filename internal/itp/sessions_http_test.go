package itp_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/itp"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestCreateResponse checks every field of seed 003's 200 example.
func TestCreateResponse(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		f.srv.Clock.Advance(123 * time.Millisecond)
		s := f.mustCreate(t, `{"journeyId":"default","redirectUrl":"http://localhost:8080/callback","brandId":"`+f.brand.ID+`",
			"externalId":"sweeping-account-session-123",
			"settings":[{"key":"PRIORITIES_BRANDS","value":["`+f.brand.ID+`","a1b2c3d4e5f6g7h8i9j0k1l2"]}],
			"tags":{"environment":"production","clientId":"client-123","n":12345678901234567890}}`)
		switch {
		case !uuidPattern.MatchString(s.ID), !uuidPattern.MatchString(s.TokenID):
			t.Errorf("id %q / tokenId %q are not UUIDs", s.ID, s.TokenID)
		case s.JourneyID != f.journey.ID:
			t.Errorf("journeyId %q, want the resolved %q", s.JourneyID, f.journey.ID)
		case s.ApplicationClientID != f.partner.app.ClientID || s.ApplicationID != f.partner.app.ID:
			t.Errorf("application %q/%q", s.ApplicationClientID, s.ApplicationID)
		case s.Status != "PENDING" || s.PaymentInitiationAPI != "SWEEPING_ACCOUNTS_V2":
			t.Errorf("status %q api %q", s.Status, s.PaymentInitiationAPI)
		case s.RedirectURL != "http://localhost:8080/callback" || s.BrandID != f.brand.ID || s.ExternalID != "sweeping-account-session-123":
			t.Errorf("echoed fields: %+v", s)
		case s.CreatedAt != "2024-10-15T18:55:15.123Z" || s.UpdatedAt != s.CreatedAt:
			t.Errorf("createdAt %q updatedAt %q", s.CreatedAt, s.UpdatedAt)
		case len(s.StatusHistory) != 1 || s.StatusHistory[0].Status != "PENDING" || s.StatusHistory[0].UpdatedAt != s.CreatedAt:
			t.Errorf("statusHistory %+v", s.StatusHistory)
		case s.Tags["environment"] != "production" || fmt.Sprint(s.Tags["n"]) != "1.2345678901234567e+19":
			t.Errorf("tags %v", s.Tags)
		}
		u, err := url.Parse(s.JourneySessionURL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		wantPrefix := f.srv.URL + "/journey/" + f.journey.ID + "?api=SWEEPING_ACCOUNTS_V2&id=" + s.ID + "&token="
		if !strings.HasPrefix(s.JourneySessionURL, wantPrefix) || len(q.Get("token")) < 22 {
			t.Errorf("journeySessionUrl %q, want %s<token ≥128 bits>", s.JourneySessionURL, wantPrefix)
		}
		token := q.Get("token")
		ctx := context.Background()
		if got, err := f.srv.App.ITP.SessionByToken(ctx, s.ID, token); err != nil || got.ID != s.ID {
			t.Errorf("SessionByToken with the URL's token: %v", err)
		}
		for _, bad := range []string{"", token + "x", strings.ToUpper(token)} {
			if _, err := f.srv.App.ITP.SessionByToken(ctx, s.ID, bad); err != itp.ErrNotFound {
				t.Errorf("SessionByToken(%q) = %v, want ErrNotFound", bad, err)
			}
		}
		// The token is stored only as its hash.
		var n int
		if err := f.srv.App.DB.Read().QueryRow(`SELECT count(*) FROM itp_journey_sessions WHERE token_hash = $1 OR settings LIKE $2 OR tags LIKE $2`,
			token, "%"+token+"%").Scan(&n); err != nil || n != 0 {
			t.Errorf("token stored in clear (%d rows, %v)", n, err)
		}
		// GET shows the same session, without the one-time URL.
		got := f.mustGet(t, s.ID)
		if got.JourneySessionURL != "" || got.ID != s.ID || got.CreatedAt != s.CreatedAt || !slices.Equal(got.statuses(), []string{"PENDING"}) {
			t.Errorf("GET: %+v", got)
		}
	})
}

// TestCreateRules has one case per bullet of seed 003's "Validações e Regras
// de Negócio" and per error example.
func TestCreateRules(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		svc := f.srv.App.ITP
		other := f.newPartner(t, "Outro", "https://outro.example/cb")
		restricted, err := svc.CreateJourney(ctx, itp.Journey{Alias: "only-outro", Name: "Only Outro", ApplicationIDs: []string{other.app.ID}})
		if err != nil {
			t.Fatal(err)
		}
		envJourney, err := svc.CreateJourney(ctx, itp.Journey{Alias: "from-env", Name: "From env"})
		if err != nil {
			t.Fatal(err)
		}

		t.Run("1 application from azp must exist", func(t *testing.T) {
			p := f.newPartner(t, "Gone", redirects...)
			// The token is verified (the verifier caches the application for
			// a moment) but the application is disabled by another process.
			f.create(t, p.token, `{}`)
			if _, err := auth.NewApplications(f.srv.App.DB, f.srv.Clock).Disable(ctx, p.app.ID); err != nil {
				t.Fatal(err)
			}
			wantError(t, f.create(t, p.token, `{}`), 403, "Forbidden", "application not found")
		})
		t.Run("2 default journey from the application setting", func(t *testing.T) {
			for _, body := range []string{`{}`, `{"journeyId":"default"}`} {
				if s := f.mustCreate(t, body); s.JourneyID != f.journey.ID {
					t.Errorf("%s: journeyId %s", body, s.JourneyID)
				}
			}
		})
		t.Run("2 default journey from the environment when the application has no setting", func(t *testing.T) {
			p := f.newPartner(t, "EnvOnly")
			svc.Getenv = func(k string) string {
				if k == "JOURNEY_DEFAULT_ALIAS" {
					return "from-env"
				}
				return ""
			}
			defer func() { svc.Getenv = func(string) string { return "" } }()
			r := f.create(t, p.token, `{"journeyId":"default"}`)
			var s sessionResp
			r.JSON(t, &s)
			if r.Status != 200 || s.JourneyID != envJourney.ID {
				t.Errorf("%d %s", r.Status, r.Body)
			}
			// The application setting comes first.
			if s := f.mustCreate(t, `{}`); s.JourneyID != f.journey.ID {
				t.Errorf("setting did not win over the environment: %s", s.JourneyID)
			}
		})
		t.Run("2 no default configured", func(t *testing.T) {
			p := f.newPartner(t, "NoDefault")
			wantError(t, f.create(t, p.token, `{}`), 403, "Forbidden", "journey not found")
		})
		t.Run("2 journey by id and by alias", func(t *testing.T) {
			for _, id := range []string{f.journey.ID, "sweeping"} {
				if s := f.mustCreate(t, `{"journeyId":"`+id+`"}`); s.JourneyID != f.journey.ID {
					t.Errorf("%s: journeyId %s", id, s.JourneyID)
				}
			}
		})
		t.Run("2 journey not found", func(t *testing.T) {
			for _, id := range []string{"nope", "000000000000000000000000", restricted.ID, "only-outro", "SWEEPING"} {
				wantError(t, f.create(t, f.partner.token, `{"journeyId":"`+id+`"}`), 403, "Forbidden", "journey not found")
			}
		})
		t.Run("3 externalId unique per application", func(t *testing.T) {
			f.mustCreate(t, `{"externalId":"ext-1"}`)
			wantError(t, f.create(t, f.partner.token, `{"externalId":"ext-1"}`), 409, "Conflict",
				"Each Journey Session should have a unique externalId prop.")
			// Another application may use the same externalId.
			if r := f.create(t, other.token, `{"journeyId":"only-outro","externalId":"ext-1"}`); r.Status != 200 {
				t.Errorf("other application: %d %s", r.Status, r.Body)
			}
		})
		t.Run("4 redirectUrl must be registered", func(t *testing.T) {
			for _, u := range redirects {
				if s := f.mustCreate(t, `{"redirectUrl":"`+u+`"}`); s.RedirectURL != u {
					t.Errorf("redirectUrl %q", s.RedirectURL)
				}
			}
			wantError(t, f.create(t, f.partner.token, `{"redirectUrl":"https://evil.example/callback"}`), 403, "Forbidden",
				"this redirectUrl is not allowed for this application.")
		})
		t.Run("5 journey settings apply, request settings win", func(t *testing.T) {
			s := f.mustCreate(t, `{}`)
			if len(s.Settings) != 2 || s.Settings[0].Key != "PRIORITIES_BRANDS" || s.Settings[1].Key != "JOURNEY_RULES" ||
				fmt.Sprint(s.Settings[1].Value) != "[rule-journey]" {
				t.Errorf("journey settings not applied: %+v", s.Settings)
			}
			s = f.mustCreate(t, `{"settings":[{"key":"JOURNEY_RULES","value":["rule1","rule2"]},{"key":"CUSTOM","value":{"a":1}}]}`)
			if len(s.Settings) != 3 || fmt.Sprint(s.Settings[0].Value) != "["+f.brand.ID+"]" ||
				fmt.Sprint(s.Settings[1].Value) != "[rule1 rule2]" || s.Settings[2].Key != "CUSTOM" {
				t.Errorf("merge: %+v", s.Settings)
			}
		})
		t.Run("400 Validation Error", func(t *testing.T) {
			wantError(t, f.create(t, f.partner.token, `{"journeyId":12}`), 400, "Validation Error", "Campo 'journeyId' inválido")
			wantError(t, f.create(t, f.partner.token, `{"tags":"x"}`), 400, "Validation Error", "Campo 'tags' inválido")
			wantError(t, f.create(t, f.partner.token, `{"settings":{}}`), 400, "Validation Error", "Campo 'settings' inválido")
			wantError(t, f.create(t, f.partner.token, `{"journeyId":`), 400, "Validation Error", "Campo 'body' inválido")
		})
		t.Run("401 Unauthorized", func(t *testing.T) {
			wantError(t, f.create(t, "", `{}`), 401, "Unauthorized", "Token inválido ou expirado")
			wantError(t, f.create(t, "not-a-token", `{}`), 401, "Unauthorized", "Token inválido ou expirado")
		})
		t.Run("403 without scope app", func(t *testing.T) {
			tok := f.srv.TokenFor(t, f.partner.app.ClientID, f.partner.secret, "payments")
			wantError(t, f.create(t, tok, `{}`), 403, "Forbidden", "access token lacks the scope app")
		})
		t.Run("422 Unprocessable Entity", func(t *testing.T) {
			long := strings.Repeat("x", 37)
			e := wantError(t, f.create(t, f.partner.token, `{"journeyId":"`+long+`","brandId":"`+long+`","externalId":"`+long+`",
				"redirectUrl":"not a url","settings":[{"value":1},{"key":"PRIORITIES_BRANDS","value":"x"},{"key":"JOURNEY_SESSION_TTL","value":5}]}`),
				422, "Unprocessable Entity", "Validation failed")
			var fields []string
			for _, d := range e.Details {
				fields = append(fields, d.Field)
			}
			want := []string{"journeyId", "brandId", "externalId", "redirectUrl", "settings[0].key", "settings[1].value", "settings[2].value"}
			if !slices.Equal(fields, want) {
				t.Errorf("details %v, want %v", fields, want)
			}
			// 36 characters is fine.
			ok := strings.Repeat("y", 36)
			if s := f.mustCreate(t, `{"externalId":"`+ok+`"}`); s.ExternalID != ok {
				t.Errorf("externalId %q", s.ExternalID)
			}
			wantError(t, f.create(t, f.partner.token, `{"brandId":"000000000000000000000000"}`), 422, "Unprocessable Entity", "Validation failed")
		})
	})
}

// TestRedirectBypass tries to get an unregistered redirectUrl accepted.
func TestRedirectBypass(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		for _, u := range []string{
			"https://partner.example/callback/extra",        // prefix
			"https://partner.example/callbac",               // shorter
			"https://partner.example/callback/",             // trailing slash
			"HTTPS://partner.example/callback",              // scheme case
			"https://PARTNER.example/callback",              // host case
			"https://partner.example/Callback",              // path case
			"https://user@partner.example/callback",         // userinfo
			"https://partner.example@evil.example/callback", // userinfo trick
			"https://partner.example/%63allback",            // percent-encoding
			"https://partner.example/x/../callback",         // path traversal
			"https://partner.example/./callback",            // dot segment
			"https://partner.example/callback#frag",         // fragment
			"https://partner.example/callback?next=evil",    // query
			"https://partner.example:443/callback",          // explicit port
			"https://partner.example.evil.example/callback", // suffix host
			"http://partner.example/callback",               // scheme downgrade
			"https://partner.example/callback%00",           // NUL
			" https://partner.example/callback",             // leading space
		} {
			r := f.create(t, f.partner.token, `{"redirectUrl":`+quote(u)+`}`)
			if r.Status == http.StatusOK {
				t.Errorf("%q accepted", u)
			} else if r.Status != http.StatusForbidden && r.Status != http.StatusUnprocessableEntity {
				t.Errorf("%q: %d %s", u, r.Status, r.Body)
			}
		}
	})
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// TestConcurrentExternalID: 50 creates with one externalId make one session.
func TestConcurrentExternalID(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		const n = 50
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = f.create(t, f.partner.token, `{"externalId":"same-ext"}`).Status
			}()
		}
		wg.Wait()
		ok, conflict := 0, 0
		for _, s := range statuses {
			switch s {
			case 200:
				ok++
			case 409:
				conflict++
			}
		}
		if ok != 1 || conflict != n-1 {
			t.Errorf("%d × 200, %d × 409 (%v)", ok, conflict, statuses)
		}
		var rows, jobs int
		db := f.srv.App.DB.Read()
		if err := db.QueryRow(`SELECT count(*) FROM itp_journey_sessions WHERE external_id = 'same-ext'`).Scan(&rows); err != nil || rows != 1 {
			t.Errorf("%d sessions (%v)", rows, err)
		}
		if err := db.QueryRow(`SELECT count(*) FROM jobs WHERE kind = $1`, itp.JobExpire).Scan(&jobs); err != nil || jobs != 1 {
			t.Errorf("%d expiry jobs (%v)", jobs, err)
		}
	})
}

// TestTenantIsolation: another application's session does not exist for the caller.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		s := f.mustCreate(t, `{"externalId":"mine","tags":{"k":"v"}}`)
		other := f.newPartner(t, "Outro")
		wantError(t, f.get(t, other.token, s.ID), 404, "Not Found", "journey session not found")
		wantError(t, f.srv.Do(t, http.MethodPost, sessionsPath+"/"+s.ID+"/verify-expired", bearer(other.token), ""), 404, "Not Found", "journey session not found")
		wantError(t, f.get(t, f.partner.token, "00000000-0000-0000-0000-000000000000"), 404, "Not Found", "journey session not found")
		r := f.srv.Do(t, http.MethodGet, sessionsPath+"?externalId=mine", bearer(other.token), "")
		var l listResp
		r.JSON(t, &l)
		if r.Status != 200 || len(l.Data) != 0 {
			t.Errorf("other application lists %s", r.Body)
		}
	})
}

type listResp struct {
	Data       []sessionResp `json:"data"`
	NextCursor string        `json:"nextCursor"`
}

func (f *fixture) list(t *testing.T, query string) listResp {
	t.Helper()
	r := f.srv.Do(t, http.MethodGet, sessionsPath+"?"+query, bearer(f.partner.token), "")
	if r.Status != 200 {
		t.Fatalf("list %s: %d %s", query, r.Status, r.Body)
	}
	var l listResp
	r.JSON(t, &l)
	return l
}

func TestListFiltersAndPages(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		var ids []string
		for i := range 7 {
			f.srv.Clock.Advance(time.Second)
			body := fmt.Sprintf(`{"externalId":"e%d","tags":{"env":"%s","n":%d}}`, i, []string{"prod", "test"}[i%2], i)
			if i == 3 {
				body = `{"externalId":"e3","brandId":"` + f.brand.ID + `","tags":{"env":"test"}}`
			}
			ids = append(ids, f.mustCreate(t, body).ID)
		}
		slices.Reverse(ids) // newest first
		// Pages of 3: 3 + 3 + 1, no duplicates, newest first.
		var got []string
		cursor := ""
		for page := 0; ; page++ {
			q := "limit=3"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			l := f.list(t, q)
			for _, s := range l.Data {
				got = append(got, s.ID)
			}
			if l.NextCursor == "" {
				break
			}
			if page > 3 {
				t.Fatal("too many pages")
			}
			cursor = l.NextCursor
		}
		if !slices.Equal(got, ids) {
			t.Errorf("pages %v, want %v", got, ids)
		}
		tests := []struct {
			query string
			want  []string
		}{
			{"externalId=e2", []string{ids[4]}},
			{"brandId=" + f.brand.ID, []string{ids[3]}},
			{"tag=env:prod", []string{ids[0], ids[2], ids[4], ids[6]}},
			{"tag=n:5", []string{ids[1]}},
			{"tag=env:prod&externalId=e2", []string{ids[4]}},
			{"status=PENDING&limit=2", []string{ids[0], ids[1]}},
			{"status=EXPIRED,CANCELLED", nil},
			{"createdFrom=2024-10-15T18:55:18Z&createdTo=2024-10-15T18:55:20Z", []string{ids[3], ids[4]}},
		}
		for _, tt := range tests {
			var got []string
			for _, s := range f.list(t, tt.query).Data {
				got = append(got, s.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: %v, want %v", tt.query, got, tt.want)
			}
		}
		for _, bad := range []string{"status=DONE", "limit=0", "limit=101", "createdFrom=yesterday", "tag=novalue", "cursor=%21%21"} {
			r := f.srv.Do(t, http.MethodGet, sessionsPath+"?"+bad, bearer(f.partner.token), "")
			wantError(t, r, 422, "Unprocessable Entity", "Validation failed")
		}
	})
}

// TestListZeroTimeBounds: 0001-01-01T00:00:00Z is a bound like any other,
// not "no bound". One session is moved to the last second of year 0 so each
// bound, if applied, leaves exactly one of the two sessions.
func TestListZeroTimeBounds(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		old := f.mustCreate(t, `{"externalId":"old"}`)
		recent := f.mustCreate(t, `{"externalId":"recent"}`)
		beforeYear1 := time.Time{}.Add(-time.Second).UnixMilli()
		if err := f.srv.App.DB.Write(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE itp_journey_sessions SET created_at = $1 WHERE id = $2`, beforeYear1, old.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		zero := url.QueryEscape(time.Time{}.Format(time.RFC3339))
		tests := []struct {
			query string
			want  []string
		}{
			{"createdTo=" + zero, []string{old.ID}},
			{"createdFrom=" + zero, []string{recent.ID}},
			{"createdFrom=" + zero + "&createdTo=" + zero, nil},
		}
		for _, tt := range tests {
			var got []string
			for _, s := range f.list(t, tt.query).Data {
				got = append(got, s.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: %v, want %v", tt.query, got, tt.want)
			}
		}
	})
}

func TestJourneysList(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		other := f.newPartner(t, "Outro")
		f.srv.Clock.Advance(time.Millisecond)
		if _, err := f.srv.App.ITP.CreateJourney(context.Background(), itp.Journey{Alias: "private", Name: "Private", ApplicationIDs: []string{other.app.ID}}); err != nil {
			t.Fatal(err)
		}
		aliases := func(token string) []string {
			r := f.srv.Do(t, http.MethodGet, itp.JourneysPath, bearer(token), "")
			var out struct {
				Data []struct{ Alias string } `json:"data"`
			}
			r.JSON(t, &out)
			var a []string
			for _, j := range out.Data {
				if j.Alias != app.SandboxJourneyAlias { // the sandbox's own journey, open to every application
					a = append(a, j.Alias)
				}
			}
			return a
		}
		if got := aliases(f.partner.token); !slices.Equal(got, []string{"sweeping"}) {
			t.Errorf("partner sees %v", got)
		}
		if got := aliases(other.token); !slices.Equal(got, []string{"sweeping", "private"}) {
			t.Errorf("other sees %v", got)
		}
	})
}

// TestExpiry: the job expires a session at its time-to-live, also after a
// restart; verify-expired does it on demand and is idempotent.
func TestExpiry(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		s := f.mustCreate(t, `{"settings":[{"key":"JOURNEY_SESSION_TTL","value":120}]}`)
		verify := func(id string) sessionResp {
			r := f.srv.Do(t, http.MethodPost, sessionsPath+"/"+id+"/verify-expired", bearer(f.partner.token), "")
			if r.Status != 200 {
				t.Fatalf("verify-expired: %d %s", r.Status, r.Body)
			}
			var out sessionResp
			r.JSON(t, &out)
			return out
		}
		// Not due: verify-expired changes nothing; the job does not run early.
		f.srv.Clock.Advance(119 * time.Second)
		if v := verify(s.ID); v.Status != "PENDING" || len(v.StatusHistory) != 1 {
			t.Errorf("early verify-expired: %+v", v)
		}
		if _, err := f.srv.App.Jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		if got := f.mustGet(t, s.ID); got.Status != "PENDING" {
			t.Errorf("expired early: %s", got.Status)
		}
		// Due: the job expires it.
		f.srv.Clock.Advance(time.Second)
		if _, err := f.srv.App.Jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		var status string
		if err := f.srv.App.DB.Read().QueryRow(`SELECT status FROM itp_journey_sessions WHERE id = $1`, s.ID).Scan(&status); err != nil || status != "EXPIRED" {
			t.Fatalf("after the job: %s %v", status, err)
		}
		got := verify(s.ID)
		if !slices.Equal(got.statuses(), []string{"PENDING", "EXPIRED"}) || got.StatusHistory[1].UpdatedAt != "2024-10-15T18:57:15.000Z" ||
			got.UpdatedAt != got.StatusHistory[1].UpdatedAt {
			t.Errorf("expired session: %+v", got)
		}
		if again := verify(s.ID); !slices.Equal(again.statuses(), got.statuses()) {
			t.Errorf("verify-expired not idempotent: %v", again.statuses())
		}

		// After a restart, the durable job still expires a session.
		s2 := f.mustCreate(t, `{}`)
		srv := f.srv.Restart(t)
		srv.Clock.Advance(itp.DefaultSessionTTL)
		if _, err := srv.App.Jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		if err := srv.App.DB.Read().QueryRow(`SELECT status FROM itp_journey_sessions WHERE id = $1`, s2.ID).Scan(&status); err != nil || status != "EXPIRED" {
			t.Errorf("after restart: %s %v", status, err)
		}
	})
}

// TestGetExpiresDue: a read never shows a stale PENDING.
func TestGetExpiresDue(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		s := f.mustCreate(t, `{}`)
		f.srv.Clock.Advance(itp.DefaultSessionTTL)
		f.refreshToken(t)
		if got := f.mustGet(t, s.ID); !slices.Equal(got.statuses(), []string{"PENDING", "EXPIRED"}) {
			t.Errorf("GET after TTL: %v", got.statuses())
		}
	})
}

// TestVerifyExpiredRacesJob: the job, the sweep and many verify-expired
// calls at once write EXPIRED once.
func TestVerifyExpiredRacesJob(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		var ids []string
		for range 5 {
			ids = append(ids, f.mustCreate(t, `{}`).ID)
		}
		f.srv.Clock.Advance(itp.DefaultSessionTTL + time.Second)
		f.refreshToken(t)
		var wg sync.WaitGroup
		for _, id := range ids {
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f.srv.Do(t, http.MethodPost, sessionsPath+"/"+id+"/verify-expired", bearer(f.partner.token), "")
				}()
			}
		}
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = f.srv.App.Jobs.RunDue(ctx) }()
		go func() { defer wg.Done(); _, _ = f.srv.App.ITP.Sweep(ctx) }()
		wg.Wait()
		if _, err := f.srv.App.Jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if got := f.mustGet(t, id); !slices.Equal(got.statuses(), []string{"PENDING", "EXPIRED"}) {
				t.Errorf("%s: %v", id, got.statuses())
			}
		}
		var failed int
		if err := f.srv.App.DB.Read().QueryRow(`SELECT count(*) FROM jobs WHERE kind = $1 AND state <> 'completed'`, itp.JobExpire).Scan(&failed); err != nil || failed != 0 {
			t.Errorf("%d expiry jobs not completed (%v)", failed, err)
		}
	})
}

// TestTransitions drives the status machine as the journey page and callback will.
func TestTransitions(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		svc := f.srv.App.ITP
		s := f.mustCreate(t, `{}`)
		steps := []struct {
			to     itp.Status
			change func(*itp.Session)
		}{
			{itp.StatusAwaitingAuthorisation, func(s *itp.Session) { s.BrandID, s.ConsentID = f.brand.ID, "urn:banco:consent-1" }},
			{itp.StatusAuthorised, nil},
			{itp.StatusFinished, nil},
		}
		for _, st := range steps {
			f.srv.Clock.Advance(time.Second)
			if _, err := svc.Move(ctx, s.ID, st.to, st.change); err != nil {
				t.Fatalf("→ %s: %v", st.to, err)
			}
		}
		got := f.mustGet(t, s.ID)
		if !slices.Equal(got.statuses(), []string{"PENDING", "AWAITING_AUTHORISATION", "AUTHORISED", "FINISHED"}) ||
			got.ConsentID != "urn:banco:consent-1" || got.BrandID != f.brand.ID || got.UpdatedAt != "2024-10-15T18:55:18.000Z" {
			t.Errorf("after the journey: %+v", got)
		}
		// Final statuses do not move; EXPIRED is not a transition.
		for _, to := range []itp.Status{itp.StatusPending, itp.StatusRejected, itp.StatusCancelled, itp.StatusExpired} {
			if _, err := svc.Move(ctx, s.ID, to, nil); !errors.Is(err, itp.ErrInvalidTransition) {
				t.Errorf("FINISHED → %s: %v", to, err)
			}
		}
		// A due session cannot move on; the caller's transaction decides.
		s2 := f.mustCreate(t, `{}`)
		f.srv.Clock.Advance(itp.DefaultSessionTTL)
		f.refreshToken(t)
		err := f.srv.App.DB.Write(ctx, func(tx *sql.Tx) error {
			_, err := svc.Transition(ctx, tx, s2.ID, itp.StatusAwaitingAuthorisation, nil)
			return err
		})
		if !errors.Is(err, itp.ErrExpired) {
			t.Errorf("due session moved: %v", err)
		}
		// Cancel from PENDING and reject from AWAITING_AUTHORISATION.
		s3, s4 := f.mustCreate(t, `{}`), f.mustCreate(t, `{}`)
		if _, err := svc.Move(ctx, s3.ID, itp.StatusCancelled, nil); err != nil {
			t.Error(err)
		}
		if _, err := svc.Move(ctx, s4.ID, itp.StatusAwaitingAuthorisation, nil); err != nil {
			t.Error(err)
		}
		if _, err := svc.Move(ctx, s4.ID, itp.StatusRejected, nil); err != nil {
			t.Error(err)
		}
		if got := f.mustGet(t, s4.ID); !slices.Equal(got.statuses(), []string{"PENDING", "AWAITING_AUTHORISATION", "REJECTED"}) {
			t.Errorf("rejected: %v", got.statuses())
		}
	})
}

// TestSweep expires due sessions in batches, leaving the others alone.
func TestSweep(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		svc := f.srv.App.ITP
		svc.SweepBatch = 4
		var due []string
		for range 9 {
			due = append(due, f.mustCreate(t, `{"settings":[{"key":"JOURNEY_SESSION_TTL","value":60}]}`).ID)
		}
		later := f.mustCreate(t, `{}`).ID
		cancelled := f.mustCreate(t, `{"settings":[{"key":"JOURNEY_SESSION_TTL","value":60}]}`).ID
		if _, err := svc.Move(ctx, cancelled, itp.StatusCancelled, nil); err != nil {
			t.Fatal(err)
		}
		f.srv.Clock.Advance(time.Minute)
		n, err := svc.Sweep(ctx)
		if err != nil || n != len(due) {
			t.Fatalf("Sweep = %d, %v; want %d", n, err, len(due))
		}
		if n, err := svc.Sweep(ctx); err != nil || n != 0 {
			t.Errorf("second Sweep = %d, %v", n, err)
		}
		for _, id := range due {
			if got := f.mustGet(t, id); !slices.Equal(got.statuses(), []string{"PENDING", "EXPIRED"}) {
				t.Errorf("%s: %v", id, got.statuses())
			}
		}
		if got := f.mustGet(t, later); got.Status != "PENDING" {
			t.Errorf("not-due session: %s", got.Status)
		}
		if got := f.mustGet(t, cancelled); !slices.Equal(got.statuses(), []string{"PENDING", "CANCELLED"}) {
			t.Errorf("cancelled session: %v", got.statuses())
		}
		// The jobs find their sessions expired and complete.
		if _, err := f.srv.App.Jobs.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
