package dataapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/store"
)

// queryer is a database or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Account is a customers account as the data APIs see it: with its holder's
// document and application, and its profile when one was imported.
type Account struct {
	ID            string
	ApplicationID string
	Document      string
	ISPB          string
	Issuer        string
	Number        string
	AccountType   string
	Currency      string
	Status        string
	CreatedAt     time.Time
	Profile       *Profile
}

const accountSelect = `SELECT a.id, c.application_id, c.document, a.ispb, a.issuer, a.number, a.account_type, a.currency, a.status,
	a.created_at, COALESCE(p.compe_code, ''), COALESCE(p.brand_name, ''), COALESCE(p.company_cnpj, ''), COALESCE(p.subtype, '')
	FROM accounts a JOIN customers c ON c.id = a.customer_id LEFT JOIN account_profiles p ON p.account_id = a.id`

func scanAccounts(rows *sql.Rows) ([]*Account, error) {
	defer rows.Close()
	var out []*Account
	for rows.Next() {
		var a Account
		var p Profile
		var created int64
		if err := rows.Scan(&a.ID, &a.ApplicationID, &a.Document, &a.ISPB, &a.Issuer, &a.Number, &a.AccountType, &a.Currency, &a.Status,
			&created, &p.CompeCode, &p.BrandName, &p.CompanyCNPJ, &p.Subtype); err != nil {
			return nil, err
		}
		a.CreatedAt = time.UnixMilli(created).UTC()
		if p.CompeCode != "" {
			a.Profile = &p
		}
		out = append(out, &a)
	}
	return out, rows.Err()
}

// maxPreparedAccountIDs bounds the prepared forms of accountsByID (one per
// number of ids) a database keeps.
const maxPreparedAccountIDs = 16

// accountsByID returns the accounts with these ids, oldest first (the
// customers package's order).
// Every data call runs it: on the read pool, prepared once per number of ids.
func accountsByID(ctx context.Context, db *store.DB, ids []string) ([]*Account, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	vals := make([]any, len(ids))
	for i, id := range ids {
		vals[i] = id
	}
	p := store.NewParams(db.Engine())
	query := accountSelect + ` WHERE a.id IN (` + p.List(vals...) + `) ORDER BY a.created_at, a.ispb, a.issuer, a.number`
	args := p.Args()
	var rows *sql.Rows
	var err error
	if len(ids) <= maxPreparedAccountIDs {
		var st *sql.Stmt
		if st, err = db.ReadStmt(ctx, query); err == nil {
			rows, err = st.QueryContext(ctx, args...)
		}
	} else {
		rows, err = db.Read().QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("dataapi: accounts: %w", err)
	}
	return scanAccounts(rows)
}

// customerAccounts returns the accounts of the application's customer with
// this document, oldest first.
func customerAccounts(ctx context.Context, q queryer, appID, document string) ([]*Account, error) {
	rows, err := q.QueryContext(ctx, accountSelect+` WHERE c.application_id = $1 AND c.document = $2 ORDER BY a.created_at, a.ispb, a.issuer, a.number`, appID, document)
	if err != nil {
		return nil, fmt.Errorf("dataapi: customer accounts: %w", err)
	}
	return scanAccounts(rows)
}

func getBalances(ctx context.Context, q queryer, accountID string) (*Balances, error) {
	var b Balances
	var updated int64
	err := q.QueryRowContext(ctx, `SELECT available_amount, blocked_amount, automatically_invested_amount, currency, updated_at
		FROM account_balances WHERE account_id = $1`, accountID).Scan(&b.AvailableAmount, &b.BlockedAmount, &b.AutomaticallyInvestedAmount, &b.Currency, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dataapi: balances: %w", err)
	}
	b.UpdatedAt = time.UnixMilli(updated).UTC()
	return &b, nil
}

func getLimits(ctx context.Context, q queryer, accountID string) (*OverdraftLimits, error) {
	var l OverdraftLimits
	var updated int64
	err := q.QueryRowContext(ctx, `SELECT contracted_amount, used_amount, unarranged_amount, currency, updated_at
		FROM account_overdraft_limits WHERE account_id = $1`, accountID).Scan(&l.ContractedAmount, &l.UsedAmount, &l.UnarrangedAmount, &l.Currency, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dataapi: overdraft limits: %w", err)
	}
	l.UpdatedAt = time.UnixMilli(updated).UTC()
	return &l, nil
}

func upsertProfile(ctx context.Context, tx *sql.Tx, accountID string, p *Profile, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO account_profiles (account_id, compe_code, brand_name, company_cnpj, subtype, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO UPDATE SET compe_code = excluded.compe_code,
		brand_name = excluded.brand_name, company_cnpj = excluded.company_cnpj, subtype = excluded.subtype, updated_at = excluded.updated_at`,
		accountID, p.CompeCode, p.BrandName, p.CompanyCNPJ, p.Subtype, now.UnixMilli())
	return err
}

func upsertBalances(ctx context.Context, tx *sql.Tx, accountID string, b *Balances, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO account_balances (account_id, available_amount, blocked_amount, automatically_invested_amount, currency, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO UPDATE SET available_amount = excluded.available_amount,
		blocked_amount = excluded.blocked_amount, automatically_invested_amount = excluded.automatically_invested_amount,
		currency = excluded.currency, updated_at = excluded.updated_at`,
		accountID, b.AvailableAmount, b.BlockedAmount, b.AutomaticallyInvestedAmount, b.Currency, now.UnixMilli())
	return err
}

func upsertLimits(ctx context.Context, tx *sql.Tx, accountID string, l *OverdraftLimits, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO account_overdraft_limits (account_id, contracted_amount, used_amount, unarranged_amount, currency, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO UPDATE SET contracted_amount = excluded.contracted_amount,
		used_amount = excluded.used_amount, unarranged_amount = excluded.unarranged_amount, currency = excluded.currency,
		updated_at = excluded.updated_at`,
		accountID, l.ContractedAmount, l.UsedAmount, l.UnarrangedAmount, l.Currency, now.UnixMilli())
	return err
}

const transactionColumns = `transaction_id, booked_at, status, credit_debit_type, name, type, amount, currency,
	partie_cnpj_cpf, partie_person_type, partie_compe_code, partie_branch_code, partie_number, partie_check_digit`

// transactionBatch keeps a multi-row insert under SQLite's and PostgreSQL's
// parameter limits (16 per row).
const transactionBatch = 500

// insertTransactions writes ts for the account in batches, each row with its
// encoded body (encodeTransaction). With update, a transaction already stored
// under the same id is replaced, body included; without, it is kept as it is
// (the sandbox seed).
//
// Its parameters are store.Params': anonymous on SQLite, where numbered ones
// ($1…$8000 in a 500-row batch) made the sandbox seed's 2,200 rows most of a
// first start.
func insertTransactions(ctx context.Context, tx *sql.Tx, engine store.Engine, accountID string, ts []Transaction, update bool) error {
	conflict := ` ON CONFLICT (account_id, transaction_id) DO NOTHING`
	if update {
		conflict = ` ON CONFLICT (account_id, transaction_id) DO UPDATE SET booked_at = excluded.booked_at, status = excluded.status,
		credit_debit_type = excluded.credit_debit_type, name = excluded.name, type = excluded.type, amount = excluded.amount,
		currency = excluded.currency, partie_cnpj_cpf = excluded.partie_cnpj_cpf, partie_person_type = excluded.partie_person_type,
		partie_compe_code = excluded.partie_compe_code, partie_branch_code = excluded.partie_branch_code,
		partie_number = excluded.partie_number, partie_check_digit = excluded.partie_check_digit, body = excluded.body`
	}
	for start := 0; start < len(ts); start += transactionBatch {
		batch := ts[start:min(start+transactionBatch, len(ts))]
		var sb strings.Builder
		sb.WriteString(`INSERT INTO account_transactions (account_id, ` + transactionColumns + `, body) VALUES `)
		p := store.NewParams(engine)
		for i := range batch {
			t := &batch[i]
			if i > 0 {
				sb.WriteString(", ")
			}
			body, err := encodeTransaction(t)
			if err != nil {
				return err
			}
			sb.WriteString("(" + p.List(accountID, t.TransactionID, t.TransactionDateTime.UnixMilli(), t.CompletedAuthorisedPaymentType,
				t.CreditDebitType, t.TransactionName, t.Type, t.Amount, t.Currency, t.PartieCnpjCpf, t.PartiePersonType,
				t.PartieCompeCode, t.PartieBranchCode, t.PartieNumber, t.PartieCheckDigit, body) + ")")
		}
		sb.WriteString(conflict)
		if _, err := tx.ExecContext(ctx, sb.String(), p.Args()...); err != nil {
			return fmt.Errorf("dataapi: insert transactions: %w", err)
		}
	}
	return nil
}

// encodeMissing gives every transaction of the account stored without a
// body (rows from before migration 00018) the body its columns encode to.
// It returns how many it encoded.
func encodeMissing(ctx context.Context, tx *sql.Tx, accountID string) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+transactionColumns+` FROM account_transactions WHERE account_id = $1 AND body IS NULL`, accountID)
	if err != nil {
		return 0, fmt.Errorf("dataapi: transactions without body: %w", err)
	}
	ts, err := scanTransactions(rows, 0)
	if err != nil {
		return 0, err
	}
	for i := range ts {
		body, err := encodeTransaction(&ts[i])
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE account_transactions SET body = $1 WHERE account_id = $2 AND transaction_id = $3 AND body IS NULL`,
			body, accountID, ts[i].TransactionID); err != nil {
			return 0, fmt.Errorf("dataapi: encode transaction: %w", err)
		}
	}
	return len(ts), nil
}

func scanTransactions(rows *sql.Rows, capacity int) ([]Transaction, error) {
	defer rows.Close()
	out := make([]Transaction, 0, capacity)
	for rows.Next() {
		var t Transaction
		var at int64
		if err := rows.Scan(&t.TransactionID, &at, &t.CompletedAuthorisedPaymentType, &t.CreditDebitType, &t.TransactionName, &t.Type,
			&t.Amount, &t.Currency, &t.PartieCnpjCpf, &t.PartiePersonType, &t.PartieCompeCode, &t.PartieBranchCode,
			&t.PartieNumber, &t.PartieCheckDigit); err != nil {
			return nil, fmt.Errorf("dataapi: scan transaction: %w", err)
		}
		t.TransactionDateTime = time.UnixMilli(at).UTC()
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dataapi: transactions: %w", err)
	}
	return out, nil
}

// transactionsQuery lists an account's transactions booked in [$2, $3)
// (Unix milliseconds) with an optional credit/debit filter ($4, ” for any),
// newest first, ties broken by transaction id: a total order, so offset pages
// neither repeat nor skip a row while the data stands still.
const transactionsQuery = `SELECT ` + transactionColumns + ` FROM account_transactions
	WHERE account_id = $1 AND booked_at >= $2 AND booked_at < $3 AND ($4 = '' OR credit_debit_type = $4)
	ORDER BY booked_at DESC, transaction_id DESC LIMIT $5 OFFSET $6`

// transactionBodiesQuery is transactionsQuery reading only the encoded
// bodies: one column per row.
const transactionBodiesQuery = `SELECT body FROM account_transactions
	WHERE account_id = $1 AND booked_at >= $2 AND booked_at < $3 AND ($4 = '' OR credit_debit_type = $4)
	ORDER BY booked_at DESC, transaction_id DESC LIMIT $5 OFFSET $6`

func countTransactions(ctx context.Context, q queryer, accountID string) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM account_transactions WHERE account_id = $1`, accountID).Scan(&n); err != nil {
		return 0, fmt.Errorf("dataapi: count transactions: %w", err)
	}
	return n, nil
}
