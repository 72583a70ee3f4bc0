package itp

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestSessionURLNotHTMLEscaped: journeySessionUrl and redirectUrl come back
// with "&" as written, in the create and the GET answer, so a URL copied
// from a terminal opens the journey (with "\u0026" the page said "Link
// inválido").
func TestSessionURLNotHTMLEscaped(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, store.Options{URL: e.URL(t), DataDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			clk := clock.NewFake(time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC))
			redirect := "https://p.example/cb?a=1&b=2"
			app := &Application{ID: "app-1", ClientID: "client-1", RedirectURLs: []string{redirect}}
			svc := NewService(db, clk, nil, "https://ponte.example", filepath.Join(t.TempDir(), "keys"), renderApps{app}, nil)
			j, err := svc.CreateJourney(ctx, Journey{Alias: "j", Name: "J"})
			if err != nil {
				t.Fatal(err)
			}
			created, err := svc.CreateSession(ctx, app.ClientID, CreateRequest{JourneyID: j.ID, RedirectURL: redirect,
				Tags: map[string]any{"k": "x&y<z>"}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := svc.sessionJSON(ctx, app.ID, created.Session.ID)
			if err != nil {
				t.Fatal(err)
			}
			for name, body := range map[string][]byte{"create": created.createdJSON(), "get": got} {
				if bytes.Contains(body, []byte(`\u00`)) {
					t.Errorf("%s answer has HTML escapes: %s", name, body)
				}
				if !bytes.Contains(body, []byte(`"redirectUrl":"`+redirect+`"`)) || !bytes.Contains(body, []byte(`"k":"x&y<z>"`)) {
					t.Errorf("%s answer does not carry the URL and tag as written: %s", name, body)
				}
			}
			if !bytes.Contains(created.createdJSON(), []byte("&id="+created.Session.ID+"&token=")) {
				t.Errorf("journeySessionUrl escaped: %s", created.createdJSON())
			}
		})
	}
}
