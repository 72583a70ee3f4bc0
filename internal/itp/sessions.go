package itp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/store"
)

// CreateRequest is a POST journeys-sessions body.
type CreateRequest struct {
	JourneyID   string
	RedirectURL string
	BrandID     string
	ExternalID  string
	Settings    []Setting
	Tags        map[string]any
}

// Validate checks the schema constraints (422): lengths, URL syntax, settings.
func (r *CreateRequest) Validate() *ValidationError {
	var fe []FieldError
	for _, f := range []struct{ name, value string }{{"journeyId", r.JourneyID}, {"brandId", r.BrandID}, {"externalId", r.ExternalID}} {
		if utf8.RuneCountInString(f.value) > MaxIDLength {
			fe = append(fe, FieldError{f.name, fmt.Sprintf("must be at most %d characters", MaxIDLength)})
		}
	}
	if r.RedirectURL != "" {
		u, err := url.Parse(r.RedirectURL)
		if err != nil || u.Scheme == "" || u.Host == "" || len(r.RedirectURL) > 2048 {
			fe = append(fe, FieldError{"redirectUrl", "Invalid format"})
		}
	}
	fe = append(fe, validateSettings("settings", r.Settings)...)
	for k := range r.Tags {
		if k == "" || utf8.RuneCountInString(k) > 64 {
			fe = append(fe, FieldError{"tags", "keys must be 1 to 64 characters"})
			break
		}
	}
	if len(fe) > 0 {
		return &ValidationError{Fields: fe}
	}
	return nil
}

// Created is a new session with its opaque token, shown this once.
type Created struct {
	Session *Session
	Token   string
	// URL is journeySessionUrl: where the partner sends its user.
	URL string

	enc *encodedSession // the JSON written, reused by the response
}

// CreateSession creates a PENDING journey session for the application whose
// client_id is clientID (the token's azp), applying seed 003's rules in its
// order: the application must exist (ErrApplicationNotFound), the journey
// must resolve (ErrJourneyNotFound), externalId must be new for the
// application (ErrExternalIDTaken, also under concurrent creates), and
// redirectUrl must be one of the application's registered URLs, compared
// byte for byte (ErrRedirectNotAllowed). Schema violations are a
// *ValidationError. The expiry job is enqueued in the same transaction.
//
// On PostgreSQL the session, its tags and its expiry job are one statement
// (createPostgres): one round trip per create.
func (s *Service) CreateSession(ctx context.Context, clientID string, req CreateRequest) (*Created, error) {
	if verr := req.Validate(); verr != nil {
		return nil, verr
	}
	if s.DB.Pool() != nil {
		return s.createPostgres(ctx, clientID, req)
	}
	app, err := s.application(ctx, clientID)
	if err != nil {
		return nil, err
	}
	c, err := s.newSession(ctx, app, req)
	if err != nil {
		return nil, err
	}
	sess, tags := c.Session, scalarTags(c.Session.Tags)
	err = s.DB.Write(ctx, func(tx *sql.Tx) error {
		st, err := s.DB.TxStmt(ctx, tx, insertSessionSQL)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, c.enc.args(sess)...); err != nil {
			return fmt.Errorf("itp: insert journey session: %w", err)
		}
		if err := s.insertTags(ctx, tx, sess.ID, tags); err != nil {
			return err
		}
		return s.enqueueExpire(ctx, tx, sess.CreatedAt, sess)
	})
	if store.IsUniqueViolation(err) && req.ExternalID != "" {
		return nil, ErrExternalIDTaken
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// application reads the calling application afresh; a missing or disabled
// one is ErrApplicationNotFound (rule 1).
func (s *Service) application(ctx context.Context, clientID string) (*Application, error) {
	app, err := s.Apps.Application(ctx, clientID)
	if errors.Is(err, ErrApplicationNotFound) || (err == nil && app.Disabled) {
		return nil, ErrApplicationNotFound
	}
	if err != nil {
		return nil, err
	}
	return app, nil
}

// newSession applies rules 2 to 5 to req for app (found and enabled) and
// returns the session to store, or the first rule's error.
func (s *Service) newSession(ctx context.Context, app *Application, req CreateRequest) (*Created, error) {
	journey, err := s.resolveJourney(ctx, app.ID, req.JourneyID)
	if err != nil {
		return nil, err
	}
	// externalId's uniqueness is the unique index's: the insert fails (or,
	// on PostgreSQL, skips) on a taken one. A rule checked after it that
	// fails looks it up first, so a taken externalId still wins over them as
	// before (seed order).
	laterRule := func(err error) error {
		if req.ExternalID != "" {
			if taken, terr := s.externalIDTaken(ctx, app.ID, req.ExternalID); terr != nil {
				return terr
			} else if taken {
				return ErrExternalIDTaken
			}
		}
		return err
	}
	if req.RedirectURL != "" && !redirectAllowed(app.RedirectURLs, req.RedirectURL) {
		return nil, laterRule(ErrRedirectNotAllowed)
	}
	settings := mergeSettings(journey.Settings, req.Settings)
	ttl := DefaultSessionTTL
	for _, st := range settings {
		if st.Key == SettingSessionTTL {
			if ttl, err = parseTTL(st.Value); err != nil {
				return nil, laterRule(&ValidationError{Fields: []FieldError{{"settings", SettingSessionTTL + " " + err.Error()}}})
			}
		}
	}
	if req.BrandID != "" {
		b, err := s.cachedBrand(ctx, req.BrandID)
		if errors.Is(err, ErrBrandNotFound) || (err == nil && (!b.Enabled || !journey.offers(b.ID))) {
			return nil, laterRule(&ValidationError{Fields: []FieldError{{"brandId", "brand not available in this journey"}}})
		}
		if err != nil {
			return nil, err
		}
	}
	token, hash, err := newToken()
	if err != nil {
		return nil, err
	}
	now := s.now()
	sess := &Session{
		ID: newSessionID(), ApplicationID: app.ID, ApplicationClientID: app.ClientID, JourneyID: journey.ID,
		TokenID: uuid.NewString(), Status: StatusPending, RedirectURL: req.RedirectURL, BrandID: req.BrandID,
		ExternalID: req.ExternalID, Settings: settings, Tags: req.Tags,
		StatusHistory: []StatusChange{{UpdatedAt: now, Status: StatusPending}},
		ExpiresAt:     now.Add(ttl), CreatedAt: now, UpdatedAt: now, tokenHash: hash,
	}
	if sess.Tags == nil {
		sess.Tags = map[string]any{}
	}
	enc, err := encodeSession(sess)
	if err != nil {
		return nil, err
	}
	return &Created{Session: sess, Token: token, URL: s.SessionURL(sess, token), enc: enc}, nil
}

// newSessionID returns a time-ordered UUID (version 7): new sessions, their
// tags and their expiry jobs go to the end of their indexes instead of a
// random page each.
func newSessionID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// SessionURL is journeySessionUrl:
// {PublicURL}/journey/{journeyId}?api=SWEEPING_ACCOUNTS_V2&id={id}&token={token}.
func (s *Service) SessionURL(sess *Session, token string) string {
	return s.PublicURL + "/journey/" + url.PathEscape(sess.JourneyID) + "?api=" + PaymentInitiationAPI +
		"&id=" + url.QueryEscape(sess.ID) + "&token=" + url.QueryEscape(token)
}

// redirectAllowed reports whether redirect is byte for byte one of the
// registered URLs: no normalisation, so case, percent-encoding, userinfo,
// dot segments, trailing slashes, queries and fragments all have to match.
func redirectAllowed(registered []string, redirect string) bool {
	for _, r := range registered {
		if subtle.ConstantTimeCompare([]byte(r), []byte(redirect)) == 1 {
			return true
		}
	}
	return false
}

func (s *Service) externalIDTaken(ctx context.Context, applicationID, externalID string) (bool, error) {
	st, err := s.DB.ReadStmt(ctx, externalIDTakenSQL)
	if err != nil {
		return false, err
	}
	var one int
	err = st.QueryRowContext(ctx, applicationID, externalID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("itp: look up externalId: %w", err)
	}
	return true, nil
}

// newToken returns an opaque session token (256 random bits, base64url) and its hex SHA-256.
func newToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("itp: session token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashToken(token), nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func (s *Service) read(ctx context.Context, id string) (*Session, error) {
	st, err := s.DB.ReadStmt(ctx, selectSessionSQL)
	if err != nil {
		return nil, err
	}
	return scanSession(st.QueryRowContext(ctx, id))
}

// Session returns session id of application applicationID; another
// application's session is ErrNotFound. A session past its time-to-live
// whose expiry has not run yet is expired first, so a read never shows a
// stale PENDING.
func (s *Service) Session(ctx context.Context, applicationID, id string) (*Session, error) {
	sess, err := s.read(ctx, id)
	if err != nil {
		return nil, err
	}
	if sess.ApplicationID != applicationID {
		return nil, ErrNotFound
	}
	if sess.Status.Expirable() && !s.now().Before(sess.ExpiresAt) {
		return s.expireAndRead(ctx, id)
	}
	return sess, nil
}

// SessionByToken returns session id if token is its opaque token (the
// journeySessionUrl's token); any mismatch is ErrNotFound. For the hosted
// journey page, which then checks the status itself.
func (s *Service) SessionByToken(ctx context.Context, id, token string) (*Session, error) {
	sess, err := s.read(ctx, id)
	if err != nil {
		return nil, err
	}
	if token == "" || subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(sess.tokenHash)) != 1 {
		return nil, ErrNotFound
	}
	return sess, nil
}

// SessionTx reads session id through tx, whatever its application.
func (s *Service) SessionTx(ctx context.Context, tx *sql.Tx, id string) (*Session, error) {
	return scanSession(tx.QueryRowContext(ctx, selectSessionSQL, id))
}
