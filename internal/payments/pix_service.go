package payments

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Routes of the Pix payments.
const (
	PixPaymentsPath        = "/open-banking/payments/v4/pix/payments"
	PixConsentPaymentsPath = PixPaymentsPath + "/consents"
)

// JobSettle is the job kind of the settlement worker: it takes every
// accepted payment and every scheduled one whose date has come, in batches
// of SettleBatchSize per transaction. One job exists per second of due time
// (unique key), so a burst of payments shares one job instead of paying a
// job's overhead each.
const JobSettle = "payments.pix.settle"

// SettleBatchSize is how many payments the worker settles per transaction.
const SettleBatchSize = 500

// PaymentEvents receives every payment status change inside the
// transaction that writes it; internal/app turns it into a webhook event for
// the holder partner owning the debtor account.
type PaymentEvents interface {
	EmitPixPaymentEvent(ctx context.Context, tx *sql.Tx, e PaymentEvent) error
}

// BatchPaymentEvents is PaymentEvents that also takes a batch of status
// changes at once (the settlement worker's), looking up what every event of
// an application shares once rather than per event.
type BatchPaymentEvents interface {
	EmitPixPaymentEvents(ctx context.Context, tx *sql.Tx, es []PaymentEvent) error
}

// PixPaymentsURL is the aud of a signed POST /pix/payments body.
func (s *Service) PixPaymentsURL() string { return s.BaseURL + PixPaymentsPath }

// PixPaymentURL is payment id's URL: its self link and the aud of its PATCH.
func (s *Service) PixPaymentURL(id string) string { return s.BaseURL + PixPaymentsPath + "/" + id }

// PixConsentPaymentsURL is the URL of PATCH /pix/payments/consents/{consentId}.
func (s *Service) PixConsentPaymentsURL(consentID string) string {
	return s.BaseURL + PixConsentPaymentsPath + "/" + consentID
}

// CreatePixPaymentsInput is one POST /pix/payments call.
type CreatePixPaymentsInput struct {
	ApplicationID string
	// ConsentID is the consent the access token was issued for (its scope
	// consent:{consentId}).
	ConsentID      string
	Items          []PixPaymentRequest
	IdempotencyKey string
	JTI            string // "" for plain JSON
	// Undecodable is the 422 of a body whose data could not be decoded (no
	// data, a value of the wrong JSON type), with RawData the data as sent:
	// that refusal is stored and replayed under the key like the others.
	Undecodable *ValidationError
	RawData     json.RawMessage
}

// CreatePixPayments validates the payments against their consent and stores
// them in one transaction with their reservation, their settlement job,
// their webhook events, the used jti and the idempotency record. The answer
// is a 201, or a 422 naming the broken rule; both are stored under the key
// and replayed, as the specification's idempotency rules ask for payments.
// Other errors: idempotency.ErrKeyReused, ErrJTIReused, ErrConsentNotOwned.
func (s *Service) CreatePixPayments(ctx context.Context, in CreatePixPaymentsInput) (idempotency.Response, error) {
	now := s.Clock.Now().UTC().Truncate(time.Second)
	var canonical any = struct {
		ConsentID string
		Items     []PixPaymentRequest
	}{in.ConsentID, in.Items}
	verr := in.Undecodable
	if verr != nil {
		canonical = struct {
			ConsentID string
			Raw       string
		}{in.ConsentID, string(in.RawData)}
	} else {
		verr = validatePixPayments(in.Items)
	}
	fingerprint, err := idempotency.Fingerprint(http.MethodPost, PixPaymentsPath, canonical)
	if err != nil {
		return idempotency.Response{}, err
	}
	create := func() (idempotency.Response, error) {
		return s.idempotent(ctx, in.ApplicationID, in.IdempotencyKey, fingerprint, in.JTI, now,
			func(tx *sql.Tx) (idempotency.Response, bool, error) {
				if verr != nil {
					resp, err := s.errorResponse(verr, now)
					return resp, true, err
				}
				resp, err := s.createPixTx(ctx, tx, in, now)
				return resp, true, err
			})
	}
	resp, err := create()
	if errors.Is(err, errEndToEndRace) {
		// Another consent's payment took the endToEndId between our check and
		// our insert (PostgreSQL runs both at once); the transaction rolled
		// back, and running it again meets the committed row and answers the
		// 422 that a later request would get.
		resp, err = create()
	}
	return resp, err
}

// errEndToEndRace is an insert that met the endToEndId's unique index.
var errEndToEndRace = errors.New("payments: endToEndId taken by a concurrent payment")

// idempotent runs fn in one write transaction with the request's jti and,
// under the application's idempotency key, the record of fn's answer when
// fn says to keep it (idempotency.Within): a live record with the same
// fingerprint is replayed without running fn, one with another fingerprint
// is idempotency.ErrKeyReused. The jti is recorded first, so a resend must be
// a new JWS, as the specification asks.
func (s *Service) idempotent(ctx context.Context, appID, key, fingerprint, jti string, now time.Time,
	fn func(tx *sql.Tx) (idempotency.Response, bool, error)) (idempotency.Response, error) {
	var out idempotency.Response
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		if jti != "" {
			if err := s.recordJTI(ctx, tx, appID, jti, now); err != nil {
				return err
			}
		}
		var err error
		out, err = idempotency.Within(ctx, s.DB, tx, idempotency.Request{ApplicationID: appID, Key: key, Fingerprint: fingerprint, Now: now},
			func() (idempotency.Response, bool, error) { return fn(tx) })
		return err
	})
	if err != nil {
		return idempotency.Response{}, err
	}
	return out, nil
}

// errorResponse renders a refusal as the API's error body, for storing.
func (s *Service) errorResponse(v *ValidationError, now time.Time) (idempotency.Response, error) {
	body := ErrorWriter{Clock: s.Clock}.body(v.Status, v.Problems)
	body.Meta.RequestDateTime = formatTime(now)
	return idempotency.Encode(v.Status, body)
}

func (s *Service) refuse(code, detail string, now time.Time) (idempotency.Response, error) {
	return s.errorResponse(unprocessable(code, detail), now)
}

// brasiliaMidnight is 00:00 in Brasília of date (YYYY-MM-DD): when a
// scheduled payment becomes due, and the end of its cancellation window.
func brasiliaMidnight(date string) time.Time {
	d, _ := time.ParseInLocation(time.DateOnly, date, brasilia)
	return d.UTC()
}

func (s *Service) createPixTx(ctx context.Context, tx *sql.Tx, in CreatePixPaymentsInput, now time.Time) (idempotency.Response, error) {
	if err := lockConsent(ctx, tx, in.ConsentID); err != nil {
		return idempotency.Response{}, err
	}
	c, err := getConsent(ctx, tx, in.ConsentID)
	if errors.Is(err, ErrNotFound) {
		return idempotency.Response{}, ErrConsentNotOwned
	}
	if err != nil {
		return idempotency.Response{}, err
	}
	if c.ApplicationID != in.ApplicationID {
		return idempotency.Response{}, ErrConsentNotOwned
	}
	used, err := consentHasPayments(ctx, tx, c.ID)
	if err != nil {
		return idempotency.Response{}, err
	}
	switch {
	case c.Status == StatusPartiallyAccepted:
		return s.refuse(CodeConsentimentoPendente, "Consentimento pendente autorização de múltiplas alçadas (status “PARTIALLY_ACCEPTED”).", now)
	case c.Status == StatusAuthorised && used:
		return s.refuse(CodeConsentimentoInvalido, "Consentimento inválido: seus pagamentos já foram iniciados.", now)
	case c.Status == StatusAuthorised && !now.Before(c.ExpiresAt):
		// The consumption window closed and the timer has not run yet: the
		// consent expires now, in this transaction.
		from := c.Status
		c.Status, c.StatusUpdatedAt = StatusRejected, now
		c.Rejection = &RejectionReason{Code: RejectTempoExpiradoConsumo, Detail: rejectionDetails[RejectTempoExpiradoConsumo]}
		if err := updateStatus(ctx, tx, c, from); err != nil {
			return idempotency.Response{}, err
		}
		if err := s.consentChanged(ctx, tx, c.ID, c.ApplicationID, from, c.Status, now); err != nil {
			return idempotency.Response{}, err
		}
		return s.refuse(CodeConsentimentoInvalido, "Consentimento inválido (em status final): REJECTED, tempo de consumo expirado.", now)
	case c.Status != StatusAuthorised:
		return s.refuse(CodeConsentimentoInvalido, "Consentimento inválido (em status final): "+string(c.Status)+".", now)
	case c.DebtorAccount == nil:
		return idempotency.Response{}, fmt.Errorf("payments: authorised consent %s has no debtor account", c.ID)
	}
	dates, verr := matchConsent(c, in.Items, now)
	if verr != nil {
		return s.errorResponse(verr, now)
	}
	ids := make([]string, len(in.Items))
	for i := range in.Items {
		ids[i] = in.Items[i].EndToEndID
	}
	if e2e, err := endToEndUsed(ctx, s.DB, tx, in.ApplicationID, ids); err != nil {
		return idempotency.Response{}, err
	} else if e2e != "" {
		return s.refuse(CodeParametroInvalido, "Parâmetro endToEndId não obedece as regras de formatação esperadas: "+e2e+" já foi utilizado em outro pagamento.", now)
	}
	if s.Settlement == nil {
		return idempotency.Response{}, ErrNoSettlement
	}
	parties := Parties{}
	if u := c.Request.LoggedUser; u != nil && u.Document != nil {
		parties.DebtorDocument = u.Document.Identification
	}
	if b := c.Request.BusinessEntity; b != nil && b.Document != nil {
		parties.DebtorDocument = b.Document.Identification
	}
	if cr := c.Request.Creditor; cr != nil {
		parties.CreditorName, parties.CreditorDocument = cr.Name, cr.CPFCNPJ
	}
	out := make([]*PixPayment, len(in.Items))
	for i, item := range in.Items {
		cents, err := amountCents(item.Payment.Amount)
		if err != nil {
			return idempotency.Response{}, err
		}
		p := &PixPayment{
			ID: uuid.NewString(), ConsentID: c.ID, ApplicationID: in.ApplicationID, Request: item,
			DebtorAccount: *c.DebtorAccount, Parties: parties, AmountCents: cents, ScheduledDate: dates[i],
			CreatedAt: now, StatusUpdatedAt: now, DueAt: now,
		}
		if p.ScheduledDate != "" {
			// Scheduled: the balance is checked on the date, not now (item 4.1.1).
			p.Status, p.DueAt = PaymentSCHD, brasiliaMidnight(p.ScheduledDate)
		} else {
			switch err := s.Settlement.Reserve(ctx, tx, s.transfer(p, now)); {
			case err == nil:
				p.Status = PaymentACCP
			case errors.Is(err, settlement.ErrInsufficientFunds):
				return s.refuse(CodeSaldoInsuficiente, "A conta selecionada não possui saldo suficiente para realizar o pagamento.", now)
			case errors.Is(err, settlement.ErrAboveLimit):
				return s.refuse(CodeValorAcimaLimite, "O valor (ou quantidade de transações) ultrapassa a faixa de limite parametrizada na detentora para permitir a realização de transações pelo cliente.", now)
			case errors.Is(err, settlement.ErrAccountNotAllowed):
				return s.refuse(CodePagamentoRecusadoDetentora, "Pagamento recusado pela detentora de conta: a conta selecionada não permite realizar esse pagamento.", now)
			case errors.Is(err, settlement.ErrSameAccount):
				// Not a creation error of the specification, but a rejection reason.
				p.Status = PaymentRJCT
				p.Rejection = &PaymentRejection{Code: PayRejectContasOrigemDestinoIguais, Detail: paymentRejectionDetails[PayRejectContasOrigemDestinoIguais]}
			default:
				return idempotency.Response{}, fmt.Errorf("payments: reserve: %w", err)
			}
		}
		if err := insertPixPayment(ctx, s.DB, tx, p); store.IsUniqueViolation(err) {
			return idempotency.Response{}, fmt.Errorf("%w: %w", errEndToEndRace, err)
		} else if err != nil {
			return idempotency.Response{}, err
		}
		if err := s.emit(ctx, tx, p); err != nil {
			return idempotency.Response{}, err
		}
		if !p.Status.Final() {
			if err := s.enqueueSettle(ctx, tx, now, p.DueAt); err != nil {
				return idempotency.Response{}, err
			}
		}
		out[i] = p
	}
	if slices.ContainsFunc(out, func(p *PixPayment) bool { return p.Status.Final() }) {
		if err := s.consumeIfDone(ctx, tx, c.ID, now); err != nil {
			return idempotency.Response{}, err
		}
	}
	resp := PixPaymentsResponse{Links: Links{Self: s.PixPaymentURL(out[0].ID)}, Meta: Meta{RequestDateTime: formatTime(now)}}
	for _, p := range out {
		resp.Data = append(resp.Data, p.Data())
	}
	return idempotency.Encode(http.StatusCreated, resp)
}

// transfer is the settlement's view of p.
func (s *Service) transfer(p *PixPayment, now time.Time) settlement.Transfer {
	t := settlement.Transfer{
		Kind: settlement.KindPix, PaymentID: p.ID, EndToEndID: p.Request.EndToEndID, ApplicationID: p.ApplicationID,
		AmountCents: p.AmountCents, Currency: p.Request.Payment.Currency,
		Debtor: settlement.Account{ISPB: p.DebtorAccount.ISPB, Issuer: p.DebtorAccount.Issuer, Number: p.DebtorAccount.Number,
			AccountType: p.DebtorAccount.AccountType},
		DebtorParty:   settlement.Party{Document: p.Parties.DebtorDocument},
		CreditorParty: settlement.Party{Name: p.Parties.CreditorName, Document: p.Parties.CreditorDocument},
		At:            now,
	}
	if a := p.Request.CreditorAccount; a != nil {
		t.Creditor = settlement.Account{ISPB: a.ISPB, Issuer: a.Issuer, Number: a.Number, AccountType: a.AccountType}
	}
	if r := p.Request.RemittanceInformation; r != nil {
		t.Description = *r
	}
	return t
}

// enqueueSettle makes sure a worker job runs at or after due: one per
// second of due time, run a second after that second ends, so every payment
// of the second has committed by then.
func (s *Service) enqueueSettle(ctx context.Context, tx *sql.Tx, now, due time.Time) error {
	runAt := due.Truncate(time.Second).Add(time.Second)
	_, err := jobs.Enqueue(ctx, tx, now, jobs.Job{
		Kind: JobSettle, RunAt: runAt, UniqueKey: fmt.Sprintf("%s:%d", JobSettle, runAt.Unix()),
	})
	return err
}

func (s *Service) emit(ctx context.Context, tx *sql.Tx, p *PixPayment) error {
	if s.Events == nil {
		return nil
	}
	return s.Events.EmitPixPaymentEvent(ctx, tx, paymentEvent(p))
}

// emitAll is emit for a batch of payments.
func (s *Service) emitAll(ctx context.Context, tx *sql.Tx, ps []*PixPayment) error {
	if s.Events == nil || len(ps) == 0 {
		return nil
	}
	if b, ok := s.Events.(BatchPaymentEvents); ok {
		es := make([]PaymentEvent, len(ps))
		for i, p := range ps {
			es[i] = paymentEvent(p)
		}
		return b.EmitPixPaymentEvents(ctx, tx, es)
	}
	for _, p := range ps {
		if err := s.emit(ctx, tx, p); err != nil {
			return fmt.Errorf("payment %s: %w", p.ID, err)
		}
	}
	return nil
}

func paymentEvent(p *PixPayment) PaymentEvent {
	return PaymentEvent{
		PaymentID: p.ID, ConsentID: p.ConsentID, ApplicationID: p.ApplicationID, EndToEndID: p.Request.EndToEndID,
		Status: p.Status, AmountCents: p.AmountCents, DebtorAccount: p.DebtorAccount, Rejection: p.Rejection, At: p.StatusUpdatedAt,
	}
}

// move writes p's new status (set by the caller) if it is still from, and
// its webhook event; a final status may consume the consent.
func (s *Service) move(ctx context.Context, tx *sql.Tx, p *PixPayment, from PaymentStatus, now time.Time) error {
	return s.moveIn(ctx, tx, p, from, now, nil)
}

// moveIn is move for the settlement worker: with finals non-nil, the
// consents of payments that became final are collected there and consumed
// once per batch (consumeFinished) instead of once per payment.
func (s *Service) moveIn(ctx context.Context, tx *sql.Tx, p *PixPayment, from PaymentStatus, now time.Time, finals map[string]bool) error {
	p.StatusUpdatedAt = now
	if err := updatePixStatus(ctx, s.DB, tx, p, from); err != nil {
		return err
	}
	if err := s.emit(ctx, tx, p); err != nil {
		return err
	}
	switch {
	case !p.Status.Final():
		return nil
	case finals != nil:
		finals[p.ConsentID] = true
		return nil
	}
	return s.consumeIfDone(ctx, tx, p.ConsentID, now)
}

// consumeFinished consumes, in one statement per batch of consents, every
// consent of ids whose payments are all final.
func (s *Service) consumeFinished(ctx context.Context, tx *sql.Tx, ids map[string]bool, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{string(StatusConsumed), now.UnixMilli(), string(StatusAuthorised)}
	marks := make([]string, 0, len(ids))
	for id := range ids {
		args = append(args, id)
		marks = append(marks, fmt.Sprintf("$%d", len(args)))
	}
	rows, err := tx.QueryContext(ctx, `UPDATE payment_consents SET status = $1, status_updated_at = $2
		WHERE status = $3 AND id IN (`+strings.Join(marks, ", ")+`)
		AND NOT EXISTS (SELECT 1 FROM pix_payments p WHERE p.consent_id = payment_consents.id AND p.status NOT IN ('ACSC', 'RJCT', 'CANC'))
		RETURNING id, application_id`,
		args...)
	if err != nil {
		return fmt.Errorf("payments: consume consents: %w", err)
	}
	var consumed [][2]string
	for rows.Next() {
		var id, app string
		if err := rows.Scan(&id, &app); err != nil {
			rows.Close()
			return fmt.Errorf("payments: consume consents: %w", err)
		}
		consumed = append(consumed, [2]string{id, app})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("payments: consume consents: %w", err)
	}
	if b, ok := s.ConsentEvents.(BatchConsentEvents); ok && len(consumed) > 0 {
		es := make([]ConsentEvent, len(consumed))
		for i, c := range consumed {
			es[i] = ConsentEvent{ConsentID: c[0], ApplicationID: c[1], From: StatusAuthorised, To: StatusConsumed, At: now}
		}
		return b.ConsentsChanged(ctx, tx, es)
	}
	for _, c := range consumed {
		if err := s.consentChanged(ctx, tx, c[0], c[1], StatusAuthorised, StatusConsumed, now); err != nil {
			return err
		}
	}
	return nil
}

// consumeIfDone moves the consent to CONSUMED once it has payments and all
// of them are final (ACSC, RJCT or CANC).
func (s *Service) consumeIfDone(ctx context.Context, tx *sql.Tx, consentID string, now time.Time) error {
	st, err := s.DB.TxStmt(ctx, tx, `SELECT COUNT(*) FROM pix_payments WHERE consent_id = $1 AND status NOT IN ('ACSC', 'RJCT', 'CANC')`)
	if err != nil {
		return err
	}
	var open int
	if err := st.QueryRowContext(ctx, consentID).Scan(&open); err != nil {
		return fmt.Errorf("payments: count open payments: %w", err)
	}
	if open > 0 {
		return nil
	}
	var app string
	err = tx.QueryRowContext(ctx, `UPDATE payment_consents SET status = $1, status_updated_at = $2 WHERE id = $3 AND status = $4
		RETURNING application_id`,
		string(StatusConsumed), now.UnixMilli(), consentID, string(StatusAuthorised)).Scan(&app)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil // not AUTHORISED (already consumed, or rejected)
	case err != nil:
		return fmt.Errorf("payments: consume consent: %w", err)
	}
	return s.consentChanged(ctx, tx, consentID, app, StatusAuthorised, StatusConsumed, now)
}

// GetPixPayment returns payment id of applicationID (another application's
// is ErrPaymentNotFound).
func (s *Service) GetPixPayment(ctx context.Context, applicationID, id string) (*PixPayment, error) {
	p, err := getPixPayment(ctx, s.DB.Read(), id)
	if err != nil {
		return nil, err
	}
	if p.ApplicationID != applicationID {
		return nil, ErrPaymentNotFound
	}
	return p, nil
}

// PixPaymentResponse renders p with its self link.
func (s *Service) PixPaymentResponse(p *PixPayment) PixPaymentResponse {
	return PixPaymentResponse{Data: p.Data(), Links: Links{Self: s.PixPaymentURL(p.ID)}, Meta: Meta{RequestDateTime: formatTime(s.Clock.Now())}}
}

// CancelInput is one PATCH call.
type CancelInput struct {
	ApplicationID  string
	ID             string // the paymentId, or the consentId for the consent route
	Document       Document
	IdempotencyKey string
	JTI            string
}

// cancellable reports whether p may be cancelled at now: PDNG always, SCHD
// until 23:59 in Brasília of the day before its date.
func cancellable(p *PixPayment, now time.Time) bool {
	switch p.Status {
	case PaymentPDNG:
		return true
	case PaymentSCHD:
		return now.Before(brasiliaMidnight(p.ScheduledDate))
	}
	return false
}

func (s *Service) cancel(ctx context.Context, tx *sql.Tx, p *PixPayment, doc Document, now time.Time) error {
	from := p.Status
	reason := CancelAgendamento
	if from == PaymentPDNG {
		reason = CancelPendencia
		// A payment held for analysis may hold a reservation.
		if s.Settlement == nil {
			return ErrNoSettlement
		}
		// With the partner settlement this closes the settlement request, so
		// a later report of the partner is a 409. A report that committed
		// first (the payment is ACSC or RJCT now) leaves nothing to cancel.
		err := s.Settlement.Release(ctx, tx, s.transfer(p, now))
		if errors.Is(err, settlement.ErrNotReserved) {
			return ErrNotCancellable
		}
		if err != nil {
			return fmt.Errorf("payments: release: %w", err)
		}
	}
	p.Status = PaymentCANC
	p.Cancellation = &Cancellation{Reason: reason, CancelledFrom: CancelFromITP, CancelledAt: formatTime(now),
		CancelledBy: CancelledBy{Document: &doc}}
	return s.move(ctx, tx, p, from, now)
}

// CancelPixPayment cancels one payment (PATCH /pix/payments/{paymentId}):
// ErrPaymentNotFound for an unknown or another application's payment,
// ErrNotCancellable when its status or date no longer allows it.
func (s *Service) CancelPixPayment(ctx context.Context, in CancelInput) (idempotency.Response, error) {
	now := s.Clock.Now().UTC().Truncate(time.Second)
	fingerprint, err := idempotency.Fingerprint(http.MethodPatch, PixPaymentsPath+"/"+in.ID, in.Document)
	if err != nil {
		return idempotency.Response{}, err
	}
	return s.idempotent(ctx, in.ApplicationID, in.IdempotencyKey, fingerprint, in.JTI, now,
		func(tx *sql.Tx) (idempotency.Response, bool, error) {
			p, err := getPixPayment(ctx, tx, in.ID)
			if err == nil && p.ApplicationID != in.ApplicationID {
				err = ErrPaymentNotFound
			}
			if err != nil {
				return idempotency.Response{}, false, err
			}
			if !cancellable(p, now) {
				return idempotency.Response{}, false, ErrNotCancellable
			}
			if err := s.cancel(ctx, tx, p, in.Document, now); err != nil {
				return idempotency.Response{}, false, err
			}
			resp, err := idempotency.Encode(http.StatusOK, s.PixPaymentResponse(p))
			return resp, true, err
		})
}

// CancelConsentPayments cancels every payment of the consent still
// cancellable (PATCH /pix/payments/consents/{consentId}): ErrNotFound for an
// unknown or another application's consent, ErrNotCancellable when none is.
func (s *Service) CancelConsentPayments(ctx context.Context, in CancelInput) (idempotency.Response, error) {
	now := s.Clock.Now().UTC().Truncate(time.Second)
	fingerprint, err := idempotency.Fingerprint(http.MethodPatch, PixConsentPaymentsPath+"/"+in.ID, in.Document)
	if err != nil {
		return idempotency.Response{}, err
	}
	return s.idempotent(ctx, in.ApplicationID, in.IdempotencyKey, fingerprint, in.JTI, now,
		func(tx *sql.Tx) (idempotency.Response, bool, error) {
			if err := lockConsent(ctx, tx, in.ID); err != nil {
				return idempotency.Response{}, false, err
			}
			c, err := getConsent(ctx, tx, in.ID)
			if err == nil && c.ApplicationID != in.ApplicationID {
				err = ErrNotFound
			}
			if err != nil {
				return idempotency.Response{}, false, err
			}
			list, err := queryPixPayments(ctx, tx, `consent_id = $1 AND status IN ('SCHD', 'PDNG') ORDER BY due_at, id`, c.ID)
			if err != nil {
				return idempotency.Response{}, false, err
			}
			resp := CancelledPaymentsResponse{Data: []CancelledPayment{}, Links: Links{Self: s.PixConsentPaymentsURL(c.ID)},
				Meta: Meta{RequestDateTime: formatTime(now)}}
			for _, p := range list {
				if !cancellable(p, now) {
					continue
				}
				err := s.cancel(ctx, tx, p, in.Document, now)
				if errors.Is(err, ErrNotCancellable) {
					continue // settled by the partner meanwhile; cancel wrote nothing for it
				}
				if err != nil {
					return idempotency.Response{}, false, err
				}
				resp.Data = append(resp.Data, CancelledPayment{PaymentID: p.ID, StatusUpdateDateTime: formatTime(now)})
			}
			if len(resp.Data) == 0 {
				return idempotency.Response{}, false, ErrNotCancellable
			}
			out, err := idempotency.Encode(http.StatusOK, resp)
			return out, true, err
		})
}

// handleSettle is JobSettle's handler: batches until nothing is due. When a
// batch fails, the due payments are settled one transaction each instead,
// so one payment that keeps failing cannot hold back the others; on the
// job's last attempt such a payment is rejected
// (FALHA_INFRAESTRUTURA_DETENTORA, its reservation released) rather than
// left accepted with nobody to settle it.
//
// A run also makes sure a sweep runs a minute later: a payment whose
// transaction read the clock in this job's second but committed after the
// job looked finds its job already there (the unique key), and the sweep
// settles it. A sweep enqueues no further sweep.
func (s *Service) handleSettle(ctx context.Context, j *jobs.Job) error {
	if s.Settlement == nil {
		return ErrNoSettlement
	}
	var p settlePayload
	_ = j.Decode(&p) // older or empty payloads are bucket runs
	if !p.Sweep {
		if err := s.enqueueSweep(ctx); err != nil {
			return err
		}
	}
	start := s.Clock.Now().UTC().Truncate(time.Second)
	for {
		n, err := s.SettleDue(ctx, SettleBatchSize)
		if err != nil {
			s.Logger.WarnContext(ctx, "pix settlement batch failed; settling one by one", "err", err)
			return s.settleSingly(ctx, j.Final())
		}
		if n < SettleBatchSize {
			break
		}
	}
	// On PostgreSQL SettleDue skips the payments another worker has locked.
	// If that worker's settlement then fails and it lets them go, nobody
	// would own them: so a run ends only once nothing that was due when it
	// started is left, and its last attempt settles what is left one by one,
	// giving up on what still fails.
	left, err := anyDue(ctx, s.DB.Read(), start)
	switch {
	case err != nil:
		return err
	case !left:
		return nil
	case j.Final():
		return s.settleSingly(ctx, true)
	}
	return jobs.RetryAt(errors.New("payments: due payments are still held by another settlement worker"), s.Clock.Now().Add(time.Second))
}

// anyDue reports whether a payment due at or before t is still waiting to
// be settled (accepted, or scheduled and reserved on its date).
func anyDue(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, t time.Time) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM pix_payments WHERE status IN ('ACCP', 'SCHD') AND due_at <= $1 LIMIT 1`, t.UnixMilli()).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("payments: look for due payments: %w", err)
	}
	return true, nil
}

// settlePayload is JobSettle's payload: a sweep, or (empty) a bucket run.
type settlePayload struct {
	Sweep bool `json:"sweep,omitempty"`
}

// SweepDelay is how long after a worker run its sweep runs.
const SweepDelay = time.Minute

func (s *Service) enqueueSweep(ctx context.Context) error {
	return s.DB.Write(ctx, func(tx *sql.Tx) error {
		now := s.Clock.Now().UTC()
		runAt := now.Add(SweepDelay).Truncate(time.Minute).Add(time.Minute)
		_, err := jobs.Enqueue(ctx, tx, now, jobs.Job{Kind: JobSettle, Payload: settlePayload{Sweep: true}, RunAt: runAt,
			UniqueKey: fmt.Sprintf("%s:sweep:%d", JobSettle, runAt.Unix())})
		return err
	})
}

// settleSingly settles every due payment in its own transaction and returns
// the first failure; with giveUp, a failing payment is rejected instead.
func (s *Service) settleSingly(ctx context.Context, giveUp bool) error {
	now := s.Clock.Now().UTC().Truncate(time.Second)
	due, err := queryPixPayments(ctx, s.DB.Read(), `status IN ('ACCP', 'SCHD') AND due_at <= $1 ORDER BY due_at, id`, now.UnixMilli())
	if err != nil {
		return err
	}
	var first error
	for _, d := range due {
		err := s.DB.Write(ctx, func(tx *sql.Tx) error {
			p, err := getPixPayment(ctx, tx, d.ID)
			if err != nil || (p.Status != PaymentACCP && p.Status != PaymentSCHD) {
				return err // settled meanwhile
			}
			return s.settleOne(ctx, tx, p, now, nil)
		})
		if err == nil {
			continue
		}
		s.Logger.ErrorContext(ctx, "settle pix payment", "payment_id", d.ID, "err", err)
		if giveUp {
			err = s.giveUp(ctx, d.ID, now)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// giveUp rejects a payment the worker could not settle.
func (s *Service) giveUp(ctx context.Context, id string, now time.Time) error {
	return s.DB.Write(ctx, func(tx *sql.Tx) error {
		p, err := getPixPayment(ctx, tx, id)
		if err != nil || (p.Status != PaymentACCP && p.Status != PaymentSCHD) {
			return err
		}
		if p.Status == PaymentACCP {
			if err := s.Settlement.Release(ctx, tx, s.transfer(p, now)); err != nil {
				return fmt.Errorf("payments: release %s: %w", id, err)
			}
		}
		from := p.Status
		p.Status = PaymentRJCT
		p.Rejection = &PaymentRejection{Code: PayRejectFalhaInfraestruturaDetent, Detail: paymentRejectionDetails[PayRejectFalhaInfraestruturaDetent]}
		return s.move(ctx, tx, p, from, now)
	})
}

// SettleDue settles, in one transaction, up to limit payments that are due:
// accepted ones (ACCP) and scheduled ones (SCHD) whose date has come. A
// scheduled payment is reserved first (SCHD → ACCP, or RJCT with the
// settlement's reason); then Settle moves the money: ACSC when it moved in
// this transaction, ACPD when the outcome comes later (SettlementSettled,
// SettlementFailed). It returns how many payments it took.
func (s *Service) SettleDue(ctx context.Context, limit int) (int, error) {
	if s.Settlement == nil {
		return 0, ErrNoSettlement
	}
	var n int
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		now := s.Clock.Now().UTC().Truncate(time.Second)
		// One status at a time, so the (status, due_at) index gives the
		// order and LIMIT stops the scan: with both statuses in one IN the
		// whole due queue was read and sorted for every batch.
		where := `status = $1 AND due_at <= $2 ORDER BY due_at, id LIMIT $3`
		if s.DB.Engine() == store.Postgres {
			where += ` FOR UPDATE SKIP LOCKED` // another instance's worker takes the others
		}
		list, err := queryPixPayments(ctx, tx, where, string(PaymentSCHD), now.UnixMilli(), limit)
		if err != nil {
			return err
		}
		if len(list) < limit {
			accp, err := queryPixPayments(ctx, tx, where, string(PaymentACCP), now.UnixMilli(), limit-len(list))
			if err != nil {
				return err
			}
			list = append(list, accp...)
		}
		n = len(list)
		finals := map[string]bool{}
		if bs, ok := s.Settlement.(settlement.BatchSettler); ok {
			if err := s.settleBatch(ctx, tx, bs, list, now, finals); err != nil {
				return err
			}
			return s.consumeFinished(ctx, tx, finals, now)
		}
		for _, p := range list {
			if err := s.settleOne(ctx, tx, p, now, finals); err != nil {
				return fmt.Errorf("payments: settle %s: %w", p.ID, err)
			}
		}
		return s.consumeFinished(ctx, tx, finals, now)
	})
	return n, err
}

func (s *Service) settleOne(ctx context.Context, tx *sql.Tx, p *PixPayment, now time.Time, finals map[string]bool) error {
	if ready, err := s.reserveDue(ctx, tx, p, now, finals); err != nil || !ready {
		return err
	}
	done, err := s.Settlement.Settle(ctx, tx, s.transfer(p, now))
	if err := settledStatus(p, done, err); err != nil {
		return err
	}
	return s.moveIn(ctx, tx, p, PaymentACCP, now, finals)
}

// settleBatch is SettleDue's loop for a settlement that settles set-wise:
// the scheduled payments are reserved one by one, then every accepted one
// is settled by one SettleBatch call.
func (s *Service) settleBatch(ctx context.Context, tx *sql.Tx, bs settlement.BatchSettler, list []*PixPayment, now time.Time, finals map[string]bool) error {
	ready := make([]*PixPayment, 0, len(list))
	ts := make([]settlement.Transfer, 0, len(list))
	for _, p := range list {
		ok, err := s.reserveDue(ctx, tx, p, now, finals)
		if err != nil {
			return fmt.Errorf("payments: settle %s: %w", p.ID, err)
		}
		if ok {
			ready = append(ready, p)
			ts = append(ts, s.transfer(p, now))
		}
	}
	if len(ts) == 0 {
		return nil
	}
	results, err := bs.SettleBatch(ctx, tx, ts)
	if err != nil {
		return fmt.Errorf("payments: settle batch: %w", err)
	}
	// The settled ones move to ACSC in one statement per chunk; the others
	// (RJCT: nothing was reserved) one by one.
	var acsc []*PixPayment
	for i, p := range ready {
		if err := settledStatus(p, true, results[i]); err != nil {
			return fmt.Errorf("payments: settle %s: %w", p.ID, err)
		}
		if p.Status != PaymentACSC {
			if err := s.moveIn(ctx, tx, p, PaymentACCP, now, finals); err != nil {
				return fmt.Errorf("payments: settle %s: %w", p.ID, err)
			}
			continue
		}
		p.StatusUpdatedAt = now
		acsc = append(acsc, p)
	}
	if err := settlePixStatuses(ctx, s.DB.Engine(), tx, acsc, now); err != nil {
		return err
	}
	if err := s.emitAll(ctx, tx, acsc); err != nil {
		return fmt.Errorf("payments: settle: %w", err)
	}
	for _, p := range acsc {
		finals[p.ConsentID] = true
	}
	return nil
}

// reserveDue reserves a scheduled payment whose date has come (SCHD → ACCP,
// or RJCT with the settlement's reason); ready says whether p is accepted
// and can be settled.
func (s *Service) reserveDue(ctx context.Context, tx *sql.Tx, p *PixPayment, now time.Time, finals map[string]bool) (ready bool, err error) {
	if p.Status != PaymentSCHD {
		return true, nil
	}
	code := ""
	switch err := s.Settlement.Reserve(ctx, tx, s.transfer(p, now)); {
	case err == nil:
	case errors.Is(err, settlement.ErrInsufficientFunds):
		code = PayRejectSaldoInsuficiente
	case errors.Is(err, settlement.ErrAboveLimit):
		code = PayRejectValorAcimaLimite
	case errors.Is(err, settlement.ErrAccountNotAllowed):
		code = PayRejectRecusadoDetentora
	case errors.Is(err, settlement.ErrSameAccount):
		code = PayRejectContasOrigemDestinoIguais
	default:
		return false, fmt.Errorf("reserve: %w", err)
	}
	if code != "" {
		p.Status, p.Rejection = PaymentRJCT, &PaymentRejection{Code: code, Detail: paymentRejectionDetails[code]}
		return false, s.moveIn(ctx, tx, p, PaymentSCHD, now, finals)
	}
	p.Status = PaymentACCP
	return true, s.moveIn(ctx, tx, p, PaymentSCHD, now, finals)
}

// settledStatus sets p's status from Settle's answer: ACSC when the money
// moved, ACPD when the outcome comes later, RJCT when nothing was reserved.
func settledStatus(p *PixPayment, done bool, err error) error {
	switch {
	case errors.Is(err, settlement.ErrNotReserved):
		p.Status = PaymentRJCT
		p.Rejection = &PaymentRejection{Code: PayRejectFalhaInfraestruturaDetent, Detail: paymentRejectionDetails[PayRejectFalhaInfraestruturaDetent]}
	case err != nil:
		return fmt.Errorf("settle: %w", err)
	case done:
		p.Status = PaymentACSC
	default:
		p.Status = PaymentACPD
	}
	return nil
}

// SettlementSettled records a later settlement outcome: the money moved
// (ACPD → ACSC), in tx, the transaction recording the report. Repeating it
// is not an error.
func (s *Service) SettlementSettled(ctx context.Context, tx *sql.Tx, paymentID string) error {
	now := s.Clock.Now().UTC().Truncate(time.Second)
	p, err := getPixPayment(ctx, tx, paymentID)
	if err != nil {
		return err
	}
	switch p.Status {
	case PaymentACSC:
		return nil
	case PaymentACPD, PaymentACCP, PaymentPDNG:
	default:
		return fmt.Errorf("%w: payment %s is %s", ErrInvalidTransition, paymentID, p.Status)
	}
	from := p.Status
	p.Status = PaymentACSC
	return s.move(ctx, tx, p, from, now)
}

// SettlementHeld records the holder partner holding a payment it was asked
// to settle for analysis (ACPD → PDNG), with its webhook event, in tx, the
// transaction recording the report. The initiator may cancel it now
// (CANCELADO_PENDENCIA); SettlementSettled or SettlementFailed finish it.
// Repeating it is not an error.
func (s *Service) SettlementHeld(ctx context.Context, tx *sql.Tx, paymentID string) error {
	now := s.Clock.Now().UTC().Truncate(time.Second)
	p, err := getPixPayment(ctx, tx, paymentID)
	if err != nil {
		return err
	}
	switch p.Status {
	case PaymentPDNG:
		return nil
	case PaymentACPD:
	default:
		return fmt.Errorf("%w: payment %s is %s", ErrInvalidTransition, paymentID, p.Status)
	}
	p.Status = PaymentPDNG
	return s.move(ctx, tx, p, PaymentACPD, now)
}

// SettlementFailed records a later settlement refusal (ACPD → RJCT with the
// API's code and detail), releasing the reservation, in tx. Repeating it is
// not an error; code must be a payment rejection code.
func (s *Service) SettlementFailed(ctx context.Context, tx *sql.Tx, paymentID, code, detail string) error {
	if !paymentRejectionCodes[code] {
		return fmt.Errorf("%w: %q", ErrPaymentRejectionCode, code)
	}
	now := s.Clock.Now().UTC().Truncate(time.Second)
	p, err := getPixPayment(ctx, tx, paymentID)
	if err != nil {
		return err
	}
	switch p.Status {
	case PaymentRJCT:
		return nil
	case PaymentACPD, PaymentACCP, PaymentPDNG:
	default:
		return fmt.Errorf("%w: payment %s is %s", ErrInvalidTransition, paymentID, p.Status)
	}
	if s.Settlement == nil {
		return ErrNoSettlement
	}
	if err := s.Settlement.Release(ctx, tx, s.transfer(p, now)); err != nil {
		return fmt.Errorf("payments: release: %w", err)
	}
	if detail == "" {
		detail = paymentRejectionDetails[code]
	}
	from := p.Status
	p.Status, p.Rejection = PaymentRJCT, &PaymentRejection{Code: code, Detail: truncate(detail, 2048)}
	return s.move(ctx, tx, p, from, now)
}
