package itp_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// postgresFixture is a fixture on a fresh PostgreSQL schema; it skips the
// test without PostgreSQL.
func postgresFixture(t *testing.T) *fixture {
	t.Helper()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	return newFixture(t, apptest.Start(t, apptest.Options{DatabaseURL: storetest.FreshSchema(t, base)}))
}

// countedRequest serves one request through Ponte's whole handler (edge
// guard, token verification, the route) and counts the PostgreSQL round
// trips it took.
func (f *fixture) countedRequest(t *testing.T, method, path, body string) (*httptest.ResponseRecorder, int64) {
	t.Helper()
	ctx, n := store.CountRoundTrips(t.Context())
	req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.partner.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	f.srv.App.Handler().ServeHTTP(rec, req)
	return rec, n.N()
}

// TestCreateRoundTrips holds a journey-session create on PostgreSQL to one
// round trip for the whole request once warm (the application, journey
// and brand cached, the statement prepared on the connection): the
// session, its tags and its expiry job are one statement, checking the
// cached application in it. A taken externalId is answered by that same
// statement; GET is one query.
func TestCreateRoundTrips(t *testing.T) {
	t.Parallel()
	f := postgresFixture(t)
	// Warm up: the first creates read the application and prepare the
	// statements on the connections they use.
	for i := range 4 {
		rec, _ := f.countedRequest(t, http.MethodPost, sessionsPath, `{"brandId":"`+f.brand.ID+`","tags":{"w":"`+strconv.Itoa(i)+`"}}`)
		if rec.Code != http.StatusOK {
			t.Fatalf("warm-up create: %d %s", rec.Code, rec.Body)
		}
		var s sessionResp
		(&apptest.Response{Status: rec.Code, Body: rec.Body.Bytes()}).JSON(t, &s)
		if rec, _ := f.countedRequest(t, http.MethodGet, sessionsPath+"/"+s.ID, ""); rec.Code != http.StatusOK {
			t.Fatalf("warm-up GET: %d %s", rec.Code, rec.Body)
		}
	}
	var id string
	for _, c := range []struct {
		name, body string
		status     int
	}{
		{"fresh", `{}`, http.StatusOK},
		{"fresh with tags, externalId, brand and redirect URL", `{"externalId":"rt-1","brandId":"` + f.brand.ID +
			`","redirectUrl":"` + redirects[0] + `","tags":{"a":"b","n":1,"o":{"x":1}}}`, http.StatusOK},
		{"externalId taken", `{"externalId":"rt-1"}`, http.StatusConflict},
	} {
		rec, n := f.countedRequest(t, http.MethodPost, sessionsPath, c.body)
		if rec.Code != c.status {
			t.Fatalf("%s: %d %s", c.name, rec.Code, rec.Body)
		}
		if n != 1 {
			t.Errorf("%s: %d round trips, want 1", c.name, n)
		}
		if c.status == http.StatusOK {
			var s sessionResp
			(&apptest.Response{Status: rec.Code, Body: rec.Body.Bytes()}).JSON(t, &s)
			id = s.ID
		}
	}
	if rec, n := f.countedRequest(t, http.MethodGet, sessionsPath+"/"+id, ""); rec.Code != http.StatusOK || n != 1 {
		t.Errorf("GET: %d, %d round trips, want 200 and 1", rec.Code, n)
	}
	// What the one statement wrote.
	var tags, jobs int
	db := f.srv.App.DB.Read()
	if err := db.QueryRow(`SELECT count(*) FROM itp_journey_session_tags WHERE session_id = $1`, id).Scan(&tags); err != nil || tags != 2 {
		t.Errorf("%d scalar tags stored (%v), want 2", tags, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM jobs WHERE kind = $1 AND unique_key = $2`, itp.JobExpire, itp.JobExpire+":"+id).Scan(&jobs); err != nil || jobs != 1 {
		t.Errorf("%d expiry jobs (%v), want 1", jobs, err)
	}
}

// TestCreateSeesApplicationChanges: a change another process makes to the
// calling application applies to the next create at once on both engines,
// though PostgreSQL's create caches the application (the statement checks
// the row it cached).
func TestCreateSeesApplicationChanges(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		other := auth.NewApplications(f.srv.App.DB, f.srv.Clock) // another process's view
		p := f.newPartner(t, "Mutable", redirects...)
		if err := f.srv.App.ITP.SetDefaultJourney(ctx, p.app.ID, "sweeping"); err != nil {
			t.Fatal(err)
		}
		body := `{"redirectUrl":"` + redirects[0] + `"}`
		if r := f.create(t, p.token, body); r.Status != http.StatusOK { // caches the application
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}

		// A redirect URL removed elsewhere (no command does it yet: SQL).
		if err := f.srv.App.DB.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE applications SET redirect_urls = $1 WHERE id = $2`, `["`+redirects[1]+`"]`, p.app.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		wantError(t, f.create(t, p.token, body), http.StatusForbidden, "Forbidden", itp.MsgRedirectNotAllowed)

		// A redirect URL added elsewhere.
		const added = "https://partner.example/added"
		if _, err := other.AddRedirectURL(ctx, p.app.ID, added); err != nil {
			t.Fatal(err)
		}
		if r := f.create(t, p.token, `{"redirectUrl":"`+added+`"}`); r.Status != http.StatusOK {
			t.Errorf("added redirect URL: %d %s", r.Status, r.Body)
		}

		// Disabled elsewhere: the token still verifies for a moment (auth's
		// cache), the create refuses at once and stores nothing.
		if _, err := other.Disable(ctx, p.app.ID); err != nil {
			t.Fatal(err)
		}
		wantError(t, f.create(t, p.token, `{"externalId":"after-disable"}`), http.StatusForbidden, "Forbidden", itp.MsgApplicationNotFound)
		var n int
		if err := f.srv.App.DB.Read().QueryRowContext(ctx, `SELECT count(*) FROM itp_journey_sessions WHERE external_id = 'after-disable'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d sessions stored for a disabled application (%v)", n, err)
		}
	})
}

// TestCreateRacePostgres: 20 creates with one externalId at once on
// PostgreSQL, each one statement, make one session with its tags and one
// expiry job; the 19 others are 409 and leave nothing behind.
func TestCreateRacePostgres(t *testing.T) {
	t.Parallel()
	f := postgresFixture(t)
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i] = f.create(t, f.partner.token, `{"externalId":"race","tags":{"i":`+strconv.Itoa(i)+`}}`).Status
		})
	}
	wg.Wait()
	ok, conflict := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
			conflict++
		}
	}
	if ok != 1 || conflict != n-1 {
		t.Errorf("%d × 200, %d × 409 (%v)", ok, conflict, statuses)
	}
	db := f.srv.App.DB.Read()
	var sessions, tags, jobs int
	if err := db.QueryRow(`SELECT count(*) FROM itp_journey_sessions WHERE external_id = 'race'`).Scan(&sessions); err != nil || sessions != 1 {
		t.Errorf("%d sessions (%v)", sessions, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM itp_journey_session_tags WHERE key = 'i'`).Scan(&tags); err != nil || tags != 1 {
		t.Errorf("%d tag rows (%v), want the winner's one", tags, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM jobs WHERE kind = $1`, itp.JobExpire).Scan(&jobs); err != nil || jobs != 1 {
		t.Errorf("%d expiry jobs (%v)", jobs, err)
	}
}
