package cards

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
)

// Scopes of the card routes.
const (
	ScopeTokenCreate = "card.pci.token.create"
	ScopeWalletRead  = "card.pci.wallet.read"
	ScopeAdminRead   = "card.admin.read"
	ScopeAdminWrite  = "card.admin.write"
)

// APIVersionHeader is the version header the seed requires, and its only value.
const (
	APIVersionHeader = "api-version"
	APIVersion       = "1.0"
)

// Network notification authentication: HMAC-SHA256 over "timestamp.body".
const (
	NetworkTimestampHeader = "x-network-timestamp"
	NetworkSignatureHeader = "x-network-signature"
	networkTolerance       = 5 * time.Minute
)

// Handler serves the card routes.
type Handler struct {
	Cards         *Service
	Verifier      httpx.TokenVerifier
	Logger        *slog.Logger
	Clock         clock.Clock
	NetworkSecret []byte // HMAC key of network notifications; empty refuses them all
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	errs := httpx.Bankly{}
	api := func(scope string, fn http.HandlerFunc) http.Handler {
		return httpx.Recover(errs, h.Logger, httpx.RequireScope(h.Verifier, scope, errs, fn))
	}
	mux.Handle("POST /cards-pci/{proxy}/wallet/{wallet}/brand/{brand}", api(ScopeTokenCreate, h.token))
	mux.Handle("GET /cards-pci/{proxy}/wallet", api(ScopeWalletRead, h.tokens))
	mux.Handle("POST /cards-pci/network/notifications", httpx.Recover(errs, h.Logger, http.HandlerFunc(h.notify)))
	mux.Handle("POST /admin/v1/cards", api(ScopeAdminWrite, h.create))
	mux.Handle("GET /admin/v1/cards", api(ScopeAdminRead, h.list))
	mux.Handle("GET /admin/v1/cards/{proxy}", api(ScopeAdminRead, h.get))
	mux.Handle("PATCH /admin/v1/cards/{proxy}", api(ScopeAdminWrite, h.setStatus))
}

// banklyErrors are the service's errors as the Bankly family answers them,
// with seed 001's codes and messages where the seed has them.
var banklyErrors = []struct {
	err error
	out httpx.Error
}{
	{ErrCardNotFound, httpx.Error{Status: http.StatusNotFound, Code: "002", Message: "Card Not Found"}},
	{ErrCardCreating, httpx.Error{Status: http.StatusConflict, Code: "029", Message: "The card is in the process of being created"}},
	{ErrCardBlocked, httpx.Error{Status: http.StatusUnprocessableEntity, Code: "CARD_BLOCKED", Message: "The card is blocked"}},
	{ErrCardCancelled, httpx.Error{Status: http.StatusUnprocessableEntity, Code: "CARD_CANCELLED", Message: "The card is cancelled"}},
	{ErrNonceReused, httpx.Error{Status: http.StatusUnprocessableEntity, Code: "NONCE_ALREADY_USED",
		Message: "nonce was already used with a different request for this card and wallet"}},
	{ErrNotConfigured, httpx.Error{Status: http.StatusServiceUnavailable, Code: "WALLET_NOT_CONFIGURED",
		Message: "wallet provisioning is not configured on this server"}},
	{ErrProxyTaken, httpx.Error{Status: http.StatusConflict, Message: "invalid card",
		Fields: []httpx.FieldError{{Field: "proxy", Message: "is already in use"}}}},
	{ErrPANTaken, httpx.Error{Status: http.StatusConflict, Message: "invalid card",
		Fields: []httpx.FieldError{{Field: "cardNumber", Message: "is already registered"}}}},
	{ErrNotificationConflict, httpx.Error{Status: http.StatusConflict, Message: "notificationId was already used with different content"}},
	{ErrTokenOtherCard, httpx.Error{Status: http.StatusConflict, Message: "tokenUniqueReference belongs to another card"}},
	{ErrTokenOtherWallet, httpx.Error{Status: http.StatusConflict, Message: "tokenUniqueReference belongs to another wallet"}},
	{ErrTokenDeleted, httpx.Error{Status: http.StatusConflict, Message: "the wallet token was deleted"}},
}

// fail answers err from the service in the Bankly shape: a validation error
// lists every field, a known error gets its code, the rest is a logged 500.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var verr *ValidationError
	if errors.As(err, &verr) {
		httpx.Bankly{}.WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: "invalid " + verr.What, Fields: httpFields(verr.Fields)})
		return
	}
	for _, m := range banklyErrors {
		if errors.Is(err, m.err) {
			out := m.out
			httpx.Bankly{}.WriteError(w, r, &out)
			return
		}
	}
	h.Logger.ErrorContext(r.Context(), "card request failed", "route", r.Pattern, "err", err)
	httpx.Bankly{}.WriteError(w, r, httpx.Internal())
}

// httpFields converts the service's field errors for httpx.
func httpFields(fields []FieldError) []httpx.FieldError {
	out := make([]httpx.FieldError, len(fields))
	for i, f := range fields {
		out[i] = httpx.FieldError{Field: f.Field, Message: f.Message}
	}
	return out
}

// token is the seed 001 endpoint.
func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	var fields []httpx.FieldError
	if v := r.Header.Get(APIVersionHeader); v != APIVersion {
		fields = append(fields, httpx.FieldError{Field: APIVersionHeader, Message: "header is required and must be 1.0"})
	}
	wallet, brand := r.PathValue("wallet"), r.PathValue("brand")
	if wallet != WalletApplePay && wallet != WalletGooglePay {
		fields = append(fields, httpx.FieldError{Field: "wallet", Message: "must be GooglePay or ApplePay"})
	}
	if brand != BrandMastercard {
		fields = append(fields, httpx.FieldError{Field: "brand", Message: "must be Mastercard"})
	}
	// Every wallet's body is read (at most httpx.MaxBody, 413 above), so a
	// huge or malformed body is refused the same way whatever the wallet.
	body, herr := httpx.ReadBody(w, r)
	if herr != nil {
		httpx.Bankly{}.WriteError(w, r, herr)
		return
	}
	var apple *AppleRequest
	switch wallet {
	case WalletGooglePay:
		// Seed 001 defines no GooglePay body: none, or a JSON object whose
		// fields (the ApplePay ones included) are ignored like any unknown field.
		if len(bytes.TrimSpace(body)) > 0 {
			if derr := httpx.DecodeObject(body, &struct{}{}); derr != nil {
				fields = append(fields, derr.Fields...)
			}
		}
	case WalletApplePay:
		var in AppleBody
		if len(strings.TrimSpace(string(body))) == 0 {
			body = []byte("{}") // ApplePay requires the body: report each missing field
		}
		if derr := httpx.DecodeObject(body, &in); derr != nil {
			// Still check the fields that did decode, so every problem is named at once.
			_, vf := h.Cards.ValidateApple(in)
			fields = append(fields, derr.Merge(httpFields(vf)).Fields...)
		} else {
			var vf []FieldError
			apple, vf = h.Cards.ValidateApple(in)
			fields = append(fields, httpFields(vf)...)
		}
	}
	if len(fields) > 0 {
		httpx.Bankly{}.WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: "invalid request", Fields: fields})
		return
	}
	body, err := h.Cards.WalletToken(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, r.PathValue("proxy"), wallet, apple)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteRawJSON(w, http.StatusOK, body)
}

func (h *Handler) tokens(w http.ResponseWriter, r *http.Request) {
	list, err := h.Cards.Tokens(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, r.PathValue("proxy"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, r, http.StatusOK, map[string]any{"data": list})
}

// notify receives the token network's lifecycle notifications, authenticated
// with an HMAC over the timestamp and the exact body.
func (h *Handler) notify(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		httpx.Bankly{}.WriteError(w, r, &httpx.Error{Status: http.StatusRequestEntityTooLarge, Message: "notification too large"})
		return
	}
	if !h.authenticNotification(r, body) {
		httpx.Bankly{}.WriteError(w, r, &httpx.Error{Status: http.StatusUnauthorized, Message: "invalid notification signature"})
		return
	}
	var n Notification
	if herr := httpx.DecodeObject(body, &n); herr != nil {
		httpx.Bankly{}.WriteError(w, r, herr.Merge(httpFields(n.Validate())))
		return
	}
	if err := h.Cards.Notify(r.Context(), n); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) authenticNotification(r *http.Request, body []byte) bool {
	if len(h.NetworkSecret) == 0 {
		return false
	}
	ts := r.Header.Get(NetworkTimestampHeader)
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if d := h.Clock.Now().Sub(time.Unix(secs, 0)); d > networkTolerance || d < -networkTolerance {
		return false
	}
	sig, ok := strings.CutPrefix(r.Header.Get(NetworkSignatureHeader), "v1,")
	if !ok {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, SignNotification(h.NetworkSecret, ts, body))
}

// SignNotification computes the notification MAC: HMAC-SHA256(secret, timestamp + "." + body).
func SignNotification(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	body, herr := httpx.ReadBody(w, r)
	if herr != nil {
		httpx.Bankly{}.WriteError(w, r, herr)
		return
	}
	var in NewCard
	if herr := httpx.DecodeObject(body, &in); herr != nil {
		httpx.Bankly{}.WriteError(w, r, herr.Merge(httpFields(in.Validate(h.Clock.Now()))))
		return
	}
	c, err := h.Cards.Create(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, r, http.StatusCreated, c.JSON())
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	list, err := h.Cards.List(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]CardJSON, 0, len(list))
	for _, c := range list {
		out = append(out, c.JSON())
	}
	httpx.WriteJSON(w, r, http.StatusOK, map[string]any{"data": out})
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	c, err := h.Cards.Get(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, r.PathValue("proxy"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, r, http.StatusOK, c.JSON())
}

func (h *Handler) setStatus(w http.ResponseWriter, r *http.Request) {
	body, herr := httpx.ReadBody(w, r)
	if herr != nil {
		httpx.Bankly{}.WriteError(w, r, herr)
		return
	}
	var in struct {
		Status string `json:"status" required:"true"`
	}
	if herr := httpx.DecodeObject(body, &in); herr != nil {
		httpx.Bankly{}.WriteError(w, r, herr)
		return
	}
	c, err := h.Cards.SetStatus(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, r.PathValue("proxy"), in.Status)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, r, http.StatusOK, c.JSON())
}
