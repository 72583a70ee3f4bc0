package app

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/vault"
)

// TestStartupSeedingFollowsNewsContext: the sandbox's start-up seeding (the
// demo customer's accounts and transactions, the demo cards) runs on the
// context New receives, so a start that is given up stops seeding too.
func TestStartupSeedingFollowsNewsContext(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		clk := clock.NewFake(time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC))
		b := base{cfg: config.Config{Mode: config.Sandbox, DataDir: dir, PublicURL: "http://127.0.0.1:1"},
			logger: slog.New(slog.DiscardHandler), clock: clk, db: db}
		apps := auth.NewApplications(db, clk)
		demo, _, err := apps.EnsureDemo(ctx, filepath.Join(dir, "sandbox-demo-client.json"))
		if err != nil {
			t.Fatal(err)
		}
		custs, err := newCustomers(ctx, b, demo)
		if err != nil {
			t.Fatal(err)
		}
		vlt, err := vault.LoadOrCreate(filepath.Join(dir, "data.key"))
		if err != nil {
			t.Fatal(err)
		}
		given, giveUp := context.WithCancel(ctx)
		giveUp()
		grants := consentGrants{dataconsents.NewService(db, clk, b.logger, b.cfg.PublicURL)}
		if _, err := newDataAPI(given, b, grants, custs, demo); err == nil {
			t.Error("the data APIs' sandbox seed ran on a cancelled start")
		}
		if _, err := wireCards(given, b, http.NewServeMux(), vlt, nil, nil, demo); err == nil {
			t.Error("the sandbox cards were seeded on a cancelled start")
		}
	})
}

// TestNewClosesTheDatabaseWhenAStepFails: when a step late in New fails
// (here the PCM client certificate cannot be read), New returns the error and
// the database it opened is closed: no connection goroutine outlives it.
func TestNewClosesTheDatabaseWhenAStepFails(t *testing.T) {
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := config.Config{Addr: "127.0.0.1:0", DatabaseURL: e.URL(t), DataDir: dir, Mode: config.Sandbox,
				PublicURL: "http://127.0.0.1:1", SigningKeyFile: filepath.Join(dir, "signing-key.pem"), TokenTTL: time.Minute,
				LogFormat: "json", ShutdownTimeout: time.Second, SweepInterval: time.Hour}
			if err := cfg.Finish(); err != nil {
				t.Fatal(err)
			}
			cfg.PCMCertFile, cfg.PCMKeyFile = filepath.Join(dir, "missing.pem"), filepath.Join(dir, "missing-key.pem")
			before := goleak.IgnoreCurrent()
			a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				a.Close()
				t.Fatal("New succeeded without the PCM client certificate")
			}
			if !strings.Contains(err.Error(), "--pcm-cert") {
				t.Fatalf("New failed with %v, want the PCM certificate's error", err)
			}
			if err := goleak.Find(before); err != nil {
				t.Errorf("New left goroutines behind after failing (the database not closed?): %v", err)
			}
		})
	}
}
