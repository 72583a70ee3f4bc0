package itp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/ponte-ofb/ponte/internal/store"
)

var aliasPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,36}$`)

// CreateJourney stores a journey. Its alias is unique, 1–36 letters, digits,
// '.', '_' or '-', neither "default" nor 24 hex digits (those name ids); its
// brands must exist; its settings follow the same rules as a session's.
func (s *Service) CreateJourney(ctx context.Context, j Journey) (*Journey, error) {
	var problems []string
	j.Name = strings.TrimSpace(j.Name)
	if !aliasPattern.MatchString(j.Alias) || j.Alias == "default" || objectIDPattern.MatchString(j.Alias) {
		problems = append(problems, `alias must be 1–36 letters, digits, '.', '_' or '-', not "default" nor 24 hex digits`)
	}
	if j.Name == "" || len(j.Name) > 200 {
		problems = append(problems, "name is required (at most 200 characters)")
	}
	for _, id := range j.BrandIDs {
		if _, err := s.Brand(ctx, id); err != nil {
			problems = append(problems, fmt.Sprintf("brand %s: %v", id, err))
		}
	}
	if fe := validateSettings("settings", j.Settings); len(fe) > 0 {
		for _, f := range fe {
			problems = append(problems, f.Field+" "+f.Message)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w journey: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	now := s.now()
	j.ID, j.CreatedAt, j.UpdatedAt = newObjectID(now), now, now
	j.BrandIDs, j.ApplicationIDs, j.Settings = orEmpty(j.BrandIDs), orEmpty(j.ApplicationIDs), orEmpty(j.Settings)
	err := s.DB.Write(ctx, func(tx *sql.Tx) error { return insertJourney(ctx, tx, &j) })
	s.cache.forget()
	if store.IsUniqueViolation(err) {
		return nil, fmt.Errorf("%w journey: alias %q is taken", ErrInvalid, j.Alias)
	}
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// Journey returns the journey whose id or alias is idOrAlias.
func (s *Service) Journey(ctx context.Context, idOrAlias string) (*Journey, error) {
	st, err := s.DB.ReadStmt(ctx, selectJourneySQL)
	if err != nil {
		return nil, err
	}
	return scanJourney(st.QueryRowContext(ctx, idOrAlias))
}

// Journeys lists the journeys application applicationID may use ("" for every journey), oldest first.
func (s *Service) Journeys(ctx context.Context, applicationID string) ([]*Journey, error) {
	rows, err := s.DB.Read().QueryContext(ctx, listJourneysSQL)
	if err != nil {
		return nil, fmt.Errorf("itp: list journeys: %w", err)
	}
	defer rows.Close()
	out := []*Journey{}
	for rows.Next() {
		j, err := scanJourney(rows)
		if err != nil {
			return nil, err
		}
		if applicationID == "" || j.availableTo(applicationID) {
			out = append(out, j)
		}
	}
	return out, rows.Err()
}

// SetApplicationSetting sets an application setting (e.g. JOURNEY_DEFAULT_ALIAS).
func (s *Service) SetApplicationSetting(ctx context.Context, applicationID, key, value string) error {
	defer s.cache.forget()
	return s.DB.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, upsertApplicationSettingSQL, applicationID, key, value, s.now().UnixMilli())
		if err != nil {
			return fmt.Errorf("itp: set application setting: %w", err)
		}
		return nil
	})
}

// ApplicationSetting returns an application setting; ok is false when unset.
func (s *Service) ApplicationSetting(ctx context.Context, applicationID, key string) (value string, ok bool, err error) {
	st, err := s.DB.ReadStmt(ctx, selectApplicationSettingSQL)
	if err != nil {
		return "", false, err
	}
	err = st.QueryRowContext(ctx, applicationID, key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("itp: read application setting: %w", err)
	}
	return value, true, nil
}

// SetDefaultJourney sets the application's JOURNEY_DEFAULT_ALIAS to the
// alias of an existing journey.
func (s *Service) SetDefaultJourney(ctx context.Context, applicationID, alias string) error {
	j, err := s.Journey(ctx, alias)
	if err != nil {
		return fmt.Errorf("journey %q: %w", alias, err)
	}
	return s.SetApplicationSetting(ctx, applicationID, SettingJourneyDefaultAlias, j.Alias)
}

// resolveJourney applies seed 003's rule 2: "default" (or nothing) is the
// application's JOURNEY_DEFAULT_ALIAS setting, else the JOURNEY_DEFAULT_ALIAS
// environment variable, else an error; anything else is an id or an alias.
// It reads through the configuration cache (see configTTL); the journey
// returned is shared, not to be modified.
func (s *Service) resolveJourney(ctx context.Context, applicationID, journeyID string) (*Journey, error) {
	if journeyID == "" || journeyID == "default" {
		alias, ok, err := s.cachedSetting(ctx, applicationID, SettingJourneyDefaultAlias)
		if err != nil {
			return nil, err
		}
		if !ok && s.Getenv != nil {
			alias = s.Getenv(SettingJourneyDefaultAlias)
		}
		if alias == "" {
			return nil, fmt.Errorf("%w: no %s setting or environment variable", ErrJourneyNotFound, SettingJourneyDefaultAlias)
		}
		journeyID = alias
	}
	j, err := s.cachedJourney(ctx, journeyID)
	if err != nil {
		return nil, err
	}
	if !j.availableTo(applicationID) {
		return nil, ErrJourneyNotFound
	}
	return j, nil
}
