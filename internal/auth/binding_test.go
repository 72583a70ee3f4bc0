package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestCertificateBoundTokens: IssueBound puts cnf.x5t#S256 (RFC 8705) in the
// token and VerifyAccessToken hands the thumbprint to the caller; Issue
// leaves tokens unbound.
func TestCertificateBoundTokens(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := clock.NewFake(time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC))
		key, err := auth.LoadOrCreateKey(filepath.Join(t.TempDir(), "key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		apps := auth.NewApplications(db, c)
		tokens, err := auth.NewTokens(key, "https://ponte.test", time.Minute, c, apps)
		if err != nil {
			t.Fatal(err)
		}
		app, _, err := apps.Create(t.Context(), auth.NewApplication{Name: "Bound", CompanyKey: "BOUND", Scopes: []string{"payments"}})
		if err != nil {
			t.Fatal(err)
		}
		const thumb = "6hJ8ZqgqKcJBeJ5-fGBtr8VrJVzQWdvmKFNDx6x3jcE"
		tests := []struct {
			name  string
			issue func() (string, error)
			want  string
		}{
			{"bound", func() (string, error) { return tokens.IssueBound(app, []string{"payments"}, thumb) }, thumb},
			{"unbound via IssueBound", func() (string, error) { return tokens.IssueBound(app, []string{"payments"}, "") }, ""},
			{"unbound via Issue", func() (string, error) { return tokens.Issue(app, []string{"payments"}) }, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				raw, err := tt.issue()
				if err != nil {
					t.Fatal(err)
				}
				if got := claimedThumbprint(t, raw); got != tt.want {
					t.Errorf("cnf.x5t#S256 in the token = %q, want %q", got, tt.want)
				}
				p, err := tokens.VerifyAccessToken(t.Context(), raw)
				if err != nil {
					t.Fatal(err)
				}
				if p.CertThumbprint != tt.want || p.ClientID != app.ClientID {
					t.Errorf("principal %+v, want thumbprint %q", p, tt.want)
				}
			})
		}
	})
}

func claimedThumbprint(t *testing.T, raw string) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %s", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Cnf *struct {
			X5tS256 string `json:"x5t#S256"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Cnf == nil {
		return ""
	}
	return claims.Cnf.X5tS256
}
