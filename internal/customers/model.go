// Package customers holds the end users a holder partner application serves
// and their accounts: who may log in to the WebView and which debtor accounts
// they may choose.
package customers

import (
	"errors"
	"github.com/ponte-ofb/ponte/internal/validation"
	"regexp"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/ofb"
)

// Account types (Payments v4 EnumAccountPaymentsType).
const (
	TypeCACC = "CACC" // conta corrente
	TypeSVGS = "SVGS" // conta poupança
	TypeTRAN = "TRAN" // conta de pagamento pré-paga
)

// AccountTypes lists the valid account types.
var AccountTypes = []string{TypeCACC, TypeSVGS, TypeTRAN}

// Account statuses.
const (
	StatusActive  = "ACTIVE"
	StatusBlocked = "BLOCKED"
)

// Statuses lists the valid account statuses.
var Statuses = []string{StatusActive, StatusBlocked}

// CurrencyBRL is the only currency.
const CurrencyBRL = "BRL"

// Customer is an end user served by a partner application.
type Customer struct {
	ID            string    `json:"id"`
	ApplicationID string    `json:"applicationId"`
	Document      string    `json:"document"`
	Name          string    `json:"name"`
	CreatedAt     time.Time `json:"createdAt"`
}

// Account is one of a customer's bank accounts.
type Account struct {
	ID          string    `json:"id"`
	CustomerID  string    `json:"customerId"`
	ISPB        string    `json:"ispb"`
	Issuer      string    `json:"issuer,omitempty"`
	Number      string    `json:"number"`
	AccountType string    `json:"accountType"`
	Currency    string    `json:"currency"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"createdAt"`
}

// Errors of the customer service.
var (
	ErrCustomerNotFound = errors.New("customer not found")
	ErrCustomerExists   = errors.New("document is already registered for this application")
	ErrAccountExists    = errors.New("an account with this ispb, issuer and number is already registered")
)

// FieldError names one invalid field and what is wrong with it.
type FieldError = validation.FieldError

// ValidationError lists every invalid field of a customer or account at once.
type ValidationError = validation.Error

var (
	ispbPattern   = regexp.MustCompile(`^[0-9]{8}$`)
	issuerPattern = regexp.MustCompile(`^[0-9]{1,4}$`)
	numberPattern = regexp.MustCompile(`^[0-9]{1,20}$`)
)

func invalid(what string, fields []FieldError) error {
	return &ValidationError{What: what, Fields: fields}
}

func documentProblem(document string) []FieldError {
	if document == "" {
		return []FieldError{{Field: "document", Message: "is required"}}
	}
	if err := ofb.ValidateDocument(document); err != nil {
		return []FieldError{{Field: "document", Message: err.Error()}}
	}
	return nil
}

// validateCustomer checks a new customer's fields, all at once.
func validateCustomer(document, name string) error {
	if fields := validateFields(document, name); len(fields) > 0 {
		return invalid("customer", fields)
	}
	return nil
}

func validateFields(document, name string) []FieldError {
	fields := documentProblem(document)
	if name == "" {
		fields = append(fields, FieldError{Field: "name", Message: "is required"})
	} else if len(name) > 200 {
		fields = append(fields, FieldError{Field: "name", Message: "must have at most 200 characters"})
	}
	return fields
}

// NormalizeIssuer returns the agency code zero-padded to four digits: the
// Payments API allows 1-4 digits, so "1" and "0001" are the same agency.
// Anything that is not 1-4 digits is returned unchanged.
func NormalizeIssuer(issuer string) string {
	if issuerPattern.MatchString(issuer) {
		return strings.Repeat("0", 4-len(issuer)) + issuer
	}
	return issuer
}

// normalize fills an account's defaults and validates it, returning every
// invalid field at once.
func (a *Account) normalize() []FieldError {
	a.AccountType = strings.ToUpper(strings.TrimSpace(a.AccountType))
	if a.Currency == "" {
		a.Currency = CurrencyBRL
	}
	if a.Status == "" {
		a.Status = StatusActive
	}
	a.Status = strings.ToUpper(a.Status)
	var fields []FieldError
	if !ispbPattern.MatchString(a.ISPB) {
		fields = append(fields, FieldError{Field: "ispb", Message: "must be 8 digits"})
	}
	switch {
	case a.Issuer == "" && (a.AccountType == TypeCACC || a.AccountType == TypeSVGS):
		fields = append(fields, FieldError{Field: "issuer", Message: "is required for CACC and SVGS accounts"})
	case a.Issuer != "" && !issuerPattern.MatchString(a.Issuer):
		fields = append(fields, FieldError{Field: "issuer", Message: "must be 1 to 4 digits (the agency without its check digit)"})
	default:
		if a.Issuer != "" {
			a.Issuer = NormalizeIssuer(a.Issuer)
		}
	}
	if !numberPattern.MatchString(a.Number) {
		fields = append(fields, FieldError{Field: "number", Message: "must be 1 to 20 digits"})
	}
	if !oneOf(a.AccountType, AccountTypes) {
		fields = append(fields, FieldError{Field: "accountType", Message: "must be one of " + strings.Join(AccountTypes, ", ")})
	}
	if a.Currency != CurrencyBRL {
		fields = append(fields, FieldError{Field: "currency", Message: "must be BRL"})
	}
	if !oneOf(a.Status, Statuses) {
		fields = append(fields, FieldError{Field: "status", Message: "must be one of " + strings.Join(Statuses, ", ")})
	}
	return fields
}

func oneOf(s string, list []string) bool {
	for _, v := range list {
		if s == v {
			return true
		}
	}
	return false
}
