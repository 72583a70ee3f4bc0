package itpflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/ofb"
)

// Routes of the Brick payment-initiation endpoints (seed 002, initiator side).
const (
	RouteBrickConsents = "POST /api/admin/payment-initiation/v1/consents"
	RouteBrickCallback = "POST /api/admin/payment-initiation/v1/consents/callback"
	RouteBrickConsent  = "GET /api/admin/payment-initiation/v1/consents/{consentId}"
	// PaymentConsentsPath is the Payments v4 consents collection at a brand.
	PaymentConsentsPath = "/open-banking/payments/v4/consents"
)

// ScopePaymentsAdmin lets a partner initiate payments through Ponte.
const ScopePaymentsAdmin = "payments.admin"

// SpecVersions the Brick endpoint accepts: the Payments API version of the
// consent created at the brand.
var SpecVersions = []string{"v4"}

// BrickConsentRequest is the seed's body of POST …/payment-initiation/v1/consents.
type BrickConsentRequest struct {
	// Data is the Payments v4 consent's data object, sent to the brand as is.
	Data        json.RawMessage `json:"data" required:"true"`
	Device      *ofb.Device     `json:"device" required:"true"`
	SpecVersion string          `json:"specVersion" required:"true"`
	BrandID     string          `json:"brandId" required:"true"`
	// RedirectURI is where the brand returns the user (code, id_token,
	// state): one of the application's registered redirect URLs; empty
	// means the first of them. Not in the seed: Ponte's addition for
	// partners with several apps.
	RedirectURI string `json:"redirectUri"`
	// PaymentOptions go into the payment Ponte creates once the user
	// authorises: what the consent does not carry. Ponte's addition.
	PaymentOptions *PaymentOptions `json:"paymentOptions"`
}

var txidPattern = regexp.MustCompile(`^[a-zA-Z0-9]{1,35}$`)

// Validate reports every invalid field.
func (in *BrickConsentRequest) Validate() []httpx.FieldError {
	var out []httpx.FieldError
	if o := in.PaymentOptions; o != nil {
		if utf8.RuneCountInString(o.RemittanceInformation) > 140 {
			out = append(out, httpx.FieldError{Field: "paymentOptions.remittanceInformation", Message: "must be at most 140 characters"})
		}
		if o.TransactionIdentification != "" && !txidPattern.MatchString(o.TransactionIdentification) {
			out = append(out, httpx.FieldError{Field: "paymentOptions.transactionIdentification", Message: "must be 1 to 35 letters or digits"})
		}
	}
	if in.SpecVersion != "" && !slices.Contains(SpecVersions, in.SpecVersion) {
		out = append(out, httpx.FieldError{Field: "specVersion", Message: "must be v4"})
	}
	if len(in.BrandID) > 64 {
		out = append(out, httpx.FieldError{Field: "brandId", Message: "must be at most 64 characters"})
	}
	if len(in.Data) > 0 {
		var data struct {
			LoggedUser *struct {
				Document *struct {
					Identification string `json:"identification"`
				} `json:"document"`
			} `json:"loggedUser"`
		}
		if json.Unmarshal(in.Data, &data) != nil {
			out = append(out, httpx.FieldError{Field: "data", Message: "must be an object"})
		} else if data.LoggedUser == nil || data.LoggedUser.Document == nil || ofb.ValidateDocument(data.LoggedUser.Document.Identification) != nil {
			out = append(out, httpx.FieldError{Field: "data.loggedUser.document.identification", Message: "must be the user's CPF or CNPJ with valid check digits"})
		}
	}
	if in.Device != nil {
		for _, p := range in.Device.Validate("device") {
			out = append(out, httpx.FieldError{Field: p.Field, Message: p.Message})
		}
	}
	return out
}

// BrickCallbackRequest is the seed's body of POST …/consents/callback: the
// hybrid-flow response the partner's app received, and the device.
type BrickCallbackRequest struct {
	Code             string      `json:"code"`
	IDToken          string      `json:"id_token"`
	State            string      `json:"state" required:"true"`
	Error            string      `json:"error"`
	ErrorDescription string      `json:"error_description"`
	Device           *ofb.Device `json:"device" required:"true"`
}

// Validate reports every invalid field.
func (in *BrickCallbackRequest) Validate() []httpx.FieldError {
	var out []httpx.FieldError
	if in.Error == "" && (in.Code == "" || in.IDToken == "") {
		out = append(out, httpx.FieldError{Field: "code", Message: "code and id_token are required unless error is given"})
	}
	for _, f := range []struct{ name, v string }{{"code", in.Code}, {"id_token", in.IDToken}, {"state", in.State}, {"error", in.Error}, {"error_description", in.ErrorDescription}} {
		if len(f.v) > 16384 {
			out = append(out, httpx.FieldError{Field: f.name, Message: "is too long"})
		}
	}
	if in.Device != nil {
		for _, p := range in.Device.Validate("device") {
			out = append(out, httpx.FieldError{Field: p.Field, Message: p.Message})
		}
	}
	return out
}

// BrickConsent is the answer of both Brick endpoints.
type BrickConsent struct {
	Data BrickConsentData `json:"data"`
	Meta struct {
		RequestDateTime string `json:"requestDateTime"`
	} `json:"meta"`
}

// BrickConsentData describes the consent at the brand and Ponte's flow.
type BrickConsentData struct {
	ConsentID string `json:"consentId"`
	// Status is the consent's status at the brand.
	Status  string `json:"status"`
	BrandID string `json:"brandId"`
	// AuthorizationURL is where to send the user (consent creation only).
	AuthorizationURL string `json:"authorizationUrl,omitempty"`
	RedirectURI      string `json:"redirectUri"`
	// FlowStatus is Ponte's view of the redirect flow: PENDING, AUTHORISED,
	// REJECTED or FAILED.
	FlowStatus string `json:"flowStatus"`
	// Error is the brand's OAuth error or Ponte's reason, when not authorised.
	Error     string `json:"error,omitempty"`
	CreatedAt string `json:"createdAt"`
	// Payments are the Pix payments Ponte initiated at the brand once the
	// user authorised the consent: one per settlement date.
	Payments []BrickPayment `json:"payments,omitempty"`
}

// BrickPayment is a payment Ponte initiated under the consent, with the
// brand's id and status (Payments v4 names).
type BrickPayment struct {
	// PaymentID is the brand's paymentId (absent until the brand accepted it).
	PaymentID  string `json:"paymentId,omitempty"`
	EndToEndID string `json:"endToEndId"`
	// Status is PENDING until the brand answers, then the brand's status
	// (RCVD, ACCP, ACPD, ACSC, RJCT, CANC, PDNG, SCHD); FAILED when Ponte
	// could not initiate it (see error).
	Status          string           `json:"status"`
	RejectionReason *RejectionReason `json:"rejectionReason,omitempty"`
	Error           string           `json:"error,omitempty"`
	// CreationDateTime and StatusUpdateDateTime are Ponte's records.
	CreationDateTime     string `json:"creationDateTime"`
	StatusUpdateDateTime string `json:"statusUpdateDateTime"`
}

// RejectionReason is the brand's reason for a rejected payment (or its
// error code when it refused the request outright).
type RejectionReason struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func rejection(p *Payment) *RejectionReason {
	if p.RejectionCode == "" && p.RejectionDetail == "" {
		return nil
	}
	return &RejectionReason{Code: p.RejectionCode, Detail: p.RejectionDetail}
}

func brickPayments(list []*Payment) []BrickPayment {
	out := make([]BrickPayment, len(list))
	for i, p := range list {
		out[i] = BrickPayment{PaymentID: p.PaymentID, EndToEndID: p.EndToEndID, Status: p.Status, RejectionReason: rejection(p),
			Error: p.Error, CreationDateTime: p.CreatedAt.Format(time.RFC3339), StatusUpdateDateTime: p.UpdatedAt.Format(time.RFC3339)}
	}
	return out
}

func options(o *PaymentOptions) PaymentOptions {
	if o == nil {
		return PaymentOptions{}
	}
	return *o
}

// RedirectURLs gives an application's registered redirect URLs.
type RedirectURLs func(ctx context.Context, applicationID string) ([]string, error)

// BrickHandler serves the Brick payment-initiation endpoints.
type BrickHandler struct {
	Flow      *Flow
	Verifier  httpx.TokenVerifier
	Redirects RedirectURLs
	Logger    *slog.Logger
	// InFlightWait overrides InFlightWait (tests).
	InFlightWait time.Duration
}

func (h *BrickHandler) errs() httpx.OpenFinance { return httpx.OpenFinance{Now: h.Flow.Clock.Now} }

// Register adds the routes to mux.
func (h *BrickHandler) Register(mux *http.ServeMux) {
	errs := h.errs()
	mux.Handle(RouteBrickConsents, httpx.Recover(errs, h.Logger, httpx.RequireScope(h.Verifier, ScopePaymentsAdmin, errs, http.HandlerFunc(h.create))))
	mux.Handle(RouteBrickCallback, httpx.Recover(errs, h.Logger, httpx.RequireScope(h.Verifier, ScopePaymentsAdmin, errs, http.HandlerFunc(h.callback))))
	mux.Handle(RouteBrickConsent, httpx.Recover(errs, h.Logger, httpx.RequireScope(h.Verifier, ScopePaymentsAdmin, errs, http.HandlerFunc(h.read))))
}

// read answers a consent Ponte initiated for the application: the flow's
// status and the payments made under it.
func (h *BrickHandler) read(w http.ResponseWriter, r *http.Request) {
	a, err := h.Flow.Authorization(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, r.PathValue("consentId"))
	if err == nil && a.Kind != KindPaymentInitiation {
		err = ErrNotFound
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusNotFound, Code: "CONSENTIMENTO_NAO_ENCONTRADO",
			Message: "no consent with this id was initiated for this application"})
		return
	default:
		h.Logger.ErrorContext(r.Context(), "brick consent read", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	out, err := h.answerWithPayments(r.Context(), a, a.ConsentStatus)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "brick consent read: payments", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	httpx.WriteJSON(w, r, http.StatusOK, out)
}

// answerWithPayments is answer with the consent's payments, when Ponte
// initiates payments.
func (h *BrickHandler) answerWithPayments(ctx context.Context, a *Authorization, consentStatus string) (BrickConsent, error) {
	out := h.answer(a, consentStatus)
	if h.Flow.Payments == nil {
		return out, nil
	}
	list, err := h.Flow.Payments.ConsentPayments(ctx, a.ID)
	if err != nil {
		return out, err
	}
	out.Data.Payments = brickPayments(list)
	return out, nil
}

func (h *BrickHandler) decode(w http.ResponseWriter, r *http.Request, dst any, validate func() []httpx.FieldError) bool {
	body, herr := httpx.ReadBody(w, r)
	if herr != nil {
		h.errs().WriteError(w, r, herr)
		return false
	}
	if herr := httpx.DecodeObject(body, dst); herr != nil {
		h.errs().WriteError(w, r, herr.Merge(validate()))
		return false
	}
	if fields := validate(); len(fields) > 0 {
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: "invalid request body", Fields: fields})
		return false
	}
	return true
}

func (h *BrickHandler) create(w http.ResponseWriter, r *http.Request) {
	var in BrickConsentRequest
	if !h.decode(w, r, &in, in.Validate) {
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	registered, err := h.Redirects(r.Context(), p.ApplicationID)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "brick consent: redirect URLs", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	redirect := in.RedirectURI
	switch {
	case redirect == "" && len(registered) > 0:
		redirect = registered[0]
	case redirect == "" || !slices.Contains(registered, redirect):
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusUnprocessableEntity, Code: "REDIRECT_URI_NAO_REGISTRADA",
			Message: "redirectUri must be one of the application's registered redirect URLs",
			Fields:  []httpx.FieldError{{Field: "redirectUri", Message: "is not registered for this application"}}})
		return
	}
	key := r.Header.Get("x-idempotency-key")
	var claim *KeyClaim
	var fingerprint string
	if key != "" {
		if len(key) > MaxKeyLength || strings.TrimSpace(key) != key {
			h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: "invalid x-idempotency-key",
				Fields: []httpx.FieldError{{Field: "x-idempotency-key", Message: "must be at most 40 characters, without leading or trailing spaces"}}})
			return
		}
		var err error
		if fingerprint, err = BrickFingerprint(&in, redirect); err != nil {
			h.Logger.ErrorContext(r.Context(), "brick consent: fingerprint", "err", err)
			h.errs().WriteError(w, r, httpx.Internal())
			return
		}
		var answer *KeyAnswer
		claim, answer, err = h.claim(r.Context(), p.ApplicationID, key, fingerprint)
		if err != nil || answer != nil {
			h.keyOutcome(w, r, answer, err)
			return
		}
	} else {
		key = uuid.NewString() // the brand's consent create is idempotent on it, the partner just did not ask
	}
	var answer []byte
	ctx, cancel := context.WithTimeout(r.Context(), BrickDeadline)
	defer cancel()
	a, consent, err := h.Flow.Start(ctx, StartRequest{
		ApplicationID: p.ApplicationID, Kind: KindPaymentInitiation, BrandID: in.BrandID, Collection: PaymentConsentsPath,
		Body: json.RawMessage(`{"data":` + string(in.Data) + `}`), APIScope: "payments", RedirectURI: redirect,
		IdempotencyKey: key, Device: *in.Device, PaymentOptions: options(in.PaymentOptions),
		Claim: claim,
		Answer: func(a *Authorization, consent *fapiclient.Consent) (int, []byte, error) {
			body, err := httpx.Marshal(h.answer(a, consent.Status))
			answer = body
			return http.StatusCreated, body, err
		},
	})
	if err != nil && claim != nil {
		if errors.Is(err, ErrClaimLost) {
			// This request outlived its lease and a retry took the key over:
			// the retry's answer is the key's.
			h.Logger.WarnContext(r.Context(), "brick consent: idempotency key taken over by a retry", "brand_id", in.BrandID)
			taken, stored, err := h.claim(r.Context(), p.ApplicationID, key, fingerprint)
			if taken != nil {
				h.release(r.Context(), taken)
				err = ErrKeyInFlight
			}
			h.keyOutcome(w, r, stored, err)
			return
		}
		// Nothing was recorded at Ponte: the key is free for a retry.
		h.release(r.Context(), claim)
	}
	var apiErr *fapiclient.APIError
	switch {
	case err == nil:
	case errors.Is(err, ErrBrandNotFound):
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusUnprocessableEntity, Code: "BRAND_NAO_ENCONTRADA",
			Message: "brandId names no enabled brand", Fields: []httpx.FieldError{{Field: "brandId", Message: "names no enabled brand"}}})
		return
	case errors.As(err, &apiErr) && apiErr.Status >= 400 && apiErr.Status < 500:
		// The brand refused the consent: its own codes, for the partner to fix.
		h.brandRefused(w, r, apiErr)
		return
	default:
		h.Logger.ErrorContext(r.Context(), "brick consent: brand", "brand_id", in.BrandID, "err", err)
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusBadGateway, Code: "FALHA_DETENTORA",
			Message: "the account holder could not be reached or answered unexpectedly; nothing was created, try again"})
		return
	}
	h.Logger.InfoContext(r.Context(), "brick consent created", "consent_id", consent.ID, "brand_id", in.BrandID)
	if answer == nil { // no key: the answer was not encoded for keeping
		httpx.WriteJSON(w, r, http.StatusCreated, h.answer(a, consent.Status))
		return
	}
	httpx.WriteRawJSON(w, http.StatusCreated, answer)
}

// BrickFingerprint is the fingerprint of a Brick consent create: the
// request as Ponte acts on it, its body re-encoded (so spacing and the
// order of the members Ponte decodes do not matter) and the redirect URI
// it resolved.
func BrickFingerprint(in *BrickConsentRequest, redirectURI string) (string, error) {
	canonical, err := json.Marshal(struct {
		Request     *BrickConsentRequest `json:"request"`
		RedirectURI string               `json:"redirectUri"`
	}{in, redirectURI})
	if err != nil {
		return "", fmt.Errorf("itpflow: fingerprint: %w", err)
	}
	return Fingerprint(RouteBrickConsents, canonical), nil
}

// InFlightWait is how long a retry waits for the request that holds its key
// to answer before it gets 409 REQUISICAO_EM_ANDAMENTO.
const InFlightWait = 10 * time.Second

// claim claims the key, waiting (up to h.InFlightWait, polling) while
// another request holds it: that one's answer, once stored, is the retry's.
func (h *BrickHandler) claim(ctx context.Context, applicationID, key, fingerprint string) (*KeyClaim, *KeyAnswer, error) {
	wait := h.InFlightWait
	if wait == 0 {
		wait = InFlightWait
	}
	deadline := time.Now().Add(wait)
	for {
		c, answer, err := h.Flow.ClaimKey(ctx, applicationID, key, fingerprint)
		if !errors.Is(err, ErrKeyInFlight) || !time.Now().Before(deadline) {
			return c, answer, err
		}
		select {
		case <-ctx.Done():
			return nil, nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (h *BrickHandler) release(ctx context.Context, c *KeyClaim) {
	if err := c.Release(ctx); err != nil {
		// The claim's lease frees the key anyway.
		h.Logger.WarnContext(ctx, "brick consent: release the idempotency key", "err", err)
	}
}

// keyOutcome answers a request whose key decided it: the stored answer, or
// the error of a reused or busy key.
func (h *BrickHandler) keyOutcome(w http.ResponseWriter, r *http.Request, answer *KeyAnswer, err error) {
	switch {
	case err == nil && answer != nil:
		w.Header().Set("Idempotent-Replayed", "true")
		httpx.WriteRawJSON(w, answer.Status, answer.Body)
	case errors.Is(err, ErrKeyReused):
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusUnprocessableEntity, Code: "ERRO_IDEMPOTENCIA",
			Message: "x-idempotency-key was already used with a different request"})
	case errors.Is(err, ErrKeyInFlight):
		w.Header().Set("Retry-After", "1")
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusConflict, Code: "REQUISICAO_EM_ANDAMENTO",
			Message: "a request with this x-idempotency-key is still in progress; retry with the same key to get its answer"})
	default:
		h.Logger.ErrorContext(r.Context(), "brick consent: idempotency key", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
	}
}

func (h *BrickHandler) brandRefused(w http.ResponseWriter, r *http.Request, apiErr *fapiclient.APIError) {
	var body struct {
		Errors []struct {
			Code   string `json:"code"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
		} `json:"errors"`
		Meta struct {
			RequestDateTime string `json:"requestDateTime"`
		} `json:"meta"`
	}
	body.Errors = apiErr.Errors
	if len(body.Errors) == 0 {
		body.Errors = append(body.Errors, struct {
			Code   string `json:"code"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
		}{"NAO_INFORMADO", http.StatusText(apiErr.Status), "the account holder refused the consent"})
	}
	body.Meta.RequestDateTime = h.Flow.Clock.Now().UTC().Format("2006-01-02T15:04:05Z")
	status := apiErr.Status
	if status != http.StatusUnprocessableEntity {
		status = http.StatusUnprocessableEntity // the partner's data, refused by the brand
	}
	httpx.WriteJSON(w, r, status, body)
}

func (h *BrickHandler) answer(a *Authorization, consentStatus string) BrickConsent {
	var out BrickConsent
	out.Data = BrickConsentData{ConsentID: a.ConsentID, Status: consentStatus, BrandID: a.BrandID, RedirectURI: a.RedirectURI,
		FlowStatus: a.Status, Error: a.Error, CreatedAt: a.CreatedAt.UTC().Format(time.RFC3339)}
	if a.Status == StatusPending {
		out.Data.AuthorizationURL = a.AuthorizationURL
	}
	out.Meta.RequestDateTime = h.Flow.Clock.Now().UTC().Format("2006-01-02T15:04:05Z")
	return out
}

func (h *BrickHandler) callback(w http.ResponseWriter, r *http.Request) {
	var in BrickCallbackRequest
	if !h.decode(w, r, &in, in.Validate) {
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	a, err := h.Flow.Complete(r.Context(), CompleteRequest{
		ApplicationID: p.ApplicationID, Device: *in.Device,
		Callback: fapiclient.Callback{Code: in.Code, IDToken: in.IDToken, State: in.State, Error: in.Error, ErrorDescription: in.ErrorDescription},
	})
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusNotFound, Code: "CONSENTIMENTO_NAO_ENCONTRADO",
			Message: "no consent of this application awaits a callback with this state"})
		return
	case errors.Is(err, ErrAlreadyCompleted):
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusConflict, Code: "CALLBACK_JA_PROCESSADO",
			Message: "this callback was already processed; nothing changed"})
		return
	case errors.Is(err, ErrExpired):
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusGone, Code: "CALLBACK_EXPIRADO",
			Message: "the authorization request expired before its callback"})
		return
	case errors.Is(err, fapiclient.ErrCallback):
		// The reason (which check failed, never a secret) helps the partner
		// tell a decryption failure from a forged or mismatched callback.
		reason := strings.TrimPrefix(err.Error(), fapiclient.ErrCallback.Error()+": ")
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusUnprocessableEntity, Code: "CALLBACK_INVALIDO",
			Message: "the callback failed its checks (id_token decryption, signature, issuer, audience, expiry, nonce, c_hash or s_hash): " +
				reason + "; nothing changed"})
		return
	default:
		h.Logger.ErrorContext(r.Context(), "brick callback", "err", err)
		h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusBadGateway, Code: "FALHA_DETENTORA",
			Message: "the account holder could not be reached; try the callback again"})
		return
	}
	h.Logger.InfoContext(r.Context(), "brick callback", "consent_id", a.ConsentID, "flow_status", a.Status)
	out, err := h.answerWithPayments(r.Context(), a, a.ConsentStatus)
	if err != nil {
		// The outcome is recorded; the partner reads the payments later.
		h.Logger.WarnContext(r.Context(), "brick callback: payments", "err", err)
	}
	httpx.WriteJSON(w, r, http.StatusOK, out)
}
