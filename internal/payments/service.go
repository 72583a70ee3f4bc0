package payments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store"
)

// ConsentsPath is the route of the consents collection.
const ConsentsPath = "/open-banking/payments/v4/consents"

// JobExpire is the job kind that expires a consent left in one status too long.
const JobExpire = "payments.consent.expire"

// JobSweepJTIs is the job kind that deletes the used jti records past
// JTIWindow. Each signed request enqueues the one of its hour (at most one per
// hour, by unique key), due when every jti of that hour has expired, in the
// transaction that records its jti: the records are deleted even if no other
// sweep is ever wired.
const JobSweepJTIs = "payments.jti.sweep"

// Service holds the payment-consent rules; it knows nothing of HTTP.
type Service struct {
	DB     *store.DB
	Clock  clock.Clock
	Logger *slog.Logger
	// BaseURL is Ponte's public URL, for the consents' self links.
	BaseURL string
	// NewID makes consent ids; nil: urn:ponte:<uuid>.
	NewID func() string
	// Settlement moves the Pix payments' money (internal/settlement); without
	// it payments cannot be created or settled (ErrNoSettlement).
	Settlement settlement.Settlement
	// Events receives every Pix payment status change; nil: none.
	Events PaymentEvents
	// ConsentEvents receives every consent status change; nil: none.
	ConsentEvents ConsentEvents
}

// ConsentEvents receives every consent status change inside the
// transaction that writes it (internal/app turns the ones the Open Finance
// webhook convention lists into notifications for the initiator).
type ConsentEvents interface {
	ConsentChanged(ctx context.Context, tx *sql.Tx, e ConsentEvent) error
}

// BatchConsentEvents is ConsentEvents that also takes the changes of a
// settlement batch at once (the consents its payments consumed).
type BatchConsentEvents interface {
	ConsentsChanged(ctx context.Context, tx *sql.Tx, es []ConsentEvent) error
}

// ConsentEvent is one consent status change.
type ConsentEvent struct {
	ConsentID     string
	ApplicationID string // the initiator
	From, To      Status
	At            time.Time
}

// consentChanged tells ConsentEvents about a change just written.
func (s *Service) consentChanged(ctx context.Context, tx *sql.Tx, id, applicationID string, from, to Status, at time.Time) error {
	if s.ConsentEvents == nil || from == to {
		return nil
	}
	return s.ConsentEvents.ConsentChanged(ctx, tx, ConsentEvent{ConsentID: id, ApplicationID: applicationID, From: from, To: to, At: at})
}

// NewService returns a Service.
func NewService(db *store.DB, c clock.Clock, logger *slog.Logger, baseURL string) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{DB: db, Clock: c, Logger: logger, BaseURL: baseURL}
}

// Register registers the expiry job's handler on the job client.
func (s *Service) Register(c *jobs.Client) {
	c.Register(JobExpire, s.handleExpire, jobs.Backoff(5*time.Second, 5*time.Minute))
	c.Register(JobSettle, s.handleSettle, jobs.Backoff(time.Second, time.Minute))
	c.Register(JobSweepJTIs, func(ctx context.Context, _ *jobs.Job) error {
		_, err := s.Sweep(ctx)
		return err
	}, jobs.Backoff(time.Minute, time.Hour))
}

// Sweep deletes the used-jti records past JTIWindow and returns how many.
// A job does it durably (JobSweepJTIs); calling Sweep from a periodic
// housekeeping loop as well is harmless.
func (s *Service) Sweep(ctx context.Context) (int64, error) {
	var n int64
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM payment_consent_jtis WHERE expires_at <= $1`, s.Clock.Now().UnixMilli())
		if err != nil {
			return fmt.Errorf("payments: sweep used jti records: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

func (s *Service) newID() string {
	if s.NewID != nil {
		return s.NewID()
	}
	return "urn:ponte:" + uuid.NewString()
}

// ConsentsURL is the URL of the consents collection: the aud a signed
// POST /consents body must carry.
func (s *Service) ConsentsURL() string { return s.BaseURL + ConsentsPath }

// SelfURL is the URL of consent id.
func (s *Service) SelfURL(id string) string { return s.BaseURL + ConsentsPath + "/" + id }

// CreateInput is one POST /consents call.
type CreateInput struct {
	ApplicationID  string
	Request        ConsentRequest
	IdempotencyKey string
	// JTI is the jti of a signed request body ("" for plain JSON): it is
	// recorded with the consent, and a jti the application used within
	// JTIWindow is ErrJTIReused, with nothing created. A replay of the
	// idempotency key returns the stored response without looking at the jti.
	JTI string
	// Unchanged, when set, is a condition (see CachedCallers.Unchanged) the
	// create's statement on PostgreSQL checks: when it is false nothing is
	// written and Create returns idempotency.ErrGuardFailed. SQLite ignores it.
	Unchanged func(q *idempotency.Query) string
}

// Create validates and stores a consent in AWAITING_AUTHORISATION with its
// expiry job, in one transaction with the idempotency record. It returns the
// 201 response (or the stored one for a replayed key), a *ValidationError for
// a refused request, or idempotency.ErrKeyReused.
func (s *Service) Create(ctx context.Context, in CreateInput) (idempotency.Response, error) {
	now := s.Clock.Now().UTC().Truncate(time.Second)
	fingerprint, err := idempotency.Fingerprint(http.MethodPost, ConsentsPath, in.Request)
	if err != nil {
		return idempotency.Response{}, err
	}
	if verr := in.Request.Validate(now); verr != nil {
		// A refused request does not consume its key (the specification stores
		// keys on 201 for consents), but a key already used for another body is
		// still reported as such.
		if in.IdempotencyKey != "" {
			if reused, err := s.keyReused(ctx, in, fingerprint, now); err != nil {
				return idempotency.Response{}, err
			} else if reused {
				return idempotency.Response{}, idempotency.ErrKeyReused
			}
		}
		return idempotency.Response{}, verr
	}
	c := &Consent{
		ID: s.newID(), ApplicationID: in.ApplicationID, Status: StatusAwaitingAuthorisation, Request: in.Request,
		CreatedAt: now, ExpiresAt: now.Add(AuthorisationWindow), StatusUpdatedAt: now,
	}
	resp, err := idempotency.Encode(http.StatusCreated, c.Response(s.SelfURL(c.ID), now))
	if err != nil {
		return idempotency.Response{}, err
	}
	req := idempotency.Request{ApplicationID: in.ApplicationID, Key: in.IdempotencyKey, Fingerprint: fingerprint, Now: now}
	if s.DB.Pool() != nil {
		// PostgreSQL: the same writes as below, as one statement (one round trip).
		return idempotency.RunPostgresIf(ctx, s.DB, req, resp, in.Unchanged, func(q *idempotency.Query) error {
			if in.JTI != "" {
				if err := recordJTIQuery(q, in.ApplicationID, in.JTI, now); err != nil {
					return err
				}
			}
			if err := insertConsentQuery(q, c); err != nil {
				return err
			}
			return q.Enqueue("expiry", now, expiryJob(c))
		})
	}
	return idempotency.Run(ctx, s.DB, req, resp, func(tx *sql.Tx) error {
		if in.JTI != "" {
			if err := s.recordJTI(ctx, tx, in.ApplicationID, in.JTI, now); err != nil {
				return err
			}
		}
		if err := insertConsent(ctx, tx, c); err != nil {
			return err
		}
		return enqueueExpiry(ctx, tx, now, c)
	})
}

// recordJTI records the application's jti inside tx, or returns ErrJTIReused
// if it is live. A record past its window (not yet swept) is taken over.
// It also makes sure the sweep job of the current hour exists.
func (s *Service) recordJTI(ctx context.Context, tx *sql.Tx, applicationID, jti string, now time.Time) error {
	st, err := s.DB.TxStmt(ctx, tx, `INSERT INTO payment_consent_jtis (application_id, jti, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (application_id, jti) DO UPDATE SET expires_at = excluded.expires_at
		WHERE payment_consent_jtis.expires_at <= $4`)
	if err != nil {
		return err
	}
	res, err := st.ExecContext(ctx, applicationID, jti, now.Add(JTIWindow).UnixMilli(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("payments: record jti: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("payments: record jti: %w", err)
	} else if n != 1 {
		return ErrJTIReused
	}
	_, err = jobs.Enqueue(ctx, tx, now, sweepJTIsJob(now))
	return err
}

// recordJTIQuery is recordJTI on PostgreSQL's one-round-trip path: the jti
// is inserted when q claims its key, and a live one fails the whole batch
// with ErrJTIReused. A record past its window is deleted first, in the same
// batch (a statement's CTEs could not see the delete before inserting).
func recordJTIQuery(q *idempotency.Query, applicationID, jti string, now time.Time) error {
	q.Before(`DELETE FROM payment_consent_jtis WHERE application_id = $1 AND jti = $2 AND expires_at <= $3`,
		applicationID, jti, now.UnixMilli())
	q.With("jti", `INSERT INTO payment_consent_jtis (application_id, jti, expires_at) SELECT `+
		q.Args(applicationID, jti, now.Add(JTIWindow).UnixMilli())+` FROM `+idempotency.Claimed)
	q.OnUniqueViolation("payment_consent_jtis", ErrJTIReused)
	return q.Enqueue("jti_sweep", now, sweepJTIsJob(now))
}

// sweepJTIsJob is the sweep of the jti records of now's hour, due when
// they have all expired.
func sweepJTIsJob(now time.Time) jobs.Job {
	hour := now.Truncate(time.Hour)
	return jobs.Job{
		Kind: JobSweepJTIs, RunAt: hour.Add(time.Hour + JTIWindow),
		UniqueKey: fmt.Sprintf("%s:%d", JobSweepJTIs, hour.Unix()),
	}
}

// keyReused reports whether the key is live with another fingerprint.
func (s *Service) keyReused(ctx context.Context, in CreateInput, fingerprint string, now time.Time) (bool, error) {
	var stored string
	err := s.DB.Read().QueryRowContext(ctx, `SELECT fingerprint FROM idempotency_records
		WHERE application_id = $1 AND idempotency_key = $2 AND expires_at > $3`,
		in.ApplicationID, in.IdempotencyKey, now.UnixMilli()).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("payments: read idempotency key: %w", err)
	}
	return stored != fingerprint, nil
}

type expirePayload struct {
	ConsentID string `json:"consentId"`
	Status    Status `json:"status"`
}

func enqueueExpiry(ctx context.Context, tx *sql.Tx, now time.Time, c *Consent) error {
	_, err := jobs.Enqueue(ctx, tx, now, expiryJob(c))
	return err
}

// expiryJob is the job that expires c if it is still in its status at its expiry.
func expiryJob(c *Consent) jobs.Job {
	return jobs.Job{
		Kind: JobExpire, Payload: expirePayload{ConsentID: c.ID, Status: c.Status}, RunAt: c.ExpiresAt,
		UniqueKey: JobExpire + ":" + c.ID + ":" + string(c.Status),
	}
}

// Get returns the consent id of applicationID. A consent of another
// application is ErrNotFound. A consent past its expiry whose job has not run
// yet is expired first, so a read never shows a stale pending status.
func (s *Service) Get(ctx context.Context, applicationID, id string) (*Consent, error) {
	c, err := getConsent(ctx, s.DB.Read(), id)
	if err != nil {
		return nil, err
	}
	if c.ApplicationID != applicationID {
		return nil, ErrNotFound
	}
	if expiryCode(c.Status) != "" && !s.Clock.Now().Before(c.ExpiresAt) {
		if c.Status == StatusAuthorised {
			// A consent whose payments were created in time does not expire:
			// no write transaction for reading it.
			if used, err := consentHasPayments(ctx, s.DB.Read(), c.ID); err != nil || used {
				return c, err
			}
		}
		if c, err = s.expire(ctx, id, c.Status); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Authorise records the user's approval: AWAITING_AUTHORISATION (or
// PARTIALLY_ACCEPTED) → AUTHORISED, with the debtor account the user chose
// (nil: the one the initiator sent, which must then exist; a different one
// from the initiator's is ErrDebtorAccount), and schedules the consumption
// expiry 60 minutes later. An expired consent is ErrExpired; any other status
// ErrInvalidTransition.
func (s *Service) Authorise(ctx context.Context, consentID string, debtorAccount *Account) (*Consent, error) {
	return s.transition(ctx, consentID, authorise(debtorAccount))
}

// AuthoriseTx is Authorise inside the caller's transaction, so the approval
// commits together with the caller's own records (the holder's interaction).
func (s *Service) AuthoriseTx(ctx context.Context, tx *sql.Tx, consentID string, debtorAccount *Account) (*Consent, error) {
	return s.transitionTx(ctx, tx, consentID, authorise(debtorAccount))
}

func authorise(debtorAccount *Account) func(c *Consent, now time.Time) error {
	return func(c *Consent, now time.Time) error {
		if c.Status != StatusAwaitingAuthorisation && c.Status != StatusPartiallyAccepted {
			return fmt.Errorf("%w: %s → %s", ErrInvalidTransition, c.Status, StatusAuthorised)
		}
		if !now.Before(c.ExpiresAt) {
			return ErrExpired
		}
		switch {
		case debtorAccount == nil && c.Request.DebtorAccount == nil:
			return ErrDebtorAccount
		case debtorAccount == nil:
			debtorAccount = c.Request.DebtorAccount
		case c.Request.DebtorAccount != nil && *c.Request.DebtorAccount != *debtorAccount:
			return ErrDebtorAccount
		}
		chk := &checker{}
		validateAccount(chk, "debtorAccount", debtorAccount)
		if len(chk.problems) > 0 {
			return fmt.Errorf("%w: %s", ErrDebtorAccount, chk.problems[0].Detail)
		}
		acct := *debtorAccount
		c.Status, c.DebtorAccount, c.StatusUpdatedAt, c.ExpiresAt = StatusAuthorised, &acct, now, now.Add(ConsumptionWindow)
		return nil
	}
}

// Reject rejects a consent that is not final with code (a user's cancel is
// RejectRejeitadoUsuario) and the specification's standard detail.
func (s *Service) Reject(ctx context.Context, consentID string, code RejectionCode) (*Consent, error) {
	change, err := reject(code)
	if err != nil {
		return nil, err
	}
	return s.transition(ctx, consentID, change)
}

// RejectTx is Reject inside the caller's transaction.
func (s *Service) RejectTx(ctx context.Context, tx *sql.Tx, consentID string, code RejectionCode) (*Consent, error) {
	change, err := reject(code)
	if err != nil {
		return nil, err
	}
	return s.transitionTx(ctx, tx, consentID, change)
}

func reject(code RejectionCode) (func(c *Consent, now time.Time) error, error) {
	detail, ok := rejectionDetails[code]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrRejectionCode, code)
	}
	return func(c *Consent, now time.Time) error {
		switch c.Status {
		case StatusAwaitingAuthorisation, StatusPartiallyAccepted, StatusAuthorised:
		default:
			return fmt.Errorf("%w: %s → %s", ErrInvalidTransition, c.Status, StatusRejected)
		}
		c.Status, c.StatusUpdatedAt = StatusRejected, now
		c.Rejection = &RejectionReason{Code: code, Detail: detail}
		return nil
	}, nil
}

// transition applies change to the consent in one transaction, writes it if
// the status is still the one read, and enqueues the new status's expiry.
func (s *Service) transition(ctx context.Context, id string, change func(c *Consent, now time.Time) error) (*Consent, error) {
	var out *Consent
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.transitionTx(ctx, tx, id, change)
		return err
	})
	return out, err
}

func (s *Service) transitionTx(ctx context.Context, tx *sql.Tx, id string, change func(c *Consent, now time.Time) error) (*Consent, error) {
	now := s.Clock.Now().UTC().Truncate(time.Second)
	c, err := getConsent(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	from := c.Status
	if err := change(c, now); err != nil {
		return nil, err
	}
	if err := updateStatus(ctx, tx, c, from); err != nil {
		return nil, err
	}
	if err := s.consentChanged(ctx, tx, c.ID, c.ApplicationID, from, c.Status, now); err != nil {
		return nil, err
	}
	if expiryCode(c.Status) != "" {
		if err := enqueueExpiry(ctx, tx, now, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ConsentTx reads a consent through tx, whoever created it (the holder side
// shows it to the user and decides on it).
func (s *Service) ConsentTx(ctx context.Context, tx *sql.Tx, consentID string) (*Consent, error) {
	return getConsent(ctx, tx, consentID)
}

// expiryCode is the rejection code of a consent that outlives status, or "".
func expiryCode(st Status) RejectionCode {
	switch st {
	case StatusAwaitingAuthorisation:
		return RejectTempoExpiradoAutorizacao
	case StatusAuthorised:
		return RejectTempoExpiradoConsumo
	}
	return ""
}

// expire rejects the consent if it is still in status and past its expiry,
// and returns it as it is afterwards.
func (s *Service) expire(ctx context.Context, id string, status Status) (*Consent, error) {
	var out *Consent
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		now := s.Clock.Now().UTC().Truncate(time.Second)
		c, err := getConsent(ctx, tx, id)
		if err != nil {
			return err
		}
		out = c
		code := expiryCode(c.Status)
		if c.Status != status || code == "" || now.Before(c.ExpiresAt) {
			return nil // moved on, or not due (an early job): nothing to do
		}
		if c.Status == StatusAuthorised {
			// Payments initiated in time consume the consent once they are
			// all final (consumeIfDone), whatever the window says.
			if used, err := consentHasPayments(ctx, tx, c.ID); err != nil || used {
				return err
			}
		}
		c.Status, c.StatusUpdatedAt = StatusRejected, now
		c.Rejection = &RejectionReason{Code: code, Detail: rejectionDetails[code]}
		if err := updateStatus(ctx, tx, c, status); err != nil {
			return err
		}
		return s.consentChanged(ctx, tx, c.ID, c.ApplicationID, status, c.Status, now)
	})
	return out, err
}

func (s *Service) handleExpire(ctx context.Context, j *jobs.Job) error {
	var p expirePayload
	if err := j.Decode(&p); err != nil {
		return jobs.Cancel(fmt.Errorf("payments: bad expiry payload: %w", err))
	}
	c, err := s.expire(ctx, p.ConsentID, p.Status)
	if errors.Is(err, ErrNotFound) {
		return jobs.Cancel(err)
	}
	if err != nil {
		return err
	}
	if c.Status == p.Status && s.Clock.Now().Before(c.ExpiresAt) {
		return jobs.RetryAt(errors.New("payments: consent not due yet"), c.ExpiresAt)
	}
	if c.Status == StatusRejected && c.Rejection != nil && c.Rejection.Code == expiryCode(p.Status) {
		s.Logger.InfoContext(ctx, "payment consent expired", "consent_id", c.ID, "from", p.Status)
	}
	return nil
}

// LoggedUserDocument returns, reading through tx, the CPF of the user logged
// in at the initiator when the consent was created ("" when it names none).
// Consent-flow tickets check the holder's customer against it.
func (s *Service) LoggedUserDocument(ctx context.Context, tx *sql.Tx, consentID string) (string, error) {
	c, err := getConsent(ctx, tx, consentID)
	if err != nil {
		return "", err
	}
	if c.Request.LoggedUser == nil || c.Request.LoggedUser.Document == nil {
		return "", nil
	}
	return c.Request.LoggedUser.Document.Identification, nil
}
