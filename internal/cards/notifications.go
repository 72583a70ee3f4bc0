package cards

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Network notification event types: the token network tells the issuer what
// happened to a wallet token of one of its cards.
const (
	NotifyTokenCreated   = "TOKEN_CREATED"
	NotifyTokenActivated = "TOKEN_ACTIVATED"
	NotifyTokenSuspended = "TOKEN_SUSPENDED"
	NotifyTokenResumed   = "TOKEN_RESUMED"
	NotifyTokenDeleted   = "TOKEN_DELETED"
)

var notifyStatus = map[string]string{
	NotifyTokenCreated:   TokenInactive,
	NotifyTokenActivated: TokenActive,
	NotifyTokenSuspended: TokenSuspended,
	NotifyTokenResumed:   TokenActive,
	NotifyTokenDeleted:   TokenDeleted,
}

// Notification is a token lifecycle notification from the token network. The
// card is identified by its number, as on the network's issuer interface; it
// is used only to find the card by keyed hash and never stored or logged.
type Notification struct {
	NotificationID       string `json:"notificationId" required:"true"`
	EventType            string `json:"eventType" required:"true"`
	Wallet               string `json:"wallet" required:"true"`
	TokenUniqueReference string `json:"tokenUniqueReference" required:"true"`
	AccountNumber        string `json:"accountNumber" required:"true"`
}

// Validate reports every invalid field.
func (n *Notification) Validate() []FieldError {
	var fields []FieldError
	add := func(f, m string) { fields = append(fields, FieldError{Field: f, Message: m}) }
	if strings.TrimSpace(n.NotificationID) == "" || len(n.NotificationID) > 128 {
		add("notificationId", "must be 1 to 128 characters")
	}
	if _, ok := notifyStatus[n.EventType]; !ok {
		add("eventType", "must be one of TOKEN_CREATED, TOKEN_ACTIVATED, TOKEN_SUSPENDED, TOKEN_RESUMED, TOKEN_DELETED")
	}
	if n.Wallet != WalletApplePay && n.Wallet != WalletGooglePay {
		add("wallet", "must be ApplePay or GooglePay")
	}
	if strings.TrimSpace(n.TokenUniqueReference) == "" || len(n.TokenUniqueReference) > 128 {
		add("tokenUniqueReference", "must be 1 to 128 characters")
	}
	if !ValidPAN(n.AccountNumber) {
		add("accountNumber", "must be a valid card number")
	}
	return fields
}

// Errors of Notify: the notification contradicts what Ponte already knows.
var (
	// ErrNotificationConflict means a notification id was reused with other content.
	ErrNotificationConflict = errors.New("notificationId was already used with different content")
	ErrTokenOtherCard       = errors.New("tokenUniqueReference belongs to another card")
	ErrTokenOtherWallet     = errors.New("tokenUniqueReference belongs to another wallet")
	ErrTokenDeleted         = errors.New("the wallet token was deleted")
)

// Notify applies a network notification: the wallet token's status changes and,
// when the card enters or leaves a wallet, CARD_WAS_ADDED_TO_WALLET or
// CARD_WAS_REMOVED_FROM_WALLET is emitted — all in one transaction, once per
// notificationId (a repeated notification is acknowledged and changes nothing).
func (s *Service) Notify(ctx context.Context, n Notification) error {
	if fields := n.Validate(); len(fields) > 0 {
		return &ValidationError{What: "notification", Fields: fields}
	}
	panHash := s.vault.Hash(panHashDomain, []byte(n.AccountNumber))
	fp := sha256.Sum256([]byte(n.EventType + "\x00" + n.Wallet + "\x00" + n.TokenUniqueReference + "\x00" + panHash))
	fingerprint := hex.EncodeToString(fp[:])
	now := s.clock.Now().Truncate(time.Second)
	return s.db.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO network_notifications (notification_id, fingerprint, received_at)
			VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, n.NotificationID, fingerprint, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("cards: record notification: %w", err)
		}
		if fresh, _ := res.RowsAffected(); fresh == 0 {
			var stored string
			if err := tx.QueryRowContext(ctx, `SELECT fingerprint FROM network_notifications WHERE notification_id = $1`,
				n.NotificationID).Scan(&stored); err != nil {
				return err
			}
			if stored != fingerprint {
				return ErrNotificationConflict
			}
			return nil
		}
		var cardID, applicationID, proxy string
		err = tx.QueryRowContext(ctx, `SELECT id, application_id, proxy FROM cards WHERE pan_hash = $1`, panHash).
			Scan(&cardID, &applicationID, &proxy)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrCardNotFound
		}
		if err != nil {
			return fmt.Errorf("cards: find card: %w", err)
		}
		var oldStatus, oldCard, oldWallet string
		readToken := func() error {
			return tx.QueryRowContext(ctx, `SELECT status, card_id, wallet FROM wallet_tokens WHERE token_ref = $1`, n.TokenUniqueReference).
				Scan(&oldStatus, &oldCard, &oldWallet)
		}
		created := false
		err = readToken()
		if errors.Is(err, sql.ErrNoRows) {
			// On PostgreSQL a concurrent notification may be creating the same
			// token: the insert then waits for it and does nothing, and the
			// token, committed by then, is read again and updated below.
			var res sql.Result
			res, err = tx.ExecContext(ctx, `INSERT INTO wallet_tokens (token_ref, card_id, wallet, status, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (token_ref) DO NOTHING`,
				n.TokenUniqueReference, cardID, n.Wallet, notifyStatus[n.EventType], now.UnixMilli())
			var inserted int64
			if err == nil {
				inserted, err = res.RowsAffected()
			}
			if created = inserted == 1; err == nil && !created {
				err = readToken()
			}
		}
		switch {
		case err != nil || created:
		case oldCard != cardID:
			return ErrTokenOtherCard
		case oldWallet != n.Wallet:
			return ErrTokenOtherWallet
		case oldStatus == TokenDeleted:
			return ErrTokenDeleted
		default:
			_, err = tx.ExecContext(ctx, `UPDATE wallet_tokens SET status = $1, updated_at = $2 WHERE token_ref = $3`,
				notifyStatus[n.EventType], now.UnixMilli(), n.TokenUniqueReference)
		}
		if err != nil {
			return fmt.Errorf("cards: update wallet token: %w", err)
		}
		newStatus := notifyStatus[n.EventType]
		name := ""
		switch {
		case newStatus == TokenActive && oldStatus != TokenActive && oldStatus != TokenSuspended:
			name = EventAddedToWallet
		case newStatus == TokenDeleted:
			name = EventRemovedFromWallet
		}
		if name == "" || s.events == nil {
			return nil
		}
		return s.events.EmitCardEvent(ctx, tx, Event{
			ApplicationID: applicationID, Name: name, EntityID: proxy,
			Data: map[string]any{"proxy": proxy, "wallet": n.Wallet, "tokenUniqueReference": n.TokenUniqueReference, "tokenStatus": newStatus},
		})
	})
}

// Tokens lists the wallet tokens of one of the application's cards.
func (s *Service) Tokens(ctx context.Context, applicationID, proxy string) ([]WalletTokenJSON, error) {
	c, err := getCard(ctx, s.db.Read(), applicationID, proxy)
	if err != nil {
		return nil, err
	}
	return listTokens(ctx, s.db.Read(), c.ID)
}

// Sweep deletes wallet payloads past their lifetime.
func (s *Service) Sweep(ctx context.Context) error {
	return s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM wallet_payloads WHERE expires_at <= $1`, s.clock.Now().UnixMilli())
		return err
	})
}
