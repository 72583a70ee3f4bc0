package cards

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/cards/applepay"
	"github.com/ponte-ofb/ponte/internal/cards/googlepay"
	"github.com/ponte-ofb/ponte/internal/cards/mastercard"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/vault"
)

// PayloadTTL is how long a generated wallet payload is replayed for the same
// card, wallet and nonce: the lifetime of its activation data.
const PayloadTTL = 30 * time.Minute

// Event is a card lifecycle event for partners' webhooks. Data holds ids and
// statuses only, never card data.
type Event struct {
	ApplicationID string
	Name          string // CARD_WAS_ADDED_TO_WALLET, CARD_WAS_REMOVED_FROM_WALLET
	EntityID      string // the card proxy
	Data          map[string]any
}

// Card events (seed 001).
const (
	EventAddedToWallet     = "CARD_WAS_ADDED_TO_WALLET"
	EventRemovedFromWallet = "CARD_WAS_REMOVED_FROM_WALLET"
)

// EventEmitter records an event in the caller's transaction for delivery.
type EventEmitter interface {
	EmitCardEvent(ctx context.Context, tx *sql.Tx, e Event) error
}

// Wallets holds the keys and trust anchors of wallet provisioning. A nil
// member means that wallet is not configured: its requests get a 503.
type Wallets struct {
	Apple  *applepay.Verifier
	TAV    *mastercard.TAVSigner
	Google *googlepay.Encryptor
}

// Service is the card vault and wallet token service.
type Service struct {
	db      *store.DB
	clock   clock.Clock
	vault   *vault.Vault
	wallets Wallets
	events  EventEmitter
	logger  *slog.Logger
}

// NewService returns the card service.
func NewService(db *store.DB, c clock.Clock, v *vault.Vault, w Wallets, events EventEmitter, logger *slog.Logger) *Service {
	return &Service{db: db, clock: c, vault: v, wallets: w, events: events, logger: logger}
}

func panContext(cardID string) string { return "card-pan:" + cardID }

const panHashDomain = "card-pan"

// Create registers a card for an application, sealing its number.
func (s *Service) Create(ctx context.Context, applicationID string, n NewCard) (*Card, error) {
	now := s.clock.Now().Truncate(time.Second)
	if fields := n.Validate(now); len(fields) > 0 {
		return nil, &ValidationError{What: "card", Fields: fields}
	}
	if n.Status == "" {
		n.Status = StatusCreating
	}
	c := &Card{
		ID: uuid.NewString(), ApplicationID: applicationID, Proxy: n.Proxy, LastFour: n.PAN[len(n.PAN)-4:],
		ExpiryMonth: n.ExpiryMonth, ExpiryYear: n.ExpiryYear, HolderName: strings.TrimSpace(n.HolderName),
		PhoneNumber: n.PhoneNumber, Address: n.Address, Brand: n.Brand, Status: n.Status, CreatedAt: now, UpdatedAt: now,
	}
	sealed, err := s.vault.Seal([]byte(n.PAN), panContext(c.ID))
	if err != nil {
		return nil, err
	}
	hash := s.vault.Hash(panHashDomain, []byte(n.PAN))
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM cards WHERE application_id = $1 AND proxy = $2`, c.ApplicationID, c.Proxy).Scan(&exists)
		if err != nil {
			return err
		}
		if exists > 0 {
			return ErrProxyTaken
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM cards WHERE pan_hash = $1`, hash).Scan(&exists); err != nil {
			return err
		}
		if exists > 0 {
			return ErrPANTaken
		}
		return insertCard(ctx, tx, c, sealed, hash)
	})
	if store.IsUniqueViolation(err) {
		// A concurrent create won the race; say which field collided without echoing it.
		if _, gerr := getCard(ctx, s.db.Read(), c.ApplicationID, c.Proxy); gerr == nil {
			return nil, ErrProxyTaken
		}
		return nil, ErrPANTaken
	}
	if err != nil {
		return nil, fmt.Errorf("cards: create: %w", err)
	}
	return c, nil
}

// List returns an application's cards ("" for every application).
func (s *Service) List(ctx context.Context, applicationID string) ([]*Card, error) {
	return listCards(ctx, s.db.Read(), applicationID)
}

// Get returns one of an application's cards ("" for any application).
func (s *Service) Get(ctx context.Context, applicationID, proxy string) (*Card, error) {
	return getCard(ctx, s.db.Read(), applicationID, proxy)
}

// SetStatus changes a card's status.
func (s *Service) SetStatus(ctx context.Context, applicationID, proxy, status string) (*Card, error) {
	if !validStatus(status) {
		return nil, &ValidationError{What: "status",
			Fields: []FieldError{{Field: "status", Message: "must be one of " + strings.Join(Statuses, ", ")}}}
	}
	var c *Card
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		var err error
		if c, err = getCard(ctx, tx, applicationID, proxy); err != nil {
			return err
		}
		c.Status, c.UpdatedAt = status, s.clock.Now().Truncate(time.Second)
		_, err = tx.ExecContext(ctx, `UPDATE cards SET status = $1, updated_at = $2 WHERE id = $3`, status, c.UpdatedAt.UnixMilli(), c.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AppleRequest is the Apple Pay body of the token endpoint, validated.
type AppleRequest struct {
	Nonce          string // lowercase hex
	NonceSignature string // lowercase hex
	Certificate    string // PEM as received
	chain          []*x509.Certificate
	leafKey        *ecdh.PublicKey
}

// TokenResponse is the seed's 200 body.
type TokenResponse struct {
	Data           string  `json:"data"`
	LastFourDigits string  `json:"lastFourDigits"`
	PhoneNumber    string  `json:"phoneNumber"`
	Address        Address `json:"address"`
}

// WalletToken builds the wallet payload for one of the application's cards.
// The same card, wallet and nonce within PayloadTTL get the same payload back;
// the same nonce with another request is refused.
func (s *Service) WalletToken(ctx context.Context, applicationID, proxy, wallet string, apple *AppleRequest) ([]byte, error) {
	if s.wallets.TAV == nil || (wallet == WalletApplePay && s.wallets.Apple == nil) || (wallet == WalletGooglePay && s.wallets.Google == nil) {
		return nil, ErrNotConfigured
	}
	card, err := getCard(ctx, s.db.Read(), applicationID, proxy)
	if err != nil {
		return nil, err
	}
	switch card.Status {
	case StatusCreating:
		return nil, ErrCardCreating
	case StatusBlocked:
		return nil, ErrCardBlocked
	case StatusCancelled:
		return nil, ErrCardCancelled
	}
	nonce, fp := "", fingerprint(wallet, apple)
	if apple != nil {
		nonce = apple.Nonce
	}
	now := s.clock.Now()
	if body, err := s.storedPayload(ctx, s.db.Read(), card.ID, wallet, nonce, fp, now); body != nil || err != nil {
		return body, err
	}
	body, err := s.buildPayload(ctx, card, wallet, apple, now)
	if err != nil {
		return nil, err
	}
	sealed, err := s.vault.Seal(body, payloadContext(card.ID, wallet, nonce))
	if err != nil {
		return nil, err
	}
	var out []byte
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		// Another request may have stored a payload meanwhile: it wins, so
		// concurrent retries all hand the app one payload.
		stored, err := s.storedPayload(ctx, tx, card.ID, wallet, nonce, fp, now)
		if stored != nil || err != nil {
			out = stored
			return err
		}
		// Only an expired payload is replaced.
		if _, err := tx.ExecContext(ctx, `DELETE FROM wallet_payloads WHERE card_id = $1 AND wallet = $2 AND nonce = $3 AND expires_at <= $4`,
			card.ID, wallet, nonce, now.UnixMilli()); err != nil {
			return err
		}
		// On PostgreSQL a concurrent request's payload may still be uncommitted
		// when read above: the insert then waits for it and does nothing, and
		// that payload, committed by then, is read back and wins.
		res, err := tx.ExecContext(ctx, `INSERT INTO wallet_payloads (card_id, wallet, nonce, fingerprint, response, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (card_id, wallet, nonce) DO NOTHING`,
			card.ID, wallet, nonce, fp, sealed, now.UnixMilli(), now.Add(PayloadTTL).UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			out = body
			return err
		}
		if out, err = s.storedPayload(ctx, tx, card.ID, wallet, nonce, fp, now); err == nil && out == nil {
			err = errors.New("concurrent wallet payload not found")
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cards: store wallet payload: %w", err)
	}
	return out, nil
}

func payloadContext(cardID, wallet, nonce string) string {
	return "wallet-payload:" + cardID + ":" + wallet + ":" + nonce
}

func (s *Service) storedPayload(ctx context.Context, q querier, cardID, wallet, nonce, fp string, now time.Time) ([]byte, error) {
	var stored, sealed string
	var expires int64
	err := q.QueryRowContext(ctx, `SELECT fingerprint, response, expires_at FROM wallet_payloads
		WHERE card_id = $1 AND wallet = $2 AND nonce = $3`, cardID, wallet, nonce).Scan(&stored, &sealed, &expires)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && expires <= now.UnixMilli()) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cards: read wallet payload: %w", err)
	}
	if stored != fp {
		return nil, ErrNonceReused
	}
	body, err := s.vault.Open(sealed, payloadContext(cardID, wallet, nonce))
	if err != nil {
		return nil, fmt.Errorf("cards: open wallet payload: %w", err)
	}
	return body, nil
}

func fingerprint(wallet string, apple *AppleRequest) string {
	h := sha256.New()
	h.Write([]byte(wallet))
	if apple != nil {
		for _, p := range []string{apple.Nonce, apple.NonceSignature} {
			h.Write([]byte{0})
			h.Write([]byte(p))
		}
		// The certificates as parsed, not as typed: the same chain re-sent
		// with other whitespace or line endings is the same request.
		for _, c := range apple.chain {
			h.Write([]byte{0})
			h.Write(c.Raw)
		}
		if apple.chain == nil {
			h.Write([]byte{0})
			h.Write([]byte(apple.Certificate))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// AppleBody is the Apple Pay request body (seed 001).
type AppleBody struct {
	Nonce            string `json:"nonce" required:"true"`
	NonceSignature   string `json:"nonceSignature" required:"true"`
	AppleCertificate string `json:"appleCertificate" required:"true"`
}

// ValidateApple checks the Apple Pay body: hex nonce and signature, and a
// certificate chain that verifies to the configured trust root with a P-256
// leaf. Every problem is reported, each naming its field.
func (s *Service) ValidateApple(b AppleBody) (*AppleRequest, []FieldError) {
	var fields []FieldError
	hexField := func(name, v string) string {
		v = strings.TrimSpace(v)
		if _, err := hex.DecodeString(v); err != nil || v == "" || len(v) > 4096 {
			fields = append(fields, FieldError{Field: name, Message: "must be a non-empty hexadecimal string"})
		}
		return strings.ToLower(v)
	}
	req := &AppleRequest{Nonce: hexField("nonce", b.Nonce), NonceSignature: hexField("nonceSignature", b.NonceSignature), Certificate: b.AppleCertificate}
	if s.wallets.Apple == nil {
		return req, fields // reported as 503 by WalletToken
	}
	chain, err := applepay.ParseCertificates(b.AppleCertificate)
	if err == nil {
		req.chain = chain
		req.leafKey, err = s.wallets.Apple.Verify(chain)
	}
	if err != nil {
		fields = append(fields, FieldError{Field: "appleCertificate", Message: certificateMessage(err)})
	}
	return req, fields
}

// certificateMessage turns a verification error into a client message that
// says what is wrong without internals.
func certificateMessage(err error) string {
	switch {
	case errors.Is(err, applepay.ErrExpired):
		return "certificate is expired or not yet valid"
	case errors.Is(err, applepay.ErrWrongCurve):
		return "leaf certificate key must be ECDSA P-256"
	case errors.Is(err, applepay.ErrKeyUsage):
		return "leaf certificate must allow key agreement"
	case errors.Is(err, applepay.ErrUntrusted):
		return "certificate chain is not trusted"
	}
	return "must be PEM-encoded X.509 certificates, leaf first"
}

// buildPayload opens the card number and encrypts it for the wallet. The
// number lives in this function's memory only.
func (s *Service) buildPayload(ctx context.Context, card *Card, wallet string, apple *AppleRequest, now time.Time) ([]byte, error) {
	var sealed string
	if err := s.db.Read().QueryRowContext(ctx, `SELECT pan_sealed FROM cards WHERE id = $1`, card.ID).Scan(&sealed); err != nil {
		return nil, fmt.Errorf("cards: read sealed card number: %w", err)
	}
	panBytes, err := s.vault.Open(sealed, panContext(card.ID))
	if err != nil {
		return nil, fmt.Errorf("cards: open card number: %w", err)
	}
	pan := string(panBytes)
	mm, yy := fmt.Sprintf("%02d", card.ExpiryMonth), fmt.Sprintf("%02d", card.ExpiryYear%100)
	tav, err := s.wallets.TAV.Sign(now, pan, mm+yy)
	if err != nil {
		return nil, fmt.Errorf("cards: activation data: %w", err)
	}
	var data string
	switch wallet {
	case WalletApplePay:
		data, err = applepay.BuildData(rand.Reader, apple.leafKey, applepay.PassData{
			PrimaryAccountNumber: pan, Expiration: mm + "/" + yy, Name: card.HolderName,
			Nonce: apple.Nonce, NonceSignature: apple.NonceSignature,
		}, tav)
	case WalletGooglePay:
		a := card.Address
		line1 := strings.TrimSpace(a.Address + ", " + a.Number)
		line2 := strings.TrimSpace(strings.Trim(a.Complement+" - "+a.Neighborhood, " -"))
		data, err = s.wallets.Google.OPC(rand.Reader, now,
			googlepay.CardAccountData{AccountNumber: pan, ExpiryMonth: mm, ExpiryYear: yy},
			googlepay.AccountHolderData{
				Name: card.HolderName,
				BillingAddress: googlepay.BillingAddress{Line1: line1, Line2: line2, City: a.City,
					CountrySubdivision: a.State, PostalCode: a.ZipCode, Country: countryAlpha3(a.Country)},
				MobilePhone: googlepay.MobilePhone{CountryDialInCode: "55", PhoneNumber: card.PhoneNumber},
			}, tav)
	default:
		return nil, fmt.Errorf("cards: unknown wallet %q", wallet)
	}
	if err != nil {
		return nil, fmt.Errorf("cards: build %s payload: %w", wallet, err)
	}
	return json.Marshal(TokenResponse{Data: data, LastFourDigits: card.LastFour, PhoneNumber: card.PhoneNumber, Address: card.Address})
}

// countryAlpha3 maps the stored country to the ISO 3166-1 alpha-3 code MDES
// expects. Cards are Brazilian, so the names a Brazilian issuer stores for
// Brazil map to BRA; a value that is already alpha-3 passes through. Anything
// else is returned as is and refused by the OPC encoder.
func countryAlpha3(country string) string {
	switch strings.ToUpper(strings.TrimSpace(country)) {
	case "BRASIL", "BRAZIL", "BR", "BRA":
		return "BRA"
	}
	return strings.ToUpper(strings.TrimSpace(country))
}

// Sandbox cards: Apple's published sandbox Mastercard numbers, one card ready
// for wallets and one still being created, so both outcomes can be tried.
var sandboxCards = []NewCard{
	{Proxy: "sandbox-card-active", PAN: "5204247750001471", Status: StatusActive},
	{Proxy: "sandbox-card-creating", PAN: "5204247750001505", Status: StatusCreating},
}

// EnsureSandboxCards creates the sandbox cards for the demo application once.
func (s *Service) EnsureSandboxCards(ctx context.Context, applicationID string) ([]*Card, error) {
	year := s.clock.Now().Year() + 4
	var out []*Card
	for _, sc := range sandboxCards {
		if c, err := getCard(ctx, s.db.Read(), applicationID, sc.Proxy); err == nil {
			out = append(out, c)
			continue
		}
		n := sc
		n.ExpiryMonth, n.ExpiryYear, n.HolderName, n.PhoneNumber, n.Brand = 12, year, "MARIA DA SILVA", "23415162342", BrandMastercard
		n.Address = Address{ZipCode: "05402100", Address: "Rua 6 de Março", Number: "2500", Neighborhood: "Alter do Chão",
			City: "Santarém", State: "PA", Country: "Brasil"}
		c, err := s.Create(ctx, applicationID, n)
		if errors.Is(err, ErrProxyTaken) || errors.Is(err, ErrPANTaken) {
			// Another instance starting on the same database created it first
			// (its insert may trip the card-number index before the proxy's).
			c, err = getCard(ctx, s.db.Read(), applicationID, sc.Proxy)
		}
		if err != nil {
			return nil, fmt.Errorf("cards: sandbox card %s: %w", sc.Proxy, err)
		}
		out = append(out, c)
	}
	return out, nil
}
