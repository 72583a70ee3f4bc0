package dataconsents

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/store"
)

// ConsentsPath is the route of the consents collection.
const ConsentsPath = "/open-banking/consents/v3/consents"

// JobExpire times out a consent left in a status with a timer.
const JobExpire = "dataconsents.consent.expire"

// Service holds the data-sharing consent rules; it knows nothing of HTTP.
type Service struct {
	DB     *store.DB
	Clock  clock.Clock
	Logger *slog.Logger
	// BaseURL is Ponte's public URL, for the self links.
	BaseURL string
	// Categories are the data categories whose groups Ponte grants; nil:
	// DefaultCategories.
	Categories []string
	// NewID makes consent ids; nil: IDPrefix + a random UUID.
	NewID func() string
}

// NewService returns a Service.
func NewService(db *store.DB, c clock.Clock, logger *slog.Logger, baseURL string) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{DB: db, Clock: c, Logger: logger, BaseURL: baseURL}
}

// Register registers the timer jobs' handler on the job client.
func (s *Service) Register(c *jobs.Client) {
	c.Register(JobExpire, s.handleExpire, jobs.Backoff(5*time.Second, 5*time.Minute))
}

func (s *Service) newID() string {
	if s.NewID != nil {
		return s.NewID()
	}
	return IDPrefix + uuid.NewString()
}

func (s *Service) categories() []string {
	if s.Categories == nil {
		return DefaultCategories
	}
	return s.Categories
}

// SelfURL is the URL of consent id.
func (s *Service) SelfURL(id string) string { return s.BaseURL + ConsentsPath + "/" + id }

func (s *Service) now() time.Time { return s.Clock.Now().UTC().Truncate(time.Second) }

// Create validates and stores a consent of applicationID in
// AWAITING_AUTHORISATION, with its authorisation timer, in one transaction.
// A refused request is a *ValidationError.
func (s *Service) Create(ctx context.Context, applicationID string, in CreateRequest) (*Consent, error) {
	now := s.now()
	perms, expires, verr := in.Validate(now, s.categories())
	if verr != nil {
		return nil, verr
	}
	c := &Consent{
		ID: s.newID(), ApplicationID: applicationID, Status: StatusAwaitingAuthorisation,
		Document: in.LoggedUser.Document.Identification, Permissions: perms, ExpiresAt: expires,
		DueAt: now.Add(AuthorisationWindow), CreatedAt: now, StatusUpdatedAt: now,
		IsLinked: in.IsLinked != nil && *in.IsLinked,
	}
	if b := in.BusinessEntity; b != nil {
		c.BusinessDocument = b.Document.Identification
	}
	if !expires.IsZero() && expires.Before(c.DueAt) {
		c.DueAt = expires
	}
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		if err := insertConsent(ctx, tx, c); err != nil {
			return err
		}
		return enqueueTimer(ctx, tx, now, c)
	})
	if err != nil {
		return nil, err
	}
	s.Logger.InfoContext(ctx, "data consent created", "consent_id", c.ID, "application_id", applicationID, "permissions", len(perms))
	return c, nil
}

type timerPayload struct {
	ConsentID string `json:"consentId"`
	Status    Status `json:"status"`
	DueAt     int64  `json:"dueAt"`
}

// enqueueTimer writes the job that times out c's current status, if it has one.
func enqueueTimer(ctx context.Context, tx *sql.Tx, now time.Time, c *Consent) error {
	if c.DueAt.IsZero() || c.Status == StatusRejected {
		return nil
	}
	_, err := jobs.Enqueue(ctx, tx, now, jobs.Job{
		Kind: JobExpire, Payload: timerPayload{ConsentID: c.ID, Status: c.Status, DueAt: c.DueAt.UnixMilli()}, RunAt: c.DueAt,
		UniqueKey: fmt.Sprintf("%s:%s:%s:%d", JobExpire, c.ID, c.Status, c.DueAt.UnixMilli()),
	})
	return err
}

// due reports whether c's current status has timed out at now.
func due(c *Consent, now time.Time) bool {
	return c.Status != StatusRejected && !c.DueAt.IsZero() && !now.Before(c.DueAt)
}

// read returns consent id, timed out first if its timer passed and its job
// has not run yet, so a read never shows a stale status.
func (s *Service) read(ctx context.Context, id string) (*Consent, error) {
	c, err := getConsent(ctx, s.DB.Read(), id)
	if err != nil {
		return nil, err
	}
	if due(c, s.Clock.Now()) {
		return s.expire(ctx, id)
	}
	return c, nil
}

// Get returns consent id of applicationID; another application's is ErrNotFound.
func (s *Service) Get(ctx context.Context, applicationID, id string) (*Consent, error) {
	c, err := s.read(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.ApplicationID != applicationID {
		return nil, ErrNotFound
	}
	return c, nil
}

// Grant returns what the data APIs check on every request: the consent's
// status, permissions, the accounts the user chose and the expiry, whoever
// created it (the caller compares ApplicationID with its token's). An
// unknown id is ErrNotFound. Timers past due are applied first.
func (s *Service) Grant(ctx context.Context, consentID string) (*Grant, error) {
	c, err := s.read(ctx, consentID)
	if err != nil {
		return nil, err
	}
	return &Grant{
		ConsentID: c.ID, ApplicationID: c.ApplicationID, Document: c.Document, Status: string(c.Status),
		Permissions: slices.Clone(c.Permissions), AccountIDs: slices.Clone(c.AccountIDs), ExpiresAt: c.ExpiresAt,
	}, nil
}

// Revoke ends a consent at the request of by (USER, ASPSP or TPP): an
// AUTHORISED one becomes REJECTED / CUSTOMER_MANUALLY_REVOKED
// (INTERNAL_SECURITY_REASON when the holder itself revokes it), one still
// AWAITING_AUTHORISATION REJECTED / CUSTOMER_MANUALLY_REJECTED. A REJECTED
// consent is ErrAlreadyRejected, an unknown one ErrNotFound.
func (s *Service) Revoke(ctx context.Context, consentID, by string) error {
	return s.DB.Write(ctx, func(tx *sql.Tx) error {
		_, err := s.revokeTx(ctx, tx, consentID, RejectedBy(by), "")
		return err
	})
}

// Delete is DELETE /consents/{id}: Revoke on behalf of the customer at the
// receiver (rejectedBy USER), for the creating application only.
func (s *Service) Delete(ctx context.Context, applicationID, consentID string) error {
	if _, err := s.Get(ctx, applicationID, consentID); err != nil {
		return err
	}
	return s.DB.Write(ctx, func(tx *sql.Tx) error {
		_, err := s.revokeTx(ctx, tx, consentID, ByUser, applicationID)
		return err
	})
}

func (s *Service) revokeTx(ctx context.Context, tx *sql.Tx, id string, by RejectedBy, applicationID string) (*Consent, error) {
	if by != ByUser && by != ByASPSP && by != ByTPP {
		return nil, fmt.Errorf("%w: %q", ErrRejectedBy, by)
	}
	now := s.now()
	c, err := getConsent(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if applicationID != "" && c.ApplicationID != applicationID {
		return nil, ErrNotFound
	}
	from, fromExpiry := c.Status, c.ExpiresAt
	if due(c, now) {
		applyTimeout(c)
	}
	var code ReasonCode
	switch c.Status {
	case StatusRejected:
		if from != StatusRejected {
			// Timed out just now: record that, then refuse.
			if err := updateConsent(ctx, tx, c, from, fromExpiry); err != nil {
				return nil, err
			}
		}
		return c, ErrAlreadyRejected
	case StatusAwaitingAuthorisation:
		code = ReasonCustomerManuallyRejected
	case StatusAuthorised:
		code = ReasonCustomerManuallyRevoked
		if by == ByASPSP {
			code = ReasonInternalSecurityReason
		}
	}
	c.Status, c.DueAt, c.StatusUpdatedAt = StatusRejected, time.Time{}, now
	c.Rejection = &Rejection{RejectedBy: by, Reason: Reason{Code: code, AdditionalInformation: reasonInformation[code]}}
	if err := updateConsent(ctx, tx, c, from, fromExpiry); err != nil {
		return nil, err
	}
	s.Logger.InfoContext(ctx, "data consent ended", "consent_id", c.ID, "from", from, "reason", code, "by", by)
	return c, nil
}

// applyTimeout moves c to the outcome of its due timer, as of the timer.
func applyTimeout(c *Consent) {
	at := c.DueAt
	code := ReasonConsentExpired
	if c.Status == StatusAuthorised || (!c.ExpiresAt.IsZero() && !at.Before(c.ExpiresAt)) {
		code = ReasonConsentMaxDateReached
	}
	c.Status, c.StatusUpdatedAt, c.DueAt = StatusRejected, at, time.Time{}
	c.Rejection = &Rejection{RejectedBy: ByASPSP, Reason: Reason{Code: code, AdditionalInformation: reasonInformation[code]}}
}

// expire applies a due timer of consent id and returns the consent as it is afterwards.
func (s *Service) expire(ctx context.Context, id string) (*Consent, error) {
	var out *Consent
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		c, err := getConsent(ctx, tx, id)
		if err != nil {
			return err
		}
		out = c
		if !due(c, s.Clock.Now()) {
			return nil
		}
		from, fromExpiry := c.Status, c.ExpiresAt
		applyTimeout(c)
		return updateConsent(ctx, tx, c, from, fromExpiry)
	})
	return out, err
}

func (s *Service) handleExpire(ctx context.Context, j *jobs.Job) error {
	var p timerPayload
	if err := j.Decode(&p); err != nil {
		return jobs.Cancel(fmt.Errorf("dataconsents: bad timer payload: %w", err))
	}
	c, err := s.expire(ctx, p.ConsentID)
	if errors.Is(err, ErrNotFound) {
		return jobs.Cancel(err)
	}
	if err != nil {
		return err
	}
	if c.Status == p.Status && c.DueAt.UnixMilli() == p.DueAt && s.Clock.Now().Before(c.DueAt) {
		return jobs.RetryAt(errors.New("dataconsents: consent not due yet"), c.DueAt)
	}
	if c.Status == StatusRejected && c.Rejection != nil && c.StatusUpdatedAt.UnixMilli() == p.DueAt {
		s.Logger.InfoContext(ctx, "data consent timed out", "consent_id", c.ID, "from", p.Status, "reason", c.Rejection.Reason.Code)
	}
	return nil
}

// AuthoriseTx records the user's approval inside the journey's
// transaction: AWAITING_AUTHORISATION → AUTHORISED, with the holder partner
// whose customer approved and the account ids chosen (none unless the
// consent shares account data; at least one if it does). The consent's
// expirationDateTime becomes its timer. A consent past its window is
// ErrExpired, any other status ErrInvalidTransition.
func (s *Service) AuthoriseTx(ctx context.Context, tx *sql.Tx, consentID, holderAppID string, accountIDs []string) (*Consent, error) {
	now := s.now()
	c, err := getConsent(ctx, tx, consentID)
	if err != nil {
		return nil, err
	}
	if c.Status != StatusAwaitingAuthorisation {
		return nil, fmt.Errorf("%w: %s → %s", ErrInvalidTransition, c.Status, StatusAuthorised)
	}
	if due(c, s.Clock.Now()) {
		return nil, ErrExpired
	}
	if NeedsAccounts(c.Permissions) != (len(accountIDs) > 0) {
		return nil, ErrAccounts
	}
	from, fromExpiry := c.Status, c.ExpiresAt
	ids := slices.Clone(accountIDs)
	if ids == nil {
		ids = []string{}
	}
	c.Status, c.HolderApplicationID, c.AccountIDs = StatusAuthorised, holderAppID, ids
	c.AuthorisedAt, c.StatusUpdatedAt, c.DueAt = now, now, c.ExpiresAt
	if err := updateConsent(ctx, tx, c, from, fromExpiry); err != nil {
		return nil, err
	}
	if err := enqueueTimer(ctx, tx, now, c); err != nil {
		return nil, err
	}
	return c, nil
}

// RejectTx records the user's refusal in the journey: REJECTED /
// CUSTOMER_MANUALLY_REJECTED, rejectedBy USER. A consent no longer awaiting
// is ErrInvalidTransition.
func (s *Service) RejectTx(ctx context.Context, tx *sql.Tx, consentID string) (*Consent, error) {
	c, err := getConsent(ctx, tx, consentID)
	if err != nil {
		return nil, err
	}
	if c.Status != StatusAwaitingAuthorisation {
		return nil, ErrInvalidTransition
	}
	return s.revokeTx(ctx, tx, consentID, ByUser, "")
}

// ConsentTx reads a consent through tx, whoever created it.
func (s *Service) ConsentTx(ctx context.Context, tx *sql.Tx, consentID string) (*Consent, error) {
	return getConsent(ctx, tx, consentID)
}

// LoggedUserDocument returns, reading through tx, the CPF of the consent's
// logged user; consent-flow tickets check the holder's customer against it.
func (s *Service) LoggedUserDocument(ctx context.Context, tx *sql.Tx, consentID string) (string, error) {
	c, err := getConsent(ctx, tx, consentID)
	if err != nil {
		return "", err
	}
	return c.Document, nil
}

// ExtendInput is one POST /consents/{id}/extends call.
type ExtendInput struct {
	ApplicationID, ConsentID string
	Request                  ExtendRequest
	// CustomerIP and UserAgent are the x-fapi-customer-ip-address and
	// x-customer-user-agent headers, recorded with the extension.
	CustomerIP, UserAgent string
}

// Extend renews an AUTHORISED consent: its expirationDateTime moves to the
// requested one (none: no end date) and the renewal is recorded, with the
// new timer, in one transaction. Refusals are *ValidationError (422).
func (s *Service) Extend(ctx context.Context, in ExtendInput) (*Consent, error) {
	c, err := s.Get(ctx, in.ApplicationID, in.ConsentID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	expires, verr := in.Request.Validate(c, now)
	if verr != nil {
		return nil, verr
	}
	from, fromExpiry := c.Status, c.ExpiresAt
	ext := &Extension{ConsentID: c.ID, ExpiresAt: expires, PreviousExpiresAt: c.ExpiresAt, LoggedUser: *in.Request.LoggedUser,
		BusinessEntity: in.Request.BusinessEntity, CustomerIP: in.CustomerIP, UserAgent: in.UserAgent, RequestedAt: now}
	c.ExpiresAt, c.DueAt = expires, expires
	err = s.DB.Write(ctx, func(tx *sql.Tx) error {
		if err := updateConsent(ctx, tx, c, from, fromExpiry); err != nil {
			return err
		}
		if err := insertExtension(ctx, tx, ext); err != nil {
			return err
		}
		return enqueueTimer(ctx, tx, now, c)
	})
	if errors.Is(err, ErrInvalidTransition) {
		return nil, unprocessable(CodeEstadoConsentimentoInvalido, "O consentimento mudou de estado durante a renovação.")
	}
	if err != nil {
		return nil, err
	}
	s.Logger.InfoContext(ctx, "data consent extended", "consent_id", c.ID)
	return c, nil
}

// Extensions returns a page (1-based) of consent id's renewals, newest
// first, with their total count.
func (s *Service) Extensions(ctx context.Context, applicationID, id string, page, pageSize int) ([]*Extension, int, error) {
	if _, err := s.Get(ctx, applicationID, id); err != nil {
		return nil, 0, err
	}
	return listExtensions(ctx, s.DB.Read(), id, pageSize, (page-1)*pageSize)
}

// CustomerConsents returns the active consents a holder partner's customer
// (by CPF) authorised, newest first: what "Meus compartilhamentos" lists.
func (s *Service) CustomerConsents(ctx context.Context, holderAppID, document string) ([]*Consent, error) {
	list, err := customerConsents(ctx, s.DB.Read(), holderAppID, document)
	if err != nil {
		return nil, err
	}
	now := s.Clock.Now()
	out := list[:0]
	for _, c := range list {
		if due(c, now) {
			if _, err := s.expire(ctx, c.ID); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// RevokeByCustomer is the revocation in "Meus compartilhamentos": the holder
// partner's customer (by CPF) revokes one of the consents they authorised
// (CUSTOMER_MANUALLY_REVOKED, rejectedBy USER). Another's consent is ErrNotFound.
func (s *Service) RevokeByCustomer(ctx context.Context, holderAppID, document, consentID string) error {
	return s.DB.Write(ctx, func(tx *sql.Tx) error {
		c, err := getConsent(ctx, tx, consentID)
		if err != nil {
			return err
		}
		if c.HolderApplicationID != holderAppID || c.Document != document {
			return ErrNotFound
		}
		_, err = s.revokeTx(ctx, tx, consentID, ByUser, "")
		return err
	})
}
