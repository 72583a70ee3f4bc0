package app_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/cards"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// newDatabase creates an empty PostgreSQL database named prefix_<random>
// beside the one at base and returns its URL; it is dropped when the test
// ends (after the servers using it, which are started later and so stopped
// first).
func newDatabase(t *testing.T, base, prefix string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := prefix + "_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// run runs a PostgreSQL client tool, failing the test with its output.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestRestoreFromPgDump is the backup and restore of docs/deployment.md:
// Ponte writes an application, a ticket, a data-sharing consent and a card
// (its number sealed with the data key) to a fresh PostgreSQL database;
// pg_dump saves it while Ponte runs; pg_restore loads it into another fresh
// database; Ponte started there with the same keys and public URL serves
// everything back: the token issued before the backup, the application's
// credentials, the ticket, the consent, and the card, whose number it must
// unseal to build a wallet payload. Started with other keys, it refuses.
func TestRestoreFromPgDump(t *testing.T) {
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("restore test: needs PostgreSQL (" + storetest.EnvVar + ")")
	}
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip("restore test: " + tool + " is not on PATH")
		}
	}
	t.Parallel()
	ctx := t.Context()
	src := newDatabase(t, base, "ponte_restore_src")
	dst := newDatabase(t, base, "ponte_restore_dst")
	dir := t.TempDir() // the key set: signing key, data key, sandbox keys
	clk := clock.NewFake(apptest.Epoch)

	s := apptest.Start(t, apptest.Options{DatabaseURL: src, DataDir: dir, Clock: clk})
	fintech, secret, err := s.App.Apps.Create(ctx, auth.NewApplication{Name: "Restored", CompanyKey: "RESTORED",
		Scopes: []string{"openfinance.ticket.write", "openfinance.ticket.read"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := s.TokenFor(t, fintech.ClientID, secret, "")
	r := s.Do(t, "POST", "/openfinance/consent-flow/ticket", map[string]string{"Authorization": "Bearer " + tok},
		`{"requestUri":"urn:ietf:params:oauth:request_uri:restore","clientId":"c","documentNumber":"47742663023"}`)
	if r.Status != 201 {
		t.Fatalf("ticket: %d %s", r.Status, r.Body)
	}
	var ticket struct {
		TicketID string `json:"ticketId"`
	}
	r.JSON(t, &ticket)
	ticketBefore := s.Do(t, "GET", "/openfinance/consent-flow/ticket/"+ticket.TicketID, map[string]string{"Authorization": "Bearer " + tok}, "")
	if ticketBefore.Status != 200 {
		t.Fatalf("ticket read: %d %s", ticketBefore.Status, ticketBefore.Body)
	}
	consentTok := s.Token(t, dataconsents.Scope)
	consentHeaders := func() map[string]string {
		return map[string]string{"Authorization": "Bearer " + consentTok, "x-fapi-interaction-id": uuid.NewString()}
	}
	r = s.Do(t, "POST", dataconsents.ConsentsPath, consentHeaders(), dataConsentBody)
	if r.Status != 201 {
		t.Fatalf("data consent: %d %s", r.Status, r.Body)
	}
	var consent struct {
		Data struct {
			ConsentID string `json:"consentId"`
			Status    string `json:"status"`
		} `json:"data"`
	}
	r.JSON(t, &consent)
	const pan = "5555555555554444"
	if _, err := s.App.Cards.Create(ctx, s.App.Demo.ID, cards.NewCard{Proxy: "restored-card", PAN: pan, ExpiryMonth: 12,
		ExpiryYear: apptest.Epoch.Year() + 3, HolderName: "Maria da Silva", PhoneNumber: "11987654321", Brand: cards.BrandMastercard,
		Status: cards.StatusActive, Address: cards.Address{ZipCode: "01310-100", Address: "Avenida Paulista", Number: "1000",
			City: "São Paulo", State: "SP", Country: "BRA"}}); err != nil {
		t.Fatal(err)
	}
	cardTok := s.Token(t, "")
	wallet := func(s *apptest.Server) *apptest.Response {
		return s.Do(t, "POST", "/cards-pci/restored-card/wallet/GooglePay/brand/Mastercard",
			map[string]string{"Authorization": "Bearer " + cardTok, "api-version": "1.0"}, "")
	}
	if r := wallet(s); r.Status != 200 {
		t.Fatalf("wallet before the backup: %d %s", r.Status, r.Body)
	}

	// The backup, taken while Ponte runs, and the restore into a new database.
	dump := filepath.Join(t.TempDir(), "ponte.dump")
	run(t, "pg_dump", "--format=custom", "--file="+dump, "--dbname="+src)
	run(t, "pg_restore", "--no-owner", "--exit-on-error", "--dbname="+dst, dump)
	addr := s.Options.Addr
	s.Stop()

	// Another key set cannot serve the restored database.
	other := config.Config{Addr: "127.0.0.1:0", DatabaseURL: dst, DataDir: t.TempDir(), Mode: config.Sandbox,
		PublicURL: "http://" + addr, TokenTTL: 300 * time.Second, ShutdownTimeout: 5 * time.Second, SweepInterval: time.Hour}
	if err := other.Finish(); err != nil {
		t.Fatal(err)
	}
	if a, err := app.New(ctx, other, app.NewLogger(io.Discard, "json"), app.WithClock(clk)); err == nil {
		a.Close()
		t.Error("Ponte started on the restored database with another key set")
	} else if first, _, _ := strings.Cut(err.Error(), "\n"); !strings.Contains(first, "signing key") {
		t.Errorf("with another key set: %v; want the refusal to name the signing key first", first)
	}

	// The same keys and public URL: everything reads back through the API.
	restored := apptest.Start(t, apptest.Options{DatabaseURL: dst, DataDir: dir, Clock: clk, Addr: addr})
	r = restored.Do(t, "GET", "/openfinance/consent-flow/ticket/"+ticket.TicketID, map[string]string{"Authorization": "Bearer " + tok}, "")
	if r.Status != 200 || string(r.Body) != string(ticketBefore.Body) {
		t.Errorf("ticket after the restore, with the token issued before: %d %s, want 200 %s", r.Status, r.Body, ticketBefore.Body)
	}
	fresh := restored.TokenFor(t, fintech.ClientID, secret, "") // the secret's hash came back
	if r := restored.Do(t, "GET", "/openfinance/consent-flow/ticket/"+ticket.TicketID, map[string]string{"Authorization": "Bearer " + fresh}, ""); r.Status != 200 {
		t.Errorf("ticket with a token issued after the restore: %d %s", r.Status, r.Body)
	}
	r = restored.Do(t, "GET", dataconsents.ConsentsPath+"/"+consent.Data.ConsentID, consentHeaders(), "")
	var got struct {
		Data struct {
			ConsentID string `json:"consentId"`
			Status    string `json:"status"`
		} `json:"data"`
	}
	if r.Status == 200 {
		r.JSON(t, &got)
	}
	if r.Status != 200 || got.Data != consent.Data {
		t.Errorf("consent after the restore: %d %s, want %+v", r.Status, r.Body, consent.Data)
	}
	r = wallet(restored)
	var payload struct {
		LastFourDigits string `json:"lastFourDigits"`
	}
	if r.Status == 200 {
		if err := json.Unmarshal(r.Body, &payload); err != nil {
			t.Fatal(err)
		}
	}
	if r.Status != 200 || payload.LastFourDigits != pan[12:] {
		t.Errorf("wallet after the restore (the sealed number must open): %d %s", r.Status, r.Body)
	}
}
