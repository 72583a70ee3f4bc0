// Package itpflow is the initiator's redirect flow: Ponte creates a consent
// at a brand for one of its partners, pushes the authorization request,
// sends the user there, and completes the flow when the callback comes back
// — for journey sessions (seed 003, hosted journey page) and for the Brick
// payment-initiation endpoints (seed 002). Each pushed request is recorded
// with the secrets that check its callback (state, nonce, PKCE verifier),
// and each step with the user's device.
package itpflow

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Authorization kinds.
const (
	KindJourneySession    = "JOURNEY_SESSION"
	KindPaymentInitiation = "PAYMENT_INITIATION"
)

// Authorization statuses: PENDING until the callback; COMPLETING while the
// code is exchanged; then AUTHORISED, REJECTED (the user or the brand said
// no) or FAILED (the brand answered something unusable).
const (
	StatusPending    = "PENDING"
	StatusCompleting = "COMPLETING"
	StatusAuthorised = "AUTHORISED"
	StatusRejected   = "REJECTED"
	StatusFailed     = "FAILED"
)

// Steps recorded with the user's device.
const (
	StepConsentRequest = "CONSENT_REQUEST"
	StepCallback       = "CALLBACK"
)

// Journey steps as the PCM (v1.0.4 hybrid flow) names them, recorded
// through Flow.Recorder with the state change that causes each.
const (
	PCMRedirectToServer            = "REDIRECT_TO_SERVER"
	PCMRedirectTargetWithErrors    = "REDIRECT_TARGET_WITH_ERRORS"
	PCMRedirectTargetWithoutErrors = "REDIRECT_TARGET_WITHOUT_ERRORS"
)

// StepEvent is a journey step at the initiator, for the PCM.
type StepEvent struct {
	ConsentID string
	// ApplicationID is the partner the consent was initiated for.
	ApplicationID string
	BrandID       string
	Step          string
	// URI is uriAuthorizationEndpoint (REDIRECT_TO_SERVER): the brand's
	// authorize URL; the PCM recorder strips its query string.
	URI string
	// Error is the callback's error code (REDIRECT_TARGET_WITH_ERRORS).
	Error  string
	Device ofb.Device
	At     time.Time
}

// StepRecorder records journey steps in the transaction of the state change
// that caused them: an error rolls the change back.
type StepRecorder interface {
	RecordStep(ctx context.Context, tx *sql.Tx, e StepEvent) error
}

// Lifetime is how long Ponte waits for a callback: the brand's authorisation
// window for payment consents (5 minutes) and some slack.
const Lifetime = 10 * time.Minute

// Errors of the flow.
var (
	ErrNotFound         = errors.New("itpflow: no authorization request with this state")
	ErrAlreadyCompleted = errors.New("itpflow: the authorization request was already completed")
	ErrExpired          = errors.New("itpflow: the authorization request expired")
	ErrBrandNotFound    = errors.New("itpflow: brand not found or disabled")
)

// Brands gives the FAPI client for a brand id (ErrBrandNotFound when
// unknown or disabled).
type Brands interface {
	Client(ctx context.Context, brandID string) (*fapiclient.Client, error)
}

// Authorization is one pushed authorization request.
type Authorization struct {
	ID               string
	ApplicationID    string
	Kind             string
	SessionID        string
	BrandID          string
	ConsentID        string
	ConsentPath      string
	Scope            string
	RedirectURI      string
	AuthorizationURL string
	Status           string
	ConsentStatus    string
	Error            string
	// PaymentOptions are the partner's additions to the consent's payments.
	PaymentOptions PaymentOptions
	CreatedAt      time.Time
	UpdatedAt      time.Time
	ExpiresAt      time.Time

	nonce, verifier string
}

// Flow runs the initiator's redirect flow.
type Flow struct {
	DB     *store.DB
	Clock  clock.Clock
	Brands Brands
	Logger *slog.Logger
	// Redirects, when set, registers redirect URIs at brands that allow it.
	Redirects RedirectRegistrar
	// Recorder, when set, records each step for the PCM in the step's
	// transaction.
	Recorder StepRecorder
	// Payments, when set, keeps the tokens of authorised consents and
	// initiates the payments of Brick consents.
	Payments *Payments
}

// record hands a step to the Recorder, if any, in the step's transaction.
func (f *Flow) record(ctx context.Context, tx *sql.Tx, a *Authorization, step, uri, errCode string, d ofb.Device, at time.Time) error {
	if f.Recorder == nil {
		return nil
	}
	if d.Platform == "" {
		d = ofb.DeviceFromUserAgent("") // unknown: BROWSER, OTHER
	}
	err := f.Recorder.RecordStep(ctx, tx, StepEvent{ConsentID: a.ConsentID, ApplicationID: a.ApplicationID, BrandID: a.BrandID,
		Step: step, URI: uri, Error: errCode, Device: d, At: at})
	if err != nil {
		return fmt.Errorf("itpflow: record the PCM %s step: %w", step, err)
	}
	return nil
}

// StartRequest creates a consent at a brand and pushes its authorization request.
type StartRequest struct {
	ApplicationID string
	Kind          string
	SessionID     string
	BrandID       string
	// Collection is the consents collection's path at the brand, e.g.
	// "/open-banking/payments/v4/consents".
	Collection string
	// Body is the consent request, {"data": ...}.
	Body json.RawMessage
	// APIScope is the brand's API scope: "payments" or "recurring-payments".
	APIScope       string
	RedirectURI    string
	IdempotencyKey string
	Device         ofb.Device
	// PaymentOptions go into the payments made under the consent.
	PaymentOptions PaymentOptions
	// Before, when set, runs in the transaction that records the request
	// (a journey session moves to AWAITING_AUTHORISATION there).
	Before func(ctx context.Context, tx *sql.Tx, a *Authorization) error
	// Claim, when set, is the request's claim of its idempotency key: it is
	// completed with Answer's response in the transaction that records the
	// authorization request, or Start fails with ErrClaimLost and records
	// nothing.
	Claim  *KeyClaim
	Answer func(a *Authorization, consent *fapiclient.Consent) (status int, body []byte, err error)
}

// RedirectRegistrar makes sure a redirect URI is registered for Ponte at a
// brand before Ponte uses it. Only the sandbox brand — Ponte's own holder
// side — can do that on the fly; for other brands the operator registers
// Ponte's redirect URIs with the institution, and this is nil or a no-op.
type RedirectRegistrar func(ctx context.Context, brandID, redirectURI string) error

// Start creates the consent at the brand, pushes the authorization request
// and records it with its secrets and the user's device. It returns the
// authorization, whose AuthorizationURL is where the user goes next, and the
// consent as the brand answered it. A brand's refusal of the consent is a
// *fapiclient.APIError.
func (f *Flow) Start(ctx context.Context, in StartRequest) (*Authorization, *fapiclient.Consent, error) {
	c, err := f.Brands.Client(ctx, in.BrandID)
	if err != nil {
		return nil, nil, err
	}
	if f.Redirects != nil {
		if err := f.Redirects(ctx, in.BrandID, in.RedirectURI); err != nil {
			return nil, nil, err
		}
	}
	brandClient := c.WithRedirectURI(in.RedirectURI)
	token, err := brandClient.Token(ctx, in.APIScope)
	if err != nil {
		return nil, nil, fmt.Errorf("itpflow: token at brand %s: %w", in.BrandID, err)
	}
	consent, err := brandClient.CreateConsent(ctx, token, in.Collection, in.Body, in.IdempotencyKey)
	if err != nil {
		return nil, nil, err
	}
	ar := fapiclient.NewAuthRequest("openid " + in.APIScope + " " + ConsentScope(in.APIScope, consent.ID))
	authURL, err := brandClient.Push(ctx, ar)
	if err != nil {
		return nil, nil, fmt.Errorf("itpflow: push the authorization request: %w", err)
	}
	now := f.Clock.Now().UTC()
	a := &Authorization{
		ID: uuid.NewString(), ApplicationID: in.ApplicationID, Kind: in.Kind, SessionID: in.SessionID, BrandID: in.BrandID,
		ConsentID: consent.ID, ConsentPath: in.Collection + "/" + consent.ID, Scope: ar.Scope, RedirectURI: in.RedirectURI,
		AuthorizationURL: authURL, Status: StatusPending, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(Lifetime),
		PaymentOptions: in.PaymentOptions, nonce: ar.Nonce, verifier: ar.Verifier,
	}
	err = f.DB.Write(ctx, func(tx *sql.Tx) error {
		if in.Before != nil {
			if err := in.Before(ctx, tx, a); err != nil {
				return err
			}
		}
		if err := insertAuthorization(ctx, tx, a, stateHash(ar.State)); err != nil {
			return err
		}
		if err := insertStep(ctx, tx, a.ID, StepConsentRequest, in.Device, "", now); err != nil {
			return err
		}
		if in.Claim != nil {
			status, body, err := in.Answer(a, consent)
			if err != nil {
				return err
			}
			if err := in.Claim.complete(ctx, tx, status, body); err != nil {
				return err
			}
		}
		return f.record(ctx, tx, a, PCMRedirectToServer, a.AuthorizationURL, "", in.Device, now)
	})
	if err != nil {
		return nil, nil, err
	}
	// The state leaves Ponte only inside the pushed request; it is kept as a hash.
	return a, consent, nil
}

// CompleteRequest is a callback to complete.
type CompleteRequest struct {
	// ApplicationID, when set, must own the authorization (Brick callbacks
	// come from the partner's backend); the hosted callback leaves it empty.
	ApplicationID string
	Callback      fapiclient.Callback
	Device        ofb.Device
	// After, when set, runs in the transaction that records the outcome.
	After func(ctx context.Context, tx *sql.Tx, a *Authorization) error
}

// Complete checks a callback and finishes its authorization request: the
// id_token is verified before anything changes (a forged callback changes
// nothing), the request is claimed once (a replayed callback gets
// ErrAlreadyCompleted), the code is exchanged and the consent's status read
// at the brand. An OAuth error from the brand (the user cancelled) ends it
// REJECTED.
func (f *Flow) Complete(ctx context.Context, in CompleteRequest) (*Authorization, error) {
	a, err := f.byState(ctx, in.Callback.State)
	if err != nil {
		return nil, err
	}
	if in.ApplicationID != "" && in.ApplicationID != a.ApplicationID {
		return nil, ErrNotFound
	}
	if a.Status != StatusPending {
		return nil, ErrAlreadyCompleted
	}
	if !f.Clock.Now().Before(a.ExpiresAt) {
		return nil, ErrExpired
	}
	c, err := f.Brands.Client(ctx, a.BrandID)
	if err != nil {
		return nil, err
	}
	brandClient := c.WithRedirectURI(a.RedirectURI)
	ar := fapiclient.AuthRequest{Scope: a.Scope, State: in.Callback.State, Nonce: a.nonce, Verifier: a.verifier}
	code, verr := brandClient.VerifyCallback(ctx, in.Callback, ar)
	var denied *fapiclient.DeniedError
	switch {
	case errors.As(verr, &denied):
	case verr != nil:
		return nil, verr // forged or mismatched: nothing recorded
	}
	if err := f.claim(ctx, a); err != nil {
		return nil, err
	}
	final, consentStatus, detail := StatusRejected, "", ""
	var (
		tok     *fapiclient.TokenResponse
		consent *fapiclient.Consent
	)
	if denied != nil {
		detail = denied.Code
		if consent = f.consent(ctx, brandClient, a); consent != nil {
			consentStatus = consent.Status
		}
	} else {
		final, consentStatus, detail, tok, consent = f.redeem(ctx, brandClient, code, ar, a)
	}
	now := f.Clock.Now().UTC()
	a.Status, a.ConsentStatus, a.Error, a.UpdatedAt = final, consentStatus, detail, now
	var items []map[string]any
	if final == StatusAuthorised && f.Payments != nil && a.Kind == KindPaymentInitiation {
		var err error
		if items, err = pixPaymentItems(consent.Data, a.PaymentOptions, f.Payments.Initiator, now); err != nil {
			f.Logger.ErrorContext(ctx, "itpflow: the consent's payment cannot be initiated", "authorization_id", a.ID, "consent_id", a.ConsentID, "err", err)
			a.Error = "payment_not_initiated: " + err.Error()
		}
	}
	err = f.DB.Write(ctx, func(tx *sql.Tx) error {
		if err := updateAuthorization(ctx, tx, a); err != nil {
			return err
		}
		if err := insertStep(ctx, tx, a.ID, StepCallback, in.Device, detail, now); err != nil {
			return err
		}
		// The PCM judges the callback itself: an error in it, or a code.
		step, errCode := PCMRedirectTargetWithoutErrors, ""
		if denied != nil {
			step, errCode = PCMRedirectTargetWithErrors, denied.Code
		}
		if err := f.record(ctx, tx, a, step, "", errCode, in.Device, now); err != nil {
			return err
		}
		if final == StatusAuthorised && f.Payments != nil {
			if err := f.Payments.authorised(ctx, tx, a, tok, consent.Data, items, now); err != nil {
				return err
			}
		}
		if in.After != nil {
			return in.After(ctx, tx, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// redeem exchanges the code and reads the consent at the brand; it returns
// the tokens and the consent when the consent is AUTHORISED.
func (f *Flow) redeem(ctx context.Context, c *fapiclient.Client, code string, ar fapiclient.AuthRequest, a *Authorization) (
	status, consentStatus, detail string, tok *fapiclient.TokenResponse, consent *fapiclient.Consent) {
	tok, err := c.ExchangeCode(ctx, code, ar)
	if err != nil {
		f.Logger.WarnContext(ctx, "itpflow: code exchange failed", "authorization_id", a.ID, "brand_id", a.BrandID, "err", err)
		return StatusFailed, "", "code_exchange_failed", nil, nil
	}
	consent = f.consent(ctx, c, a)
	switch {
	case consent == nil:
		f.Logger.WarnContext(ctx, "itpflow: consent read failed after the code exchange", "authorization_id", a.ID, "brand_id", a.BrandID)
		return StatusFailed, "", "consent_read_failed", nil, nil
	case consent.Status == "AUTHORISED":
		return StatusAuthorised, consent.Status, "", tok, consent
	default:
		return StatusRejected, consent.Status, "consent_" + consent.Status, nil, consent
	}
}

// consent reads the consent at the brand, best effort: nil when the brand
// cannot say.
func (f *Flow) consent(ctx context.Context, c *fapiclient.Client, a *Authorization) *fapiclient.Consent {
	scope := "payments"
	if fields := strings.Fields(a.Scope); len(fields) > 1 {
		scope = fields[1]
	}
	token, err := c.Token(ctx, scope)
	if err != nil {
		return nil
	}
	consent, err := c.GetConsent(ctx, token, a.ConsentPath)
	if err != nil {
		return nil
	}
	return consent
}

// claim moves a PENDING authorization to COMPLETING, once.
func (f *Flow) claim(ctx context.Context, a *Authorization) error {
	return f.DB.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE itp_authorizations SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4`,
			StatusCompleting, f.Clock.Now().UnixMilli(), a.ID, StatusPending)
		if err != nil {
			return fmt.Errorf("itpflow: claim: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return ErrAlreadyCompleted
		}
		return nil
	})
}

// Authorization returns an authorization of the application by consent id.
func (f *Flow) Authorization(ctx context.Context, applicationID, consentID string) (*Authorization, error) {
	a, err := scanAuthorization(f.DB.Read().QueryRowContext(ctx, `SELECT `+authorizationColumns+` FROM itp_authorizations
		WHERE application_id = $1 AND consent_id = $2 ORDER BY created_at DESC LIMIT 1`, applicationID, consentID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return a, err
}

// ForSession returns the latest authorization of a journey session.
func (f *Flow) ForSession(ctx context.Context, sessionID string) (*Authorization, error) {
	a, err := scanAuthorization(f.DB.Read().QueryRowContext(ctx, `SELECT `+authorizationColumns+` FROM itp_authorizations
		WHERE session_id = $1 ORDER BY created_at DESC LIMIT 1`, sessionID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return a, err
}

func (f *Flow) byState(ctx context.Context, state string) (*Authorization, error) {
	if state == "" || len(state) > 512 {
		return nil, ErrNotFound
	}
	a, err := scanAuthorization(f.DB.Read().QueryRowContext(ctx, `SELECT `+authorizationColumns+` FROM itp_authorizations WHERE state_hash = $1`, stateHash(state)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return a, err
}

// Step is a recorded step.
type Step struct {
	Step      string
	Device    ofb.Device
	Detail    string
	CreatedAt time.Time
}

// Steps returns an authorization's steps in order.
func (f *Flow) Steps(ctx context.Context, authorizationID string) ([]Step, error) {
	rows, err := f.DB.Read().QueryContext(ctx, `SELECT step, platform, os, os_version, COALESCE(detail, ''), created_at
		FROM itp_steps WHERE authorization_id = $1 ORDER BY seq`, authorizationID)
	if err != nil {
		return nil, fmt.Errorf("itpflow: read steps: %w", err)
	}
	defer rows.Close()
	var out []Step
	for rows.Next() {
		var st Step
		var at int64
		if err := rows.Scan(&st.Step, &st.Device.Platform, &st.Device.OS, &st.Device.OSVersion, &st.Detail, &at); err != nil {
			return nil, err
		}
		st.CreatedAt = time.UnixMilli(at).UTC()
		out = append(out, st)
	}
	return out, rows.Err()
}

func stateHash(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

const authorizationColumns = `id, application_id, kind, COALESCE(session_id, ''), brand_id, consent_id, consent_path, scope, nonce,
	code_verifier, redirect_uri, authorization_url, status, COALESCE(consent_status, ''), COALESCE(error, ''), COALESCE(payment_options, ''),
	created_at, updated_at, expires_at`

func scanAuthorization(row *sql.Row) (*Authorization, error) {
	var a Authorization
	var created, updated, expires int64
	var options string
	err := row.Scan(&a.ID, &a.ApplicationID, &a.Kind, &a.SessionID, &a.BrandID, &a.ConsentID, &a.ConsentPath, &a.Scope, &a.nonce,
		&a.verifier, &a.RedirectURI, &a.AuthorizationURL, &a.Status, &a.ConsentStatus, &a.Error, &options, &created, &updated, &expires)
	if err != nil {
		return nil, err
	}
	if options != "" {
		if err := json.Unmarshal([]byte(options), &a.PaymentOptions); err != nil {
			return nil, fmt.Errorf("itpflow: the authorization's payment options: %w", err)
		}
	}
	a.CreatedAt, a.UpdatedAt, a.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC(), time.UnixMilli(expires).UTC()
	return &a, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func insertAuthorization(ctx context.Context, tx *sql.Tx, a *Authorization, stateHash string) error {
	var options any
	if a.PaymentOptions != (PaymentOptions{}) {
		b, err := json.Marshal(a.PaymentOptions)
		if err != nil {
			return err
		}
		options = string(b)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO itp_authorizations (id, state_hash, application_id, kind, session_id, brand_id,
		consent_id, consent_path, scope, nonce, code_verifier, redirect_uri, authorization_url, status, created_at, updated_at, expires_at,
		payment_options)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		a.ID, stateHash, a.ApplicationID, a.Kind, nullable(a.SessionID), a.BrandID, a.ConsentID, a.ConsentPath, a.Scope,
		a.nonce, a.verifier, a.RedirectURI, a.AuthorizationURL, a.Status, a.CreatedAt.UnixMilli(), a.UpdatedAt.UnixMilli(), a.ExpiresAt.UnixMilli(),
		options)
	if err != nil {
		return fmt.Errorf("itpflow: record the authorization request: %w", err)
	}
	return nil
}

func updateAuthorization(ctx context.Context, tx *sql.Tx, a *Authorization) error {
	_, err := tx.ExecContext(ctx, `UPDATE itp_authorizations SET status = $1, consent_status = $2, error = $3, updated_at = $4 WHERE id = $5`,
		a.Status, nullable(a.ConsentStatus), nullable(a.Error), a.UpdatedAt.UnixMilli(), a.ID)
	if err != nil {
		return fmt.Errorf("itpflow: record the outcome: %w", err)
	}
	return nil
}

func insertStep(ctx context.Context, tx *sql.Tx, id, step string, d ofb.Device, detail string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO itp_steps (authorization_id, seq, step, platform, os, os_version, detail, created_at)
		SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7 FROM itp_steps WHERE authorization_id = $1`,
		id, step, d.Platform, d.OS, d.OSVersion, nullable(detail), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("itpflow: record the %s step: %w", step, err)
	}
	return nil
}

// ConsentScope is the consent-bound scope the pushed request asks for:
// the Automatic Payments v2 security section's recurring-consent:{id} for a
// recurring consent (apiScope recurring-payments), FAPI-BR's consent:{id}
// for the others.
func ConsentScope(apiScope, consentID string) string {
	if apiScope == "recurring-payments" {
		return "recurring-consent:" + consentID
	}
	return "consent:" + consentID
}
