package itp

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

type renderApps struct{ app *Application }

func (a renderApps) Application(context.Context, string) (*Application, error) { return a.app, nil }

// TestRenderedJSONIsMarshal: the create and GET bodies written by hand are
// byte for byte httpx.Marshal(SessionJSON) of the same session, also for
// strings and tags that encoding/json escapes or keeps as written.
func TestRenderedJSONIsMarshal(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, store.Options{URL: e.URL(t), DataDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			clk := clock.NewFake(time.Date(2024, 10, 15, 18, 55, 15, 123_456_789, time.UTC))
			app := &Application{ID: "app-1", ClientID: "client-<1>&", RedirectURLs: []string{"https://p.example/cb?a=1&b=<2>", "https://p.example/ção"}}
			svc := NewService(db, clk, nil, "https://ponte.example", filepath.Join(t.TempDir(), "keys"), renderApps{app}, nil)
			j, err := svc.CreateJourney(ctx, Journey{Alias: "j", Name: "J", Settings: []Setting{{Key: "JOURNEY_RULES", Value: json.RawMessage(`[ "a<b", "c&d" ]`)}}})
			if err != nil {
				t.Fatal(err)
			}
			bodies := []CreateRequest{
				{JourneyID: j.ID},
				{JourneyID: "j", RedirectURL: "https://p.example/cb?a=1&b=<2>", ExternalID: "ext-\"1\"-ç",
					Settings: []Setting{{Key: "X", Value: json.RawMessage(" { \"z\" : 1.50, \"a\": \"\\u00e7<\" } ")}, {Key: "JOURNEY_SESSION_TTL", Value: json.RawMessage("120")}}},
				{JourneyID: "j", RedirectURL: "https://p.example/ção", ExternalID: "e2"},
			}
			for i, req := range bodies {
				if i == 1 {
					req.Tags, _ = decodeTags([]byte(`{"b":1e5,"a":"x\u2028<y>","n":{"z":[1,2.0,true,null],"a":"é"},"f":false}`))
				}
				created, err := svc.CreateSession(ctx, app.ClientID, req)
				if err != nil {
					t.Fatalf("body %d: %v", i, err)
				}
				want := sessionResponse(created.Session)
				want.JourneySessionURL = created.URL
				wantJSON, _ := httpx.Marshal(want)
				if got := created.createdJSON(); !bytes.Equal(got, wantJSON) {
					t.Errorf("body %d: create response\n got %s\nwant %s", i, got, wantJSON)
				}
				clk.Advance(time.Second)
				for _, step := range []string{"stored", "expired"} {
					sess, err := svc.Session(ctx, app.ID, created.Session.ID)
					if err != nil {
						t.Fatal(err)
					}
					wantJSON, _ = httpx.Marshal(sessionResponse(sess))
					got, err := svc.sessionJSON(ctx, app.ID, created.Session.ID)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, wantJSON) {
						t.Errorf("body %d, %s: GET response\n got %s\nwant %s", i, step, got, wantJSON)
					}
					clk.Advance(MaxSessionTTL)
				}
				if _, err := svc.sessionJSON(ctx, "app-2", created.Session.ID); err != ErrNotFound {
					t.Errorf("another application's session: %v", err)
				}
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain-ascii_123", "a\"b\\c", "<&>", "\x00\x1f\x7f", "ção", "\u2028\u2029", "\xff\xfe"} {
		want, _ := httpx.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s want %s", s, got, want)
		}
	}
}
