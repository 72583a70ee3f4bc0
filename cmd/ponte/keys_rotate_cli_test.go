package main

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/cards"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/keyset"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/vault"
)

// recordedKeys is the database's fingerprints of key id: current, retired.
func recordedKeys(t *testing.T, dbURL, dataDir, id string) (current string, retired []string) {
	t.Helper()
	db, err := store.Open(t.Context(), store.Options{URL: dbURL, DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	records, err := keyset.Recorded(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		if r.ID != id {
			continue
		}
		if r.Current {
			current = r.Fingerprint
		} else {
			retired = append(retired, r.Fingerprint)
		}
	}
	return current, retired
}

func fingerprint(t *testing.T, id, path string) string {
	t.Helper()
	k, _ := keyset.Lookup(id)
	e, err := keyset.FingerprintFile(k, path)
	if err != nil {
		t.Fatal(err)
	}
	return e.Fingerprint
}

// TestCLIKeysRotate: each rotation command makes a new key current in the
// key set, retires the old one beside it and records both fingerprints in
// the database; a key set whose key is not the database's current one is
// refused; without a database nothing is recorded; --record-only records.
func TestCLIKeysRotate(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			keys, dataDir, dbURL := t.TempDir(), t.TempDir(), e.URL(t)
			signing, data := filepath.Join(keys, "signing-key.pem"), filepath.Join(keys, "data.key")
			oldSig, err := auth.LoadOrCreateKey(signing)
			if err != nil {
				t.Fatal(err)
			}
			oldData, err := vault.LoadOrCreate(data)
			if err != nil {
				t.Fatal(err)
			}
			// What a first start records.
			db, err := store.Open(t.Context(), store.Options{URL: dbURL, DataDir: dataDir})
			if err != nil {
				t.Fatal(err)
			}
			var entries []keyset.Entry
			for id, path := range map[string]string{keyset.SigningKey: signing, keyset.DataKeyID: data} {
				k, _ := keyset.Lookup(id)
				en, err := keyset.FingerprintFile(k, path)
				if err != nil {
					t.Fatal(err)
				}
				entries = append(entries, en)
			}
			if err := keyset.Verify(t.Context(), db, time.Now(), entries); err != nil {
				t.Fatal(err)
			}
			db.Close()
			oldSigFP, oldDataFP := fingerprint(t, keyset.SigningKey, signing), fingerprint(t, keyset.DataKeyID, data)
			flags := []string{"--dir", keys, "--data-dir", dataDir, "--database-url", dbURL}

			out := mustCLI(t, 0, append([]string{"keys", "rotate-signing-key"}, flags...)...)
			now, err := auth.ReadKey(signing)
			if err != nil {
				t.Fatal(err)
			}
			if now.KeyID == oldSig.KeyID || len(now.Retired) != 1 || now.Retired[0].KeyID != oldSig.KeyID {
				t.Fatalf("signing key after rotation: %s, retired %v", now.KeyID, now.Retired)
			}
			for _, want := range []string{now.KeyID, oldSig.KeyID, "recorded in the database", "Restart the instances one at a time"} {
				if !strings.Contains(out.stdout, want) {
					t.Errorf("rotate-signing-key output lacks %q:\n%s", want, out.stdout)
				}
			}
			if cur, ret := recordedKeys(t, dbURL, dataDir, keyset.SigningKey); cur != fingerprint(t, keyset.SigningKey, signing) || len(ret) != 1 || ret[0] != oldSigFP {
				t.Errorf("recorded signing key: current %s retired %v; want the new one current and %s retired", cur, ret, oldSigFP)
			}

			out = mustCLI(t, 0, append([]string{"keys", "rotate-data-key"}, flags...)...)
			v, err := vault.Read(data)
			if err != nil {
				t.Fatal(err)
			}
			if v.KeyID() == oldData.KeyID() || len(v.RetiredKeyIDs()) != 1 || v.RetiredKeyIDs()[0] != oldData.KeyID() {
				t.Fatalf("data key after rotation: %s retired %v", v.KeyID(), v.RetiredKeyIDs())
			}
			if !strings.Contains(out.stdout, "ponte keys reseal") || !strings.Contains(out.stdout, v.KeyID()) {
				t.Errorf("rotate-data-key output:\n%s", out.stdout)
			}
			if cur, ret := recordedKeys(t, dbURL, dataDir, keyset.DataKeyID); cur != fingerprint(t, keyset.DataKeyID, data) || len(ret) != 1 || ret[0] != oldDataFP {
				t.Errorf("recorded data key: current %s retired %v", cur, ret)
			}

			// Another key set against this database: refused, nothing changed.
			other := t.TempDir()
			auth.LoadOrCreateKey(filepath.Join(other, "signing-key.pem"))
			r := ponteCLI(t, "keys", "rotate-signing-key", "--dir", other, "--data-dir", dataDir, "--database-url", dbURL)
			if r.code != 1 || !strings.Contains(r.output(), "not the database's current one") {
				t.Errorf("rotating another key set: %s", r)
			}
			if _, err := os.Stat(auth.RetiredDir(filepath.Join(other, "signing-key.pem"))); err == nil {
				t.Error("the refused rotation retired a key")
			}
			// --record-only makes the key set's key the current one.
			mustCLI(t, 0, "keys", "rotate-signing-key", "--record-only", "--dir", other, "--data-dir", dataDir, "--database-url", dbURL)
			if cur, _ := recordedKeys(t, dbURL, dataDir, keyset.SigningKey); cur != fingerprint(t, keyset.SigningKey, filepath.Join(other, "signing-key.pem")) {
				t.Errorf("--record-only did not record the key set's key: %s", cur)
			}
		})
	}
	t.Run("no database", func(t *testing.T) {
		keys := t.TempDir()
		auth.LoadOrCreateKey(filepath.Join(keys, "signing-key.pem"))
		out := mustCLI(t, 0, "keys", "rotate-signing-key", "--dir", keys, "--data-dir", t.TempDir(), "--database-url=")
		if !strings.Contains(out.stdout, "nothing recorded") {
			t.Errorf("output: %s", out.stdout)
		}
		if r := ponteCLI(t, "keys", "rotate-data-key", "--dir", t.TempDir(), "--database-url="); r.code != 1 || !strings.Contains(r.output(), "data.key") {
			t.Errorf("rotating a missing data key: %s", r)
		}
	})
}

// TestCLIKeysReseal: after a data key rotation, reseal re-seals every
// sealed column under the new key — card numbers and wallet payloads (opened
// again through the cards package), brands' keys (through itp), webhook
// secrets and initiator tokens (opened with their contexts) — after which
// the retired key can be removed; a second run changes nothing.
func TestCLIKeysReseal(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			dir := t.TempDir()
			dbURL := e.URL(t)
			s := apptest.Start(t, apptest.Options{DataDir: dir, DatabaseURL: dbURL})
			ctx := t.Context()
			demo := s.App.Demo
			list, err := s.App.Cards.List(ctx, demo.ID)
			if err != nil || len(list) < 2 {
				t.Fatalf("sandbox cards: %d %v", len(list), err)
			}
			for _, c := range list[:2] { // active: a wallet payload opens their number
				if _, err := s.App.Cards.SetStatus(ctx, demo.ID, c.Proxy, cards.StatusActive); err != nil {
					t.Fatal(err)
				}
			}
			payload, err := s.App.Cards.WalletToken(ctx, demo.ID, list[0].Proxy, cards.WalletGooglePay, nil)
			if err != nil {
				t.Fatal(err)
			}
			brand, err := s.App.ITP.AddBrand(ctx, itp.Brand{Name: "Banco", Issuer: "https://auth.banco.example", APIBaseURL: "https://api.banco.example", ClientID: "ponte"})
			if err != nil {
				t.Fatal(err)
			}
			brandKey, err := s.App.ITP.BrandSigningKey(ctx, brand.ID)
			if err != nil {
				t.Fatal(err)
			}
			// A webhook secret and an initiator grant, sealed as their packages do.
			secret, _ := s.App.Vault.Seal([]byte("whsec"), "webhook-secret:sub1")
			grant, _ := s.App.Vault.Seal([]byte("access"), "itp-grant:auth1")
			writeSQL(t, s.App.ITP.DB,
				`INSERT INTO webhook_subscriptions (id, application_id, url, secret_sealed, created_at, updated_at) VALUES ('sub1', $1, 'https://partner.example/hook', $2, 0, 0)`, demo.ID, secret)
			writeSQL(t, s.App.ITP.DB, `INSERT INTO itp_authorizations (id, state_hash, application_id, kind, brand_id, consent_id, consent_path,
				scope, nonce, code_verifier, redirect_uri, authorization_url, status, created_at, updated_at, expires_at)
				VALUES ('auth1', 'h', $1, 'PAYMENT_INITIATION', $2, 'c', '/p', 's', 'n', 'v', 'https://r.example', 'https://a.example', 'AUTHORISED', 0, 0, 0)`, demo.ID, brand.ID)
			writeSQL(t, s.App.ITP.DB, `INSERT INTO itp_grants (authorization_id, access_token, access_expires_at, refresh_token, consent_data, updated_at)
				VALUES ('auth1', $1, 0, NULL, '{}', 0)`, grant)
			s.Stop()

			flags := []string{"--data-dir", dir, "--database-url", dbURL}
			mustCLI(t, 0, append([]string{"keys", "rotate-data-key"}, flags...)...)
			s = s.Restart(t)
			out := mustCLI(t, 0, append([]string{"keys", "reseal", "--batch", "1"}, flags...)...)
			for _, want := range []string{"cards.pan_sealed", "wallet_payloads.response", "itp_brand_keys.sealed_key", "webhook_subscriptions.secret_sealed", "itp_grants.access_token"} {
				line := lineWith(out.stdout, want)
				if line == "" || strings.Contains(line, " 0 re-sealed") || !strings.Contains(line, "0 unreadable") {
					t.Errorf("reseal of %s: %q\n%s", want, line, out.stdout)
				}
			}
			again := mustCLI(t, 0, append([]string{"keys", "reseal", "--forget-retired"}, flags...)...)
			if !strings.Contains(again.stdout, "forgot the retired data key fingerprint") {
				t.Errorf("--forget-retired: %s", again.stdout)
			}
			if _, retired := recordedKeys(t, dbURL, dir, keyset.DataKeyID); len(retired) != 0 {
				t.Errorf("retired data key fingerprints left: %v", retired)
			}
			for _, line := range strings.Split(again.stdout, "\n") {
				if strings.Contains(line, "re-sealed") && !strings.Contains(line, " 0 re-sealed") {
					t.Errorf("second reseal changed values: %s", line)
				}
			}

			// The retired key removed: everything still opens.
			s.Stop()
			if err := os.RemoveAll(vault.RetiredDir(filepath.Join(dir, "data.key"))); err != nil {
				t.Fatal(err)
			}
			s = s.Restart(t)
			if len(s.App.Vault.RetiredKeyIDs()) != 0 {
				t.Fatal("retired keys still loaded")
			}
			if got, err := s.App.Cards.WalletToken(ctx, demo.ID, list[0].Proxy, cards.WalletGooglePay, nil); err != nil || !bytes.Equal(got, payload) {
				t.Errorf("stored wallet payload after reseal: %v (same: %v)", err, bytes.Equal(got, payload))
			}
			if _, err := s.App.Cards.WalletToken(ctx, demo.ID, list[1].Proxy, cards.WalletGooglePay, nil); err != nil {
				t.Errorf("card number after reseal: %v", err)
			}
			if k, err := s.App.ITP.BrandSigningKey(ctx, brand.ID); err != nil || k.KeyID != brandKey.KeyID {
				t.Errorf("brand key after reseal: %v %v", k, err)
			}
			for q, ctxt := range map[string]string{
				`SELECT secret_sealed FROM webhook_subscriptions WHERE id = 'sub1'`:    "webhook-secret:sub1",
				`SELECT access_token FROM itp_grants WHERE authorization_id = 'auth1'`: "itp-grant:auth1",
			} {
				var sealed string
				if err := s.App.ITP.DB.Read().QueryRow(q).Scan(&sealed); err != nil {
					t.Fatal(err)
				}
				if _, err := s.App.Vault.Open(sealed, ctxt); err != nil {
					t.Errorf("%s after reseal: %v", ctxt, err)
				}
			}
		})
	}
}

func writeSQL(t *testing.T, db *store.DB, q string, args ...any) {
	t.Helper()
	if err := db.Write(t.Context(), func(tx *sql.Tx) error { _, err := tx.ExecContext(t.Context(), q, args...); return err }); err != nil {
		t.Fatal(err)
	}
}
