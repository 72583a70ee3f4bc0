// Package settlement is where a holder-side payment's money moves. Ponte is
// not a core banking system, so the debit is a port with two
// implementations:
//
//   - Ledger, the sandbox: the accounts the Accounts API serves are a real
//     ledger. Reserve holds the amount on the debtor's available balance,
//     Settle debits it and credits the creditor when the creditor is a Ponte
//     account, and both write the Accounts API's balance and transaction rows
//     in the caller's transaction, so a payment's status and its money change
//     together or not at all.
//   - Partner, production: Ponte asks the holder partner to settle through its
//     own core banking and SPI with a signed webhook event, and the partner
//     reports the outcome through the admin API, possibly after holding a
//     Pix payment for analysis (PDNG); a payment the partner never answers
//     is rejected after Deadline.
//
// The payment services (internal/payments for Pix payments,
// internal/recurring for sweeping payments) call a Settlement inside the
// transaction of their status change and learn of later outcomes through
// Outcomes.
package settlement

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Kind says which API a payment belongs to, so an outcome reaches its service.
type Kind string

// Payment kinds.
const (
	KindPix       Kind = "pix-payment"       // Payments API v4 /pix/payments
	KindRecurring Kind = "recurring-payment" // Automatic Payments v2 /pix/recurring-payments
)

// Account identifies a Brazilian payment account (Pix: ISPB, branch, number, type).
type Account struct {
	ISPB        string // 8 digits
	Issuer      string // branch, 4 digits; "" for a TRAN account without one
	Number      string
	AccountType string // CACC, SVGS, TRAN, SLRY
}

// Party is the owner of one side of a transfer, as a statement names it.
type Party struct {
	Name     string
	Document string // CPF (11 digits) or CNPJ (14 digits)
}

// Transfer is one Pix a payment asks to move. Amounts are integer cents:
// money is never a float.
type Transfer struct {
	Kind          Kind
	PaymentID     string // the payment's id in its API
	EndToEndID    string // the Pix endToEndId, also the statement's transaction id
	ApplicationID string // the initiator that created the payment
	AmountCents   int64
	Currency      string // BRL
	Debtor        Account
	DebtorParty   Party
	Creditor      Account
	CreditorParty Party
	// Description goes to the statement (remittance information), may be "".
	Description string
	At          time.Time // when the step happens (the service's clock)
}

// Errors a Settlement returns for a transfer it refuses; the payment services
// map them to their API's rejection codes.
var (
	// ErrInsufficientFunds: the debtor's available balance is short (SALDO_INSUFICIENTE).
	ErrInsufficientFunds = errors.New("settlement: insufficient funds")
	// ErrAccountNotAllowed: the debtor account is unknown, blocked or in
	// another currency (PAGAMENTO_RECUSADO_DETENTORA).
	ErrAccountNotAllowed = errors.New("settlement: debtor account does not allow this payment")
	// ErrSameAccount: debtor and creditor are the same account (CONTAS_ORIGEM_DESTINO_IGUAIS).
	ErrSameAccount = errors.New("settlement: debtor and creditor accounts are the same")
	// ErrNotReserved: Settle or Release of a transfer with no reservation.
	ErrNotReserved = errors.New("settlement: no reservation for this payment")
	// ErrReleased: Reserve of a transfer whose reservation was released; a
	// payment's money is reserved once.
	ErrReleased = errors.New("settlement: the reservation of this payment was released")
	// ErrAboveLimit: the amount is above the holder's limit per Pix transfer
	// (VALOR_ACIMA_LIMITE).
	ErrAboveLimit = errors.New("settlement: amount above the holder's limit per transfer")
)

// Settlement moves a payment's money. Every method runs in the caller's
// transaction and is idempotent by Transfer.PaymentID within its Kind: a
// retried job repeats a step without a second effect.
type Settlement interface {
	// Reserve holds the amount on the debtor account, or refuses with one of
	// the errors above.
	Reserve(ctx context.Context, tx *sql.Tx, t Transfer) error
	// Settle completes a reserved transfer. done is true when the money moved
	// in tx (the payment is ACSC now); false when the outcome will come later
	// through Outcomes (the payment waits in ACPD).
	Settle(ctx context.Context, tx *sql.Tx, t Transfer) (done bool, err error)
	// Release gives a reservation back (the payment was rejected or cancelled
	// before settling). Releasing a transfer that holds nothing is not an error.
	// Releasing one already settled (or, with Partner, being settled) is
	// ErrNotReserved: its money moved, or may have, and nothing comes back.
	Release(ctx context.Context, tx *sql.Tx, t Transfer) error
}

// Outcomes is how a settlement that finishes later (Partner) reports back to
// the payment's service, in the transaction that records the report.
type Outcomes interface {
	// Settled moves the payment to ACSC.
	Settled(ctx context.Context, tx *sql.Tx, kind Kind, paymentID string) error
	// Failed moves the payment to RJCT with the API's rejection code and detail.
	Failed(ctx context.Context, tx *sql.Tx, kind Kind, paymentID, code, detail string) error
	// Held moves the payment to PDNG: the holder holds it for analysis
	// (Pix payments only; PDNG does not apply to sweeping payments).
	Held(ctx context.Context, tx *sql.Tx, kind Kind, paymentID string) error
}

// Event is a webhook event a settlement emits to a partner application, in
// the caller's transaction (Partner: "please settle this Pix").
type Event struct {
	ID            string // stable per state change, so a retry emits nothing new
	ApplicationID string // the partner application that receives it
	Name          string
	EntityID      string // the payment id
	Data          map[string]any
	// AccountNumbers are the account numbers Data names, declared so the
	// webhook emitter's card-number guard does not mistake one for a card.
	AccountNumbers []string
}

// Events records webhook events (internal/webhooks, adapted in app).
type Events interface {
	EmitSettlementEvent(ctx context.Context, tx *sql.Tx, e Event) error
}

// BatchSettler is a Settlement that also settles many reserved transfers at
// once, set-wise, for a worker that settles a batch of payments in one
// transaction. SettleBatch is Settle for each of ts with the same meaning
// and the same idempotency: results[i] is nil when ts[i]'s money moved in tx
// (now or by an earlier settlement), ErrNotReserved when ts[i] was never
// reserved or was released. A non-nil error fails the whole batch (the
// caller rolls tx back).
type BatchSettler interface {
	SettleBatch(ctx context.Context, tx *sql.Tx, ts []Transfer) (results []error, err error)
}
