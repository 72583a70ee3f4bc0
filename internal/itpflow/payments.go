package itpflow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Payment kinds.
const (
	// PaymentKindPix is a Payments v4 Pix payment under a consent the
	// partner initiated through the Brick endpoints.
	PaymentKindPix = "PIX_PAYMENT"
	// PaymentKindSweeping is a sweeping transfer (Automatic Payments v2)
	// under the recurring consent of a journey session.
	PaymentKindSweeping = "SWEEPING"
)

// Payment statuses: Ponte's own PENDING (the brand has not accepted it yet)
// and FAILED (Ponte could not initiate it: see Error), and the brand's
// statuses of the official files (RCVD, ACCP, ACPD, ACSC, RJCT, CANC, PDNG,
// SCHD). A request the brand refuses outright is RJCT with the brand's
// error code as its rejection reason and no paymentId.
const (
	PaymentPending = "PENDING"
	PaymentFailed  = "FAILED"
	PaymentRJCT    = "RJCT"
	PaymentACSC    = "ACSC"
	PaymentCANC    = "CANC"
	PaymentSCHD    = "SCHD"
)

// FinalPayment reports whether a payment in status s changes no more.
func FinalPayment(s string) bool {
	switch s {
	case PaymentACSC, PaymentRJCT, PaymentCANC, PaymentFailed:
		return true
	}
	return false
}

var knownPaymentStatuses = map[string]bool{"RCVD": true, "ACCP": true, "ACPD": true, "ACSC": true, "RJCT": true,
	"CANC": true, "PDNG": true, "SCHD": true}

// Webhook events of the payments Ponte initiates: one per status change.
const (
	EventContext = "PaymentInitiation"
	// EventPaymentInitiationStatusChanged: a Pix payment of a Brick consent.
	EventPaymentInitiationStatusChanged = "PAYMENT_INITIATION_STATUS_CHANGED"
	// EventSweepingTransferStatusChanged: a sweeping transfer of a journey session.
	EventSweepingTransferStatusChanged = "SWEEPING_TRANSFER_STATUS_CHANGED"
)

// Paths of the payment APIs at a brand.
const (
	PixPaymentsPath       = "/open-banking/payments/v4/pix/payments"
	RecurringPaymentsPath = "/open-banking/automatic-payments/v2/pix/recurring-payments"
)

// Job kinds: creating a batch of payments at the brand, and reading one
// payment's status until it is final.
const (
	JobPaymentCreate = "itp.payment.create"
	JobPaymentPoll   = "itp.payment.poll"
	// JobPaymentSweep is the safety net: every SweepEvery it queues a read
	// of each payment not yet final whose read job ended without success
	// (its attempts ran out while the brand was unreachable).
	JobPaymentSweep = "itp.payment.sweep"
)

// SweepEvery is how often the payments' safety net runs.
const SweepEvery = 15 * time.Minute

// Polling: the first read comes soon after creation, later ones back off to
// at most maxPollDelay; a scheduled payment is read hourly until its day.
const (
	firstPollDelay  = 2 * time.Second
	maxPollDelay    = 10 * time.Minute
	scheduledPoll   = time.Hour
	createAttempts  = 12
	tokenMargin     = 15 * time.Second
	defaultTokenTTL = 300 * time.Second
)

var (
	newEndToEndID    = fapiclient.NewEndToEndID
	scheduledInstant = fapiclient.ScheduledEndToEndInstant
)

// Payment is a payment Ponte initiated at a brand.
type Payment struct {
	ID              string
	ApplicationID   string
	AuthorizationID string
	Kind            string
	BatchID         string
	SessionID       string
	BrandID         string
	ConsentID       string
	ExternalID      string
	RequestHash     string
	// Request is the data object sent to the brand.
	Request         json.RawMessage
	Tags            json.RawMessage
	EndToEndID      string
	IdempotencyKey  string
	PaymentID       string
	Status          string
	RejectionCode   string
	RejectionDetail string
	Error           string
	Polls           int
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Sealer seals secrets at rest (internal/vault's data key).
type Sealer interface {
	Seal(plaintext []byte, context string) (string, error)
	Open(sealed, context string) ([]byte, error)
}

// Initiator is Ponte's identity as a payment initiator: the CNPJ sent as
// cnpjInitiator and the ISPB that opens the endToEndIds it generates.
type Initiator struct {
	CNPJ, ISPB string
}

// PaymentEvents tells partners about a payment's status changes, in the
// change's transaction.
type PaymentEvents interface {
	PaymentChanged(ctx context.Context, tx *sql.Tx, p *Payment) error
}

// Errors of the payments.
var (
	// ErrNoRefreshToken: the access token of the user's authorization
	// expired and the brand issued no refresh token to renew it.
	ErrNoRefreshToken = errors.New("itpflow: the brand's access token expired and the brand issued no refresh token; the user must authorise again")
	// ErrRefreshRefused: the brand refused the refresh token (expired, revoked).
	ErrRefreshRefused = errors.New("itpflow: the brand refused the refresh token; the user must authorise again")
	ErrNoGrant        = errors.New("itpflow: no tokens were kept for this authorization")
)

// Payments initiates payments at brands under consents users authorised,
// and tracks each to its final status with durable jobs.
type Payments struct {
	DB        *store.DB
	Clock     clock.Clock
	Brands    Brands
	Vault     Sealer
	Initiator Initiator
	// Events, when set, receives every status change.
	Events PaymentEvents
	Logger *slog.Logger
}

// Register registers the payment jobs' handlers on c.
func (p *Payments) Register(c *jobs.Client) {
	c.Register(JobPaymentCreate, p.handleCreate, jobs.Backoff(5*time.Second, 2*time.Minute))
	c.Register(JobPaymentPoll, p.handlePoll, jobs.Backoff(5*time.Second, maxPollDelay))
	c.Register(JobPaymentSweep, p.handleSweep, jobs.Backoff(10*time.Second, 5*time.Minute))
}

// ScheduleSweep makes sure the safety net's job is queued (one per
// SweepEvery slot, by unique key), from the first start on.
func (p *Payments) ScheduleSweep(ctx context.Context) error {
	return p.DB.Write(ctx, func(tx *sql.Tx) error { return p.enqueueSweep(ctx, tx, p.now()) })
}

func (p *Payments) enqueueSweep(ctx context.Context, tx *sql.Tx, at time.Time) error {
	_, err := jobs.Enqueue(ctx, tx, p.now(), jobs.Job{Kind: JobPaymentSweep, RunAt: at,
		UniqueKey: fmt.Sprintf("%s:%d", JobPaymentSweep, at.Truncate(SweepEvery).Unix()), MaxAttempts: 5})
	if err != nil {
		return fmt.Errorf("itpflow: queue the payments' sweep: %w", err)
	}
	return nil
}

// sweepBatch bounds the payments one sweep queues reads for.
const sweepBatch = 1000

// handleSweep queues a read for each payment at a brand that is not final
// and whose current read job is gone (discarded or cancelled), then the
// next sweep.
func (p *Payments) handleSweep(ctx context.Context, _ *jobs.Job) error {
	now := p.now()
	return p.DB.Write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+paymentColumns+` FROM itp_payments p
			WHERE p.status NOT IN ('ACSC', 'RJCT', 'CANC', 'FAILED', 'PENDING') AND p.payment_id IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.unique_key = 'itp.payment.poll:' || p.id || ':' || CAST(p.polls AS TEXT)
				AND j.state IN ('available', 'running'))
			AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.unique_key LIKE $1 || p.id || ':%' AND j.state IN ('available', 'running'))
			LIMIT $2`, JobPaymentPoll+":sweep:", sweepBatch)
		if err != nil {
			return fmt.Errorf("itpflow: sweep payments: %w", err)
		}
		var stuck []*Payment
		for rows.Next() {
			pay, err := scanPayment(rows)
			if err != nil {
				rows.Close()
				return err
			}
			stuck = append(stuck, pay)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, pay := range stuck {
			// A key of its own per slot, which the next sweep sees while the job waits.
			key := fmt.Sprintf("%s:sweep:%s:%d", JobPaymentPoll, pay.ID, now.Truncate(SweepEvery).Unix())
			if _, err := jobs.Enqueue(ctx, tx, now, jobs.Job{Kind: JobPaymentPoll, Payload: map[string]string{"id": pay.ID},
				UniqueKey: key, MaxAttempts: 50}); err != nil {
				return err
			}
		}
		if len(stuck) > 0 {
			p.Logger.WarnContext(ctx, "itpflow: payments whose reads had stopped are read again", "count", len(stuck))
		}
		return p.enqueueSweep(ctx, tx, now.Add(SweepEvery))
	})
}

func (p *Payments) now() time.Time { return p.Clock.Now().UTC().Truncate(time.Millisecond) }

func grantContext(authorizationID string) string { return "itp-grant:" + authorizationID }

// keepGrant stores, sealed, the tokens the brand issued for an authorization
// and the consent's data, in tx (the callback's outcome transaction).
func (p *Payments) keepGrant(ctx context.Context, tx *sql.Tx, a *Authorization, tok *fapiclient.TokenResponse, consentData json.RawMessage, now time.Time) error {
	access, err := p.Vault.Seal([]byte(tok.AccessToken), grantContext(a.ID))
	if err != nil {
		return fmt.Errorf("itpflow: seal the access token: %w", err)
	}
	var refresh any
	if tok.RefreshToken != "" {
		s, err := p.Vault.Seal([]byte(tok.RefreshToken), grantContext(a.ID))
		if err != nil {
			return fmt.Errorf("itpflow: seal the refresh token: %w", err)
		}
		refresh = s
	}
	ttl := time.Duration(tok.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = defaultTokenTTL
	}
	if len(consentData) == 0 {
		consentData = json.RawMessage(`{}`)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO itp_grants (authorization_id, access_token, access_expires_at, refresh_token, consent_data, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, a.ID, access, now.Add(ttl).UnixMilli(), refresh, string(consentData), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("itpflow: keep the grant: %w", err)
	}
	return nil
}

// authorised runs in the callback's outcome transaction once the user
// authorised a consent: the tokens are kept and, for a Brick payment
// initiation, the consent's payments are recorded PENDING with their
// endToEndIds and the job that creates them at the brand is queued.
func (p *Payments) authorised(ctx context.Context, tx *sql.Tx, a *Authorization, tok *fapiclient.TokenResponse,
	consentData json.RawMessage, items []map[string]any, now time.Time) error {
	if err := p.keepGrant(ctx, tx, a, tok, consentData, now); err != nil {
		return err
	}
	if a.Kind != KindPaymentInitiation || len(items) == 0 {
		return nil
	}
	batch, key := uuid.NewString(), uuid.NewString()
	for _, item := range items {
		raw, err := json.Marshal(item)
		if err != nil {
			return fmt.Errorf("itpflow: payment request: %w", err)
		}
		pay := &Payment{ID: uuid.NewString(), ApplicationID: a.ApplicationID, AuthorizationID: a.ID, Kind: PaymentKindPix,
			BatchID: batch, BrandID: a.BrandID, ConsentID: a.ConsentID, Request: raw, EndToEndID: item["endToEndId"].(string),
			IdempotencyKey: key, Status: PaymentPending, CreatedAt: now, UpdatedAt: now}
		if err := insertPayment(ctx, tx, pay); err != nil {
			return err
		}
		if err := p.changed(ctx, tx, pay); err != nil {
			return err
		}
	}
	return p.enqueueCreate(ctx, tx, batch, now)
}

func (p *Payments) enqueueCreate(ctx context.Context, tx *sql.Tx, batch string, now time.Time) error {
	_, err := jobs.Enqueue(ctx, tx, now, jobs.Job{Kind: JobPaymentCreate, Payload: map[string]string{"batchId": batch},
		UniqueKey: JobPaymentCreate + ":" + batch, MaxAttempts: createAttempts})
	if err != nil {
		return fmt.Errorf("itpflow: queue the payment's creation: %w", err)
	}
	return nil
}

func (p *Payments) changed(ctx context.Context, tx *sql.Tx, pay *Payment) error {
	if p.Events == nil {
		return nil
	}
	return p.Events.PaymentChanged(ctx, tx, pay)
}

// accessToken returns the user's access token for an authorization,
// renewing it with the refresh token when it expired (or is about to), or
// when renew is set (the brand refused it before its time).
func (p *Payments) accessToken(ctx context.Context, c *fapiclient.Client, authorizationID string, renew bool) (string, error) {
	g, err := readGrant(ctx, p.DB.Read(), authorizationID)
	if err != nil {
		return "", err
	}
	now := p.Clock.Now()
	if !renew && now.Add(tokenMargin).Before(g.accessExpires) {
		b, err := p.Vault.Open(g.access, grantContext(authorizationID))
		if err != nil {
			return "", fmt.Errorf("itpflow: open the access token: %w", err)
		}
		return string(b), nil
	}
	if g.refresh == "" {
		return "", ErrNoRefreshToken
	}
	refresh, err := p.Vault.Open(g.refresh, grantContext(authorizationID))
	if err != nil {
		return "", fmt.Errorf("itpflow: open the refresh token: %w", err)
	}
	tok, err := c.Refresh(ctx, string(refresh))
	var terr *fapiclient.TokenError
	if errors.As(err, &terr) {
		// Another worker may have rotated the refresh token meanwhile.
		if again, rerr := readGrant(ctx, p.DB.Read(), authorizationID); rerr == nil && again.updated != g.updated && again.access != g.access &&
			now.Add(tokenMargin).Before(again.accessExpires) {
			b, err := p.Vault.Open(again.access, grantContext(authorizationID))
			if err == nil {
				return string(b), nil
			}
		}
		return "", fmt.Errorf("%w (%s)", ErrRefreshRefused, terr.Code)
	}
	if err != nil {
		return "", fmt.Errorf("itpflow: refresh the access token: %w", err)
	}
	access, err := p.Vault.Seal([]byte(tok.AccessToken), grantContext(authorizationID))
	if err != nil {
		return "", err
	}
	sealedRefresh := g.refresh // a brand that does not rotate leaves it out
	if tok.RefreshToken != "" {
		if sealedRefresh, err = p.Vault.Seal([]byte(tok.RefreshToken), grantContext(authorizationID)); err != nil {
			return "", err
		}
	}
	ttl := time.Duration(tok.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = defaultTokenTTL
	}
	stamp := p.now()
	err = p.DB.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE itp_grants SET access_token = $1, access_expires_at = $2, refresh_token = $3, updated_at = $4
			WHERE authorization_id = $5`, access, stamp.Add(ttl).UnixMilli(), sealedRefresh, stamp.UnixMilli(), authorizationID)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("itpflow: keep the refreshed token: %w", err)
	}
	return tok.AccessToken, nil
}

// handleCreate sends a batch of PENDING payments to the brand in one
// request, with the batch's idempotency key (the same on every retry, so a
// retry after a lost answer creates nothing twice), and records the brand's
// answer: each payment's id and status, or the brand's refusal.
func (p *Payments) handleCreate(ctx context.Context, j *jobs.Job) error {
	var in struct {
		BatchID string `json:"batchId"`
	}
	if err := j.Decode(&in); err != nil {
		return jobs.Cancel(err)
	}
	batch, err := paymentsOfBatch(ctx, p.DB.Read(), in.BatchID)
	if err != nil {
		return err
	}
	if len(batch) == 0 || batch[0].Status != PaymentPending {
		return nil // created (or ended) by an earlier run
	}
	first := batch[0]
	fail := func(reason string) error { return p.finishBatch(ctx, batch, nil, "", "", reason) }
	c, err := p.Brands.Client(ctx, first.BrandID)
	if errors.Is(err, ErrBrandNotFound) {
		return fail("the brand is no longer enabled")
	}
	if err != nil {
		return err
	}
	tokenless := func(err error) bool {
		return errors.Is(err, ErrNoRefreshToken) || errors.Is(err, ErrRefreshRefused) || errors.Is(err, ErrNoGrant)
	}
	token, err := p.accessToken(ctx, c, first.AuthorizationID, false)
	switch {
	case tokenless(err):
		return fail(err.Error())
	case err != nil:
		return p.retryOrFail(ctx, j, batch, err)
	}
	path, body := PixPaymentsPath, json.RawMessage(nil)
	if first.Kind == PaymentKindSweeping {
		path = RecurringPaymentsPath
		body = json.RawMessage(`{"data":` + string(first.Request) + `}`)
	} else {
		items := make([]json.RawMessage, len(batch))
		for i, pay := range batch {
			items[i] = pay.Request
		}
		data, _ := json.Marshal(items)
		body = json.RawMessage(`{"data":` + string(data) + `}`)
	}
	answer, err := c.PostSigned(ctx, token, path, body, first.IdempotencyKey)
	var apiErr *fapiclient.APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized {
		// The brand no longer takes the token (its clock, a revocation):
		// renew it once with the refresh token and send the same request.
		token, err = p.accessToken(ctx, c, first.AuthorizationID, true)
		switch {
		case tokenless(err):
			return fail(err.Error())
		case err != nil:
			return p.retryOrFail(ctx, j, batch, err)
		}
		answer, err = c.PostSigned(ctx, token, path, body, first.IdempotencyKey)
	}
	switch {
	case errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500 && apiErr.Status != http.StatusTooManyRequests:
		code, detail := "NAO_INFORMADO", fmt.Sprintf("the brand answered %d", apiErr.Status)
		if len(apiErr.Errors) > 0 {
			code, detail = apiErr.Errors[0].Code, apiErr.Errors[0].Detail
		}
		if apiErr.Status != http.StatusUnprocessableEntity {
			return fail(fmt.Sprintf("the brand refused the request: %d %s: %s", apiErr.Status, code, detail))
		}
		return p.finishBatch(ctx, batch, nil, code, detail, "")
	case err != nil:
		return p.retryOrFail(ctx, j, batch, err)
	}
	if err := p.finishBatch(ctx, batch, answer, "", "", ""); err != nil {
		// An answer Ponte cannot read: the same request (same idempotency
		// key) is asked again, and the batch FAILED after the last attempt.
		return p.retryOrFail(ctx, j, batch, err)
	}
	return nil
}

// retryOrFail retries a transient failure; on the job's last attempt the
// batch is FAILED (the brand never answered; its idempotency key means an
// order it did receive was not duplicated by the retries).
func (p *Payments) retryOrFail(ctx context.Context, j *jobs.Job, batch []*Payment, err error) error {
	p.Logger.WarnContext(ctx, "itpflow: payment creation at the brand failed", "batch_id", batch[0].BatchID, "attempt", j.Attempt, "err", err)
	if !j.Final() {
		return err
	}
	return p.finishBatch(ctx, batch, nil, "", "", "the brand could not be reached: "+err.Error())
}

// brandPayment is one payment in a brand's answer.
type brandPayment struct {
	PaymentID          string `json:"paymentId"`
	RecurringPaymentID string `json:"recurringPaymentId"`
	EndToEndID         string `json:"endToEndId"`
	Status             string `json:"status"`
	RejectionReason    *struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"rejectionReason"`
}

func (b brandPayment) id() string {
	if b.PaymentID != "" {
		return b.PaymentID
	}
	return b.RecurringPaymentID
}

// finishBatch records the outcome of a creation: the brand's answer (answer
// set), a refusal (code set: RJCT), or Ponte's failure (failure set:
// FAILED); each change with its event, and a poll job for each payment not
// yet final.
func (p *Payments) finishBatch(ctx context.Context, batch []*Payment, answer json.RawMessage, code, detail, failure string) error {
	byE2E := map[string]brandPayment{}
	if answer != nil {
		var list []brandPayment
		if err := json.Unmarshal(answer, &list); err != nil {
			var one brandPayment
			if err := json.Unmarshal(answer, &one); err != nil {
				return fmt.Errorf("itpflow: the brand's payment answer: %w", err)
			}
			list = []brandPayment{one}
		}
		for _, b := range list {
			byE2E[b.EndToEndID] = b
		}
		if len(list) == 1 && len(batch) == 1 && list[0].EndToEndID == "" {
			byE2E[batch[0].EndToEndID] = list[0]
		}
	}
	now := p.now()
	return p.DB.Write(ctx, func(tx *sql.Tx) error {
		for _, pay := range batch {
			pay.UpdatedAt = now
			switch {
			case failure != "":
				pay.Status, pay.Error = PaymentFailed, failure
			case code != "":
				pay.Status, pay.RejectionCode, pay.RejectionDetail = PaymentRJCT, code, detail
			default:
				b, ok := byE2E[pay.EndToEndID]
				if !ok || b.id() == "" || !knownPaymentStatuses[b.Status] {
					pay.Status, pay.Error = PaymentFailed, "the brand's answer does not list this payment"
					break
				}
				pay.PaymentID, pay.Status = b.id(), b.Status
				if b.RejectionReason != nil {
					pay.RejectionCode, pay.RejectionDetail = b.RejectionReason.Code, b.RejectionReason.Detail
				}
			}
			ok, err := updatePayment(ctx, tx, pay, PaymentPending)
			if err != nil {
				return err
			}
			if !ok {
				continue // another run recorded it first
			}
			if err := p.changed(ctx, tx, pay); err != nil {
				return err
			}
			if !FinalPayment(pay.Status) {
				if err := p.enqueuePoll(ctx, tx, pay, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (p *Payments) enqueuePoll(ctx context.Context, tx *sql.Tx, pay *Payment, now time.Time) error {
	delay := firstPollDelay << min(pay.Polls, 12)
	if delay > maxPollDelay {
		delay = maxPollDelay
	}
	if pay.Status == PaymentSCHD {
		delay = scheduledPoll
	}
	_, err := jobs.Enqueue(ctx, tx, now, jobs.Job{Kind: JobPaymentPoll, Payload: map[string]string{"id": pay.ID},
		RunAt: now.Add(delay), UniqueKey: fmt.Sprintf("%s:%s:%d", JobPaymentPoll, pay.ID, pay.Polls), MaxAttempts: 50})
	if err != nil {
		return fmt.Errorf("itpflow: queue the payment's next read: %w", err)
	}
	return nil
}

// handlePoll reads one payment at the brand (client_credentials token), records
// a status change with its event, and queues the next read until the
// payment is final.
func (p *Payments) handlePoll(ctx context.Context, j *jobs.Job) error {
	var in pollPayload
	if err := j.Decode(&in); err != nil {
		return jobs.Cancel(err)
	}
	pay, err := paymentByID(ctx, p.DB.Read(), in.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return jobs.Cancel(fmt.Errorf("itpflow: payment %s not found", in.ID))
	}
	if err != nil {
		return err
	}
	if FinalPayment(pay.Status) || pay.PaymentID == "" {
		return nil
	}
	c, err := p.Brands.Client(ctx, pay.BrandID)
	if err != nil {
		return err
	}
	scope, path := "payments", PixPaymentsPath+"/"+pay.PaymentID
	if pay.Kind == PaymentKindSweeping {
		scope, path = "recurring-payments", RecurringPaymentsPath+"/"+pay.PaymentID
	}
	token, err := c.Token(ctx, scope)
	if err != nil {
		return err
	}
	raw, err := c.GetSigned(ctx, token, path)
	if err != nil {
		return err
	}
	var b brandPayment
	if err := json.Unmarshal(raw, &b); err != nil || !knownPaymentStatuses[b.Status] {
		return fmt.Errorf("%w: payment %s: unreadable status", fapiclient.ErrBrand, pay.PaymentID)
	}
	now := p.now()
	previous := pay.Status
	return p.DB.Write(ctx, func(tx *sql.Tx) error {
		if !in.Webhook {
			pay.Polls++
		}
		if b.Status != previous {
			pay.UpdatedAt = now // the status's time: unchanged by a read that finds nothing new
		}
		pay.Status = b.Status
		if b.RejectionReason != nil {
			pay.RejectionCode, pay.RejectionDetail = b.RejectionReason.Code, b.RejectionReason.Detail
		}
		update := updatePayment
		if in.Webhook {
			update = updateNotifiedPayment
		}
		ok, err := update(ctx, tx, pay, previous)
		if err != nil || !ok {
			return err
		}
		if previous != pay.Status {
			if err := p.changed(ctx, tx, pay); err != nil {
				return err
			}
		}
		if FinalPayment(pay.Status) || in.Webhook {
			return nil // a notified read leaves the next scheduled one as it is
		}
		return p.enqueuePoll(ctx, tx, pay, now)
	})
}

// ConsentPayments lists the payments Ponte initiated under an authorization.
func (p *Payments) ConsentPayments(ctx context.Context, authorizationID string) ([]*Payment, error) {
	return paymentsOf(ctx, p.DB.Read(), `authorization_id = $1 AND kind = '`+PaymentKindPix+`'`, authorizationID)
}
