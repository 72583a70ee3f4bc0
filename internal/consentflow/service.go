package consentflow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/store"
)

// RequestURIChecker decides whether a ticket's requestUri names a live pushed
// authorization request issued to clientId, for the customer documentNumber.
// It runs inside the ticket's transaction and returns ErrRequestURINotFound or
// ErrDocumentMismatch for a request it refuses.
type RequestURIChecker interface {
	CheckRequestURI(ctx context.Context, tx *sql.Tx, requestURI, clientID, documentNumber string) error
}

// RequestURIStatement is a RequestURIChecker that can also check inside
// the one statement that creates a ticket on PostgreSQL (issue 17 §2: one
// round trip), with the same outcomes as CheckRequestURI.
type RequestURIStatement interface {
	// RequestURISQL returns the check as a scalar SQL expression whose
	// value is one of the Verdict constants, and its arguments, numbered
	// from the placeholder first. ok is false when this request is checked
	// in the transaction (CheckRequestURI) instead.
	RequestURISQL(ctx context.Context, requestURI, clientID, documentNumber string, first int) (expr string, args []any, ok bool)
}

// The values of a RequestURIStatement's expression.
const (
	VerdictAccepted      = "ok"
	VerdictNotFound      = "requestUri"     // ErrRequestURINotFound
	VerdictMismatch      = "documentNumber" // ErrDocumentMismatch
	VerdictInTransaction = "tx"             // CheckRequestURI decides
)

// SandboxRequestURIs accepts any value, as seed 000 allows in the sandbox.
type SandboxRequestURIs struct{}

// CheckRequestURI implements RequestURIChecker.
func (SandboxRequestURIs) CheckRequestURI(context.Context, *sql.Tx, string, string, string) error {
	return nil
}

// TicketMetrics count ticket outcomes.
type TicketMetrics struct {
	Created, Redeemed, Expired prometheus.Counter
}

// NewTicketMetrics registers the ticket counters in reg.
func NewTicketMetrics(reg prometheus.Registerer) *TicketMetrics {
	m := &TicketMetrics{
		Created:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ponte_tickets_created_total", Help: "Consent-flow tickets created."}),
		Redeemed: prometheus.NewCounter(prometheus.CounterOpts{Name: "ponte_tickets_redeemed_total", Help: "Consent-flow tickets redeemed by the WebView."}),
		Expired:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ponte_tickets_expired_total", Help: "Consent-flow tickets that reached 60 s unused."}),
	}
	reg.MustRegister(m.Created, m.Redeemed, m.Expired)
	return m
}

// EventTicketUsed is emitted when a ticket is redeemed by the WebView.
const EventTicketUsed = "CONSENT_FLOW_TICKET_WAS_USED"

// EventEmitter records a ticket event for partners' webhooks in the caller's
// transaction, so the event exists exactly when the state change does.
type EventEmitter interface {
	EmitTicketEvent(ctx context.Context, tx *sql.Tx, name string, t *Ticket) error
}

// EventStatement is an EventEmitter that can also record the ticket event
// inside the one statement that redeems a ticket on PostgreSQL (issue 17
// §2: one round trip). An emitter without it makes redemption there take
// a transaction.
type EventStatement interface {
	// TicketEventSQL returns what EmitTicketEvent would write, as CTEs
	// reading the ticket from from, a CTE of one row (or none) with the
	// columns of consent_flow_tickets as they are after the change; t holds
	// what is known before the statement runs (TicketID, Status). first is
	// the number of the first placeholder the CTEs may use.
	TicketEventSQL(ctx context.Context, name string, t *Ticket, from string, first int) (EventSQL, error)
}

// EventSQL is an event's part of a PostgreSQL statement.
type EventSQL struct {
	// CTEs are data-modifying CTEs to add to the statement's WITH clause.
	CTEs string
	// Args are their arguments, numbered from the first placeholder given.
	Args []any
	// Check is an expression the statement's final SELECT evaluates: it
	// fails the statement with SQLSTATE 22P02 when the event must be
	// emitted in a transaction instead (EmitTicketEvent decides there).
	Check string
}

// PageNames tells, as SQL, the names the WebView shows beside a redeemed
// ticket, so that on PostgreSQL the redemption's own statement reads them
// and the whole page is one round trip.
type PageNames interface {
	// InitiatorNameSQL is a scalar expression over clientID (an SQL
	// expression): the client's registered name, empty for none.
	InitiatorNameSQL(clientID string) string
	// PartnerNameSQL is a scalar expression over applicationID: the enabled
	// holder partner's name, NULL when it is not one.
	PartnerNameSQL(applicationID string) string
}

// Tickets is the consent-flow ticket service.
type Tickets struct {
	db          *store.DB
	clock       clock.Clock
	requestURIs RequestURIChecker
	metrics     *TicketMetrics
	events      EventEmitter
	names       PageNames
}

// ReadPageNames makes redemptions on PostgreSQL read the names the WebView
// shows (see Session.NamesRead); call it before serving.
func (s *Tickets) ReadPageNames(n PageNames) { s.names = n }

// NewTickets returns the ticket service; events may be nil.
func NewTickets(db *store.DB, c clock.Clock, uris RequestURIChecker, m *TicketMetrics, events EventEmitter) *Tickets {
	return &Tickets{db: db, clock: c, requestURIs: uris, metrics: m, events: events}
}

// Validate reports every invalid field of a create request.
func (in *CreateTicket) Validate() []httpx.FieldError {
	var fields []httpx.FieldError
	check := func(name, v string, max int) {
		switch {
		case strings.TrimSpace(v) == "":
			fields = append(fields, httpx.FieldError{Field: name, Message: "must not be empty"})
		case len(v) > max || !utf8.ValidString(v):
			fields = append(fields, httpx.FieldError{Field: name, Message: fmt.Sprintf("must be valid text of at most %d bytes", max)})
		}
	}
	check("requestUri", in.RequestURI, maxRequestURI)
	check("clientId", in.ClientID, maxClientID)
	if err := ofb.ValidateDocument(in.DocumentNumber); err != nil {
		fields = append(fields, httpx.FieldError{Field: "documentNumber", Message: err.Error()})
	}
	return fields
}

// Created is what a create request gets: the ticket its idempotency key
// names, fresh or replayed, or the answer recorded under the key in
// idempotency_records.
type Created struct {
	// Ticket is the ticket as it was created (UNUSED, UpdatedAt =
	// CreatedAt), also when replayed after it was used; nil when Stored
	// answers.
	Ticket *Ticket
	// Stored is the response recorded in idempotency_records under the key
	// (a ticket's from before migration 00011): the answer, byte for byte.
	Stored *idempotency.Response
	// Replayed is true when an earlier request with the key made the answer.
	Replayed bool
}

// Create issues a ticket for the calling application, idempotently under key.
// route is the request's route pattern ("POST /path"): with the body, it
// fingerprints the key in idempotency_records. An invalid request is a
// *ValidationError listing every invalid field.
//
// A key lives in the ticket's own row (see insertTicketSQL): one insert, and
// the single SQLite writer's serial section holds only that and the request
// check. Keys recorded in idempotency_records (by another route of the
// application, or before migration 00011) are honoured as before.
func (s *Tickets) Create(ctx context.Context, p *httpx.Principal, in CreateTicket, key, route string) (Created, error) {
	if fields := in.Validate(); len(fields) > 0 {
		return Created{}, &ValidationError{Fields: fields}
	}
	exact := s.clock.Now()
	now := exact.Truncate(time.Second) // the API shows seconds; store what it shows
	t := &Ticket{
		TicketID: newTicketID(exact), ApplicationID: p.ApplicationID, CompanyKey: p.CompanyKey,
		DocumentNumber: in.DocumentNumber, RequestURI: in.RequestURI, ClientID: in.ClientID,
		Status: TicketUnused, CreatedAt: now, UpdatedAt: now, ExpiresAt: exact.Add(TicketTTL),
	}
	var (
		out Created
		err error
	)
	check, statement := (*requestURICheck)(nil), false
	if s.db.Pool() != nil { // SQLite never builds the check's SQL
		check, statement = s.checkSQL(ctx, in)
	}
	if statement {
		out, err = s.createPostgres(ctx, p, in, key, route, t, now, check)
	} else {
		out, err = s.createTx(ctx, p, in, key, route, t, now)
	}
	if err != nil {
		return Created{}, err
	}
	if !out.Replayed {
		s.metrics.Created.Inc()
	}
	return out, nil
}

// checkSQL is the requestUri check as part of the create's statement on
// PostgreSQL: nil for the sandbox's, which reads nothing. ok is false when
// the check is made in the transaction.
func (s *Tickets) checkSQL(ctx context.Context, in CreateTicket) (check *requestURICheck, ok bool) {
	switch c := s.requestURIs.(type) {
	case SandboxRequestURIs:
		return nil, true
	case RequestURIStatement:
		expr, args, ok := c.RequestURISQL(ctx, in.RequestURI, in.ClientID, in.DocumentNumber, insertTicketArgs+1)
		if !ok {
			return nil, false
		}
		return &requestURICheck{expr: expr, args: args}, true
	}
	return nil, false
}

// requestURICheck is a RequestURIStatement's expression and arguments.
type requestURICheck struct {
	expr string
	args []any
}

// createTx is Create as one transaction: SQLite's path, PostgreSQL's when
// the requestUri check is not part of the statement (a checker without
// RequestURIStatement, or one that leaves this request to Go), and the
// rare paths of a key that is taken.
func (s *Tickets) createTx(ctx context.Context, p *httpx.Principal, in CreateTicket, key, route string, t *Ticket, now time.Time) (Created, error) {
	var out Created
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		out = Created{Ticket: t}
		if err := idempotency.Lock(ctx, s.db, tx, p.ApplicationID, key); err != nil {
			return err
		}
		for released := false; ; released = true {
			inserted, err := insertTicket(ctx, s.db, tx, t, key)
			if err != nil {
				return err
			}
			if inserted {
				// After the insert, as the key's record came first before:
				// a replay never depends on the pushed request still being live.
				return s.requestURIs.CheckRequestURI(ctx, tx, in.RequestURI, in.ClientID, in.DocumentNumber)
			}
			// The key is taken: by a record in idempotency_records...
			// (Only this rare path needs the request's fingerprint.)
			method, _, _ := strings.Cut(route, " ")
			fp, err := idempotency.Fingerprint(method, route, in)
			if err != nil {
				return err
			}
			req := idempotency.Request{ApplicationID: p.ApplicationID, Key: key, Fingerprint: fp, Now: now}
			stored, found, err := idempotency.Lookup(ctx, s.db, tx, req)
			if err != nil || found {
				out = Created{Stored: &stored, Replayed: stored.Replayed}
				return err
			}
			// ...or by a ticket.
			prev, err := ticketByKey(ctx, s.db, tx, p.ApplicationID, key)
			if err != nil {
				return err
			}
			if !prev.CreatedAt.Add(idempotency.TTL).After(now) && !released {
				// Expired but still held: the key is free again.
				if err := releaseKey(ctx, tx, prev.TicketID); err != nil {
					return err
				}
				continue
			}
			// The fingerprint was the route and these three fields.
			if prev.RequestURI != in.RequestURI || prev.ClientID != in.ClientID || prev.DocumentNumber != in.DocumentNumber {
				return idempotency.ErrKeyReused
			}
			out = Created{Ticket: asCreated(prev), Replayed: true}
			return nil
		}
	})
	if err != nil {
		return Created{}, err
	}
	return out, nil
}

// asCreated is t as it was when created: what a replay answers.
func asCreated(t *Ticket) *Ticket {
	created := *t
	created.Status, created.UpdatedAt = TicketUnused, t.CreatedAt
	return &created
}

// Get returns a ticket the application created; any other ticket is not found.
func (s *Tickets) Get(ctx context.Context, p *httpx.Principal, ticketID string) (*Ticket, error) {
	if !validTicketID(ticketID) {
		return nil, ErrTicketNotFound
	}
	var (
		t   *Ticket
		err error
	)
	if pool := s.db.Pool(); pool != nil {
		t, err = scanTicket(pool.QueryRow(ctx, selectTicketSQL, ticketID))
	} else {
		t, err = getTicket(ctx, s.db.Read(), ticketID)
	}
	if err != nil {
		return nil, err
	}
	if t.ApplicationID != p.ApplicationID {
		return nil, ErrTicketNotFound
	}
	return t, nil
}

// Session is the holder browser session a redeemed ticket opens.
type Session struct {
	Token     string // the cookie value; stored only as a hash
	ExpiresAt time.Time
	// InteractionID is the consent journey behind the ticket's requestUri
	// ("" when none is open, e.g. a sandbox ticket for a made-up requestUri).
	InteractionID string
	// NamesRead is true when the redemption read the names the WebView
	// shows (PostgreSQL, with PageNames): Initiator, the client's registered
	// name ("" for none), and Partner, the enabled holder partner's name
	// ("" for none). Otherwise the page reads them itself.
	NamesRead          bool
	Initiator, Partner string
	// Interaction is the open interaction as the redemption's statement
	// found it (PostgreSQL); nil when the page reads it itself.
	Interaction *Interaction
}

// journeyOf finds the open interaction a ticket leads to: the holder
// partner's own, for the ticket's pushed request (full URN or its id part)
// and initiator.
func journeyOf(ctx context.Context, tx *sql.Tx, t *Ticket, now time.Time) (string, error) {
	uri := t.RequestURI
	if !strings.HasPrefix(uri, RequestURIPrefix) {
		uri = RequestURIPrefix + uri
	}
	var id string
	err := tx.QueryRowContext(ctx, `SELECT id FROM holder_interactions
		WHERE application_id = $1 AND request_uri = $2 AND client_id = $3 AND status IN ($4, $5) AND expires_at > $6
		ORDER BY created_at DESC LIMIT 1`,
		t.ApplicationID, uri, t.ClientID, InteractionPending, InteractionAuthenticated, now.UnixMilli()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("holder: find the ticket's interaction: %w", err)
	}
	return id, nil
}

// RequestURIPrefix is the URN prefix of pushed authorization requests (RFC 9126).
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// IssueForJourney creates, without an API call, the ticket Ponte itself uses
// to open the WebView when the holder partner has no app (no deep link): the
// same one-time, 60-second ticket a partner's app would have asked for.
func (s *Tickets) IssueForJourney(ctx context.Context, it *Interaction, companyKey string) (string, error) {
	exact := s.clock.Now()
	now := exact.Truncate(time.Second)
	t := &Ticket{
		TicketID: newTicketID(exact), ApplicationID: it.ApplicationID, CompanyKey: companyKey,
		DocumentNumber: it.Document, RequestURI: it.RequestURI, ClientID: it.ClientID,
		Status: TicketUnused, CreatedAt: now, UpdatedAt: now, ExpiresAt: exact.Add(TicketTTL),
	}
	var err error
	if pool := s.db.Pool(); pool != nil {
		_, _, err = insertTicketPostgres(ctx, pool, t, "", nil)
	} else {
		err = s.db.Write(ctx, func(tx *sql.Tx) error {
			_, err := insertTicket(ctx, s.db, tx, t, "")
			return err
		})
	}
	if err != nil {
		return "", err
	}
	s.metrics.Created.Inc()
	return t.TicketID, nil
}

// Redeem uses a ticket: atomically, exactly one caller turns an UNUSED,
// unexpired ticket into USED and gets a new holder session for it. Others get
// ErrTicketUsed, ErrTicketExpired or ErrTicketNotFound.
func (s *Tickets) Redeem(ctx context.Context, ticketID string) (*Ticket, *Session, error) {
	if !validTicketID(ticketID) {
		return nil, nil, ErrTicketNotFound
	}
	now := s.clock.Now()
	sess := &Session{Token: randomToken(), ExpiresAt: now.Add(SessionTTL)}
	var (
		t   *Ticket
		err error
	)
	events, eventSQL := s.events.(EventStatement)
	if pool := s.db.Pool(); pool != nil && (s.events == nil || eventSQL) {
		t, err = s.redeemPostgres(ctx, pool, events, ticketID, now, sess)
		if errors.Is(err, errEmitInTransaction) {
			t, err = s.redeemTx(ctx, ticketID, now, sess)
		}
	} else {
		t, err = s.redeemTx(ctx, ticketID, now, sess)
	}
	if err != nil {
		return nil, nil, err
	}
	s.metrics.Redeemed.Inc()
	return t, sess, nil
}

// redeemTx is Redeem as one transaction: SQLite's path, and PostgreSQL's
// when the ticket event must be emitted in a transaction.
func (s *Tickets) redeemTx(ctx context.Context, ticketID string, now time.Time, sess *Session) (*Ticket, error) {
	var t *Ticket
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE consent_flow_tickets SET status = $1, updated_at = $2
			WHERE ticket_id = $3 AND status = $4 AND expires_at > $5`,
			TicketUsed, now.Truncate(time.Second).UnixMilli(), ticketID, TicketUnused, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("holder: redeem ticket: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if t, err = getTicket(ctx, tx, ticketID); err != nil {
			return err
		}
		if n == 0 {
			if t.Status == TicketUsed {
				return ErrTicketUsed
			}
			return ErrTicketExpired
		}
		if sess.InteractionID, err = journeyOf(ctx, tx, t, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO holder_sessions (id_hash, ticket_id, created_at, expires_at, interaction_id) VALUES ($1, $2, $3, $4, $5)`,
			hashToken(sess.Token), ticketID, now.UnixMilli(), sess.ExpiresAt.UnixMilli(), nullable(sess.InteractionID))
		if err != nil {
			return fmt.Errorf("holder: open session: %w", err)
		}
		if s.events == nil {
			return nil
		}
		return s.events.EmitTicketEvent(ctx, tx, EventTicketUsed, t)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// SessionTicket returns the ticket behind a live holder session cookie and
// the session (its expiry and interaction; Token is left empty).
func (s *Tickets) SessionTicket(ctx context.Context, token string) (*Ticket, *Session, error) {
	var (
		ticketID      string
		expiresAt     int64
		interactionID sql.NullString
	)
	err := s.db.Read().QueryRowContext(ctx, `SELECT ticket_id, expires_at, interaction_id FROM holder_sessions WHERE id_hash = $1 AND expires_at > $2`,
		hashToken(token), s.clock.Now().UnixMilli()).Scan(&ticketID, &expiresAt, &interactionID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrTicketNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("holder: read session: %w", err)
	}
	t, err := getTicket(ctx, s.db.Read(), ticketID)
	return t, &Session{ExpiresAt: time.UnixMilli(expiresAt), InteractionID: interactionID.String}, err
}

// Sweep counts tickets that expired unused (each exactly once, whichever
// instance sees it first) and deletes expired holder sessions.
func (s *Tickets) Sweep(ctx context.Context) (expired int64, err error) {
	return s.sweep(ctx, store.SweepChunk)
}

func (s *Tickets) sweep(ctx context.Context, chunk int) (expired int64, err error) {
	now := s.clock.Now().UnixMilli()
	// The outer conditions repeat the inner ones: on PostgreSQL a row another
	// instance counted while this one waited for its lock is skipped, not
	// counted twice. 'UNUSED' is literal so both engines use the partial index
	// consent_flow_tickets_pending.
	expired, err = s.db.Sweep(ctx, chunk, func(tx *sql.Tx, limit int) (int64, error) {
		res, err := tx.ExecContext(ctx, `UPDATE consent_flow_tickets SET expiry_counted = 1
			WHERE ticket_id IN (SELECT ticket_id FROM consent_flow_tickets
				WHERE status = 'UNUSED' AND expiry_counted = 0 AND expires_at <= $1 LIMIT $2)
			AND status = 'UNUSED' AND expiry_counted = 0`, now, limit)
		if err != nil {
			return 0, fmt.Errorf("holder: sweep tickets: %w", err)
		}
		return res.RowsAffected()
	})
	// expired counts committed steps only, also when a later one failed.
	s.metrics.Expired.Add(float64(expired))
	if err != nil {
		return expired, err
	}
	_, err = s.db.Sweep(ctx, chunk, func(tx *sql.Tx, limit int) (int64, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM holder_sessions WHERE id_hash IN (
			SELECT id_hash FROM holder_sessions WHERE expires_at <= $1 LIMIT $2)`, now, limit)
		if err != nil {
			return 0, fmt.Errorf("holder: sweep holder sessions: %w", err)
		}
		return res.RowsAffected()
	})
	return expired, err
}

// newTicketID returns 32 lowercase hex characters, the documented maximum
// length: the creation time in milliseconds (48 bits, big-endian, as in
// UUIDv7) then 80 random bits, unguessable since the id alone opens the
// WebView for 60 seconds (OWASP asks 64 bits of entropy of a session id).
// The time prefix keeps new ids together at the end of the ticket_id index:
// every index page a commit touches is written whole to SQLite's WAL, and a
// coarser prefix (seconds) scattered one second's thousands of tickets over
// dozens of pages.
func newTicketID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	if _, err := rand.Read(b[6:]); err != nil {
		panic(fmt.Sprintf("holder: crypto/rand failed: %v", err)) // never happens on supported platforms
	}
	return hex.EncodeToString(b[:])
}

func validTicketID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("holder: crypto/rand failed: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
