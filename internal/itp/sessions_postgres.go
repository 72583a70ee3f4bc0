package itp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// errApplicationChanged: the application's row no longer matched the read
// the rules were checked against when the create's statement ran.
var errApplicationChanged = errors.New("itp: the application changed during the create")

// errTakenAtInsert is ErrExternalIDTaken as the insert found it, with the
// application's row checked in the same statement: final, even when the
// rules ran on a cached application.
var errTakenAtInsert = fmt.Errorf("itp: insert: %w", ErrExternalIDTaken)

// maxFreshReads bounds how often createPostgres reads the application again
// when it keeps changing between its read and the insert.
const maxFreshReads = 3

// createPostgres is CreateSession on PostgreSQL: one round trip when the
// calling application is cached (Apps is ApplicationRows). The rules are
// checked against the cached application, and the insert
// (createSessionPostgres) writes only if the application's row still
// matches it. Any refusal decided on a cached application, and a row that
// no longer matches, are decided again on a fresh read, so the answers are
// exactly those of a fresh read (the SQLite path's): a disabled application
// or a removed redirect URL applies at once.
func (s *Service) createPostgres(ctx context.Context, clientID string, req CreateRequest) (*Created, error) {
	rows, cacheable := s.Apps.(ApplicationRows)
	unchanged := anyApplicationSQL
	if cacheable {
		unchanged = rows.UnchangedSQL()
	}
	q := createSessionPostgres(unchanged)
	if cacheable {
		if app, ok := s.cache.cachedApplication(clientID, s.Clock.Now()); ok {
			c, err := s.createFor(ctx, q, app, req)
			if err == nil || errors.Is(err, errTakenAtInsert) || !refusal(err) {
				return c, err
			}
			s.cache.forgetApplication(clientID)
		}
	}
	for range maxFreshReads {
		read := s.Clock.Now()
		app, err := s.application(ctx, clientID)
		if err != nil {
			return nil, err
		}
		if cacheable {
			s.cache.rememberApplication(clientID, app, read)
		}
		c, err := s.createFor(ctx, q, app, req)
		if !errors.Is(err, errApplicationChanged) {
			return c, err
		}
		s.cache.forgetApplication(clientID)
	}
	return nil, fmt.Errorf("itp: application %s changed %d times during one create: %w", clientID, maxFreshReads, errApplicationChanged)
}

// refusal reports whether err is a rule's answer (or a changed
// application) rather than a failure.
func refusal(err error) bool {
	var verr *ValidationError
	return errors.As(err, &verr) || errors.Is(err, ErrApplicationNotFound) || errors.Is(err, ErrJourneyNotFound) ||
		errors.Is(err, ErrRedirectNotAllowed) || errors.Is(err, ErrExternalIDTaken) || errors.Is(err, errApplicationChanged)
}

// createFor applies the rules for app and writes the session with q, a
// createSessionPostgres statement.
func (s *Service) createFor(ctx context.Context, q string, app *Application, req CreateRequest) (*Created, error) {
	c, err := s.newSession(ctx, app, req)
	if err != nil {
		return nil, err
	}
	sess := c.Session
	redirects, err := json.Marshal(orEmpty(app.RedirectURLs))
	if err != nil {
		return nil, fmt.Errorf("itp: encode redirect URLs: %w", err)
	}
	tags := scalarTags(sess.Tags)
	keys, values := make([]string, 0, len(tags)), make([]string, 0, len(tags))
	for k, v := range tags {
		keys, values = append(keys, k), append(values, v)
	}
	args := append([]any{app.ID, string(redirects)}, c.enc.args(sess)...)
	args = append(args, keys, values)
	args = append(args, expireJobArgs(sess.CreatedAt, sess)...)
	var matched, inserted bool
	if err := s.DB.Pool().QueryRow(ctx, q, args...).Scan(&matched, &inserted); err != nil {
		return nil, fmt.Errorf("itp: insert journey session: %w", err)
	}
	switch {
	case !matched:
		return nil, errApplicationChanged
	case !inserted:
		return nil, errTakenAtInsert
	}
	return c, nil
}
