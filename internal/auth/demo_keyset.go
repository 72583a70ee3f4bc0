package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/store"
)

// EnsureDemoCredentials makes sure the sandbox demo application exists,
// holds every known scope, and answers to creds: the credentials a shared
// key set holds (`ponte keys init --sandbox`), the same for every instance,
// so none rotates another's secret as EnsureDemo would. A demo application
// created earlier under other credentials takes creds.
func (s *Applications) EnsureDemoCredentials(ctx context.Context, creds DemoCredentials) (*Application, error) {
	if uuid.Validate(creds.ClientID) != nil || len(creds.ClientSecret) < 32 {
		return nil, errors.New("auth: demo credentials need a UUID client_id and a client_secret of 32 characters or more")
	}
	all := slices.Sorted(maps.Keys(KnownScopes))
	a, hash, err := getApp(ctx, s.db.Read(), "sandbox_demo", 1)
	if errors.Is(err, ErrNotFound) {
		a, _, err = s.create(ctx, NewApplication{Name: "Ponte sandbox demo", CompanyKey: "DEMO", Scopes: all}, true)
		if store.IsUniqueViolation(err) {
			// Another instance created it at the same moment: use theirs.
			return s.EnsureDemoCredentials(ctx, creds)
		}
		hash = "" // a fresh random secret: replaced below
	}
	if err != nil {
		return nil, fmt.Errorf("auth: demo application: %w", err)
	}
	want := hashSecret(creds.ClientSecret)
	if a.ClientID == creds.ClientID && hash == want && slices.Equal(a.Scopes, all) && !a.Disabled && a.AcceptPlainJSON {
		return a, nil
	}
	// Every instance writes the same values: concurrent starts agree.
	a.ClientID, a.Scopes, a.Disabled, a.AcceptPlainJSON, a.UpdatedAt = creds.ClientID, all, false, true, s.clock.Now()
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE applications SET client_id = $1, secret_hash = $2, scopes = $3, disabled = 0,
			accept_plain_json = 1, updated_at = $4 WHERE id = $5`,
			a.ClientID, want, strings.Join(all, " "), a.UpdatedAt.UnixMilli(), a.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auth: update demo application: %w", err)
	}
	s.forget()
	return a, nil
}
