package consentflow

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// ConsentKind is one kind of consent the holder's journey can authorise.
// Each kind implements it in its own package (payments.JourneyKind,
// recurring.JourneyKind, dataconsents.JourneyKind) and app hands them to
// NewInteractions: the journey itself knows no kind of consent. Approve and
// Reject run inside the journey's transaction; Find reads through q, the
// step's transaction or, for a page that only shows the consent, the read
// pool (one query, no BEGIN and ROLLBACK around it).
type ConsentKind interface {
	// Find returns the consent, or ErrConsentNotFound when id is not a
	// consent of this kind. It reads with one query at most.
	Find(ctx context.Context, q Querier, id string) (*ConsentView, error)
	// Approve authorises the consent with the debtor account the user chose.
	// It returns ErrAccountNotAllowed when the consent fixed another account,
	// ErrInteractionExpired when the consent expired, ErrConsentNotAwaiting
	// when it left AWAITING_AUTHORISATION.
	Approve(ctx context.Context, tx *sql.Tx, id string, account Account) error
	// Reject records the user's refusal; a consent no longer awaiting is left
	// as it is (nil).
	Reject(ctx context.Context, tx *sql.Tx, id string) error
}

// MultiAccountKind is a ConsentKind whose user chooses several accounts at
// once (data-sharing consents: the accounts whose data is shared). When the
// kind implements it, the consent step calls ApproveAccounts with every
// account chosen (each checked as the user's own and ACTIVE) instead of
// Approve; the list is empty when the consent shares no account data.
type MultiAccountKind interface {
	ConsentKind
	ApproveAccounts(ctx context.Context, tx *sql.Tx, id string, accounts []Account) error
}

// Querier reads one row: *sql.Tx and *sql.DB both are one.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ErrConsentNotFound means a ConsentKind does not know the id.
var ErrConsentNotFound = errors.New("consent not found")

// Account is a debtor account as the journey passes it to a ConsentKind.
type Account struct {
	ISPB        string `json:"ispb"`
	Issuer      string `json:"issuer,omitempty"`
	Number      string `json:"number"`
	AccountType string `json:"accountType"`
	// ID is the holder's customers.Account id, set by the journey for the
	// kinds (never serialised).
	ID string `json:"-"`
}

// ConsentView is what the journey needs of a consent of any kind.
type ConsentView struct {
	ID string
	// Kind names the template section the WebView shows ("payment").
	Kind string
	// ApplicationID is the application that created the consent.
	ApplicationID string
	// Document is the CPF of the user logged in at the initiator.
	Document string
	// Awaiting is true while the consent waits for the user's decision.
	Awaiting  bool
	ExpiresAt time.Time
	// FixedAccount is the debtor account the initiator fixed, if any.
	FixedAccount *Account
	// Payment describes a payment consent for the WebView.
	Payment *PaymentView
	// Sweeping describes a recurring consent for sweeping accounts
	// (Automatic Payments v2) for the WebView; Kind is "sweeping".
	Sweeping *SweepingView
	// Data describes a data-sharing consent (Consents v3) for the WebView;
	// Kind is "data".
	Data *DataView
}

// DataView is a data-sharing consent as the user reads it in the WebView:
// the permissions grouped and named as the regulation's consent screen
// does, the sharing period, and whether the user picks accounts.
type DataView struct {
	// Categories are the data categories asked for, in the table's order.
	Categories []DataCategory
	// Period is the sharing period ("até 15/10/2025 às 15:55" or
	// "Prazo indeterminado").
	Period string
	// NeedsAccounts is true when the consent shares account data: the user
	// chooses which accounts.
	NeedsAccounts bool
}

// DataCategory is one data category (Cadastro, Contas, ...) and its groups.
type DataCategory struct {
	Name   string
	Groups []DataGroup
}

// DataGroup is one data grouping (Saldos, Extratos, ...) and what it shares.
type DataGroup struct {
	Name, Description string
}

// PaymentView is a payment as the user reads it in the WebView.
type PaymentView struct {
	Amount, When, Method, CreditorName, CreditorDoc string
}

// SweepingView is a sweeping consent as the user reads it in the WebView:
// amounts already formatted (FormatBRL), dates in Brasília time, "" for a
// limit the initiator did not set.
type SweepingView struct {
	// Creditors are the receiving accounts' holders, "Name (masked document)".
	Creditors []string
	// TotalLimit and TransactionLimit are the consent's total and
	// per-transfer limits.
	TotalLimit, TransactionLimit string
	// PeriodLimits are the day/week/month/year limits, in that order, as
	// "Por dia: até R$ 100,00 em até 2 transferências".
	PeriodLimits []string
	// Start and Expiry are the validity ("" Expiry: no end date).
	Start, Expiry string
}

// Consents finds the kind that holds a consent id, asking each in turn:
// kinds that refuse an id by its prefix without reading should come first,
// so that an id costs one query.
type Consents []ConsentKind

func (cs Consents) find(ctx context.Context, q Querier, id string) (ConsentKind, *ConsentView, error) {
	for _, k := range cs {
		v, err := k.Find(ctx, q, id)
		if errors.Is(err, ErrConsentNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return k, v, nil
	}
	return nil, nil, ErrConsentNotFound
}
