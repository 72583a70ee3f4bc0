// Package cards is Ponte's card vault and the Bankly wallet token endpoint
// (seed 001): it keeps card numbers sealed at rest and hands a partner's app
// the encrypted payload the Apple Pay or Google Pay SDK needs to add a card
// to the wallet. The card number exists in clear only in memory, inside this
// package and its cryptography subpackages.
package cards

import (
	"errors"
	"fmt"
	"github.com/ponte-ofb/ponte/internal/validation"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ponte-ofb/ponte/internal/cards/googlepay"
	"github.com/ponte-ofb/ponte/internal/cards/mastercard"
	"github.com/ponte-ofb/ponte/internal/httpx"
)

// Card statuses.
const (
	StatusCreating  = "CREATING"
	StatusActive    = "ACTIVE"
	StatusBlocked   = "BLOCKED"
	StatusCancelled = "CANCELLED"
)

// Statuses lists every card status.
var Statuses = []string{StatusCreating, StatusActive, StatusBlocked, StatusCancelled}

// Wallets and brands accepted in the path (seed 001).
const (
	WalletApplePay  = "ApplePay"
	WalletGooglePay = "GooglePay"
	BrandMastercard = "Mastercard"
)

// Wallet token statuses, as the token network reports them.
const (
	TokenInactive  = "INACTIVE"
	TokenActive    = "ACTIVE"
	TokenSuspended = "SUSPENDED"
	TokenDeleted   = "DELETED"
)

// Address is the card holder's address, with the seed's field names.
type Address struct {
	ZipCode      string `json:"zipCode"`
	Address      string `json:"address"`
	Number       string `json:"number"`
	Neighborhood string `json:"neighborhood"`
	Complement   string `json:"complement"`
	City         string `json:"city"`
	State        string `json:"state"`
	Country      string `json:"country"`
}

// Card is a card as the vault keeps it. It never holds the card number.
type Card struct {
	ID            string
	ApplicationID string
	Proxy         string
	LastFour      string
	ExpiryMonth   int
	ExpiryYear    int
	HolderName    string
	PhoneNumber   string
	Address       Address
	Brand         string
	Status        string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// CardJSON is the admin API's view of a card: no card number, ever.
type CardJSON struct {
	Proxy          string  `json:"proxy"`
	LastFourDigits string  `json:"lastFourDigits"`
	ExpiryMonth    int     `json:"expiryMonth"`
	ExpiryYear     int     `json:"expiryYear"`
	Name           string  `json:"name"`
	PhoneNumber    string  `json:"phoneNumber"`
	Address        Address `json:"address"`
	Brand          string  `json:"brand"`
	Status         string  `json:"status"`
	CreatedAt      string  `json:"createdAt"`
	UpdatedAt      string  `json:"updatedAt"`
}

// JSON returns the card's API view.
func (c *Card) JSON() CardJSON {
	return CardJSON{
		Proxy: c.Proxy, LastFourDigits: c.LastFour, ExpiryMonth: c.ExpiryMonth, ExpiryYear: c.ExpiryYear,
		Name: c.HolderName, PhoneNumber: c.PhoneNumber, Address: c.Address, Brand: c.Brand, Status: c.Status,
		CreatedAt: c.CreatedAt.UTC().Format(httpx.BanklyTimeLayout), UpdatedAt: c.UpdatedAt.UTC().Format(httpx.BanklyTimeLayout),
	}
}

// NewCard is what registers a card in the vault.
type NewCard struct {
	Proxy       string  `json:"proxy" required:"true"`
	PAN         string  `json:"cardNumber" required:"true"`
	ExpiryMonth int     `json:"expiryMonth" required:"true"`
	ExpiryYear  int     `json:"expiryYear" required:"true"`
	HolderName  string  `json:"name" required:"true"`
	PhoneNumber string  `json:"phoneNumber" required:"true"`
	Address     Address `json:"address" required:"true"`
	Brand       string  `json:"brand" required:"true"`
	Status      string  `json:"status"`
}

// Validate reports every invalid field. Messages never repeat the card number.
func (n *NewCard) Validate(now time.Time) []FieldError {
	var fields []FieldError
	add := func(f, m string) { fields = append(fields, FieldError{Field: f, Message: m}) }
	text := func(f, v string, max int, required bool) {
		switch {
		case required && strings.TrimSpace(v) == "":
			add(f, "must not be empty")
		case len(v) > max || !utf8.ValidString(v):
			add(f, fmt.Sprintf("must be valid text of at most %d bytes", max))
		}
	}
	text("proxy", n.Proxy, 64, true)
	for _, r := range n.Proxy {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			add("proxy", "must contain only letters, digits, '-' and '_'")
			break
		}
	}
	if !ValidPAN(n.PAN) {
		add("cardNumber", "must be 12 to 19 digits with a valid check digit")
	}
	if n.ExpiryMonth < 1 || n.ExpiryMonth > 12 {
		add("expiryMonth", "must be between 1 and 12")
	}
	if n.ExpiryYear < 2000 || n.ExpiryYear > 2099 {
		add("expiryYear", "must be a four-digit year")
	} else if n.ExpiryMonth >= 1 && n.ExpiryMonth <= 12 &&
		!time.Date(n.ExpiryYear, time.Month(n.ExpiryMonth)+1, 1, 0, 0, 0, 0, time.UTC).After(now) {
		add("expiryYear", "card has expired")
	}
	text("name", n.HolderName, 100, true)
	if !digitsOnly(n.PhoneNumber) || len(n.PhoneNumber) < 10 || len(n.PhoneNumber) > 15 {
		add("phoneNumber", "must be 10 to 15 digits")
	}
	a := n.Address
	text("address.zipCode", a.ZipCode, 16, true)
	text("address.address", a.Address, 200, true)
	text("address.number", a.Number, 20, true)
	text("address.neighborhood", a.Neighborhood, 100, false)
	text("address.complement", a.Complement, 100, false)
	text("address.city", a.City, 100, true)
	text("address.state", a.State, 50, true)
	text("address.country", a.Country, 50, true)
	if a.Country != "" && !googlepay.IsAlpha3(countryAlpha3(a.Country)) {
		add("address.country", "must be Brasil or an ISO 3166-1 alpha-3 code such as BRA")
	}
	if n.Brand != BrandMastercard {
		add("brand", "must be Mastercard")
	}
	if n.Status != "" && !validStatus(n.Status) {
		add("status", "must be one of "+strings.Join(Statuses, ", "))
	}
	return fields
}

func validStatus(s string) bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// ValidPAN reports whether s is 12–19 digits passing the Luhn check.
func ValidPAN(s string) bool { return mastercard.ValidPAN(s) }

func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// WalletTokenJSON is a wallet token as GET /cards-pci/{proxy}/wallet lists it.
type WalletTokenJSON struct {
	TokenUniqueReference string `json:"tokenUniqueReference"`
	Wallet               string `json:"wallet"`
	Status               string `json:"status"`
	CreatedAt            string `json:"createdAt"`
	UpdatedAt            string `json:"updatedAt"`
}

// FieldError names one invalid field and what is wrong with it.
type FieldError = validation.FieldError

// ValidationError lists every invalid field at once; the handler maps it to
// the Bankly 400 that names each field.
type ValidationError = validation.Error

// Errors of the card service. The handler answers each with its Bankly
// code and message (see banklyErrors).
var (
	ErrCardNotFound   = errors.New("card not found")
	ErrCardCreating   = errors.New("the card is in the process of being created")
	ErrCardBlocked    = errors.New("the card is blocked")
	ErrCardCancelled  = errors.New("the card is cancelled")
	ErrNonceReused    = errors.New("nonce was already used with a different request for this card and wallet")
	ErrNotConfigured  = errors.New("wallet provisioning is not configured on this server")
	ErrProxyTaken     = errors.New("the application already has a card with this proxy")
	ErrAmbiguousProxy = errors.New("several applications have a card with this proxy: name the application")
	ErrPANTaken       = errors.New("a card with this card number already exists")
)
