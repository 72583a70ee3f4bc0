package dataapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Service reads and imports account data and decides what a consent allows.
type Service struct {
	db     *store.DB
	clock  clock.Clock
	grants Grants
}

// NewService returns the data service; grants resolves consents.
func NewService(db *store.DB, c clock.Clock, grants Grants) *Service {
	return &Service{db: db, clock: c, grants: grants}
}

// Clock is the service's clock.
func (s *Service) Clock() clock.Clock { return s.clock }

// Refusals of Authorize and GrantedAccount. The handler answers each with
// the Open Finance status, code and text of refusals in http.go.
var (
	// ErrNoConsent: the token carries no consent:<id> scope, or not the API's scope.
	ErrNoConsent = errors.New("dataapi: the token is bound to no data-sharing consent with this API's scope")
	// ErrConsentUnusable: the consent is unknown, not AUTHORISED (awaiting,
	// rejected, revoked) or past its expirationDateTime; its tokens no longer
	// give access.
	ErrConsentUnusable = errors.New("dataapi: the token's consent is not AUTHORISED")
	// ErrMissingPermission: the consent lacks the route's permission.
	ErrMissingPermission = errors.New("dataapi: the consent lacks the permission for this resource")
	// ErrResourceNotGranted: the accountId is not one the consent shares.
	ErrResourceNotGranted = errors.New("dataapi: the account is not shared by the consent")
	// ErrResourceTemporarilyUnavailable: the account is blocked at the holder.
	ErrResourceTemporarilyUnavailable = errors.New("dataapi: the account is temporarily unavailable at the holder")
	// ErrResourceUnavailable: the account no longer exists for the consent's customer.
	ErrResourceUnavailable = errors.New("dataapi: the account is no longer available at the holder")
)

// ConsentIDFromScopes returns the consent id of a consent:<id> scope.
func ConsentIDFromScopes(scopes []string) (string, bool) {
	for _, s := range scopes {
		if id, ok := strings.CutPrefix(s, "consent:"); ok && id != "" {
			return id, true
		}
	}
	return "", false
}

// Authorize decides whether tok may call a route of the API with scope
// apiScope that needs permission: the token holds apiScope and a consent
// scope; the consent belongs to the token's application, is AUTHORISED and
// unexpired, and holds permission.
func (s *Service) Authorize(ctx context.Context, tok *Token, apiScope, permission string) (*Grant, error) {
	id, ok := ConsentIDFromScopes(tok.Scopes)
	if !ok || !slices.Contains(tok.Scopes, apiScope) {
		return nil, ErrNoConsent
	}
	g, err := s.grants.Grant(ctx, id)
	switch {
	case errors.Is(err, ErrGrantNotFound):
		return nil, ErrConsentUnusable
	case err != nil:
		return nil, fmt.Errorf("dataapi: consent %s: %w", id, err)
	case g.ApplicationID != tok.ApplicationID:
		return nil, ErrConsentUnusable // another application's consent: as if unknown
	case g.Status != ConsentAuthorised, !g.ExpiresAt.IsZero() && !s.clock.Now().Before(g.ExpiresAt):
		return nil, ErrConsentUnusable
	case !g.Has(permission):
		return nil, ErrMissingPermission
	}
	return g, nil
}

// GrantedAccounts returns the accounts the grant shares, oldest first: those
// of the consent's customer at one holder partner. The partner is the one
// holding the grant's first account; an account of the same person at
// another partner, or no longer theirs, is left out (tenant isolation does
// not rest on the consent service alone).
func (s *Service) GrantedAccounts(ctx context.Context, g *Grant) ([]*Account, error) {
	all, err := accountsByID(ctx, s.db, g.AccountIDs)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	owner := ""
	for _, a := range all {
		if a.ID == g.AccountIDs[0] && a.Document == g.Document {
			owner = a.ApplicationID
		}
	}
	out := all[:0]
	for _, a := range all {
		if a.Document == g.Document && a.ApplicationID == owner {
			out = append(out, a)
		}
	}
	return out, nil
}

// GrantedAccount returns one account the grant shares, refusing an account
// outside the grant and one that is not available.
func (s *Service) GrantedAccount(ctx context.Context, g *Grant, accountID string) (*Account, error) {
	if !g.Covers(accountID) {
		return nil, ErrResourceNotGranted
	}
	list, err := s.GrantedAccounts(ctx, g)
	if err != nil {
		return nil, err
	}
	for _, a := range list {
		if a.ID != accountID {
			continue
		}
		if a.Status != customers.StatusActive {
			return nil, ErrResourceTemporarilyUnavailable
		}
		return a, nil
	}
	return nil, ErrResourceUnavailable
}

// ResourceStatus is the Resources API status of a granted account.
func ResourceStatus(a *Account) string {
	if a.Status != customers.StatusActive {
		return "TEMPORARILY_UNAVAILABLE"
	}
	return "AVAILABLE"
}

// Balances returns the account's balances, or zero balances as of the
// account's creation when none were imported.
func (s *Service) Balances(ctx context.Context, a *Account) (*Balances, error) {
	b, err := getBalances(ctx, s.db.Read(), a.ID)
	if err != nil || b != nil {
		return b, err
	}
	return &Balances{AvailableAmount: "0.00", BlockedAmount: "0.00", AutomaticallyInvestedAmount: "0.00", Currency: a.Currency, UpdatedAt: a.CreatedAt}, nil
}

// OverdraftLimits returns the account's limits; an account without any has
// all amounts empty.
func (s *Service) OverdraftLimits(ctx context.Context, a *Account) (*OverdraftLimits, error) {
	l, err := getLimits(ctx, s.db.Read(), a.ID)
	if err != nil || l != nil {
		return l, err
	}
	return &OverdraftLimits{Currency: a.Currency}, nil
}

// TransactionFilter selects transactions booked on [From, To] (calendar days
// in Brasília), optionally only credits or debits.
type TransactionFilter struct {
	From, To    time.Time // dates at 00:00 Brasília time
	CreditDebit string
}

// Transactions returns one page of the account's transactions under f,
// newest first: at most limit, after skipping offset.
func (s *Service) Transactions(ctx context.Context, accountID string, f TransactionFilter, limit, offset int) ([]Transaction, error) {
	st, err := s.db.ReadStmt(ctx, transactionsQuery)
	if err != nil {
		return nil, fmt.Errorf("dataapi: prepare transactions: %w", err)
	}
	rows, err := st.QueryContext(ctx, accountID, f.From.UnixMilli(), f.To.AddDate(0, 0, 1).UnixMilli(), f.CreditDebit, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("dataapi: transactions: %w", err)
	}
	return scanTransactions(rows, min(limit, 1024))
}

// errMissingBody: a page met a transaction stored without its body.
var errMissingBody = errors.New("dataapi: transaction stored without body")

// appendTransactionPage is Transactions for the API's pages: it appends the
// stored JSON bodies of at most size transactions (after skipping offset) to
// buf, comma-separated, in the same order, and reports whether a further
// transaction follows (it reads one row more than it shows). A page that
// meets rows from before migration 00018 (no body yet) has the account's
// missing bodies encoded from their columns, then is read again.
func (s *Service) appendTransactionPage(ctx context.Context, buf []byte, accountID string, f TransactionFilter, size, offset int) ([]byte, bool, error) {
	for attempt := 0; ; attempt++ {
		out, more, err := s.appendBodies(ctx, buf, accountID, f, size, offset)
		if !errors.Is(err, errMissingBody) || attempt > 0 {
			return out, more, err
		}
		if err := s.db.Write(ctx, func(tx *sql.Tx) error {
			_, err := encodeMissing(ctx, tx, accountID)
			return err
		}); err != nil {
			return buf, false, err
		}
	}
}

func (s *Service) appendBodies(ctx context.Context, buf []byte, accountID string, f TransactionFilter, size, offset int) ([]byte, bool, error) {
	st, err := s.db.ReadStmt(ctx, transactionBodiesQuery)
	if err != nil {
		return buf, false, fmt.Errorf("dataapi: prepare transactions: %w", err)
	}
	rows, err := st.QueryContext(ctx, accountID, f.From.UnixMilli(), f.To.AddDate(0, 0, 1).UnixMilli(), f.CreditDebit, size+1, offset)
	if err != nil {
		return buf, false, fmt.Errorf("dataapi: transactions: %w", err)
	}
	defer rows.Close()
	start, n := len(buf), 0
	var body sql.NullString // the driver's string as is: one copy, into buf
	for rows.Next() {
		if err := rows.Scan(&body); err != nil {
			return buf[:start], false, fmt.Errorf("dataapi: scan transaction: %w", err)
		}
		if body.String == "" {
			return buf[:start], false, errMissingBody
		}
		if n == size {
			return buf, true, nil // the row after the page: a next page exists
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, body.String...)
		n++
	}
	if err := rows.Err(); err != nil {
		return buf[:start], false, fmt.Errorf("dataapi: transactions: %w", err)
	}
	return buf, false, nil
}

// Import loads d into the account numbered accountNumber of the
// application's customer with this document, in one transaction: nothing is
// written unless everything is valid.
func (s *Service) Import(ctx context.Context, appID, document, accountNumber string, d *ImportData) (*ImportResult, error) {
	if err := d.normalize(); err != nil {
		return nil, err
	}
	now := s.now()
	res := &ImportResult{Transactions: len(d.Transactions), Profile: d.Profile != nil, Balances: d.Balances != nil, Limits: d.OverdraftLimits != nil}
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		list, err := customerAccounts(ctx, tx, appID, strings.TrimSpace(document))
		if err != nil {
			return err
		}
		var match []*Account
		for _, a := range list {
			if a.Number == accountNumber {
				match = append(match, a)
			}
		}
		switch len(match) {
		case 0:
			return ErrAccountNotFound
		case 1:
		default:
			return ErrAccountAmbiguous
		}
		res.AccountID = match[0].ID
		return s.write(ctx, tx, res.AccountID, d, now, true)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (s *Service) write(ctx context.Context, tx *sql.Tx, accountID string, d *ImportData, now time.Time, update bool) error {
	if d.Profile != nil {
		if err := upsertProfile(ctx, tx, accountID, d.Profile, now); err != nil {
			return fmt.Errorf("dataapi: profile: %w", err)
		}
	}
	if d.Balances != nil {
		if err := upsertBalances(ctx, tx, accountID, d.Balances, now); err != nil {
			return fmt.Errorf("dataapi: balances: %w", err)
		}
	}
	if d.OverdraftLimits != nil {
		if err := upsertLimits(ctx, tx, accountID, d.OverdraftLimits, now); err != nil {
			return fmt.Errorf("dataapi: overdraft limits: %w", err)
		}
	}
	return insertTransactions(ctx, tx, s.db.Engine(), accountID, d.Transactions, update)
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Millisecond) }
