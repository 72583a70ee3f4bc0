package cards_test

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestPANNeverInClear runs the whole card flow — registration, both wallets,
// network notifications and the error paths that receive a card number — and
// then looks for the card numbers in everything Ponte wrote: logs, response
// bodies, metrics, every database row and (SQLite) the raw database files.
func TestPANNeverInClear(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			opts := apptest.Options{} // SQLite in <dataDir>/ponte.db, so the files can be read
			if e.Name != "sqlite" {
				opts.DatabaseURL = e.URL(t)
			}
			s := apptest.Start(t, opts)
			pan, unknownPAN := freshPAN(t), freshPAN(t)
			// Numbers that must never appear in clear: the new card, the sandbox
			// cards, and one the network sends that Ponte does not know.
			secrets := []string{pan, sandboxPAN, "5204247750001505", unknownPAN}

			var bodies []*apptest.Response
			do := func(method, path string, h map[string]string, body string, status int) *apptest.Response {
				t.Helper()
				r := s.Do(t, method, path, h, body)
				if r.Status != status {
					t.Fatalf("%s %s: %d, want %d: %s", method, path, r.Status, status, r.Body)
				}
				bodies = append(bodies, r)
				return r
			}
			tok := s.Token(t, "")
			do("POST", "/admin/v1/cards", authz(tok), cardBody("scan-card", pan, func(m map[string]any) { m["status"] = "ACTIVE" }), 201)
			do("POST", "/admin/v1/cards", authz(tok), cardBody("scan-card-2", pan, nil), 409)                                                      // duplicate number
			do("POST", "/admin/v1/cards", authz(tok), cardBody("scan-card-3", pan, func(m map[string]any) { m["phoneNumber"] = "x" }), 400)        // invalid, with a valid number
			do("POST", "/admin/v1/cards", authz(tok), cardBody("scan-card-4", pan[:15]+"x", func(m map[string]any) { m["expiryMonth"] = 0 }), 400) // invalid number
			do("GET", "/admin/v1/cards", authz(tok), "", 200)
			do("GET", "/admin/v1/cards/scan-card", authz(tok), "", 200)
			do("PATCH", "/admin/v1/cards/scan-card", authz(tok), `{"status":"ACTIVE"}`, 200)

			d := newDevice(t, s, s.Clock.Now())
			apple := do("POST", tokenPath("scan-card", "ApplePay"), v1(tok), appleBody(randomHex(t, 16), randomHex(t, 64), d.certPEM), 200)
			google := do("POST", tokenPath("scan-card", "GooglePay"), v1(tok), "", 200)
			do("POST", tokenPath(activeProxy, "ApplePay"), v1(tok), appleBody(randomHex(t, 16), randomHex(t, 64), d.certPEM), 200)
			do("POST", tokenPath(activeProxy, "GooglePay"), v1(tok), "", 200)
			do("POST", tokenPath("scan-card", "ApplePay"), v1(tok), appleBody("zz", "", "garbage"), 400)
			do("POST", tokenPath(creatingProxy, "GooglePay"), v1(tok), "", 409)

			// The payloads carry the number, but only encrypted: the clear one is
			// recoverable with the device key and the payload-encryption key only.
			if got := decryptApple(t, d.key, decodeApplePayload(t, decodeTokenResponse(t, apple).Data)); got["primaryAccountNumber"] != pan {
				t.Error("Apple payload does not carry the card")
			}
			if _, plain := decryptGoogle(t, s, decodeTokenResponse(t, google).Data); plain.CardAccountData.AccountNumber != pan {
				t.Error("Google payload does not carry the card")
			}

			const ref = "DAPLMC0000000000000000000000000000000000SCAN"
			do("POST", notificationsPath, nil, notification("scan-1", "TOKEN_CREATED", "ApplePay", ref, pan), 401) // unsigned
			for _, n := range []struct {
				body   string
				status int
			}{
				{notification("scan-1", "TOKEN_CREATED", "ApplePay", ref, pan), 204},
				{notification("scan-2", "TOKEN_ACTIVATED", "ApplePay", ref, pan), 204},
				{notification("scan-2", "TOKEN_ACTIVATED", "ApplePay", ref, pan), 204},
				{notification("scan-2", "TOKEN_DELETED", "ApplePay", ref, pan), 409},
				{notification("scan-3", "TOKEN_CREATED", "GooglePay", "DNITHE-SCAN", unknownPAN), 404},
				{notification("scan-4", "TOKEN_BOGUS", "GooglePay", "DNITHE-SCAN", unknownPAN), 400},
				{notification("scan-5", "TOKEN_CREATED", "GooglePay", "DNITHE-SCAN", unknownPAN[:15]+"x"), 400},
			} {
				bodies = append(bodies, notifyExpect(t, s, n.body, n.status))
			}
			do("GET", "/cards-pci/scan-card/wallet", authz(tok), "", 200)
			metrics := do("GET", "/metrics", nil, "", 200)
			if !strings.Contains(string(metrics.Body), "ponte_http_requests_total") {
				t.Fatal("metrics not served")
			}

			// Responses: no number in clear, and none inside the outer layer of a
			// payload either (base64 JSON, activation data), only ciphertext.
			for _, r := range bodies {
				texts := []string{string(r.Body)}
				var tr tokenResponse
				if r.Status == 200 && bytes.Contains(r.Body, []byte(`"data"`)) && json.Unmarshal(r.Body, &tr) == nil && tr.Data != "" {
					outer, err := base64.StdEncoding.DecodeString(tr.Data)
					if err != nil {
						t.Fatalf("data is not base64: %v", err)
					}
					texts = append(texts, string(outer))
					if strings.Contains(string(outer), "ActivationData") {
						tav, _ := base64.StdEncoding.DecodeString(decodeApplePayload(t, tr.Data).ActivationData)
						texts = append(texts, string(tav))
					} else {
						o, _ := decryptGoogle(t, s, tr.Data)
						tav, _ := base64.StdEncoding.DecodeString(o.TokenizationAuthenticationValue)
						texts = append(texts, string(tav))
					}
				}
				for _, text := range texts {
					assertNoPAN(t, "a response body", text, secrets)
				}
			}

			// Logs.
			logs := s.Logs.String()
			if !strings.Contains(logs, "/cards-pci/") || !strings.Contains(logs, `"status":409`) {
				t.Fatalf("the logs did not capture the card requests:\n%.2000s", logs)
			}
			assertNoPAN(t, "the logs", logs, secrets)

			// Every row of every table, as text.
			assertNoPAN(t, "the database rows", dumpTables(t, s.App.DB), secrets)

			// The raw SQLite files, before and after the last connection closes
			// (which checkpoints the write-ahead log into the main file).
			if e.Name == "sqlite" {
				files := func() string {
					var all []byte
					for _, name := range []string{"ponte.db", "ponte.db-wal"} {
						b, err := os.ReadFile(filepath.Join(s.Options.DataDir, name))
						if err != nil && !os.IsNotExist(err) {
							t.Fatal(err)
						}
						all = append(all, b...)
					}
					return string(all)
				}
				live := files()
				if !strings.Contains(live, "scan-card") {
					t.Fatal("the database files do not hold the card: wrong files?")
				}
				assertNoPAN(t, "the SQLite files", live, secrets)
				s.Stop()
				assertNoPAN(t, "the SQLite files after shutdown", files(), secrets)
			}
		})
	}
}

// notifyExpect posts a signed notification and checks its status.
func notifyExpect(t *testing.T, s *apptest.Server, body string, status int) *apptest.Response {
	t.Helper()
	r := notify(t, s, body)
	if r.Status != status {
		t.Fatalf("notification %s: %d, want %d: %s", body, r.Status, status, r.Body)
	}
	return r
}

// assertNoPAN fails if text holds any of the numbers, or the first twelve
// digits of one (everything but the last four, which may be shown).
func assertNoPAN(t *testing.T, where, text string, pans []string) {
	t.Helper()
	for _, p := range pans {
		if strings.Contains(text, p) || strings.Contains(text, p[:12]) {
			i := strings.Index(text, p[:12])
			lo, hi := max(0, i-80), min(len(text), i+80)
			t.Errorf("%s hold card number ...%s in clear near: %q", where, p[12:], text[lo:hi])
		}
	}
}

// dumpTables returns every row of every table of the database as text.
func dumpTables(t *testing.T, db *store.DB) string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if db.Engine() == store.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	tables := queryStrings(t, db.Read(), q)
	if len(tables) < 5 {
		t.Fatalf("found only tables %v", tables)
	}
	var out strings.Builder
	rowsSeen := 0
	for _, table := range tables {
		rows, err := db.Read().Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					out.Write(b)
				} else {
					fmt.Fprint(&out, v)
				}
				out.WriteByte('|')
			}
			out.WriteByte('\n')
			rowsSeen++
		}
		rows.Close()
	}
	if rowsSeen == 0 || !strings.Contains(out.String(), "scan-card") {
		t.Fatal("the table dump does not hold the card: wrong database?")
	}
	return out.String()
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}
