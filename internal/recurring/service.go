package recurring

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
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store"
)

// ConsentsPath is the route of the recurring-consents collection.
const ConsentsPath = "/open-banking/automatic-payments/v2/recurring-consents"

// Job kinds.
const (
	// JobExpire times out a consent left in a status with a timer.
	JobExpire = "recurring.consent.expire"
	// JobSweepJTIs deletes the used jti records past payments.JTIWindow;
	// each signed request enqueues the one of its hour.
	JobSweepJTIs = "recurring.jti.sweep"
)

// Service holds the recurring-consent rules; it knows nothing of HTTP.
type Service struct {
	DB     *store.DB
	Clock  clock.Clock
	Logger *slog.Logger
	// BaseURL is Ponte's public URL, for the consents' self links and the
	// aud of signed requests.
	BaseURL string
	// NewID makes consent ids; nil: IDPrefix + a random UUID.
	NewID func() string
	// NewPaymentID makes recurring payment ids; nil: a random UUID.
	NewPaymentID func() string
	// Settlement moves sweeping payments' money; nil: payments wait in RCVD
	// (their job retries) and are rejected when its attempts run out.
	Settlement settlement.Settlement
	// Events records payment status changes as webhook events; nil: none.
	Events PaymentEvents
	// ConsentEvents receives every consent status change; nil: none.
	ConsentEvents ConsentEvents
}

// ConsentEvents receives every recurring consent status change inside the
// transaction that writes it (internal/app turns the ones the Open Finance
// webhook convention lists into notifications for the initiator).
type ConsentEvents interface {
	RecurringConsentChanged(ctx context.Context, tx *sql.Tx, e ConsentEvent) error
}

// ConsentEvent is one recurring consent status change.
type ConsentEvent struct {
	ConsentID     string
	ApplicationID string // the initiator
	From, To      Status
	At            time.Time
}

// setStatus writes c's status fields (updateStatus) and tells ConsentEvents.
func (s *Service) setStatus(ctx context.Context, tx *sql.Tx, c *Consent, from Status) error {
	if err := updateStatus(ctx, tx, c, from); err != nil {
		return err
	}
	if s.ConsentEvents == nil || from == c.Status {
		return nil
	}
	return s.ConsentEvents.RecurringConsentChanged(ctx, tx, ConsentEvent{ConsentID: c.ID, ApplicationID: c.ApplicationID,
		From: from, To: c.Status, At: c.StatusUpdatedAt})
}

// NewService returns a Service.
func NewService(db *store.DB, c clock.Clock, logger *slog.Logger, baseURL string) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{DB: db, Clock: c, Logger: logger, BaseURL: baseURL}
}

// Register registers the jobs' handlers on the job client.
func (s *Service) Register(c *jobs.Client) {
	c.Register(JobExpire, s.handleExpire, jobs.Backoff(5*time.Second, 5*time.Minute))
	c.Register(JobProcessPayment, s.handleProcess, jobs.Backoff(2*time.Second, time.Minute))
	c.Register(JobSweepJTIs, func(ctx context.Context, _ *jobs.Job) error {
		_, err := s.Sweep(ctx)
		return err
	}, jobs.Backoff(time.Minute, time.Hour))
}

// Sweep deletes the used-jti records past their window and returns how many.
func (s *Service) Sweep(ctx context.Context) (int64, error) {
	var n int64
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM recurring_consent_jtis WHERE expires_at <= $1`, s.Clock.Now().UnixMilli())
		if err != nil {
			return fmt.Errorf("recurring: sweep used jti records: %w", err)
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
	return IDPrefix + uuid.NewString()
}

// ConsentsURL is the URL of the collection: the aud of a signed POST.
func (s *Service) ConsentsURL() string { return s.BaseURL + ConsentsPath }

// SelfURL is the URL of consent id: its self link and the aud of a signed PATCH.
func (s *Service) SelfURL(id string) string { return s.BaseURL + ConsentsPath + "/" + id }

func (s *Service) now() time.Time { return s.Clock.Now().UTC().Truncate(time.Second) }

// CreateInput is one POST /recurring-consents call.
type CreateInput struct {
	ApplicationID  string
	Request        ConsentRequest
	IdempotencyKey string
	// JTI is the jti of a signed body ("" for plain JSON), recorded with the
	// consent; one the application used within payments.JTIWindow is
	// ErrJTIReused.
	JTI string
	// Unchanged, when set, is a condition (see payments.CachedCallers) the
	// create's statement on PostgreSQL checks: when it is false nothing is
	// written and Create returns idempotency.ErrGuardFailed. SQLite ignores it.
	Unchanged func(q *idempotency.Query) string
}

// Create validates and stores a consent in AWAITING_AUTHORISATION with its
// authorisation timer, in one transaction with the idempotency record. It
// returns the 201 response (or the stored one for a replayed key), a
// *payments.ValidationError for a refused request, idempotency.ErrKeyReused
// or ErrJTIReused.
func (s *Service) Create(ctx context.Context, in CreateInput) (idempotency.Response, error) {
	now := s.now()
	fingerprint, err := idempotency.Fingerprint(http.MethodPost, ConsentsPath, in.Request)
	if err != nil {
		return idempotency.Response{}, err
	}
	if verr := in.Request.Validate(now); verr != nil {
		// A refused request does not consume its key, but a key already used
		// for another body is reported as such.
		if _, reused, err := s.storedKey(ctx, in.ApplicationID, in.IdempotencyKey, fingerprint, now); err != nil {
			return idempotency.Response{}, err
		} else if reused {
			return idempotency.Response{}, idempotency.ErrKeyReused
		}
		return idempotency.Response{}, verr
	}
	c := &Consent{
		ID: s.newID(), ApplicationID: in.ApplicationID, Status: StatusAwaitingAuthorisation, Request: in.Request,
		StartAt: now, CreatedAt: now, StatusUpdatedAt: now, DueAt: now.Add(AuthorisationWindow),
	}
	if v := in.Request.RecurringConfiguration.Sweeping.StartDateTime; v != "" {
		c.StartAt, _ = time.Parse(time.RFC3339, normalizeDateTime(v)) // validated
	}
	if v := in.Request.ExpirationDateTime; v != "" {
		c.ExpiresAt, _ = time.Parse(time.RFC3339, normalizeDateTime(v)) // validated
		if c.ExpiresAt.Before(c.DueAt) {
			c.DueAt = c.ExpiresAt
		}
	}
	resp, err := idempotency.Encode(http.StatusCreated, c.Response(s.SelfURL(c.ID), now))
	if err != nil {
		return idempotency.Response{}, err
	}
	req := idempotency.Request{ApplicationID: in.ApplicationID, Key: in.IdempotencyKey, Fingerprint: fingerprint, Now: now}
	if s.DB.Pool() != nil {
		// PostgreSQL: the same writes as below, as one statement (one round trip).
		return idempotency.RunPostgresIf(ctx, s.DB, req, resp, in.Unchanged, func(q *idempotency.Query) error {
			if err := recordJTIQuery(q, in.ApplicationID, in.JTI, now); err != nil {
				return err
			}
			if err := insertConsentQuery(q, c); err != nil {
				return err
			}
			if j, ok := timerJob(c); ok {
				return q.Enqueue("timer", now, j)
			}
			return nil
		})
	}
	return idempotency.Run(ctx, s.DB, req, resp, func(tx *sql.Tx) error {
		if err := s.recordJTI(ctx, tx, in.ApplicationID, in.JTI, now); err != nil {
			return err
		}
		if err := insertConsent(ctx, tx, c); err != nil {
			return err
		}
		return enqueueTimer(ctx, tx, now, c)
	})
}

// recordJTI records the application's jti ("" : nothing) inside tx, or
// returns ErrJTIReused if it is live; it also makes sure the sweep job of
// the current hour exists.
func (s *Service) recordJTI(ctx context.Context, tx *sql.Tx, applicationID, jti string, now time.Time) error {
	if jti == "" {
		return nil
	}
	st, err := s.DB.TxStmt(ctx, tx, `INSERT INTO recurring_consent_jtis (application_id, jti, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (application_id, jti) DO UPDATE SET expires_at = excluded.expires_at
		WHERE recurring_consent_jtis.expires_at <= $4`)
	if err != nil {
		return err
	}
	res, err := st.ExecContext(ctx, applicationID, jti, now.Add(payments.JTIWindow).UnixMilli(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("recurring: record jti: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("recurring: record jti: %w", err)
	} else if n != 1 {
		return ErrJTIReused
	}
	_, err = jobs.Enqueue(ctx, tx, now, sweepJTIsJob(now))
	return err
}

// recordJTIQuery is recordJTI on PostgreSQL's one-round-trip path: the jti
// ("": nothing) is inserted when q claims its key, and a live one fails the
// whole batch with ErrJTIReused. A record past its window is deleted first,
// in the same batch (a statement's CTEs could not see the delete before
// inserting).
func recordJTIQuery(q *idempotency.Query, applicationID, jti string, now time.Time) error {
	if jti == "" {
		return nil
	}
	q.Before(`DELETE FROM recurring_consent_jtis WHERE application_id = $1 AND jti = $2 AND expires_at <= $3`,
		applicationID, jti, now.UnixMilli())
	q.With("jti", `INSERT INTO recurring_consent_jtis (application_id, jti, expires_at) SELECT `+
		q.Args(applicationID, jti, now.Add(payments.JTIWindow).UnixMilli())+` FROM `+idempotency.Claimed)
	q.OnUniqueViolation("recurring_consent_jtis", ErrJTIReused)
	return q.Enqueue("jti_sweep", now, sweepJTIsJob(now))
}

// sweepJTIsJob is the sweep of the jti records of now's hour, due when
// they have all expired.
func sweepJTIsJob(now time.Time) jobs.Job {
	hour := now.Truncate(time.Hour)
	return jobs.Job{
		Kind: JobSweepJTIs, RunAt: hour.Add(time.Hour + payments.JTIWindow),
		UniqueKey: fmt.Sprintf("%s:%d", JobSweepJTIs, hour.Unix()),
	}
}

// storedKey looks up a live idempotency key of the application: the stored
// response when the fingerprint matches, reused when it does not.
func (s *Service) storedKey(ctx context.Context, applicationID, key, fingerprint string, now time.Time) (*idempotency.Response, bool, error) {
	if key == "" {
		return nil, false, nil
	}
	var (
		stored, body string
		status       int
	)
	err := s.DB.Read().QueryRowContext(ctx, `SELECT fingerprint, status_code, body FROM idempotency_records
		WHERE application_id = $1 AND idempotency_key = $2 AND expires_at > $3`,
		applicationID, key, now.UnixMilli()).Scan(&stored, &status, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("recurring: read idempotency key: %w", err)
	}
	if stored != fingerprint {
		return nil, true, nil
	}
	return &idempotency.Response{Status: status, Body: []byte(body), Replayed: true}, false, nil
}

type timerPayload struct {
	ConsentID string `json:"consentId"`
	Status    Status `json:"status"`
}

// enqueueTimer writes the job that times out c's current status, if it has one.
func enqueueTimer(ctx context.Context, tx *sql.Tx, now time.Time, c *Consent) error {
	j, ok := timerJob(c)
	if !ok {
		return nil
	}
	_, err := jobs.Enqueue(ctx, tx, now, j)
	return err
}

// timerJob is the job that times out c's current status; ok is false when
// the status has no timer.
func timerJob(c *Consent) (j jobs.Job, ok bool) {
	if c.DueAt.IsZero() || timeoutOf(c.Status) == "" {
		return jobs.Job{}, false
	}
	return jobs.Job{
		Kind: JobExpire, Payload: timerPayload{ConsentID: c.ID, Status: c.Status}, RunAt: c.DueAt,
		UniqueKey: JobExpire + ":" + c.ID + ":" + string(c.Status),
	}, true
}

// timeoutOf is the status a consent in st moves to when its timer fires, or "".
func timeoutOf(st Status) Status {
	switch st {
	case StatusAwaitingAuthorisation, StatusPartiallyAccepted:
		return StatusRejected
	case StatusAuthorised:
		return StatusConsumed
	}
	return ""
}

// Get returns consent id of applicationID; another application's is
// ErrNotFound. A consent past its timer whose job has not run yet is timed
// out first, so a read never shows a stale status.
func (s *Service) Get(ctx context.Context, applicationID, id string) (*Consent, error) {
	c, err := getConsent(ctx, s.DB.Read(), id)
	if err != nil {
		return nil, err
	}
	if c.ApplicationID != applicationID {
		return nil, ErrNotFound
	}
	if timeoutOf(c.Status) != "" && !c.DueAt.IsZero() && !s.Clock.Now().Before(c.DueAt) {
		if c, err = s.expire(ctx, id, c.Status); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// PatchInput is one PATCH /recurring-consents/{id} call.
type PatchInput struct {
	ApplicationID  string
	ConsentID      string
	Request        PatchRequest
	IdempotencyKey string
	JTI            string
}

// Patch rejects (status REJECTED, while not yet authorised) or revokes
// (status REVOKED, while authorised) a consent at the initiator's request,
// in one transaction with the idempotency record. It returns the 200
// response (or the stored one for a replayed key), ErrNotFound, a
// *payments.ValidationError (422: CONSENTIMENTO_NAO_PERMITE_CANCELAMENTO,
// CAMPO_NAO_PERMITIDO, PARAMETRO_*), idempotency.ErrKeyReused or ErrJTIReused.
func (s *Service) Patch(ctx context.Context, in PatchInput) (idempotency.Response, error) {
	now := s.now()
	fingerprint, err := idempotency.Fingerprint(http.MethodPatch, ConsentsPath+"/"+in.ConsentID, in.Request)
	if err != nil {
		return idempotency.Response{}, err
	}
	stored, reused, err := s.storedKey(ctx, in.ApplicationID, in.IdempotencyKey, fingerprint, now)
	switch {
	case err != nil:
		return idempotency.Response{}, err
	case reused:
		return idempotency.Response{}, idempotency.ErrKeyReused
	case stored != nil:
		return *stored, nil
	}
	if verr := in.Request.Validate(); verr != nil {
		return idempotency.Response{}, verr
	}
	c, err := s.Get(ctx, in.ApplicationID, in.ConsentID)
	if err != nil {
		return idempotency.Response{}, err
	}
	from := c.Status
	refuse := func() (idempotency.Response, error) {
		return idempotency.Response{}, &payments.ValidationError{Status: http.StatusUnprocessableEntity, Problems: []payments.Problem{{
			Code:   CodeConsentimentoNaoPermiteCancelamento,
			Detail: fmt.Sprintf("O status do consentimento (%s) não permite a realização do cancelamento.", c.Status)}}}
	}
	switch Status(in.Request.Status) {
	case StatusRejected:
		if c.Status != StatusAwaitingAuthorisation && c.Status != StatusPartiallyAccepted {
			return refuse()
		}
		r := in.Request.Rejection
		c.Status = StatusRejected
		c.Rejection = &Rejection{RejectedBy: r.RejectedBy, RejectedFrom: r.RejectedFrom, RejectedAt: formatTime(now),
			Reason: &Reason{Code: r.Reason.Code, Detail: r.Reason.Detail}}
	case StatusRevoked:
		if c.Status != StatusAuthorised {
			return refuse()
		}
		r := in.Request.Revocation
		c.Status = StatusRevoked
		c.Revocation = &Revocation{RevokedBy: r.RevokedBy, RevokedFrom: r.RevokedFrom, RevokedAt: formatTime(now),
			Reason: &Reason{Code: r.Reason.Code, Detail: r.Reason.Detail}}
	}
	c.StatusUpdatedAt, c.DueAt = now, time.Time{}
	resp, err := idempotency.Encode(http.StatusOK, c.Response(s.SelfURL(c.ID), now))
	if err != nil {
		return idempotency.Response{}, err
	}
	out, err := idempotency.Run(ctx, s.DB, idempotency.Request{
		ApplicationID: in.ApplicationID, Key: in.IdempotencyKey, Fingerprint: fingerprint, Now: now,
	}, resp, func(tx *sql.Tx) error {
		if err := s.recordJTI(ctx, tx, in.ApplicationID, in.JTI, now); err != nil {
			return err
		}
		return s.setStatus(ctx, tx, c, from)
	})
	if errors.Is(err, ErrInvalidTransition) {
		// The status moved (user, timer) between the read and the write.
		return refuse()
	}
	return out, err
}

// Authorise records the user's approval: AWAITING_AUTHORISATION (or
// PARTIALLY_ACCEPTED) → AUTHORISED with the debtor account the user chose
// (nil: the initiator's, which must then exist). As the specification says,
// the user may choose another account than the one the initiator sent. The
// consent's expirationDateTime, if any, becomes its timer (→ CONSUMED).
// A consent past its authorisation window is ErrExpired; any other status
// ErrInvalidTransition; a missing or malformed account ErrDebtorAccount.
func (s *Service) Authorise(ctx context.Context, consentID string, debtorAccount *payments.Account) (*Consent, error) {
	return s.transition(ctx, consentID, authorise(debtorAccount))
}

// AuthoriseTx is Authorise inside the caller's transaction.
func (s *Service) AuthoriseTx(ctx context.Context, tx *sql.Tx, consentID string, debtorAccount *payments.Account) (*Consent, error) {
	return s.transitionTx(ctx, tx, consentID, authorise(debtorAccount))
}

func authorise(debtorAccount *payments.Account) func(c *Consent, now time.Time) error {
	return func(c *Consent, now time.Time) error {
		if c.Status != StatusAwaitingAuthorisation && c.Status != StatusPartiallyAccepted {
			return fmt.Errorf("%w: %s → %s", ErrInvalidTransition, c.Status, StatusAuthorised)
		}
		if !now.Before(c.DueAt) {
			return ErrExpired
		}
		if debtorAccount == nil {
			debtorAccount = c.Request.DebtorAccount
		}
		if debtorAccount == nil {
			return ErrDebtorAccount
		}
		chk := &checker{}
		validateAccount(chk, "debtorAccount", debtorAccount)
		if len(chk.problems) > 0 {
			return fmt.Errorf("%w: %s", ErrDebtorAccount, chk.problems[0].Detail)
		}
		acct := *debtorAccount
		c.Status, c.DebtorAccount, c.StatusUpdatedAt, c.AuthorisedAt = StatusAuthorised, &acct, now, now
		c.DueAt = c.ExpiresAt
		return nil
	}
}

// Reject rejects a consent awaiting authorisation at the holder: code
// RejectRejeitadoUsuario is the user's refusal (rejectedBy USUARIO), any
// other code the holder's own (rejectedBy DETENTORA); rejectedFrom is
// DETENTORA either way, with the specification's standard detail.
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
	by := ActorHolder
	if code == RejectRejeitadoUsuario {
		by = ActorUser
	}
	return func(c *Consent, now time.Time) error {
		if c.Status != StatusAwaitingAuthorisation && c.Status != StatusPartiallyAccepted {
			return fmt.Errorf("%w: %s → %s", ErrInvalidTransition, c.Status, StatusRejected)
		}
		c.Status, c.StatusUpdatedAt, c.DueAt = StatusRejected, now, time.Time{}
		c.Rejection = &Rejection{RejectedBy: by, RejectedFrom: ActorHolder, RejectedAt: formatTime(now),
			Reason: &Reason{Code: string(code), Detail: detail}}
		return nil
	}, nil
}

func (s *Service) transition(ctx context.Context, id string, change func(c *Consent, now time.Time) error) (*Consent, error) {
	var out *Consent
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.transitionTx(ctx, tx, id, change)
		return err
	})
	return out, err
}

// transitionTx applies change to the consent, writes it if the status is
// still the one read, and enqueues the new status's timer.
func (s *Service) transitionTx(ctx context.Context, tx *sql.Tx, id string, change func(c *Consent, now time.Time) error) (*Consent, error) {
	now := s.now()
	c, err := getConsent(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	from := c.Status
	if err := change(c, now); err != nil {
		return nil, err
	}
	if err := s.setStatus(ctx, tx, c, from); err != nil {
		return nil, err
	}
	if err := enqueueTimer(ctx, tx, now, c); err != nil {
		return nil, err
	}
	return c, nil
}

// ConsentTx reads a consent through tx, whoever created it (the holder's
// journey shows it to the user and decides on it).
func (s *Service) ConsentTx(ctx context.Context, tx *sql.Tx, consentID string) (*Consent, error) {
	return getConsent(ctx, tx, consentID)
}

// LoggedUserDocument returns, reading through tx, the CPF of the user logged
// in at the initiator ("" when it names none). Consent-flow tickets check
// the holder's customer against it.
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

// expire times the consent out if it is still in status and past its
// timer, and returns it as it is afterwards: AWAITING_AUTHORISATION →
// REJECTED (TEMPO_EXPIRADO_AUTORIZACAO, by and from the holder);
// AUTHORISED → CONSUMED.
func (s *Service) expire(ctx context.Context, id string, status Status) (*Consent, error) {
	var out *Consent
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		now := s.now()
		c, err := getConsent(ctx, tx, id)
		if err != nil {
			return err
		}
		out = c
		next := timeoutOf(c.Status)
		if c.Status != status || next == "" || c.DueAt.IsZero() || now.Before(c.DueAt) {
			return nil // moved on, or not due (an early job): nothing to do
		}
		// The status changed when the timer was due, whenever the job runs.
		at := c.DueAt
		c.Status, c.StatusUpdatedAt, c.DueAt = next, at, time.Time{}
		if next == StatusRejected {
			c.Rejection = &Rejection{RejectedBy: ActorHolder, RejectedFrom: ActorHolder, RejectedAt: formatTime(at),
				Reason: &Reason{Code: string(RejectTempoExpiradoAutorizacao), Detail: rejectionDetails[RejectTempoExpiradoAutorizacao]}}
		}
		return s.setStatus(ctx, tx, c, status)
	})
	return out, err
}

func (s *Service) handleExpire(ctx context.Context, j *jobs.Job) error {
	var p timerPayload
	if err := j.Decode(&p); err != nil {
		return jobs.Cancel(fmt.Errorf("recurring: bad timer payload: %w", err))
	}
	c, err := s.expire(ctx, p.ConsentID, p.Status)
	if errors.Is(err, ErrNotFound) {
		return jobs.Cancel(err)
	}
	if err != nil {
		return err
	}
	if c.Status == p.Status && !c.DueAt.IsZero() && s.Clock.Now().Before(c.DueAt) {
		return jobs.RetryAt(errors.New("recurring: consent not due yet"), c.DueAt)
	}
	if c.Status == timeoutOf(p.Status) {
		s.Logger.InfoContext(ctx, "recurring consent timed out", "consent_id", c.ID, "from", p.Status, "to", c.Status)
	}
	return nil
}
