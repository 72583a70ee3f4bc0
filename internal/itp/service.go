package itp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Job kinds.
const (
	// JobExpire expires one session at its time-to-live.
	JobExpire = "itp.journey_session.expire"
	// JobSweep runs Sweep and schedules the next run SweepEvery later.
	JobSweep = "itp.journey_session.sweep"
)

// SweepEvery is how often the durable sweep job runs.
const SweepEvery = time.Minute

// DefaultSweepBatch is how many sessions one Sweep statement expires.
const DefaultSweepBatch = 10000

// Application is what the service needs of a partner application.
type Application struct {
	ID           string
	ClientID     string
	RedirectURLs []string
	Disabled     bool
}

// Applications finds partner applications by client_id. A missing one is
// ErrApplicationNotFound.
type Applications interface {
	Application(ctx context.Context, clientID string) (*Application, error)
}

// Service holds brands, journeys and journey sessions; it knows nothing of HTTP.
type Service struct {
	DB     *store.DB
	Clock  clock.Clock
	Logger *slog.Logger
	// PublicURL is Ponte's public base URL, the start of journeySessionUrl.
	PublicURL string
	// KeyDir is where AddBrand creates brands' signing keys.
	KeyDir string
	// Apps finds the calling application (its redirect URLs).
	Apps Applications
	// Getenv reads the environment (JOURNEY_DEFAULT_ALIAS); nil: nothing set.
	Getenv func(string) string
	// SweepBatch bounds one Sweep statement; 0: DefaultSweepBatch.
	SweepBatch int

	cache configCache // journeys, brands and settings for CreateSession
}

// NewService returns a Service.
func NewService(db *store.DB, c clock.Clock, logger *slog.Logger, publicURL, keyDir string, apps Applications, getenv func(string) string) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{DB: db, Clock: c, Logger: logger, PublicURL: strings.TrimSuffix(publicURL, "/"), KeyDir: keyDir, Apps: apps, Getenv: getenv}
}

func (s *Service) now() time.Time { return s.Clock.Now().UTC().Truncate(time.Millisecond) }

// newObjectID returns 24 lowercase hex digits: 4 bytes of seconds and 8 random bytes, like a MongoDB ObjectId.
func newObjectID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.Unix()))
	_, _ = rand.Read(b[4:])
	return hex.EncodeToString(b[:])
}

var objectIDPattern = regexp.MustCompile(`^[0-9a-f]{24}$`)

// ---- brands ----

// AddBrand registers a brand: it validates b, creates its signing key file
// (RSA-2048, PEM, mode 0600) in KeyDir when b.SigningKeyFile is empty (or
// loads the one named), and stores it enabled. An issuer already registered
// is ErrInvalid.
func (s *Service) AddBrand(ctx context.Context, b Brand) (*Brand, error) {
	if err := validateBrand(&b); err != nil {
		return nil, err
	}
	now := s.now()
	b.ID, b.Enabled, b.CreatedAt, b.UpdatedAt = newObjectID(now), true, now, now
	if b.SigningKeyFile == "" {
		if s.KeyDir == "" {
			return nil, fmt.Errorf("%w brand: no signing key file and no key directory", ErrInvalid)
		}
		b.SigningKeyFile = filepath.Join(s.KeyDir, "brand-"+b.ID+"-signing-key.pem")
	}
	if abs, err := filepath.Abs(b.SigningKeyFile); err == nil {
		b.SigningKeyFile = abs
	}
	if err := os.MkdirAll(filepath.Dir(b.SigningKeyFile), 0o700); err != nil {
		return nil, fmt.Errorf("itp: brand key directory: %w", err)
	}
	if _, err := auth.LoadOrCreateKey(b.SigningKeyFile); err != nil {
		return nil, fmt.Errorf("itp: brand signing key: %w", err)
	}
	err := s.DB.Write(ctx, func(tx *sql.Tx) error { return insertBrand(ctx, tx, &b) })
	if store.IsUniqueViolation(err) {
		return nil, fmt.Errorf("%w brand: issuer %s is already registered", ErrInvalid, b.Issuer)
	}
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// EnsureBrand returns the brand with b's issuer, registering b (as AddBrand)
// when there is none. Idempotent, also when several instances start at once.
func (s *Service) EnsureBrand(ctx context.Context, b Brand) (*Brand, error) {
	if existing, err := s.brandByIssuer(ctx, b.Issuer); !errors.Is(err, ErrBrandNotFound) {
		return existing, err
	}
	added, err := s.AddBrand(ctx, b)
	if errors.Is(err, ErrInvalid) {
		if existing, gerr := s.brandByIssuer(ctx, b.Issuer); gerr == nil {
			return existing, nil // another instance registered it first
		}
	}
	return added, err
}

func (s *Service) brandByIssuer(ctx context.Context, issuer string) (*Brand, error) {
	return scanBrand(s.DB.Read().QueryRowContext(ctx, `SELECT `+brandColumns+` FROM itp_brands WHERE issuer = $1`, issuer))
}

// Brand returns brand id (ErrBrandNotFound if there is none).
func (s *Service) Brand(ctx context.Context, id string) (*Brand, error) {
	st, err := s.DB.ReadStmt(ctx, `SELECT `+brandColumns+` FROM itp_brands WHERE id = $1`)
	if err != nil {
		return nil, err
	}
	return scanBrand(st.QueryRowContext(ctx, id))
}

// Brands lists every brand, oldest first.
func (s *Service) Brands(ctx context.Context) ([]*Brand, error) {
	rows, err := s.DB.Read().QueryContext(ctx, `SELECT `+brandColumns+` FROM itp_brands ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("itp: list brands: %w", err)
	}
	defer rows.Close()
	var out []*Brand
	for rows.Next() {
		b, err := scanBrand(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// DisableBrand stops offering brand id to new journey sessions.
func (s *Service) DisableBrand(ctx context.Context, id string) (*Brand, error) {
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE itp_brands SET enabled = 0, updated_at = $1 WHERE id = $2`, s.now().UnixMilli(), id)
		if err != nil {
			return fmt.Errorf("itp: disable brand: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrBrandNotFound
		}
		return nil
	})
	s.cache.forget()
	if err != nil {
		return nil, err
	}
	return s.Brand(ctx, id)
}

// SigningKey loads the brand's signing key from its key file. A missing
// file is an error: a new key would not be the one registered at the brand.
func (b *Brand) SigningKey() (*auth.SigningKey, error) {
	if _, err := os.Stat(b.SigningKeyFile); err != nil {
		return nil, fmt.Errorf("itp: brand %s signing key: %w", b.ID, err)
	}
	return auth.LoadOrCreateKey(b.SigningKeyFile)
}

func validateBrand(b *Brand) error {
	var problems []string
	b.Name = strings.TrimSpace(b.Name)
	if b.Name == "" || len(b.Name) > 200 {
		problems = append(problems, "name is required (at most 200 characters)")
	}
	for _, f := range []struct {
		name, value string
		required    bool
	}{{"issuer", b.Issuer, true}, {"API base URL", b.APIBaseURL, true}, {"discovery URL", b.DiscoveryURL, false}, {"logo URL", b.LogoURL, false}} {
		if f.value == "" {
			if f.required {
				problems = append(problems, f.name+" is required")
			}
			continue
		}
		if u, err := url.Parse(f.value); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
			problems = append(problems, f.name+" must be an absolute http(s) URL without userinfo or fragment")
		}
	}
	b.APIBaseURL = strings.TrimSuffix(b.APIBaseURL, "/")
	if strings.TrimSpace(b.ClientID) == "" {
		problems = append(problems, "client id (Ponte's registration at the brand) is required")
	}
	if (b.MTLSCertFile == "") != (b.MTLSKeyFile == "") {
		problems = append(problems, "mTLS certificate and key files go together")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w brand: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// ---- journeys and application settings ----

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
	st, err := s.DB.ReadStmt(ctx, `SELECT `+journeyColumns+` FROM itp_journeys WHERE id = $1 OR alias = $1`)
	if err != nil {
		return nil, err
	}
	return scanJourney(st.QueryRowContext(ctx, idOrAlias))
}

// Journeys lists the journeys application applicationID may use ("" for every journey), oldest first.
func (s *Service) Journeys(ctx context.Context, applicationID string) ([]*Journey, error) {
	rows, err := s.DB.Read().QueryContext(ctx, `SELECT `+journeyColumns+` FROM itp_journeys ORDER BY created_at, id`)
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
		_, err := tx.ExecContext(ctx, `INSERT INTO itp_application_settings (application_id, key, value, updated_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (application_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			applicationID, key, value, s.now().UnixMilli())
		if err != nil {
			return fmt.Errorf("itp: set application setting: %w", err)
		}
		return nil
	})
}

// ApplicationSetting returns an application setting; ok is false when unset.
func (s *Service) ApplicationSetting(ctx context.Context, applicationID, key string) (value string, ok bool, err error) {
	st, err := s.DB.ReadStmt(ctx, `SELECT value FROM itp_application_settings WHERE application_id = $1 AND key = $2`)
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

// ---- settings ----

// validateSettings checks settings (named prefix[i] in errors): keys
// present, unique and at most 64 characters, values present, and the known
// keys' value types.
func validateSettings(prefix string, settings []Setting) []FieldError {
	var out []FieldError
	seen := map[string]bool{}
	for i, st := range settings {
		name := fmt.Sprintf("%s[%d]", prefix, i)
		switch {
		case st.Key == "":
			out = append(out, FieldError{name + ".key", "is required"})
			continue
		case len(st.Key) > 64:
			out = append(out, FieldError{name + ".key", "must be at most 64 characters"})
		case seen[st.Key]:
			out = append(out, FieldError{name + ".key", "is repeated"})
		}
		seen[st.Key] = true
		if len(st.Value) == 0 || string(st.Value) == "null" {
			out = append(out, FieldError{name + ".value", "is required"})
			continue
		}
		switch st.Key {
		case SettingPrioritiesBrands, SettingJourneyRules:
			var list []string
			if err := json.Unmarshal(st.Value, &list); err != nil {
				out = append(out, FieldError{name + ".value", "must be an array of strings"})
			}
		case SettingSessionTTL:
			if _, err := parseTTL(st.Value); err != nil {
				out = append(out, FieldError{name + ".value", err.Error()})
			}
		}
	}
	return out
}

func parseTTL(v json.RawMessage) (time.Duration, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < int64(MinSessionTTL/time.Second) || n > int64(MaxSessionTTL/time.Second) {
		return 0, fmt.Errorf("must be an integer number of seconds from %d to %d", int64(MinSessionTTL/time.Second), int64(MaxSessionTTL/time.Second))
	}
	return time.Duration(n) * time.Second, nil
}

// mergeSettings returns the journey's settings with the request's applied on
// top: a request key replaces the journey's value in place, new keys follow
// in request order (seed 003, rule 5).
func mergeSettings(journey, request []Setting) []Setting {
	out := make([]Setting, 0, len(journey)+len(request))
	idx := map[string]int{}
	for _, st := range journey {
		idx[st.Key] = len(out)
		out = append(out, st)
	}
	for _, st := range request {
		if i, ok := idx[st.Key]; ok {
			out[i] = st
			continue
		}
		idx[st.Key] = len(out)
		out = append(out, st)
	}
	return out
}

// ---- sessions ----

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
func (s *Service) CreateSession(ctx context.Context, clientID string, req CreateRequest) (*Created, error) {
	if verr := req.Validate(); verr != nil {
		return nil, verr
	}
	app, err := s.Apps.Application(ctx, clientID)
	if errors.Is(err, ErrApplicationNotFound) || (err == nil && app.Disabled) {
		return nil, ErrApplicationNotFound
	}
	if err != nil {
		return nil, err
	}
	journey, err := s.resolveJourney(ctx, app.ID, req.JourneyID)
	if err != nil {
		return nil, err
	}
	// externalId's uniqueness is the unique index's: the insert below fails
	// on a taken one. A rule checked after it that fails looks it up first,
	// so a taken externalId still wins over them as before (seed order).
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
	tags := scalarTags(sess.Tags)
	err = s.DB.Write(ctx, func(tx *sql.Tx) error {
		st, err := s.DB.TxStmt(ctx, tx, insertSessionSQL)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, enc.args(sess)...); err != nil {
			return fmt.Errorf("itp: insert journey session: %w", err)
		}
		if err := s.insertTags(ctx, tx, sess.ID, tags); err != nil {
			return err
		}
		return s.enqueueExpire(ctx, tx, now, sess)
	})
	if store.IsUniqueViolation(err) && req.ExternalID != "" {
		return nil, ErrExternalIDTaken
	}
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

// enqueueExpire queues the session's expiry job in tx: what
// jobs.Enqueue(JobExpire, RunAt: ExpiresAt, UniqueKey: JobExpire+":"+id)
// writes, through a prepared statement (preparing the job insert on every
// create was a tenth of the group commit's time) and with a time-ordered job
// id.
func (s *Service) enqueueExpire(ctx context.Context, tx *sql.Tx, now time.Time, sess *Session) error {
	st, err := s.DB.TxStmt(ctx, tx, insertExpireJobSQL)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, newSessionID(), JobExpire, `{"sessionId":"`+sess.ID+`"}`, JobExpire+":"+sess.ID,
		jobs.StateAvailable, jobs.DefaultMaxAttempts, sess.ExpiresAt.UnixMilli(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("jobs: enqueue %s: %w", JobExpire, err)
	}
	return nil
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
	st, err := s.DB.ReadStmt(ctx, `SELECT 1 FROM itp_journey_sessions WHERE application_id = $1 AND external_id = $2`)
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

// VerifyExpired moves session id of applicationID to EXPIRED if its
// time-to-live has passed and it can still expire, and returns it as it is
// afterwards. Idempotent; racing the expiry job, the change is written once.
func (s *Service) VerifyExpired(ctx context.Context, applicationID, id string) (*Session, error) {
	sess, err := s.read(ctx, id)
	if err != nil {
		return nil, err
	}
	if sess.ApplicationID != applicationID {
		return nil, ErrNotFound
	}
	if !sess.Status.Expirable() || s.now().Before(sess.ExpiresAt) {
		return sess, nil
	}
	return s.expireAndRead(ctx, id)
}

func (s *Service) expireAndRead(ctx context.Context, id string) (*Session, error) {
	if _, err := s.expire(ctx, id); err != nil {
		return nil, err
	}
	return s.read(ctx, id)
}

// expire runs the conditional expiry UPDATE for one session and reports whether it changed it.
func (s *Service) expire(ctx context.Context, id string) (bool, error) {
	var changed bool
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		now := s.now()
		st, err := s.DB.TxStmt(ctx, tx, expireOneSQL)
		if err != nil {
			return err
		}
		res, err := st.ExecContext(ctx, now.UnixMilli(), historySuffix(now, StatusExpired), now.UnixMilli(), id)
		if err != nil {
			return fmt.Errorf("itp: expire journey session: %w", err)
		}
		n, err := res.RowsAffected()
		changed = n == 1
		return err
	})
	if changed {
		s.Logger.InfoContext(ctx, "journey session expired", "session_id", id)
	}
	return changed, err
}

// Transition moves session id to status to inside tx, the caller's
// transaction: change (may be nil) may set the session's ConsentID and
// BrandID, which are written with the status; statusHistory gets one entry.
// The UPDATE is conditional on the status read, so a concurrent change
// (another transition, expiry) makes this one ErrInvalidTransition instead
// of overwriting it. Allowed: PENDING → AWAITING_AUTHORISATION | REJECTED |
// CANCELLED; AWAITING_AUTHORISATION → AUTHORISED | REJECTED | CANCELLED;
// AUTHORISED → FINISHED | REJECTED. A session past its time-to-live that can
// still expire is ErrExpired (EXPIRED itself is reached only by expiry).
func (s *Service) Transition(ctx context.Context, tx *sql.Tx, id string, to Status, change func(*Session)) (*Session, error) {
	sess, err := s.SessionTx(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	from := sess.Status
	if !from.CanMoveTo(to) {
		return nil, fmt.Errorf("%w: %s → %s", ErrInvalidTransition, from, to)
	}
	now := s.now()
	if from.Expirable() && !now.Before(sess.ExpiresAt) {
		return nil, ErrExpired
	}
	if change != nil {
		change(sess)
	}
	sess.Status, sess.UpdatedAt = to, now
	sess.StatusHistory = append(sess.StatusHistory, StatusChange{UpdatedAt: now, Status: to})
	res, err := tx.ExecContext(ctx, `UPDATE itp_journey_sessions SET status = $1, consent_id = $2, brand_id = $3,
		status_history = $4, updated_at = $5 WHERE id = $6 AND status = $7`,
		string(to), nullString(sess.ConsentID), nullString(sess.BrandID), encodeHistory(sess.StatusHistory), now.UnixMilli(), id, string(from))
	if err != nil {
		return nil, fmt.Errorf("itp: update journey session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if n != 1 {
		return nil, fmt.Errorf("%w: %s changed concurrently", ErrInvalidTransition, id)
	}
	return sess, nil
}

// Move is Transition in a transaction of its own.
func (s *Service) Move(ctx context.Context, id string, to Status, change func(*Session)) (*Session, error) {
	var out *Session
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.Transition(ctx, tx, id, to, change)
		return err
	})
	return out, err
}

// ---- expiry: job and sweep ----

type expirePayload struct {
	SessionID string `json:"sessionId"`
}

// Register registers the expiry and sweep jobs' handlers on c.
func (s *Service) Register(c *jobs.Client) {
	c.Register(JobExpire, s.handleExpire, jobs.Backoff(5*time.Second, 5*time.Minute))
	c.Register(JobSweep, s.handleSweep, jobs.Backoff(10*time.Second, 5*time.Minute))
}

// ScheduleSweep makes sure a sweep job is queued (one per SweepEvery slot,
// by unique key), so the sweep runs periodically on some instance, durably,
// from the first start on.
func (s *Service) ScheduleSweep(ctx context.Context) error {
	return s.DB.Write(ctx, func(tx *sql.Tx) error { return s.enqueueSweep(ctx, tx, s.now()) })
}

func (s *Service) enqueueSweep(ctx context.Context, tx *sql.Tx, at time.Time) error {
	slot := at.Truncate(SweepEvery)
	_, err := jobs.Enqueue(ctx, tx, s.now(), jobs.Job{Kind: JobSweep, RunAt: at,
		UniqueKey: fmt.Sprintf("%s:%d", JobSweep, slot.Unix()), MaxAttempts: 5})
	return err
}

func (s *Service) handleSweep(ctx context.Context, _ *jobs.Job) error {
	n, err := s.Sweep(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		s.Logger.InfoContext(ctx, "journey sessions expired by sweep", "count", n)
	}
	return s.DB.Write(ctx, func(tx *sql.Tx) error { return s.enqueueSweep(ctx, tx, s.now().Add(SweepEvery)) })
}

func (s *Service) handleExpire(ctx context.Context, j *jobs.Job) error {
	var p expirePayload
	if err := j.Decode(&p); err != nil || p.SessionID == "" {
		return jobs.Cancel(fmt.Errorf("itp: bad expiry payload: %v", err))
	}
	changed, err := s.expire(ctx, p.SessionID)
	if err != nil || changed {
		return err
	}
	sess, err := s.read(ctx, p.SessionID)
	if errors.Is(err, ErrNotFound) {
		return jobs.Cancel(err)
	}
	if err != nil {
		return err
	}
	if sess.Status.Expirable() && s.now().Before(sess.ExpiresAt) {
		return jobs.RetryAt(errors.New("itp: journey session not due yet"), sess.ExpiresAt)
	}
	return nil // moved on, or already expired by the sweep or verify-expired
}

// Sweep expires every due session that can still expire, in batches of
// SweepBatch with one set-based UPDATE each, and returns how many it expired.
// The expiry job does this per session; Sweep is the safety net (and the
// catch-up after downtime).
func (s *Service) Sweep(ctx context.Context) (int, error) {
	batch := s.SweepBatch
	if batch <= 0 {
		batch = DefaultSweepBatch
	}
	q := sweepSQLite
	if s.DB.Engine() == store.Postgres {
		q = sweepPostgres
	}
	return s.sweepBatches(ctx, q, batch)
}

// sweepBatches runs the sweep statement q in steps of batch sessions
// (store.DB.Sweep) until a step expires fewer.
func (s *Service) sweepBatches(ctx context.Context, q string, batch int) (int, error) {
	n, err := s.DB.Sweep(ctx, batch, func(tx *sql.Tx, limit int) (int64, error) {
		now := s.now()
		st, err := s.DB.TxStmt(ctx, tx, q)
		if err != nil {
			return 0, err
		}
		res, err := st.ExecContext(ctx, now.UnixMilli(), historySuffix(now, StatusExpired), now.UnixMilli(), limit)
		if err != nil {
			return 0, fmt.Errorf("itp: sweep journey sessions: %w", err)
		}
		return res.RowsAffected()
	})
	return int(n), err
}

// ListFilter narrows ListSessions. Zero fields do not filter; the time bounds
// are pointers because the zero time is a bound a client may send.
type ListFilter struct {
	Statuses    []Status
	ExternalID  string
	BrandID     string
	TagKey      string // with TagValue: sessions whose top-level tag TagKey is TagValue
	TagValue    string
	CreatedFrom *time.Time // inclusive; nil: no lower bound
	CreatedTo   *time.Time // exclusive; nil: no upper bound
	Limit       int        // 1…MaxListLimit; 0: DefaultListLimit
	Cursor      string     // from a previous page's next cursor
}

// List page sizes.
const (
	DefaultListLimit = 25
	MaxListLimit     = 100
)

// ErrBadCursor is a cursor ListSessions did not issue.
var ErrBadCursor = errors.New("itp: invalid cursor")

// ListSessions returns application applicationID's sessions matching f,
// newest first, and the cursor of the next page ("" on the last page).
func (s *Service) ListSessions(ctx context.Context, applicationID string, f ListFilter) ([]*Session, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	var (
		where = []string{"application_id = $1"}
		args  = []any{applicationID}
	)
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if len(f.Statuses) > 0 {
		ph := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			ph[i] = arg(string(st))
		}
		where = append(where, "status IN ("+strings.Join(ph, ", ")+")")
	}
	if f.ExternalID != "" {
		where = append(where, "external_id = "+arg(f.ExternalID))
	}
	if f.BrandID != "" {
		where = append(where, "brand_id = "+arg(f.BrandID))
	}
	if f.TagKey != "" {
		where = append(where, "id IN (SELECT session_id FROM itp_journey_session_tags WHERE key = "+arg(f.TagKey)+" AND value = "+arg(f.TagValue)+")")
	}
	if f.CreatedFrom != nil {
		where = append(where, "created_at >= "+arg(f.CreatedFrom.UnixMilli()))
	}
	if f.CreatedTo != nil {
		where = append(where, "created_at < "+arg(f.CreatedTo.UnixMilli()))
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		a, b := arg(at), arg(id)
		where = append(where, "(created_at < "+a+" OR (created_at = "+a+" AND id < "+b+"))")
	}
	q := `SELECT ` + sessionColumns + ` FROM itp_journey_sessions WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit+1)
	rows, err := s.DB.Read().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("itp: list journey sessions: %w", err)
	}
	defer rows.Close()
	out := []*Session{}
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("itp: list journey sessions: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodeCursor(last.CreatedAt.UnixMilli(), last.ID)
	}
	return out, next, nil
}

func encodeCursor(at int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at, 10) + "." + id))
}

func decodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", ErrBadCursor
	}
	at, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || id == "" {
		return 0, "", ErrBadCursor
	}
	return n, id, nil
}
