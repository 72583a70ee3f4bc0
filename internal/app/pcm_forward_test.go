package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestSandboxForwardsToItsOwnPCM: a step reported through the API gets its
// outbox row with it; the sandbox forwarder delivers it to the built-in
// receiver, which lists it at /sandbox/pcm/reports; a restart sends nothing
// again.
func TestSandboxForwardsToItsOwnPCM(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			ctx := context.Background()
			a := s.App
			if a.PCMReceiver == nil || !a.PCMForwarder.Enabled() {
				t.Fatal("the sandbox has no PCM receiver to forward to")
			}
			rec := a.PCM.Service.Recorder
			if err := a.DB.Write(ctx, func(tx *sql.Tx) error {
				for _, ev := range []pcm.Event{
					{ConsentID: "urn:ponte:s1", Step: pcm.StepAuthenticated, ApplicationID: a.Demo.ID},
					{ConsentID: "urn:ponte:s1", Step: pcm.StepRedirectToClient, Type: pcm.TypeAuthorised, URI: "https://tpp.example/cb?code=x", ApplicationID: a.Demo.ID},
				} {
					ev.Device.Platform, ev.Device.OS, ev.Device.OSVersion = "BROWSER", "LINUX", "20.04"
					if _, _, err := rec.Record(ctx, tx, ev); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			st, err := pcm.Status(ctx, a.DB.Read(), s.Clock.Now())
			if err != nil || st.Pending != 2 {
				t.Fatalf("outbox %+v, %v", st, err)
			}
			if _, err := a.PCMForwarder.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			// A sandbox-only inspection route, outside api/openapi.yaml's contract.
			resp, err := http.Get(s.URL + "/sandbox/pcm/reports")
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Counts  map[string]int
				Reports []pcm.AcceptedReport
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if out.Counts["server/authenticated"] != 1 || out.Counts["server/redirect-to-client"] != 1 || len(out.Reports) != 2 {
				t.Fatalf("receiver got %+v", out)
			}
			var item map[string]any
			_ = json.Unmarshal(out.Reports[1].Item, &item)
			if item["uri_callback"] != "https://tpp.example/cb" || item["serverOrgId"] == "" {
				t.Errorf("item %v", item)
			}
			s = s.Restart(t)
			s.Clock.Advance(time.Hour)
			if _, err := s.App.PCMForwarder.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			if st, _ := pcm.Status(ctx, s.App.DB.Read(), s.Clock.Now()); st.Accepted != 2 || st.Pending != 0 {
				t.Fatalf("after restart %+v", st)
			}
		})
	}
}
