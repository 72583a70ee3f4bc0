package pcm_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// tableOwners owns consents by the rows of a test table, answering in Go
// (ConsentOwner, the SQLite path) and in SQL (ConsentOwnerSQL, folded into
// the report's one statement on PostgreSQL) alike.
type tableOwners struct{ db *store.DB }

const ownerSQL = `SELECT brand_id FROM test_owners WHERE application_id = $1 AND consent_id = $2`

func (o tableOwners) ConsentOwnerSQL() string { return ownerSQL }

func (o tableOwners) ConsentOwner(ctx context.Context, applicationID, consentID string) (string, bool, error) {
	var brand string
	err := o.db.Read().QueryRowContext(ctx, ownerSQL, applicationID, consentID).Scan(&brand)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return brand, err == nil, err
}

// reportService is the report API's service as app wires it (a recorder
// writing outbox rows, owners answering in SQL) on db, where application
// "A" owns the initiator consents c1…c9 at brand "B1" and the holder
// consent "h1".
func reportService(t *testing.T, db *store.DB) *pcm.Service {
	t.Helper()
	err := db.Write(t.Context(), func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(t.Context(), `CREATE TABLE test_owners (application_id TEXT, consent_id TEXT, brand_id TEXT)`); err != nil {
			return err
		}
		for i := 1; i <= 9; i++ {
			if _, err := tx.ExecContext(t.Context(), `INSERT INTO test_owners VALUES ('A', $1, 'B1')`, fmt.Sprintf("c%d", i)); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(t.Context(), `INSERT INTO test_owners VALUES ('A', 'h1', '')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	c := clock.NewFake(day0)
	return &pcm.Service{DB: db, Clock: c, Recorder: &pcm.Recorder{Clock: c, DB: db, Outbox: true}, Owners: tableOwners{db}}
}

func report(step string, mod func(d *pcm.ReportData)) pcm.ReportRequest {
	d := &pcm.ReportData{Platform: str("APP"), OS: str("IOS"), OSVersion: str("17.1")}
	switch step {
	case pcm.StepRedirectToServer:
		d.URIAuthorizationEndpoint = str("https://auth.banco.example/authorize")
	case pcm.StepRedirectTarget:
		d.Type = str(pcm.TypeAwaitingHandoff)
	}
	if mod != nil {
		mod(d)
	}
	return pcm.ReportRequest{Step: str(step), Data: d}
}

func counts(t *testing.T, db *store.DB, consentID string) (events, outbox int) {
	t.Helper()
	r := db.Read()
	if err := r.QueryRow(`SELECT count(*) FROM pcm_events WHERE consent_id = $1`, consentID).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if err := r.QueryRow(`SELECT count(*) FROM pcm_outbox o JOIN pcm_events e ON e.id = o.event_id WHERE e.consent_id = $1`, consentID).Scan(&outbox); err != nil {
		t.Fatal(err)
	}
	return events, outbox
}

// TestReportBothEngines: a report stores its event with the owner's brand
// (initiator steps) and its outbox row; a repeated report returns the first
// event unchanged and writes nothing; another application's or an unknown
// consent is ErrConsentNotFound and writes nothing. The same on SQLite (a
// transaction) and PostgreSQL (one statement).
func TestReportBothEngines(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		svc := reportService(t, db)

		e, created, _, err := svc.Report(ctx, "A", "c1", report(pcm.StepRedirectToServer, nil))
		if err != nil || !created {
			t.Fatalf("first report: created %v, %v", created, err)
		}
		if e.BrandID != "B1" || e.Side != pcm.SideInitiator || e.Source != pcm.SourceAPI || e.ApplicationID != "A" || !e.OccurredAt.Equal(day0) {
			t.Errorf("event %+v", e)
		}
		again, created, _, err := svc.Report(ctx, "A", "c1", report(pcm.StepRedirectToServer, func(d *pcm.ReportData) { d.OSVersion = str("18.0") }))
		if err != nil || created || again.ID != e.ID || again.Device.OSVersion != "17.1" || again.BrandID != "B1" {
			t.Errorf("repeated report: created %v, %+v, %v; want the first event %+v", created, again, err, e)
		}
		if ev, ob := counts(t, db, "c1"); ev != 1 || ob != 1 {
			t.Errorf("c1: %d events, %d outbox rows; want 1 and 1", ev, ob)
		}
		var item string
		if err := db.Read().QueryRow(`SELECT item FROM pcm_outbox WHERE event_id = $1`, e.ID).Scan(&item); err != nil {
			t.Fatal(err)
		}
		if want := `{"consentId":"c1","timestamp":"2024-10-15T12:00:00.000Z","platform":"APP","os":"IOS","osVersion":"17.1","uriAuthorizationEndpoint":"https://auth.banco.example/authorize"}`; item != want {
			t.Errorf("outbox item %s\nwant %s", item, want)
		}

		// A holder step keeps no brand.
		h, created, _, err := svc.Report(ctx, "A", "h1", report(pcm.StepRedirectTarget, nil))
		if err != nil || !created || h.BrandID != "" || h.Side != pcm.SideHolder || h.Type != pcm.TypeAwaitingHandoff {
			t.Errorf("holder step: created %v, %+v, %v", created, h, err)
		}

		for _, c := range []struct{ app, consent string }{{"Other", "c2"}, {"A", "unknown"}} {
			if _, _, _, err := svc.Report(ctx, c.app, c.consent, report(pcm.StepRedirectToServer, nil)); !errors.Is(err, pcm.ErrConsentNotFound) {
				t.Errorf("%s reporting %s: %v, want ErrConsentNotFound", c.app, c.consent, err)
			}
			if ev, ob := counts(t, db, c.consent); ev != 0 || ob != 0 {
				t.Errorf("%s reporting %s stored %d events, %d outbox rows", c.app, c.consent, ev, ob)
			}
		}
		// An invalid report stores nothing either.
		if _, _, ps, err := svc.Report(ctx, "A", "c3", report(pcm.StepRedirectToServer, func(d *pcm.ReportData) { d.Platform = str("TV") })); !errors.Is(err, pcm.ErrInvalid) || len(ps) != 1 {
			t.Errorf("invalid report: %v %v", ps, err)
		}
		if ev, _ := counts(t, db, "c3"); ev != 0 {
			t.Errorf("invalid report stored %d events", ev)
		}
	})
}

// TestReportRoundTrips holds a report on PostgreSQL to one round trip: the
// ownership check, the event and its outbox row are one statement, and a
// repeated report reads the stored event in that same statement.
func TestReportRoundTrips(t *testing.T) {
	t.Parallel()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	db := storetest.Open(t, storetest.FreshSchema(t, base))
	svc := reportService(t, db)
	// Warm up: the statement is prepared on each connection's first use.
	for _, id := range []string{"c1", "c2", "c3"} {
		if _, _, _, err := svc.Report(t.Context(), "A", id, report(pcm.StepRedirectToServer, nil)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name, app, consent, step string
		created                  bool
		err                      error
	}{
		{"fresh", "A", "c4", pcm.StepRedirectToServer, true, nil},
		{"fresh, another step", "A", "c4", pcm.StepRedirectTargetWithoutErrors, true, nil},
		{"repeated", "A", "c4", pcm.StepRedirectToServer, false, nil},
		{"not the caller's", "Other", "c5", pcm.StepRedirectToServer, false, pcm.ErrConsentNotFound},
	} {
		ctx, n := store.CountRoundTrips(t.Context())
		_, created, _, err := svc.Report(ctx, c.app, c.consent, report(c.step, nil))
		if created != c.created || !errors.Is(err, c.err) {
			t.Errorf("%s: created %v, %v; want %v, %v", c.name, created, err, c.created, c.err)
		}
		if got := n.N(); got != 1 {
			t.Errorf("%s: %d round trips, want 1", c.name, got)
		}
	}
}

// TestReportRacePostgres: 20 reports of one step at once make one event
// and one outbox row, and every caller gets that event.
func TestReportRacePostgres(t *testing.T) {
	t.Parallel()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	db := storetest.Open(t, storetest.FreshSchema(t, base))
	svc := reportService(t, db)
	const n = 20
	ids := make([]string, n)
	created := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var e *pcm.Event
			e, created[i], _, errs[i] = svc.Report(t.Context(), "A", "c1", report(pcm.StepAuthenticated, nil))
			if e != nil {
				ids[i] = e.ID
			}
		})
	}
	wg.Wait()
	first := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("report %d: %v", i, errs[i])
		}
		if created[i] {
			first++
		}
		if ids[i] != ids[0] {
			t.Errorf("report %d got event %s, report 0 got %s", i, ids[i], ids[0])
		}
	}
	if first != 1 {
		t.Errorf("%d reports created the event, want 1", first)
	}
	if ev, ob := counts(t, db, "c1"); ev != 1 || ob != 1 {
		t.Errorf("%d events, %d outbox rows; want 1 and 1", ev, ob)
	}
}
