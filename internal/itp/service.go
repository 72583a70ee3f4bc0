package itp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
)

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

// ApplicationRows is implemented by Applications kept in Ponte's database.
// UnchangedSQL is a PostgreSQL query on $1, an application id, and $2, a
// JSON array of redirect URLs, that returns a row exactly when that
// application is enabled with those redirect URLs. CreateSession on
// PostgreSQL then caches the applications it reads and runs the query in
// its insert's statement, instead of reading the application first.
type ApplicationRows interface {
	UnchangedSQL() string
}

// Service holds brands, journeys and journey sessions; it knows nothing of HTTP.
type Service struct {
	DB     *store.DB
	Clock  clock.Clock
	Logger *slog.Logger
	// PublicURL is Ponte's public base URL, the start of journeySessionUrl.
	PublicURL string
	// KeyDir is where brands' key files were created before brands' keys
	// were kept in the database (Keys); AddBrand no longer writes there.
	KeyDir string
	// Keys seals brands' signing keys, kept in the database (brands.go).
	Keys Sealer
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
