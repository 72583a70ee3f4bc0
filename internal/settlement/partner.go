package settlement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/validation"
)

// Partner settlement: names and defaults.
const (
	// DefaultDeadline is how long the holder partner has to report the
	// outcome of a settlement Ponte asked for.
	DefaultDeadline = 15 * time.Minute
	// DeadlineCode is the rejection code of a payment whose partner did not
	// report in time: the holder's own infrastructure failed to settle it
	// (Payments v4 EnumRejectionReasonType and Automatic Payments v2
	// EnumRejectionReasonCode both define it). Not PAGAMENTO_RECUSADO_DETENTORA
	// (no one refused it), not an SPI code (nothing says the SPI failed), not
	// the deprecated FALHA_INFRAESTRUTURA.
	DeadlineCode = "FALHA_INFRAESTRUTURA_DETENTORA"
	// JobDeadline is the durable job that applies the deadline.
	JobDeadline = "settlement.deadline"
	// EventContext is the webhook events' context.
	EventContext = "Settlement"
	// EventRequested asks the holder partner to settle a payment.
	EventRequested = "PAYMENT_SETTLEMENT_REQUESTED"
	// EventExpired tells it Ponte rejected the payment at the deadline: it
	// must not settle it any more.
	EventExpired = "PAYMENT_SETTLEMENT_EXPIRED"
	// EventCancelled tells it the initiator cancelled a payment it held for
	// analysis (PDNG): it must not settle it any more.
	EventCancelled = "PAYMENT_SETTLEMENT_CANCELLED"
)

// deadlineDetail is the rejection detail of a payment past its deadline.
const deadlineDetail = "A instituição detentora não informou o resultado da liquidação no prazo."

// Request statuses (settlement_requests.status).
const (
	requestReserved = "RESERVED" // accepted, money held at the partner's core
	requestReleased = "RELEASED"
	requestPending  = "PENDING" // asked to settle, waiting for the report
	// StatusSettled and StatusRejected are the outcomes the partner reports
	// (the payment statuses they lead to).
	StatusSettled  = "ACSC"
	StatusRejected = "RJCT"
	// StatusHeld is the partner holding the payment for analysis (PDNG) before
	// it reports ACSC or RJCT; the initiator may cancel it meanwhile.
	StatusHeld = "PDNG"
)

// Partner is the production Settlement: the holder partner's core banking
// holds and moves the money, so Reserve and Release only record the request;
// Settle asks the partner, with a signed webhook event to the partner
// application owning the debtor account, and schedules the deadline; the
// partner reports the outcome through Report (the admin API), which the
// payment's service learns through Outcomes in the same transaction.
type Partner struct {
	DB     *store.DB
	Clock  clock.Clock
	Logger *slog.Logger
	Events Events
	// Outcomes reaches the payment services; set once they exist.
	Outcomes Outcomes
	// Deadline is how long a partner has to report (DefaultDeadline when 0).
	Deadline time.Duration
}

// Errors of Report.
var (
	// ErrNotFound: no settlement of this payment was asked of this partner.
	ErrNotFound = errors.New("settlement: no settlement of this payment for this partner")
	// ErrConflict: the payment already has another outcome, or is not
	// waiting for one.
	ErrConflict = errors.New("settlement: the payment's settlement has another outcome or awaits none")
)

// Register adds the deadline job's handler to the queue.
func (p *Partner) Register(c *jobs.Client) {
	c.Register(JobDeadline, p.handleDeadline, jobs.Backoff(5*time.Second, 5*time.Minute))
}

func (p *Partner) deadline() time.Duration {
	if p.Deadline > 0 {
		return p.Deadline
	}
	return DefaultDeadline
}

// Reserve records the request after checking the debtor account is Ponte's,
// active and not the creditor's. Funds are the partner's to check (it
// reports SALDO_INSUFICIENTE as a rejection).
func (p *Partner) Reserve(ctx context.Context, tx *sql.Tx, t Transfer) error {
	if err := t.check(); err != nil {
		return err
	}
	debtor, err := allowedDebtor(ctx, stepQ{db: p.DB, tx: tx}, t)
	if err != nil {
		return err
	}
	at := t.At.UnixMilli()
	res, err := tx.ExecContext(ctx, `INSERT INTO settlement_requests (kind, payment_id, application_id, debtor_account_id,
		amount_cents, currency, end_to_end_id, status, reject_code, reject_detail, deadline_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', '', 0, $9, $9) ON CONFLICT (kind, payment_id) DO NOTHING`,
		string(t.Kind), t.PaymentID, debtor.ApplicationID, debtor.ID, t.AmountCents, t.Currency, t.EndToEndID, requestReserved, at)
	if err != nil {
		return fmt.Errorf("settlement: record request %s: %w", t.PaymentID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	status, err := requestStatus(ctx, tx, t.Kind, t.PaymentID)
	if err != nil {
		return err
	}
	if status == requestReleased {
		return ErrReleased
	}
	return nil
}

// Settle asks the holder partner to settle t: one webhook event to the
// partner application owning the debtor account and one deadline job, in tx.
// done is false (the outcome comes through Report or the deadline), true
// only when the partner already reported ACSC. Asking again changes nothing.
func (p *Partner) Settle(ctx context.Context, tx *sql.Tx, t Transfer) (bool, error) {
	deadline := t.At.Add(p.deadline())
	var appID string
	err := tx.QueryRowContext(ctx, `UPDATE settlement_requests SET status = $1, deadline_at = $2, updated_at = $3
		WHERE kind = $4 AND payment_id = $5 AND status = $6 RETURNING application_id`,
		requestPending, deadline.UnixMilli(), t.At.UnixMilli(), string(t.Kind), t.PaymentID, requestReserved).Scan(&appID)
	if errors.Is(err, sql.ErrNoRows) {
		status, err := requestStatus(ctx, tx, t.Kind, t.PaymentID)
		switch {
		case err != nil:
			return false, err
		case status == StatusSettled:
			return true, nil
		case status == requestPending, status == StatusHeld, status == StatusRejected:
			return false, nil
		}
		return false, ErrNotReserved
	}
	if err != nil {
		return false, fmt.Errorf("settlement: ask to settle %s: %w", t.PaymentID, err)
	}
	ev := Event{
		ID: eventID("settlement-requested", t.Kind, t.PaymentID), ApplicationID: appID, Name: EventRequested, EntityID: t.PaymentID,
		Data: map[string]any{
			"kind": string(t.Kind), "paymentId": t.PaymentID, "endToEndId": t.EndToEndID,
			"initiatorApplicationId": t.ApplicationID,
			"amount":                 formatCents(t.AmountCents), "currency": t.Currency,
			"debtorAccount": accountData(t.Debtor), "creditorAccount": accountData(t.Creditor),
			"deadline": deadline.UTC().Format(time.RFC3339),
		},
		AccountNumbers: []string{t.Debtor.Number, t.Creditor.Number},
	}
	if err := p.Events.EmitSettlementEvent(ctx, tx, ev); err != nil {
		return false, fmt.Errorf("settlement: ask to settle %s: %w", t.PaymentID, err)
	}
	if _, err := jobs.Enqueue(ctx, tx, t.At, jobs.Job{Kind: JobDeadline, RunAt: deadline,
		UniqueKey: "settlement-deadline:" + string(t.Kind) + ":" + t.PaymentID,
		Payload:   deadlineJob{Kind: t.Kind, PaymentID: t.PaymentID}}); err != nil {
		return false, err
	}
	return false, nil
}

// Release drops a request not yet sent for settlement, or one the partner
// holds for analysis (PDNG: the initiator cancelled the payment), telling the
// partner in the latter case with EventCancelled; a later report of it is
// ErrConflict. Releasing one sent (pending) or settled is ErrNotReserved; an
// unknown or rejected one is nothing to release.
func (p *Partner) Release(ctx context.Context, tx *sql.Tx, t Transfer) error {
	res, err := tx.ExecContext(ctx, `UPDATE settlement_requests SET status = $1, updated_at = $2 WHERE kind = $3 AND payment_id = $4 AND status = $5`,
		requestReleased, t.At.UnixMilli(), string(t.Kind), t.PaymentID, requestReserved)
	if err != nil {
		return fmt.Errorf("settlement: release %s: %w", t.PaymentID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var appID, e2e string
	err = tx.QueryRowContext(ctx, `UPDATE settlement_requests SET status = $1, updated_at = $2
		WHERE kind = $3 AND payment_id = $4 AND status = $5 RETURNING application_id, end_to_end_id`,
		requestReleased, t.At.UnixMilli(), string(t.Kind), t.PaymentID, StatusHeld).Scan(&appID, &e2e)
	switch {
	case err == nil:
		return p.Events.EmitSettlementEvent(ctx, tx, Event{
			ID: eventID("settlement-cancelled", t.Kind, t.PaymentID), ApplicationID: appID, Name: EventCancelled, EntityID: t.PaymentID,
			Data: map[string]any{"kind": string(t.Kind), "paymentId": t.PaymentID, "endToEndId": e2e, "status": "CANC"},
		})
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("settlement: release held %s: %w", t.PaymentID, err)
	}
	status, err := requestStatus(ctx, tx, t.Kind, t.PaymentID)
	if err != nil {
		return err
	}
	if status == requestPending || status == StatusSettled {
		return ErrNotReserved
	}
	return nil
}

// Report is an outcome the partner reports.
type Report struct {
	Status string // ACSC, RJCT, or PDNG (held for analysis; Pix payments only)
	Code   string // RJCT: the rejection code of the payment's API
	Detail string // RJCT: free text, up to 2,048 characters; default: the code's meaning
}

// Request is a settlement Ponte asked of a holder partner, as the admin API shows it.
type Request struct {
	Kind        Kind
	PaymentID   string
	EndToEndID  string
	AmountCents int64
	Currency    string
	Status      string // PENDING, PDNG, ACSC or RJCT; RESERVED before the partner is asked, RELEASED when dropped or cancelled
	Code        string
	Detail      string
	Deadline    time.Time
	UpdatedAt   time.Time

	applicationID string // the holder partner asked
}

// Amount is the amount as the APIs write money.
func (s *Request) Amount() string { return formatCents(s.AmountCents) }

// Report records the outcome the partner application appID reports for the
// payment, and hands it to the payment's service, in one transaction. The
// same report again answers the same and does nothing; another outcome for a
// payment that has one, or a report for a payment not waiting for one, is
// ErrConflict; a payment of another partner is ErrNotFound. A report that
// comes after the deadline finds the payment rejected with DeadlineCode.
// PDNG holds a pending Pix payment for analysis: its deadline starts again
// from the hold, and ACSC or RJCT finish it later.
func (p *Partner) Report(ctx context.Context, appID, paymentID string, r Report) (*Request, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	var out *Request
	conflict := false
	err := p.DB.Write(ctx, func(tx *sql.Tx) error {
		// A report racing another decision of the same payment (PostgreSQL:
		// its conditional UPDATE waited for the other to commit, then
		// changed nothing) reads the payment again and answers from there.
		for attempt := 0; ; attempt++ {
			var err error
			out, conflict, err = p.report(ctx, tx, appID, paymentID, r)
			if !errors.Is(err, errRaced) || attempt > 0 {
				return err
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if conflict {
		return out, ErrConflict
	}
	return out, nil
}

// errRaced: another decision on the same request committed first.
var errRaced = errors.New("settlement: the outcome was decided concurrently")

// report is one attempt of Report in tx; conflict is ErrConflict's case,
// committed all the same (an expiry it decided stays).
func (p *Partner) report(ctx context.Context, tx *sql.Tx, appID, paymentID string, r Report) (*Request, bool, error) {
	s, err := getRequest(ctx, tx, appID, paymentID)
	if err != nil {
		return nil, false, err
	}
	if r.Status == StatusHeld && s.Kind != KindPix {
		return nil, false, &validation.Error{What: "settlement report", Fields: []validation.FieldError{
			{Field: "status", Message: "PDNG does not apply to sweeping payments (" + apiName[s.Kind] + ")"}}}
	}
	if r.Status == StatusRejected {
		if !slices.Contains(rejectionCodes[s.Kind], r.Code) {
			return nil, false, &validation.Error{What: "settlement report", Fields: []validation.FieldError{
				{Field: "rejectionReason.code", Message: "must be a rejection code of the " + apiName[s.Kind] + " API"}}}
		}
		if r.Detail == "" {
			r.Detail = defaultDetail(r.Code)
		}
	}
	now := p.Clock.Now()
	if s.awaiting() && !now.Before(s.Deadline) {
		// Past the deadline: it decides, whatever the report says.
		if err := p.expire(ctx, tx, s, now); err != nil {
			return nil, false, err
		}
	}
	switch {
	case s.Status == requestPending && r.Status == StatusHeld:
		if err := p.hold(ctx, tx, s, now); err != nil {
			return nil, false, err
		}
	case s.awaiting() && r.Status != StatusHeld:
		if err := p.decide(ctx, tx, s, r.Status, r.Code, r.Detail, now); err != nil {
			return nil, false, err
		}
	case s.Status == r.Status && s.Code == r.Code:
		// the same report again: the same answer
	default:
		return s, true, nil
	}
	return s, false, nil
}

// awaiting reports whether the request waits for the partner's outcome:
// asked to settle, or held for analysis.
func (s *Request) awaiting() bool { return s.Status == requestPending || s.Status == StatusHeld }

// hold moves a pending request to PDNG, restarts its deadline from now and
// tells the payment's service, with the held deadline's job, in tx.
func (p *Partner) hold(ctx context.Context, tx *sql.Tx, s *Request, now time.Time) error {
	deadline := now.Add(p.deadline())
	res, err := tx.ExecContext(ctx, `UPDATE settlement_requests SET status = $1, deadline_at = $2, updated_at = $3
		WHERE kind = $4 AND payment_id = $5 AND status = $6`,
		StatusHeld, deadline.UnixMilli(), now.UnixMilli(), string(s.Kind), s.PaymentID, requestPending)
	if err != nil {
		return fmt.Errorf("settlement: hold %s: %w", s.PaymentID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return errRaced
	}
	s.Status, s.Deadline, s.UpdatedAt = StatusHeld, deadline.UTC().Truncate(time.Millisecond), now.UTC().Truncate(time.Millisecond)
	// The job of the first deadline finds the request held and ends; this
	// one applies the new deadline.
	if _, err := jobs.Enqueue(ctx, tx, now, jobs.Job{Kind: JobDeadline, RunAt: deadline,
		UniqueKey: "settlement-deadline-held:" + string(s.Kind) + ":" + s.PaymentID,
		Payload:   deadlineJob{Kind: s.Kind, PaymentID: s.PaymentID, Held: true}}); err != nil {
		return err
	}
	if p.Outcomes == nil {
		return errors.New("settlement: no payment services to report outcomes to")
	}
	return p.Outcomes.Held(ctx, tx, s.Kind, s.PaymentID)
}

// decide moves an awaiting request (pending or held) to its outcome and
// tells the payment's service. Only one decision wins: the UPDATE is
// conditional on the status read.
func (p *Partner) decide(ctx context.Context, tx *sql.Tx, s *Request, status, code, detail string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE settlement_requests SET status = $1, reject_code = $2, reject_detail = $3, updated_at = $4
		WHERE kind = $5 AND payment_id = $6 AND status = $7`,
		status, code, detail, now.UnixMilli(), string(s.Kind), s.PaymentID, s.Status)
	if err != nil {
		return fmt.Errorf("settlement: record outcome of %s: %w", s.PaymentID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return errRaced
	}
	s.Status, s.Code, s.Detail, s.UpdatedAt = status, code, detail, now.UTC().Truncate(time.Millisecond)
	if p.Outcomes == nil {
		return errors.New("settlement: no payment services to report outcomes to")
	}
	if status == StatusSettled {
		return p.Outcomes.Settled(ctx, tx, s.Kind, s.PaymentID)
	}
	return p.Outcomes.Failed(ctx, tx, s.Kind, s.PaymentID, code, detail)
}

// expire rejects a pending request at its deadline and tells the partner.
func (p *Partner) expire(ctx context.Context, tx *sql.Tx, s *Request, now time.Time) error {
	appID := s.applicationID
	if err := p.decide(ctx, tx, s, StatusRejected, DeadlineCode, deadlineDetail, now); err != nil {
		return err
	}
	return p.Events.EmitSettlementEvent(ctx, tx, Event{
		ID: eventID("settlement-expired", s.Kind, s.PaymentID), ApplicationID: appID, Name: EventExpired, EntityID: s.PaymentID,
		Data: map[string]any{"kind": string(s.Kind), "paymentId": s.PaymentID, "endToEndId": s.EndToEndID,
			"status": StatusRejected, "rejectionReason": map[string]any{"code": DeadlineCode, "detail": deadlineDetail}},
	})
}

// deadlineJob is the payload of JobDeadline.
type deadlineJob struct {
	Kind      Kind   `json:"kind"`
	PaymentID string `json:"paymentId"`
	// Held: the deadline that restarted when the partner held the payment.
	Held bool `json:"held,omitempty"`
}

// errEarly: the deadline job ran before its time (a clock behind another).
var errEarly = errors.New("settlement: deadline not reached yet")

func (p *Partner) handleDeadline(ctx context.Context, j *jobs.Job) error {
	var d deadlineJob
	if err := j.Decode(&d); err != nil {
		return jobs.Cancel(fmt.Errorf("settlement: deadline job payload: %w", err))
	}
	var early time.Time
	err := p.DB.Write(ctx, func(tx *sql.Tx) error {
		s, err := getRequestByKind(ctx, tx, d.Kind, d.PaymentID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		wanted := requestPending
		if d.Held {
			wanted = StatusHeld
		}
		if err != nil || s.Status != wanted {
			return err // reported in time, held (the held deadline's job takes over), or gone
		}
		now := p.Clock.Now()
		if now.Before(s.Deadline) {
			early = s.Deadline
			return errEarly
		}
		if err := p.expire(ctx, tx, s, now); errors.Is(err, errRaced) {
			return nil // a report came first
		} else if err != nil {
			return err
		}
		logger := p.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.WarnContext(ctx, "settlement deadline passed: payment rejected", "kind", s.Kind, "payment_id", s.PaymentID, "code", DeadlineCode)
		return nil
	})
	if errors.Is(err, errEarly) {
		return jobs.RetryAt(err, early)
	}
	return err
}

func requestStatus(ctx context.Context, tx *sql.Tx, kind Kind, paymentID string) (string, error) {
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM settlement_requests WHERE kind = $1 AND payment_id = $2`, string(kind), paymentID).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("settlement: request %s: %w", paymentID, err)
	}
	return status, nil
}

const requestSelect = `SELECT kind, payment_id, application_id, end_to_end_id, amount_cents, currency, status, reject_code, reject_detail,
	deadline_at, updated_at FROM settlement_requests`

func scanRequest(row *sql.Row) (*Request, error) {
	var s Request
	var kind string
	var deadline, updated int64
	err := row.Scan(&kind, &s.PaymentID, &s.applicationID, &s.EndToEndID, &s.AmountCents, &s.Currency, &s.Status, &s.Code, &s.Detail, &deadline, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("settlement: read request: %w", err)
	}
	s.Kind = Kind(kind)
	if deadline > 0 {
		s.Deadline = time.UnixMilli(deadline).UTC()
	}
	s.UpdatedAt = time.UnixMilli(updated).UTC()
	return &s, nil
}

// getRequest finds the request of the payment among the partner's: another
// partner's payment is not found (tenant isolation).
func getRequest(ctx context.Context, tx *sql.Tx, appID, paymentID string) (*Request, error) {
	return scanRequest(tx.QueryRowContext(ctx, requestSelect+` WHERE payment_id = $1 AND application_id = $2`, paymentID, appID))
}

func getRequestByKind(ctx context.Context, tx *sql.Tx, kind Kind, paymentID string) (*Request, error) {
	return scanRequest(tx.QueryRowContext(ctx, requestSelect+` WHERE kind = $1 AND payment_id = $2`, string(kind), paymentID))
}

var eventIDChars = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// eventID derives an event's id from the state change, so a retried step
// emits nothing new.
func eventID(prefix string, kind Kind, paymentID string) string {
	id := prefix + "-" + string(kind) + "-" + eventIDChars.ReplaceAllString(paymentID, "_")
	if len(id) > 128 {
		return "" // the emitter gives it a fresh one; the conditional UPDATE already made the step happen once
	}
	return id
}

func accountData(a Account) map[string]any {
	m := map[string]any{"ispb": a.ISPB, "number": a.Number, "accountType": a.AccountType}
	if a.Issuer != "" {
		m["issuer"] = a.Issuer
	}
	return m
}

// validate checks a report's fields, all at once.
func (r *Report) validate() error {
	var fields []validation.FieldError
	switch r.Status {
	case StatusSettled, StatusHeld:
		if r.Code != "" || r.Detail != "" {
			fields = append(fields, validation.FieldError{Field: "rejectionReason", Message: "must be absent when status is " + r.Status})
		}
	case StatusRejected:
		if r.Code == "" {
			fields = append(fields, validation.FieldError{Field: "rejectionReason.code", Message: "is required when status is RJCT"})
		}
		if len([]rune(r.Detail)) > 2048 {
			fields = append(fields, validation.FieldError{Field: "rejectionReason.detail", Message: "must have at most 2048 characters"})
		}
	default:
		fields = append(fields, validation.FieldError{Field: "status", Message: "must be ACSC, RJCT or PDNG"})
	}
	if len(fields) > 0 {
		return &validation.Error{What: "settlement report", Fields: fields}
	}
	return nil
}

// apiName names each kind's API in messages.
var apiName = map[Kind]string{KindPix: "Payments v4", KindRecurring: "Automatic Payments v2"}

// rejectionCodes are the codes a partner may report, per kind: its API's
// rejection enumeration (Payments v4 EnumRejectionReasonType without the
// deprecated FALHA_INFRAESTRUTURA; Automatic Payments v2
// EnumRejectionReasonCode).
var rejectionCodes = map[Kind][]string{
	KindPix: {"SALDO_INSUFICIENTE", "VALOR_ACIMA_LIMITE", "VALOR_INVALIDO", "COBRANCA_INVALIDA", "NAO_INFORMADO",
		"PAGAMENTO_DIVERGENTE_CONSENTIMENTO", "DETALHE_PAGAMENTO_INVALIDO", "PAGAMENTO_RECUSADO_DETENTORA", "PAGAMENTO_RECUSADO_SPI",
		"FALHA_INFRAESTRUTURA_SPI", "FALHA_INFRAESTRUTURA_DICT", "FALHA_INFRAESTRUTURA_ICP", "FALHA_INFRAESTRUTURA_PSP_RECEBEDOR",
		"FALHA_INFRAESTRUTURA_DETENTORA", "CONTAS_ORIGEM_DESTINO_IGUAIS"},
	KindRecurring: {"SALDO_INSUFICIENTE", "VALOR_ACIMA_LIMITE", "VALOR_INVALIDO", "NAO_INFORMADO", "PAGAMENTO_DIVERGENTE_CONSENTIMENTO",
		"PAGAMENTO_RECUSADO_DETENTORA", "PAGAMENTO_RECUSADO_SPI", "FALHA_INFRAESTRUTURA_SPI", "FALHA_INFRAESTRUTURA_ICP",
		"FALHA_INFRAESTRUTURA_PSP_RECEBEDOR", "FALHA_INFRAESTRUTURA_DETENTORA", "CONSENTIMENTO_INVALIDO", "TITULARIDADE_INCONSISTENTE",
		"LIMITE_PERIODO_VALOR_EXCEDIDO", "LIMITE_PERIODO_QUANTIDADE_EXCEDIDO", "LIMITE_VALOR_TOTAL_CONSENTIMENTO_EXCEDIDO",
		"LIMITE_VALOR_TRANSACAO_CONSENTIMENTO_EXCEDIDO", "LIMITE_TENTATIVAS_EXCEDIDO", "CONSENTIMENTO_REVOGADO", "FORA_PRAZO_PERMITIDO",
		"DETALHE_TENTATIVA_INVALIDO", "DETALHE_PAGAMENTO_INVALIDO"},
}

// defaultDetail is the detail of a rejection reported without one: the
// code's meaning as the specifications describe it, in short.
func defaultDetail(code string) string {
	switch code {
	case "SALDO_INSUFICIENTE":
		return "A conta selecionada não possui saldo suficiente para realizar o pagamento."
	case "VALOR_ACIMA_LIMITE":
		return "O valor ultrapassa o limite estabelecido para permitir a realização de transações pelo cliente."
	case "PAGAMENTO_RECUSADO_DETENTORA":
		return "Pagamento recusado pela instituição detentora."
	case "PAGAMENTO_RECUSADO_SPI":
		return "Pagamento recusado pelo SPI."
	case "FALHA_INFRAESTRUTURA_DETENTORA":
		return "Falha na infraestrutura da instituição detentora."
	}
	return "Pagamento rejeitado pela instituição detentora: " + code + "."
}
