package customers

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Service manages customers and their accounts. Every write is one
// transaction: an operation that fails leaves nothing behind.
type Service struct {
	db    *store.DB
	clock clock.Clock
}

// NewService returns the customer service.
func NewService(db *store.DB, c clock.Clock) *Service {
	return &Service{db: db, clock: c}
}

// CreateCustomer registers an end user of the application appID. The document
// must be a CPF or CNPJ with valid check digits, unique within the application.
func (s *Service) CreateCustomer(ctx context.Context, appID, document, name string) (*Customer, error) {
	document, name = strings.TrimSpace(document), strings.TrimSpace(name)
	if err := validateCustomer(document, name); err != nil {
		return nil, err
	}
	c := &Customer{ID: uuid.NewString(), ApplicationID: appID, Document: document, Name: name, CreatedAt: s.now()}
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		if _, err := getCustomer(ctx, tx, appID, document); err == nil {
			return ErrCustomerExists
		} else if !errors.Is(err, ErrCustomerNotFound) {
			return err
		}
		return insertCustomer(ctx, tx, c)
	})
	if store.IsUniqueViolation(err) {
		return nil, ErrCustomerExists // a concurrent create won the race
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Customer returns the application's customer with this document.
func (s *Service) Customer(ctx context.Context, appID, document string) (*Customer, error) {
	document = strings.TrimSpace(document)
	if fields := documentProblem(document); fields != nil {
		return nil, invalid("customer", fields)
	}
	return getCustomer(ctx, s.db.Read(), appID, document)
}

// ListCustomers returns the application's customers, oldest first.
func (s *Service) ListCustomers(ctx context.Context, appID string) ([]*Customer, error) {
	return listCustomers(ctx, s.db.Read(), appID)
}

// AddAccount gives the application's customer with this document an account.
// Currency defaults to BRL and status to ACTIVE; the issuer is stored
// zero-padded to four digits. (ispb, issuer, number) is unique across Ponte.
func (s *Service) AddAccount(ctx context.Context, appID, document string, a Account) (*Account, error) {
	document = strings.TrimSpace(document)
	if fields := append(documentProblem(document), a.normalize()...); len(fields) > 0 {
		return nil, invalid("account", fields)
	}
	a.ID, a.CreatedAt = uuid.NewString(), s.now()
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		c, err := getCustomer(ctx, tx, appID, document)
		if err != nil {
			return err
		}
		a.CustomerID = c.ID
		if existing, err := getAccount(ctx, tx, a.ISPB, a.Issuer, a.Number); err != nil {
			return err
		} else if existing != nil {
			return ErrAccountExists
		}
		return insertAccount(ctx, tx, &a)
	})
	if store.IsUniqueViolation(err) {
		return nil, ErrAccountExists // a concurrent add won the race
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// Accounts returns the accounts of the application's customer with this
// document, oldest first.
func (s *Service) Accounts(ctx context.Context, appID, document string) ([]*Account, error) {
	c, err := s.Customer(ctx, appID, document)
	if err != nil {
		return nil, err
	}
	return listAccounts(ctx, s.db.Read(), c.ID)
}

// OwnsAccount reports whether the account (ispb, issuer, number) belongs to
// the application's customer with this document. An issuer of 1-4 digits
// matches its zero-padded form. Malformed values own nothing. It says nothing
// about the account's status: callers that debit it check Status too.
func (s *Service) OwnsAccount(ctx context.Context, appID, document, ispb, issuer, number string) (bool, error) {
	var n int
	err := s.db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts a JOIN customers c ON c.id = a.customer_id
		WHERE c.application_id = $1 AND c.document = $2 AND a.ispb = $3 AND a.issuer = $4 AND a.number = $5`,
		appID, strings.TrimSpace(document), ispb, NormalizeIssuer(issuer), number).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("customers: owns account: %w", err)
	}
	return n > 0, nil
}

// SandboxCustomer is a demo end user with one account.
type SandboxCustomer struct {
	Document, Name string
	Account        Account
}

// SandboxCustomers are the sandbox's demo users: each has a CACC account at
// ISPB 37241230, agency 0001.
var SandboxCustomers = []SandboxCustomer{
	{Document: "47742663023", Name: "Maria da Silva", Account: Account{ISPB: "37241230", Issuer: "0001", Number: "1234567", AccountType: TypeCACC}},
	{Document: "12345678909", Name: "João Souza", Account: Account{ISPB: "37241230", Issuer: "0001", Number: "7654321", AccountType: TypeCACC}},
}

// EnsureSandbox creates the sandbox customers and their accounts for the demo
// application once. It is idempotent and safe when several instances start
// on one database at once: rows another instance wrote are kept as they are.
func (s *Service) EnsureSandbox(ctx context.Context, appID string) ([]*Customer, error) {
	out := make([]*Customer, 0, len(SandboxCustomers))
	for _, sc := range SandboxCustomers {
		acct := sc.Account
		if fields := append(validateFields(sc.Document, sc.Name), acct.normalize()...); len(fields) > 0 {
			return nil, fmt.Errorf("customers: sandbox customer %s: %w", sc.Document, invalid("customer", fields))
		}
		var c *Customer
		err := s.db.Write(ctx, func(tx *sql.Tx) error {
			now := s.now()
			// ON CONFLICT DO NOTHING: on PostgreSQL a concurrent instance's
			// uncommitted row makes the insert wait, then do nothing; the
			// row is committed by the time it is read back.
			if _, err := tx.ExecContext(ctx, `INSERT INTO customers (`+customerColumns+`) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (application_id, document) DO NOTHING`, uuid.NewString(), appID, sc.Document, sc.Name, now.UnixMilli()); err != nil {
				return err
			}
			var err error
			if c, err = getCustomer(ctx, tx, appID, sc.Document); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (`+accountColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (ispb, issuer, number) DO NOTHING`, uuid.NewString(), c.ID, acct.ISPB, acct.Issuer, acct.Number,
				acct.AccountType, acct.Currency, acct.Status, now.UnixMilli()); err != nil {
				return err
			}
			a, err := getAccount(ctx, tx, acct.ISPB, acct.Issuer, acct.Number)
			if err != nil {
				return err
			}
			if a == nil || a.CustomerID != c.ID {
				return fmt.Errorf("account %s/%s/%s belongs to another customer", acct.ISPB, acct.Issuer, acct.Number)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("customers: sandbox customer %s: %w", sc.Document, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Millisecond) }
