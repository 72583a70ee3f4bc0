package itp_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestBrandKeysInDatabase: a brand's signing key is stored sealed in the
// database, generated or read from the file named; a brand from before
// keys were stored (its key only in a file) is imported, at start or on
// first use, and a brand whose file is on no host is an error naming it.
func TestBrandKeysInDatabase(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			ctx, svc := t.Context(), s.App.ITP
			generated, err := svc.AddBrand(ctx, itp.Brand{Name: "Gerada", Issuer: "https://auth.gerada.example",
				APIBaseURL: "https://api.gerada.example", ClientID: "ponte"})
			if err != nil {
				t.Fatal(err)
			}
			if generated.SigningKeyFile != "" {
				t.Errorf("generated key has a file: %s", generated.SigningKeyFile)
			}
			key, err := svc.BrandSigningKey(ctx, generated.ID)
			if err != nil {
				t.Fatal(err)
			}
			var sealed string
			if err := s.App.ITP.DB.Read().QueryRow(`SELECT sealed_key FROM itp_brand_keys WHERE brand_id = $1`, generated.ID).Scan(&sealed); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(sealed, "v2:"+s.App.Vault.KeyID()+":") || strings.Contains(sealed, "PRIVATE KEY") {
				t.Errorf("stored key is not sealed under the data key: %.40s", sealed)
			}
			if again, err := svc.BrandSigningKey(ctx, generated.ID); err != nil || again.KeyID != key.KeyID {
				t.Errorf("key read again: %v %v", again, err)
			}

			// A brand with a key file, as brands were before: its key is the file's.
			file := filepath.Join(t.TempDir(), "legacy.pem")
			fileKey, err := auth.LoadOrCreateKey(file)
			if err != nil {
				t.Fatal(err)
			}
			legacy, err := svc.AddBrand(ctx, itp.Brand{Name: "Antiga", Issuer: "https://auth.antiga.example",
				APIBaseURL: "https://api.antiga.example", ClientID: "ponte", SigningKeyFile: file})
			if err != nil {
				t.Fatal(err)
			}
			// Made as before migration 00033: the key only in the file.
			deleteKey(t, s, legacy.ID)
			if n, err := svc.ImportBrandKeys(ctx); err != nil || n != 1 {
				t.Fatalf("import: %d %v, want 1", n, err)
			}
			if got, err := svc.BrandSigningKey(ctx, legacy.ID); err != nil || got.KeyID != fileKey.KeyID {
				t.Errorf("imported key: %v %v, want kid %s", got, err, fileKey.KeyID)
			}
			if n, err := svc.ImportBrandKeys(ctx); err != nil || n != 0 {
				t.Errorf("second import: %d %v, want 0", n, err)
			}
			// On first use, too; and with the file gone, the error names the brand.
			deleteKey(t, s, legacy.ID)
			if got, err := svc.BrandSigningKey(ctx, legacy.ID); err != nil || got.KeyID != fileKey.KeyID {
				t.Errorf("key imported on use: %v %v", got, err)
			}
			deleteKey(t, s, legacy.ID)
			os.Remove(file)
			if _, err := svc.BrandSigningKey(ctx, legacy.ID); !errors.Is(err, itp.ErrBrandKeyMissing) || !strings.Contains(err.Error(), legacy.ID) {
				t.Errorf("missing key: %v", err)
			}
			if _, err := svc.BrandSigningKey(ctx, "000000000000000000000000"); !errors.Is(err, itp.ErrBrandNotFound) {
				t.Errorf("unknown brand: %v", err)
			}
		})
	}
}

func deleteKey(t *testing.T, s *apptest.Server, brandID string) {
	t.Helper()
	if err := s.App.ITP.DB.Write(t.Context(), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(t.Context(), `DELETE FROM itp_brand_keys WHERE brand_id = $1`, brandID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestBrandKeysAcrossInstances: a brand added through one instance signs
// with the same key on a second instance of the same PostgreSQL database,
// which has no file of it; a brand whose key only a file on the first host
// held (added before keys were stored) is imported when that host starts,
// and read by the second from the database.
func TestBrandKeysAcrossInstances(t *testing.T) {
	t.Parallel()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip(storetest.EnvVar + " is not set")
	}
	dbURL := storetest.FreshSchema(t, base)
	a := apptest.Start(t, apptest.Options{DatabaseURL: dbURL})
	// The second instance shares the first's keys (a key set), not its files of brands.
	dirB := t.TempDir()
	copyFiles(t, a.Options.DataDir, dirB)
	b := apptest.Start(t, apptest.Options{DatabaseURL: dbURL, DataDir: dirB})

	added, err := a.App.ITP.AddBrand(t.Context(), itp.Brand{Name: "Banco A", Issuer: "https://auth.a.example",
		APIBaseURL: "https://api.a.example", ClientID: "ponte"})
	if err != nil {
		t.Fatal(err)
	}
	onA, err := a.App.ITP.BrandSigningKey(t.Context(), added.ID)
	if err != nil {
		t.Fatal(err)
	}
	onB, err := b.App.ITP.BrandSigningKey(t.Context(), added.ID)
	if err != nil || onB.KeyID != onA.KeyID {
		t.Fatalf("brand key on the second instance: %v %v, want kid %s", onB, err, onA.KeyID)
	}

	file := filepath.Join(a.Options.DataDir, "brands", "old.pem")
	old, err := a.App.ITP.AddBrand(t.Context(), itp.Brand{Name: "Banco Antigo", Issuer: "https://auth.antigo.example",
		APIBaseURL: "https://api.antigo.example", ClientID: "ponte", SigningKeyFile: file})
	if err != nil {
		t.Fatal(err)
	}
	deleteKey(t, a, old.ID)
	a = a.Restart(t) // imports it at start
	var n int
	if err := a.App.ITP.DB.Read().QueryRow(`SELECT COUNT(*) FROM itp_brand_keys WHERE brand_id = $1`, old.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the restarted instance did not import the brand's key file: %d %v", n, err)
	}
	fileKey, _ := auth.ReadKey(file)
	if got, err := b.App.ITP.BrandSigningKey(t.Context(), old.ID); err != nil || got.KeyID != fileKey.KeyID {
		t.Errorf("after the first host restarted: %v %v, want kid %s", got, err, fileKey.KeyID)
	}
}

// copyFiles copies the regular files of dir src (not subdirectories) into dst.
func copyFiles(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
