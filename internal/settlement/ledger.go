package settlement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Ledger is the sandbox Settlement: the accounts the Accounts API serves are
// a real ledger in integer cents (table ledger_accounts). Reserve moves the
// amount from the debtor's available balance to its blocked balance with one
// conditional UPDATE, so the database decides whether the money is there;
// Settle takes it out of blocked and, when the creditor is a Ponte account,
// adds it to the creditor's available balance; Release gives it back. Each
// step also rewrites the Accounts API's balance text (account_balances) and
// books a PIX transaction (account_transactions, with its stored body) in the
// caller's transaction, so GET .../balances and .../transactions show it as
// soon as the payment's status change commits.
//
// Shown balances: availableAmount is the ledger's available cents;
// blockedAmount is the blocked cents the account's data last said plus every
// outstanding reservation.
//
// An import of account data (dataapi) that rewrites an account's balances
// wins: the next time the ledger touches the account it finds
// account_balances changed behind it and adopts the imported available and
// blocked amounts (cut to whole cents), while the reservations still
// outstanding stay blocked on top of the imported blocked amount. Holds and
// conservation resume from there.
//
// Concurrency: every step first locks the account's account_balances row
// (SELECT ... FOR UPDATE on PostgreSQL; an upsert when the account has no
// balances yet), accounts in id order when a step touches
// two, so steps on one account, and an import of it, run one after another
// on PostgreSQL as they do on SQLite's single writer.
type Ledger struct {
	// Engine is the database's engine (the statement placeholders of the
	// transactions the ledger books).
	Engine store.Engine
	// DB, when set, is the database whose write pool prepares the ledger's
	// statements once (store.DB.TxStmt) rather than on every step.
	DB *store.DB
	// PixLimitCents is the holder's limit per Pix transfer, the same for
	// every account: Reserve refuses a larger amount with ErrAboveLimit
	// (VALOR_ACIMA_LIMITE) before it looks at the balance, as the consent
	// funnel's priority puts the limit before the funds. 0: no limit.
	PixLimitCents int64
}

// NewLedger returns the sandbox ledger for a database of engine e.
func NewLedger(e store.Engine) *Ledger { return &Ledger{Engine: e} }

// NewLedgerOn returns the sandbox ledger for db, its statements prepared once.
func NewLedgerOn(db *store.DB) *Ledger { return &Ledger{Engine: db.Engine(), DB: db} }

// Reservation states (ledger_reservations.status).
const (
	reservationHeld     = "HELD"
	reservationSettled  = "SETTLED"
	reservationReleased = "RELEASED"
)

// Reserve holds t's amount on the debtor account: ErrSameAccount,
// ErrAccountNotAllowed (unknown, blocked, another currency or type),
// ErrAboveLimit when the amount is above PixLimitCents, or
// ErrInsufficientFunds when the available balance is short. Reserving a
// transfer already held or settled changes nothing; one released is
// ErrReleased.
func (l *Ledger) Reserve(ctx context.Context, tx *sql.Tx, t Transfer) error {
	q := stepQ{db: l.DB, tx: tx, engine: l.Engine}
	if err := t.check(); err != nil {
		return err
	}
	debtor, err := allowedDebtor(ctx, q, t)
	if err != nil {
		return err
	}
	creditorID := ""
	if c, err := findAccount(ctx, q, t.Creditor); err != nil {
		return err
	} else if c != nil && c.Currency == t.Currency {
		creditorID = c.ID
	}
	at := t.At.UnixMilli()
	// The reservation row first: a concurrent Reserve of the same payment
	// waits on its key and then finds it, so only one holds the money.
	res, err := q.exec(ctx, `INSERT INTO ledger_reservations (kind, payment_id, debtor_account_id, creditor_account_id,
		amount_cents, currency, end_to_end_id, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (kind, payment_id) DO NOTHING`,
		string(t.Kind), t.PaymentID, debtor.ID, creditorID, t.AmountCents, t.Currency, t.EndToEndID, reservationHeld, at)
	if err != nil {
		return fmt.Errorf("settlement: reserve %s: %w", t.PaymentID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		status, err := reservationStatus(ctx, q, t)
		if err != nil {
			return err
		}
		if status == reservationReleased {
			return ErrReleased
		}
		return nil // already held or settled
	}
	if l.PixLimitCents > 0 && t.AmountCents > l.PixLimitCents {
		// Checked on a new reservation only, so a limit lowered later does
		// not refuse a retry of a reservation already held.
		if _, err := q.exec(ctx, `DELETE FROM ledger_reservations WHERE kind = $1 AND payment_id = $2`, string(t.Kind), t.PaymentID); err != nil {
			return fmt.Errorf("settlement: drop refused reservation %s: %w", t.PaymentID, err)
		}
		return ErrAboveLimit
	}
	acct, err := lock(ctx, q, debtor.ID)
	if err != nil {
		return err
	}
	ok, err := l.move(ctx, q, debtor.ID, acct, -t.AmountCents, t.AmountCents, t.At)
	if err != nil {
		return err
	}
	if !ok {
		if _, err := q.exec(ctx, `DELETE FROM ledger_reservations WHERE kind = $1 AND payment_id = $2`, string(t.Kind), t.PaymentID); err != nil {
			return fmt.Errorf("settlement: drop refused reservation %s: %w", t.PaymentID, err)
		}
		return ErrInsufficientFunds
	}
	return nil
}

// Settle debits the reserved amount from the debtor (blocked balance) and
// credits the creditor when it is a Ponte account, booking a DEBITO and a
// CREDITO PIX transaction whose id is the endToEndId. It is always done in
// tx (done is true). Settling again changes nothing; settling a transfer
// never reserved, or released, is ErrNotReserved.
func (l *Ledger) Settle(ctx context.Context, tx *sql.Tx, t Transfer) (bool, error) {
	q := stepQ{db: l.DB, tx: tx, engine: l.Engine}
	var debtorID, creditorID string
	var amount int64
	err := q.row(ctx, `UPDATE ledger_reservations SET status = $1, updated_at = $2
		WHERE kind = $3 AND payment_id = $4 AND status = $5 RETURNING debtor_account_id, creditor_account_id, amount_cents`,
		reservationSettled, t.At.UnixMilli(), string(t.Kind), t.PaymentID, reservationHeld).Scan(&debtorID, &creditorID, &amount)
	if errors.Is(err, sql.ErrNoRows) {
		status, err := reservationStatus(ctx, q, t)
		if err != nil {
			return false, err
		}
		if status == reservationSettled {
			return true, nil
		}
		return false, ErrNotReserved
	}
	if err != nil {
		return false, fmt.Errorf("settlement: settle %s: %w", t.PaymentID, err)
	}
	// Lock both accounts in id order before changing either (no deadlock
	// between a transfer A→B and one B→A on PostgreSQL).
	ids := []string{debtorID}
	if creditorID != "" {
		ids = append(ids, creditorID)
	}
	slices.Sort(ids)
	accts := make(map[string]*ledgerAccount, len(ids))
	for _, id := range ids {
		a, err := lock(ctx, q, id)
		if err != nil {
			return false, err
		}
		accts[id] = a
	}
	if ok, err := l.move(ctx, q, debtorID, accts[debtorID], 0, -amount, t.At); err != nil {
		return false, err
	} else if !ok {
		return false, fmt.Errorf("settlement: settle %s: account %s holds less than its reservation", t.PaymentID, debtorID)
	}
	if err := dataapi.Book(ctx, tx, l.Engine, debtorID, statementEntry(t, amount, "DEBITO", "PIX ENVIADO", t.CreditorParty, t.Creditor)); err != nil {
		return false, fmt.Errorf("settlement: book debit of %s: %w", t.PaymentID, err)
	}
	if creditorID == "" {
		return true, nil
	}
	if ok, err := l.move(ctx, q, creditorID, accts[creditorID], amount, 0, t.At); err != nil {
		return false, err
	} else if !ok {
		return false, fmt.Errorf("settlement: settle %s: could not credit account %s", t.PaymentID, creditorID)
	}
	if err := dataapi.Book(ctx, tx, l.Engine, creditorID, statementEntry(t, amount, "CREDITO", "PIX RECEBIDO", t.DebtorParty, t.Debtor)); err != nil {
		return false, fmt.Errorf("settlement: book credit of %s: %w", t.PaymentID, err)
	}
	return true, nil
}

// Release gives a held amount back to the debtor's available balance.
// Releasing a transfer never reserved, or already released, changes
// nothing; releasing a settled one is ErrNotReserved.
func (l *Ledger) Release(ctx context.Context, tx *sql.Tx, t Transfer) error {
	q := stepQ{db: l.DB, tx: tx, engine: l.Engine}
	var debtorID string
	var amount int64
	err := q.row(ctx, `UPDATE ledger_reservations SET status = $1, updated_at = $2
		WHERE kind = $3 AND payment_id = $4 AND status = $5 RETURNING debtor_account_id, amount_cents`,
		reservationReleased, t.At.UnixMilli(), string(t.Kind), t.PaymentID, reservationHeld).Scan(&debtorID, &amount)
	if errors.Is(err, sql.ErrNoRows) {
		status, err := reservationStatus(ctx, q, t)
		if err != nil {
			return err
		}
		if status == reservationSettled {
			return ErrNotReserved
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("settlement: release %s: %w", t.PaymentID, err)
	}
	acct, err := lock(ctx, q, debtorID)
	if err != nil {
		return err
	}
	if ok, err := l.move(ctx, q, debtorID, acct, amount, -amount, t.At); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("settlement: release %s: account %s holds less than its reservation", t.PaymentID, debtorID)
	}
	return nil
}

// check refuses a transfer no payment service should ask for.
func (t *Transfer) check() error {
	switch {
	case t.Kind != KindPix && t.Kind != KindRecurring:
		return fmt.Errorf("settlement: unknown payment kind %q", t.Kind)
	case t.PaymentID == "":
		return errors.New("settlement: transfer without payment id")
	case t.AmountCents <= 0:
		return fmt.Errorf("settlement: payment %s: amount must be positive, got %d cents", t.PaymentID, t.AmountCents)
	case t.At.IsZero():
		return fmt.Errorf("settlement: payment %s: transfer without time", t.PaymentID)
	}
	return nil
}

func reservationStatus(ctx context.Context, q stepQ, t Transfer) (string, error) {
	var status string
	err := q.row(ctx, `SELECT status FROM ledger_reservations WHERE kind = $1 AND payment_id = $2`,
		string(t.Kind), t.PaymentID).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("settlement: reservation of %s: %w", t.PaymentID, err)
	}
	return status, nil
}

// ledgerAccount is an account's ledger row: cents.
type ledgerAccount struct {
	available, blocked, held int64
}

// lock locks the account's balances row (creating zero balances, dated at
// the account's creation, when none were ever imported) and returns its
// ledger row, adopting balances an import wrote since the ledger last did.
func lock(ctx context.Context, q stepQ, accountID string) (*ledgerAccount, error) {
	var availText, blockedText string
	var updated int64
	// A row lock that writes nothing: an upsert that "changes nothing" still
	// writes a new row version on PostgreSQL, and the hot account's dead
	// versions then slow every later lookup. SQLite's single writer needs
	// no row lock. The upsert remains for an account never given balances.
	query := `SELECT available_amount, blocked_amount, updated_at FROM account_balances WHERE account_id = $1`
	if q.engine == store.Postgres {
		query += ` FOR UPDATE`
	}
	err := q.row(ctx, query, accountID).Scan(&availText, &blockedText, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		err = q.row(ctx, `INSERT INTO account_balances (account_id, available_amount, blocked_amount,
			automatically_invested_amount, currency, updated_at)
		SELECT id, '0.00', '0.00', '0.00', currency, created_at FROM accounts WHERE id = $1
		ON CONFLICT (account_id) DO UPDATE SET updated_at = account_balances.updated_at
		RETURNING available_amount, blocked_amount, updated_at`, accountID).Scan(&availText, &blockedText, &updated)
	}
	if err != nil {
		return nil, fmt.Errorf("settlement: lock account %s: %w", accountID, err)
	}
	var a ledgerAccount
	var syncedAvail, syncedBlocked string
	var syncedAt int64
	err = q.row(ctx, `SELECT available_cents, blocked_cents, held_cents, synced_available, synced_blocked, synced_at
		FROM ledger_accounts WHERE account_id = $1`, accountID).Scan(&a.available, &a.blocked, &a.held, &syncedAvail, &syncedBlocked, &syncedAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if a.available, a.blocked, err = parseBalances(accountID, availText, blockedText); err != nil {
			return nil, err
		}
		_, err = q.exec(ctx, `INSERT INTO ledger_accounts (account_id, available_cents, blocked_cents, held_cents,
			synced_available, synced_blocked, synced_at, updated_at) VALUES ($1, $2, $3, 0, $4, $5, $6, $6)`,
			accountID, a.available, a.blocked, availText, blockedText, updated)
		if err != nil {
			return nil, fmt.Errorf("settlement: open ledger account %s: %w", accountID, err)
		}
	case err != nil:
		return nil, fmt.Errorf("settlement: ledger account %s: %w", accountID, err)
	case syncedAvail != availText || syncedBlocked != blockedText || syncedAt != updated:
		// An import rewrote the balances: its amounts win, the holds stay.
		if a.available, a.blocked, err = parseBalances(accountID, availText, blockedText); err != nil {
			return nil, err
		}
		_, err = q.exec(ctx, `UPDATE ledger_accounts SET available_cents = $1, blocked_cents = $2,
			synced_available = $3, synced_blocked = $4, synced_at = $5 WHERE account_id = $6`,
			a.available, a.blocked, availText, blockedText, updated, accountID)
		if err != nil {
			return nil, fmt.Errorf("settlement: adopt imported balances of %s: %w", accountID, err)
		}
	}
	return &a, nil
}

// move adds dAvailable to the account's available cents and dHeld to its
// held cents, in one conditional UPDATE that refuses (ok false) to take
// either below zero, and rewrites the account's Accounts API balances to
// match. The caller holds the account's lock and read a with it.
func (l *Ledger) move(ctx context.Context, q stepQ, accountID string, a *ledgerAccount, dAvailable, dHeld int64, at time.Time) (ok bool, err error) {
	availText := formatCents(a.available + dAvailable)
	blockedText := formatCents(a.blocked + a.held + dHeld)
	ms := at.UnixMilli()
	// The texts are computed from the row read under the lock; the WHERE
	// clause is what decides. PostgreSQL types a parameter at its first use,
	// which is the WHERE clause: the casts keep the cents 64-bit.
	res, err := q.exec(ctx, `UPDATE ledger_accounts SET available_cents = available_cents + $1, held_cents = held_cents + $2,
			synced_available = $3, synced_blocked = $4, synced_at = $5, updated_at = $5
		WHERE account_id = $6 AND (CAST($1 AS BIGINT) >= 0 OR available_cents + $1 >= 0) AND (CAST($2 AS BIGINT) >= 0 OR held_cents + $2 >= 0)`,
		dAvailable, dHeld, availText, blockedText, ms, accountID)
	if err != nil {
		return false, fmt.Errorf("settlement: move money on %s: %w", accountID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if _, err := q.exec(ctx, `UPDATE account_balances SET available_amount = $1, blocked_amount = $2, updated_at = $3
		WHERE account_id = $4`, availText, blockedText, ms, accountID); err != nil {
		return false, fmt.Errorf("settlement: balances of %s: %w", accountID, err)
	}
	return true, nil
}

var (
	digits11or14 = regexp.MustCompile(`^\d{11}$|^\d{14}$`)
	branchDigits = regexp.MustCompile(`^\d{4}$`)
	numberDigits = regexp.MustCompile(`^\d{8,20}$`)
	checkDigit   = regexp.MustCompile(`^\d$`)
)

// statementEntry is the PIX transaction a settled transfer books on one of
// its accounts, the other side being the counterparty. Counterparty fields
// the Accounts API's formats cannot carry are left out.
func statementEntry(t Transfer, amount int64, direction, name string, party Party, acct Account) dataapi.Transaction {
	e := dataapi.Transaction{
		TransactionID: t.EndToEndID, CompletedAuthorisedPaymentType: "TRANSACAO_EFETIVADA", CreditDebitType: direction,
		TransactionName: name, Type: "PIX", Amount: formatCents(amount), Currency: t.Currency,
		TransactionDateTime: t.At.UTC().Truncate(time.Millisecond),
	}
	if digits11or14.MatchString(party.Document) {
		e.PartieCnpjCpf, e.PartiePersonType = party.Document, "PESSOA_NATURAL"
		if len(party.Document) == 14 {
			e.PartiePersonType = "PESSOA_JURIDICA"
		}
	}
	if branchDigits.MatchString(acct.Issuer) {
		e.PartieBranchCode = acct.Issuer
	}
	if number, check := dataapi.AccountNumber(acct.Number); acct.Number != "" && numberDigits.MatchString(number) && checkDigit.MatchString(check) {
		e.PartieNumber, e.PartieCheckDigit = number, check
	}
	return e
}
