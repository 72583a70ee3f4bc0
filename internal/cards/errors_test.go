package cards

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/vault"
)

// TestFailAnswersBankly pins the Bankly answer of every service error, byte
// for byte: seed 001's codes and messages, one entry per invalid field,
// wrapped errors found, anything else a 500 that says nothing.
func TestFailAnswersBankly(t *testing.T) {
	t.Parallel()
	h := &Handler{Logger: slog.New(slog.DiscardHandler)}
	cases := []struct {
		err    error
		status int
		body   string
	}{
		{ErrCardNotFound, 404, `{"errors":[{"code":"002","message":"Card Not Found"}]}`},
		{fmt.Errorf("cards: store wallet payload: %w", ErrCardNotFound), 404, `{"errors":[{"code":"002","message":"Card Not Found"}]}`},
		{ErrCardCreating, 409, `{"errors":[{"code":"029","message":"The card is in the process of being created"}]}`},
		{ErrCardBlocked, 422, `{"errors":[{"code":"CARD_BLOCKED","message":"The card is blocked"}]}`},
		{ErrCardCancelled, 422, `{"errors":[{"code":"CARD_CANCELLED","message":"The card is cancelled"}]}`},
		{fmt.Errorf("cards: store wallet payload: %w", ErrNonceReused), 422,
			`{"errors":[{"code":"NONCE_ALREADY_USED","message":"nonce was already used with a different request for this card and wallet"}]}`},
		{ErrNotConfigured, 503, `{"errors":[{"code":"WALLET_NOT_CONFIGURED","message":"wallet provisioning is not configured on this server"}]}`},
		{ErrProxyTaken, 409, `{"errors":[{"code":"CONFLICT","message":"proxy is already in use","propertyName":"proxy"}]}`},
		{ErrPANTaken, 409, `{"errors":[{"code":"CONFLICT","message":"cardNumber is already registered","propertyName":"cardNumber"}]}`},
		{ErrNotificationConflict, 409, `{"errors":[{"code":"CONFLICT","message":"notificationId was already used with different content"}]}`},
		{ErrTokenOtherCard, 409, `{"errors":[{"code":"CONFLICT","message":"tokenUniqueReference belongs to another card"}]}`},
		{ErrTokenOtherWallet, 409, `{"errors":[{"code":"CONFLICT","message":"tokenUniqueReference belongs to another wallet"}]}`},
		{ErrTokenDeleted, 409, `{"errors":[{"code":"CONFLICT","message":"the wallet token was deleted"}]}`},
		{&ValidationError{What: "card", Fields: []FieldError{{Field: "proxy", Message: "must not be empty"}, {Field: "brand", Message: "must be Mastercard"}}}, 400,
			`{"errors":[{"code":"INVALID_PARAMETER","message":"proxy must not be empty","propertyName":"proxy"},` +
				`{"code":"INVALID_PARAMETER","message":"brand must be Mastercard","propertyName":"brand"}]}`},
		{ErrAmbiguousProxy, 500, `{"errors":[{"code":"INTERNAL_SERVER_ERROR","message":"Internal server error"}]}`},
		{errors.New("connection reset"), 500, `{"errors":[{"code":"INTERNAL_SERVER_ERROR","message":"Internal server error"}]}`},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		h.fail(rec, httptest.NewRequest("GET", "/cards-pci/x/wallet", nil), tc.err)
		if rec.Code != tc.status || rec.Body.String() != tc.body {
			t.Errorf("%v: %d %s\nwant %d %s", tc.err, rec.Code, rec.Body, tc.status, tc.body)
		}
	}
}

// TestServiceErrorsAreDomainErrors: the service says what went wrong in its
// own terms, every invalid field at once; the HTTP status is the handler's.
func TestServiceErrorsAreDomainErrors(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		c := clock.NewFake(time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC))
		app, _, err := auth.NewApplications(db, c).Create(ctx, auth.NewApplication{Name: "Demo", CompanyKey: "DEMO", Scopes: []string{"card.admin.read"}})
		if err != nil {
			t.Fatal(err)
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			t.Fatal(err)
		}
		v, err := vault.New(key)
		if err != nil {
			t.Fatal(err)
		}
		s := NewService(db, c, v, Wallets{}, nil, nil)
		var verr *ValidationError
		_, err = s.Create(ctx, app.ID, NewCard{Proxy: "bad proxy!", PAN: "1234", Brand: "Visa"})
		if !errors.As(err, &verr) || verr.What != "card" || len(verr.Fields) < 4 {
			t.Errorf("invalid card: %v, want a ValidationError naming every field", err)
		}
		if _, err := s.SetStatus(ctx, app.ID, "nope", "FROZEN"); !errors.As(err, &verr) || verr.What != "status" || verr.Fields[0].Field != "status" {
			t.Errorf("invalid status: %v, want a ValidationError naming status", err)
		}
		if _, err := s.SetStatus(ctx, app.ID, "nope", StatusActive); !errors.Is(err, ErrCardNotFound) {
			t.Errorf("unknown card: %v, want ErrCardNotFound", err)
		}
		if _, err := s.WalletToken(ctx, app.ID, "nope", WalletGooglePay, nil); !errors.Is(err, ErrNotConfigured) {
			t.Errorf("no wallet keys: %v, want ErrNotConfigured", err)
		}
		if err := s.Notify(ctx, Notification{}); !errors.As(err, &verr) || verr.What != "notification" || len(verr.Fields) != 5 {
			t.Errorf("empty notification: %v, want a ValidationError naming its 5 fields", err)
		}
	})
}
