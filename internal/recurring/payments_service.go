package recurring

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store"
)

// JobProcessPayment moves a payment one step (RCVD → ACCP, ACCP → ACSC or
// ACPD); each step enqueues the next in its transaction.
const JobProcessPayment = "recurring.payment.process"

// PaymentEvents records a payment's status change (a webhook event for the
// initiator) in the transaction that writes it. Declared here, adapted in
// internal/app.
type PaymentEvents interface {
	EmitPaymentEvent(ctx context.Context, tx *sql.Tx, e PaymentEvent) error
}

// PaymentsURL is the URL of the payments collection: the aud of a signed POST.
func (s *Service) PaymentsURL() string { return s.BaseURL + PaymentsPath }

// PaymentURL is the URL of payment id: its self link and the aud of a signed PATCH.
func (s *Service) PaymentURL(id string) string { return s.BaseURL + PaymentsPath + "/" + id }

// CreatePaymentInput is one POST /pix/recurring-payments call.
type CreatePaymentInput struct {
	ApplicationID string
	// TokenConsents are the recurring consents the access token was issued
	// for (its recurring-consent:{id} or consent:{id} scopes); the payment's
	// consent must be one of them.
	TokenConsents  []string
	Request        PaymentRequest
	IdempotencyKey string
	JTI            string
}

// CreatePayment decides a payment in one transaction: its consent's row is
// locked, the request checked against the consent and its limits, and
// either the payment is stored RCVD with its processing job and event and
// the 201 answer, or the 422 answer is; both are kept under the
// idempotency key, as the specification asks of payments. It returns
// ErrTokenConsent (403) when the token does not cover the consent,
// idempotency.ErrKeyReused, ErrJTIReused or ErrEndToEndUsed.
func (s *Service) CreatePayment(ctx context.Context, in CreatePaymentInput) (idempotency.Response, error) {
	consentID, err := tokenConsent(in.TokenConsents, in.Request.RecurringConsentID)
	if err != nil {
		return idempotency.Response{}, err
	}
	now := s.now()
	fingerprint, err := idempotency.Fingerprint(http.MethodPost, PaymentsPath, in.Request)
	if err != nil {
		return idempotency.Response{}, err
	}
	return s.idempotent(ctx, in.ApplicationID, in.IdempotencyKey, fingerprint, in.JTI, now,
		func(tx *sql.Tx) (idempotency.Response, error) {
			return s.decide(ctx, tx, consentID, in, now)
		})
}

// tokenConsent is the payment's consent: the request's recurringConsentId
// if sent, else the token's only one; either way one the token covers.
func tokenConsent(tokenConsents []string, requested string) (string, error) {
	switch {
	case requested != "" && slices.Contains(tokenConsents, requested):
		return requested, nil
	case requested == "" && len(tokenConsents) == 1:
		return tokenConsents[0], nil
	}
	return "", ErrTokenConsent
}

// problems is the stored 422 answer for problems.
func problems(now time.Time, ps ...payments.Problem) (idempotency.Response, error) {
	return idempotency.Encode(http.StatusUnprocessableEntity, problemsBody(now, http.StatusUnprocessableEntity, ps))
}

func problem(now time.Time, code, detail string) (idempotency.Response, error) {
	if detail == "" {
		detail = paymentDetails[code]
	}
	return problems(now, payments.Problem{Code: code, Detail: detail})
}

// decide checks the payment against its consent inside tx and writes it.
func (s *Service) decide(ctx context.Context, tx *sql.Tx, consentID string, in CreatePaymentInput, now time.Time) (idempotency.Response, error) {
	r := in.Request
	c, err := lockConsent(ctx, s.DB, tx, consentID)
	if errors.Is(err, ErrNotFound) {
		return idempotency.Response{}, ErrTokenConsent
	}
	if err != nil {
		return idempotency.Response{}, err
	}
	if c.ApplicationID != in.ApplicationID {
		return idempotency.Response{}, ErrTokenConsent
	}
	if verr := r.Validate(now); verr != nil {
		return problems(now, verr.Problems...)
	}
	switch {
	case c.Status == StatusPartiallyAccepted:
		return problem(now, CodeConsentimentoPendenteAutorizacao, "")
	case c.Status != StatusAuthorised, !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt):
		status := c.Status
		if status == StatusAuthorised {
			status = StatusConsumed // its timer is due: it is consumed, whether or not the job ran
		}
		return problem(now, CodeConsentimentoInvalido, fmt.Sprintf("Consentimento inválido (em status final): o consentimento está %s.", status))
	case now.Before(c.StartAt):
		return problem(now, CodeForaPrazoPermitido, fmt.Sprintf("O horário ou período da requisição não permite o agendamento pelo detentor: o consentimento vale a partir de %s.", formatTime(c.StartAt)))
	}
	day, err := time.Parse("2006-1-2", r.Date)
	if err != nil {
		return problems(now, payments.Problem{Code: payments.CodeParametroInvalido, Detail: "Parâmetro date não obedece as regras de formatação esperadas."})
	}
	today := civilDate(now)
	switch {
	case day.After(today):
		return problem(now, CodeForaPrazoPermitido, "O horário ou período da requisição não permite o agendamento pelo detentor: Transferências Inteligentes são liquidadas na data atual (horário de Brasília).")
	case day.Before(today):
		return problems(now, payments.Problem{Code: payments.CodeDetalhePagamentoInvalido,
			Detail: "Parâmetro date não obedece às regras de negócio: deve ser a data atual (horário de Brasília)."})
	}
	creditor, debtorDoc, ok := matchCreditor(c, r.Document.Identification)
	if !ok {
		return problem(now, CodePagamentoDivergenteConsentimento,
			"Dados do pagamento divergentes dos dados do consentimento: document não é um recebedor do consentimento de mesma titularidade do pagador.")
	}
	if c.DebtorAccount == nil {
		return idempotency.Response{}, fmt.Errorf("recurring: authorised consent %s has no debtor account", c.ID)
	}
	if sameAccount(c.DebtorAccount, r.CreditorAccount) {
		return problems(now, payments.Problem{Code: payments.CodeDetalhePagamentoInvalido,
			Detail: "Parâmetro creditorAccount não obedece às regras de negócio: a conta de destino é a conta de origem do consentimento."})
	}
	cents, _ := Cents(r.Payment.Amount) // validated
	u, err := consentUsage(ctx, tx, c.ID, windowsOf(today))
	if err != nil {
		return idempotency.Response{}, err
	}
	var sw *Sweeping
	if rc := c.Request.RecurringConfiguration; rc != nil {
		sw = rc.Sweeping
	}
	if code, detail := limitProblem(sw, cents, u); code != "" {
		return problem(now, code, detail)
	}
	if used, err := endToEndUsed(ctx, tx, r.EndToEndID); err != nil {
		return idempotency.Response{}, err
	} else if used {
		return idempotency.Response{}, ErrEndToEndUsed
	}
	r.RecurringConsentID = c.ID
	p := &Payment{
		ID: s.newPaymentID(), ApplicationID: in.ApplicationID, ConsentID: c.ID, Status: PaymentReceived, Request: r,
		AmountCents: cents, PayDate: today.Format("2006-01-02"), DebtorAccount: *c.DebtorAccount, DebtorDocument: debtorDoc,
		CreditorName: creditor.Name, CreatedAt: now, UpdatedAt: now,
	}
	resp, err := idempotency.Encode(http.StatusCreated, p.Response(s.PaymentURL(p.ID), now))
	if err != nil {
		return idempotency.Response{}, err
	}
	if err := insertPayment(ctx, tx, p); err != nil {
		return idempotency.Response{}, err
	}
	if err := s.afterChange(ctx, tx, p, now); err != nil {
		return idempotency.Response{}, err
	}
	return resp, nil
}

func (s *Service) newPaymentID() string {
	if s.NewPaymentID != nil {
		return s.NewPaymentID()
	}
	return uuid.NewString()
}

// matchCreditor finds the consent's creditor whose document is doc and
// checks it has the debtor's ownership (sweeping moves money between
// accounts of one owner: the same CPF, or CNPJs of one root). It returns the
// creditor and the debtor's document.
func matchCreditor(c *Consent, doc string) (*payments.Creditor, string, bool) {
	debtor := ""
	if be := c.Request.BusinessEntity; be != nil && be.Document != nil {
		debtor = be.Document.Identification
	} else if lu := c.Request.LoggedUser; lu != nil && lu.Document != nil {
		debtor = lu.Document.Identification
	}
	for _, cr := range c.Request.Creditors {
		if cr == nil || cr.CPFCNPJ != doc {
			continue
		}
		switch {
		case len(debtor) == 11 && doc == debtor, len(debtor) == 14 && len(doc) == 14 && doc[:8] == debtor[:8]:
			return cr, debtor, true
		}
		return nil, "", false
	}
	return nil, "", false
}

func sameAccount(a, b *payments.Account) bool {
	return a != nil && b != nil && a.ISPB == b.ISPB && a.Number == b.Number && a.AccountType == b.AccountType &&
		trimZeros(a.Issuer) == trimZeros(b.Issuer)
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

// afterChange writes what goes with p's new status in its transaction: the
// next processing job (while not final) and the webhook event.
func (s *Service) afterChange(ctx context.Context, tx *sql.Tx, p *Payment, now time.Time) error {
	if p.Status == PaymentReceived || p.Status == PaymentAccepted {
		if _, err := jobs.Enqueue(ctx, tx, now, jobs.Job{
			Kind: JobProcessPayment, Payload: processPayload{PaymentID: p.ID},
			UniqueKey: JobProcessPayment + ":" + p.ID + ":" + string(p.Status),
		}); err != nil {
			return err
		}
	}
	if s.Events == nil {
		return nil
	}
	e := PaymentEvent{ApplicationID: p.ApplicationID, PaymentID: p.ID, ConsentID: p.ConsentID, EndToEndID: p.Request.EndToEndID,
		Status: p.Status, At: now}
	if p.Rejection != nil {
		e.RejectionCode = p.Rejection.Code
	}
	return s.Events.EmitPaymentEvent(ctx, tx, e)
}

type processPayload struct {
	PaymentID string `json:"paymentId"`
}

// idempotent runs decide once per (application, key) within 24 h, in one
// transaction with the jti and the record of its answer, whatever it is
// (201, 200 or 422; idempotency.Within); a replay gets the stored answer,
// another request under the key idempotency.ErrKeyReused. An error from
// decide stores nothing.
func (s *Service) idempotent(ctx context.Context, appID, key, fingerprint, jti string, now time.Time,
	decide func(tx *sql.Tx) (idempotency.Response, error)) (idempotency.Response, error) {
	var out idempotency.Response
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		if err := s.recordJTI(ctx, tx, appID, jti, now); err != nil {
			return err
		}
		var err error
		out, err = idempotency.Within(ctx, s.DB, tx, idempotency.Request{ApplicationID: appID, Key: key, Fingerprint: fingerprint, Now: now},
			func() (idempotency.Response, bool, error) {
				resp, err := decide(tx)
				return resp, true, err
			})
		return err
	})
	if err != nil {
		return idempotency.Response{}, err
	}
	return out, nil
}

// GetPayment returns payment id; one another application created is ErrNotOwner.
func (s *Service) GetPayment(ctx context.Context, applicationID, id string) (*Payment, error) {
	p, err := getPayment(ctx, s.DB.Read(), id)
	if err != nil {
		return nil, err
	}
	if p.ApplicationID != applicationID {
		return nil, ErrNotOwner
	}
	return p, nil
}

// ListInput selects the payments of GET /pix/recurring-payments.
type ListInput struct {
	ApplicationID string
	ConsentID     string
	// StartDate and EndDate bound data.date (YYYY-MM-DD, inclusive), "" for none.
	StartDate, EndDate string
	// OriginalPaymentID selects a payment and its retries (sweeping has none).
	OriginalPaymentID string
}

// ListPayments returns a consent's payments, oldest first. An unknown
// consent is ErrNotFound, another application's ErrNotOwner.
func (s *Service) ListPayments(ctx context.Context, in ListInput) ([]*Payment, error) {
	c, err := getConsent(ctx, s.DB.Read(), in.ConsentID)
	if err != nil {
		return nil, err
	}
	if c.ApplicationID != in.ApplicationID {
		return nil, ErrNotOwner
	}
	return listPayments(ctx, s.DB, listFilter{consentID: c.ID, from: in.StartDate, to: in.EndDate, original: in.OriginalPaymentID})
}

// CancelPaymentInput is one PATCH /pix/recurring-payments/{id} call.
type CancelPaymentInput struct {
	ApplicationID  string
	PaymentID      string
	Request        PatchPaymentRequest
	IdempotencyKey string
	JTI            string
}

// CancelPayment cancels a payment in SCHD or PDNG (CANC, its reservation
// released); any other status is 422 PAGAMENTO_NAO_PERMITE_CANCELAMENTO.
// The answer is kept under the idempotency key. It returns
// ErrPaymentNotFound, ErrNotOwner, idempotency.ErrKeyReused or ErrJTIReused.
func (s *Service) CancelPayment(ctx context.Context, in CancelPaymentInput) (idempotency.Response, error) {
	now := s.now()
	fingerprint, err := idempotency.Fingerprint(http.MethodPatch, PaymentsPath+"/"+in.PaymentID, in.Request)
	if err != nil {
		return idempotency.Response{}, err
	}
	return s.idempotent(ctx, in.ApplicationID, in.IdempotencyKey, fingerprint, in.JTI, now,
		func(tx *sql.Tx) (idempotency.Response, error) {
			p, err := lockPayment(ctx, s.DB, tx, in.PaymentID)
			if err != nil {
				return idempotency.Response{}, err
			}
			if p.ApplicationID != in.ApplicationID {
				return idempotency.Response{}, ErrNotOwner
			}
			if verr := in.Request.Validate(); verr != nil {
				return problems(now, verr.Problems...)
			}
			reason := ""
			switch p.Status {
			case PaymentScheduled:
				reason = "CANCELADO_AGENDAMENTO"
			case PaymentPending:
				reason = "CANCELADO_PENDENCIA"
			default:
				return problem(now, CodePagamentoNaoPermiteCancelamento,
					fmt.Sprintf("O pagamento está com um status que não permite o cancelamento (%s).", p.Status))
			}
			from := p.Status
			p.Status, p.UpdatedAt = PaymentCancelled, now
			p.Cancellation = &Cancellation{Reason: reason, CancelledFrom: string(ActorInitiator), CancelledAt: formatTime(now),
				CancelledBy: in.Request.Cancellation.CancelledBy}
			if err := updatePaymentStatus(ctx, tx, p, from); err != nil {
				return idempotency.Response{}, err
			}
			if s.Settlement != nil {
				if err := s.Settlement.Release(ctx, tx, s.transfer(p, now)); err != nil {
					return idempotency.Response{}, fmt.Errorf("recurring: release cancelled payment: %w", err)
				}
			}
			if err := s.afterChange(ctx, tx, p, now); err != nil {
				return idempotency.Response{}, err
			}
			return idempotency.Encode(http.StatusOK, p.Response(s.PaymentURL(p.ID), now))
		})
}

// transfer is p as the Settlement sees it.
func (s *Service) transfer(p *Payment, at time.Time) settlement.Transfer {
	r := p.Request
	t := settlement.Transfer{
		Kind: settlement.KindRecurring, PaymentID: p.ID, EndToEndID: r.EndToEndID, ApplicationID: p.ApplicationID,
		AmountCents: p.AmountCents, Currency: r.Payment.Currency,
		Debtor: settlement.Account{ISPB: p.DebtorAccount.ISPB, Issuer: p.DebtorAccount.Issuer, Number: p.DebtorAccount.Number,
			AccountType: p.DebtorAccount.AccountType},
		DebtorParty:   settlement.Party{Document: p.DebtorDocument},
		CreditorParty: settlement.Party{Name: p.CreditorName, Document: r.Document.Identification},
		At:            at,
	}
	if a := r.CreditorAccount; a != nil {
		t.Creditor = settlement.Account{ISPB: a.ISPB, Issuer: a.Issuer, Number: a.Number, AccountType: a.AccountType}
	}
	if r.RemittanceInformation != nil {
		t.Description = *r.RemittanceInformation
	}
	return t
}

// handleProcess runs one processing step; when the last attempt fails the
// payment is rejected (FALHA_INFRAESTRUTURA_DETENTORA) rather than left
// half-way.
func (s *Service) handleProcess(ctx context.Context, j *jobs.Job) error {
	var pl processPayload
	if err := j.Decode(&pl); err != nil {
		return jobs.Cancel(fmt.Errorf("recurring: bad payment job payload: %w", err))
	}
	err := s.Process(ctx, pl.PaymentID)
	if errors.Is(err, ErrPaymentNotFound) {
		return jobs.Cancel(err)
	}
	if err != nil && j.Final() {
		s.Logger.ErrorContext(ctx, "recurring payment processing failed for good", "payment_id", pl.PaymentID, "err", err)
		ferr := s.DB.Write(ctx, func(tx *sql.Tx) error {
			p, err := lockPayment(ctx, s.DB, tx, pl.PaymentID)
			if err != nil || p.Status.Final() || p.Status == PaymentSettlementPending {
				return err // a pending settlement's outcome comes from the settlement
			}
			return s.reject(ctx, tx, p, CodeFalhaInfraestruturaDetentora, "", s.now())
		})
		if ferr != nil {
			return fmt.Errorf("%w (and rejecting it: %v)", err, ferr)
		}
		return nil
	}
	return err
}

// Process moves payment id one step in one transaction: RCVD → ACCP (the
// amount reserved) or RJCT; ACCP → ACSC (settled at once) or ACPD (the
// settlement reports later) or RJCT. Other statuses are left alone.
func (s *Service) Process(ctx context.Context, id string) error {
	return s.DB.Write(ctx, func(tx *sql.Tx) error {
		now := s.now()
		p, err := lockPayment(ctx, s.DB, tx, id)
		if err != nil {
			return err
		}
		if p.Status != PaymentReceived && p.Status != PaymentAccepted {
			return nil
		}
		if s.Settlement == nil {
			return errors.New("recurring: no settlement configured")
		}
		t := s.transfer(p, now)
		if p.Status == PaymentReceived {
			c, err := getConsent(ctx, tx, p.ConsentID)
			if err != nil {
				return err
			}
			if c.Status == StatusRevoked {
				return s.reject(ctx, tx, p, CodeConsentimentoRevogado, "", now)
			}
			var refused error
			if err := s.guarded(ctx, tx, func() error { return s.Settlement.Reserve(ctx, tx, t) }, &refused); err != nil {
				return err
			}
			if refused != nil {
				return s.reject(ctx, tx, p, rejectionFor(refused), "", now)
			}
			return s.move(ctx, tx, p, PaymentAccepted, now)
		}
		var (
			done    bool
			refused error
		)
		if err := s.guarded(ctx, tx, func() error {
			var err error
			done, err = s.Settlement.Settle(ctx, tx, t)
			return err
		}, &refused); err != nil {
			return err
		}
		switch {
		case refused != nil:
			return s.reject(ctx, tx, p, rejectionFor(refused), "", now)
		case done:
			return s.move(ctx, tx, p, PaymentSettled, now)
		}
		return s.move(ctx, tx, p, PaymentSettlementPending, now)
	})
}

// guarded runs a settlement step inside a savepoint: a refusal (one of the
// settlement's errors) undoes whatever the step wrote and is returned in
// refused, so the rejection is written in a clean transaction; any other
// error is returned as is (the job retries).
func (s *Service) guarded(ctx context.Context, tx *sql.Tx, step func() error, refused *error) error {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT recurring_settlement`); err != nil {
		return fmt.Errorf("recurring: savepoint: %w", err)
	}
	err := step()
	if err != nil && rejectionFor(err) != "" {
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT recurring_settlement`); rerr != nil {
			return fmt.Errorf("recurring: rollback to savepoint: %w", rerr)
		}
		*refused, err = err, nil
	}
	if err != nil {
		return fmt.Errorf("recurring: settlement: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT recurring_settlement`); err != nil {
		return fmt.Errorf("recurring: release savepoint: %w", err)
	}
	return nil
}

// rejectionFor maps a settlement refusal to its rejection code; "" for an
// error that is not a refusal.
func rejectionFor(err error) string {
	switch {
	case errors.Is(err, settlement.ErrInsufficientFunds):
		return CodeSaldoInsuficiente
	case errors.Is(err, settlement.ErrAboveLimit):
		return CodeValorAcimaLimite
	case errors.Is(err, settlement.ErrAccountNotAllowed), errors.Is(err, settlement.ErrSameAccount), errors.Is(err, settlement.ErrReleased):
		return CodePagamentoRecusadoDetentora
	case errors.Is(err, settlement.ErrNotReserved):
		return CodeFalhaInfraestruturaDetentora
	}
	return ""
}

// move writes p's transition to status with its job and event.
func (s *Service) move(ctx context.Context, tx *sql.Tx, p *Payment, status PaymentStatus, now time.Time) error {
	from := p.Status
	p.Status, p.UpdatedAt = status, now
	if err := updatePaymentStatus(ctx, tx, p, from); err != nil {
		return err
	}
	return s.afterChange(ctx, tx, p, now)
}

// reject moves p to RJCT with code (detail "" → the standard one), gives
// its reservation back and so its share of the consent's limits (RJCT does
// not count).
func (s *Service) reject(ctx context.Context, tx *sql.Tx, p *Payment, code, detail string, now time.Time) error {
	if detail == "" {
		detail = paymentDetails[code]
	}
	if detail == "" {
		detail = code
	}
	from := p.Status
	p.Status, p.UpdatedAt, p.Rejection = PaymentRejected, now, &PaymentReason{Code: code, Detail: truncate(detail, 2048)}
	if err := updatePaymentStatus(ctx, tx, p, from); err != nil {
		return err
	}
	if s.Settlement != nil && from != PaymentReceived {
		if err := s.Settlement.Release(ctx, tx, s.transfer(p, now)); err != nil {
			return fmt.Errorf("recurring: release rejected payment: %w", err)
		}
	}
	return s.afterChange(ctx, tx, p, now)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n]
}

// SettlementSettled records a later settlement's success: ACPD (or ACCP) →
// ACSC, in tx with the event. A payment already ACSC is left alone.
func (s *Service) SettlementSettled(ctx context.Context, tx *sql.Tx, paymentID string) error {
	p, err := lockPayment(ctx, s.DB, tx, paymentID)
	if err != nil {
		return err
	}
	switch p.Status {
	case PaymentSettled:
		return nil
	case PaymentSettlementPending, PaymentAccepted:
		return s.move(ctx, tx, p, PaymentSettled, s.now())
	}
	return fmt.Errorf("%w: %s is %s, cannot settle", ErrPaymentTransition, p.ID, p.Status)
}

// SettlementFailed records a later settlement's failure: the payment, not
// yet final, → RJCT with code (one of RejectionCodes) and detail, its
// reservation released, in tx with the event. A payment already RJCT is
// left alone.
func (s *Service) SettlementFailed(ctx context.Context, tx *sql.Tx, paymentID, code, detail string) error {
	if !slices.Contains(RejectionCodes, code) {
		return fmt.Errorf("%w: %q", ErrRejectionReason, code)
	}
	p, err := lockPayment(ctx, s.DB, tx, paymentID)
	if err != nil {
		return err
	}
	switch p.Status {
	case PaymentRejected:
		return nil
	case PaymentReceived, PaymentAccepted, PaymentSettlementPending:
		return s.reject(ctx, tx, p, code, detail, s.now())
	}
	return fmt.Errorf("%w: %s is %s, cannot reject", ErrPaymentTransition, p.ID, p.Status)
}

// lockPayment reads a payment through tx holding its row until tx ends
// (PostgreSQL; SQLite has one writer).
func lockPayment(ctx context.Context, db *store.DB, tx *sql.Tx, id string) (*Payment, error) {
	q := `SELECT ` + paymentColumns + ` FROM recurring_payments WHERE id = $1`
	if db.Engine() == store.Postgres {
		q += ` FOR UPDATE`
	}
	return scanPayment(tx.QueryRowContext(ctx, q, id))
}
