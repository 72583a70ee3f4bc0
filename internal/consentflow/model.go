package consentflow

import (
	"errors"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// Ticket statuses, as the seed names them.
const (
	TicketUnused = "UNUSED"
	TicketUsed   = "USED"
)

// TicketTTL is the ticket's lifetime (seed 000: 60 seconds).
const TicketTTL = 60 * time.Second

// SessionTTL is how long the holder browser session opened by a ticket lives.
const SessionTTL = 10 * time.Minute

// Field limits. The seed gives none for requestUri and clientId; these bound
// storage while leaving room for any real request_uri (RFC 9126 URNs) and id.
const (
	maxRequestURI = 2048
	maxClientID   = 255
)

// Ticket is a consent-flow ticket.
type Ticket struct {
	TicketID       string
	ApplicationID  string
	CompanyKey     string
	DocumentNumber string
	RequestURI     string
	ClientID       string
	Status         string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	ExpiresAt      time.Time
}

// TicketJSON is the seed's response body, field for field.
type TicketJSON struct {
	TicketID       string           `json:"ticketId"`
	CompanyKey     string           `json:"companyKey"`
	DocumentNumber string           `json:"documentNumber"`
	RequestURI     string           `json:"requestUri"`
	ClientID       string           `json:"clientId"`
	Status         string           `json:"status"`
	CreatedAt      httpx.BanklyTime `json:"createdAt"`
	UpdatedAt      httpx.BanklyTime `json:"updatedAt"`
}

// JSON returns the ticket as the API shows it.
func (t *Ticket) JSON() TicketJSON {
	return TicketJSON{
		TicketID: t.TicketID, CompanyKey: t.CompanyKey, DocumentNumber: t.DocumentNumber,
		RequestURI: t.RequestURI, ClientID: t.ClientID, Status: t.Status,
		CreatedAt: httpx.BanklyTime(t.CreatedAt), UpdatedAt: httpx.BanklyTime(t.UpdatedAt),
	}
}

// CreateTicket is the request body of POST /openfinance/consent-flow/ticket.
type CreateTicket struct {
	RequestURI     string `json:"requestUri" required:"true"`
	ClientID       string `json:"clientId" required:"true"`
	DocumentNumber string `json:"documentNumber" required:"true"`
}

// Errors of the ticket service.
var (
	ErrTicketNotFound     = errors.New("ticket not found")
	ErrTicketUsed         = errors.New("ticket already used")
	ErrTicketExpired      = errors.New("ticket expired")
	ErrRequestURINotFound = errors.New("requestUri not found or expired")
	ErrDocumentMismatch   = errors.New("documentNumber does not match the customer the consent names")
)

// ValidationError lists every invalid field of a request; the API answers
// it as a 400 naming each one.
type ValidationError struct{ Fields []httpx.FieldError }

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("holder: invalid request")
	for i, f := range e.Fields {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		b.WriteString(sep + f.Field + " " + f.Message)
	}
	return b.String()
}
