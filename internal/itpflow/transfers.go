package itpflow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Errors of sweeping transfers.
var (
	// ErrExternalIDConflict: the application already used the externalId
	// for a transfer with a different request.
	ErrExternalIDConflict = errors.New("itpflow: externalId already used for a different transfer")
	// ErrTransferNotFound: no transfer with this id for this application.
	ErrTransferNotFound = errors.New("itpflow: transfer not found")
	// ErrInitiatorNotConfigured: Ponte has no CNPJ as an initiator (--itp-cnpj).
	ErrInitiatorNotConfigured = errors.New("itpflow: the initiator's CNPJ is not configured")
)

// CreditorAccount is the account a transfer credits (Automatic Payments v2).
type CreditorAccount struct {
	ISPB        string `json:"ispb"`
	Issuer      string `json:"issuer,omitempty"`
	Number      string `json:"number"`
	AccountType string `json:"accountType"`
}

// TransferRequest is a partner's sweeping transfer under the recurring
// consent of one of its journey sessions.
type TransferRequest struct {
	ApplicationID   string
	SessionID       string
	ExternalID      string
	Amount          string
	CreditorAccount CreditorAccount
	// Document is the creditor's CPF or CNPJ: one of the consent's
	// creditors; empty means the consent's first creditor.
	Document              string
	RemittanceInformation string
	// RiskSignals is sent to the brand as is (required for sweeping).
	RiskSignals json.RawMessage
	Tags        json.RawMessage
}

var (
	amountPattern = regexp.MustCompile(`^\d{1,16}\.\d{2}$`)
	ispb8         = regexp.MustCompile(`^[0-9]{8}$`)
	issuerPattern = regexp.MustCompile(`^[0-9]{1,4}$`)
	numberPattern = regexp.MustCompile(`^[0-9]{1,20}$`)
	accountTypes  = []string{"CACC", "SVGS", "TRAN"}
)

// validate lists every invalid field, named as the endpoint's body names them.
func (in *TransferRequest) validate() []itp.FieldError {
	var out []itp.FieldError
	add := func(field, msg string) { out = append(out, itp.FieldError{Field: field, Message: msg}) }
	if in.SessionID == "" || len(in.SessionID) > itp.MaxIDLength {
		add("journeySessionId", "must be the id of a journey session")
	}
	if in.ExternalID == "" || len(in.ExternalID) > itp.MaxIDLength {
		add("externalId", "must be 1 to 36 characters")
	}
	if !amountPattern.MatchString(in.Amount) || strings.Trim(in.Amount, "0.") == "" {
		add("amount", "must be a positive amount with two decimal places, e.g. 10.00")
	}
	ca := in.CreditorAccount
	if !ispb8.MatchString(ca.ISPB) {
		add("creditorAccount.ispb", "must be 8 digits")
	}
	if !slices.Contains(accountTypes, ca.AccountType) {
		add("creditorAccount.accountType", "must be CACC, SVGS or TRAN")
	}
	if (ca.AccountType == "CACC" || ca.AccountType == "SVGS") && ca.Issuer == "" {
		add("creditorAccount.issuer", "is required for CACC and SVGS accounts")
	} else if ca.Issuer != "" && !issuerPattern.MatchString(ca.Issuer) {
		add("creditorAccount.issuer", "must be 1 to 4 digits")
	}
	if !numberPattern.MatchString(ca.Number) {
		add("creditorAccount.number", "must be 1 to 20 digits")
	}
	if in.Document != "" && len(in.Document) != 11 && len(in.Document) != 14 {
		add("document", "must be a CPF (11 digits) or CNPJ (14 digits)")
	}
	if utf8.RuneCountInString(in.RemittanceInformation) > 140 {
		add("remittanceInformation", "must be at most 140 characters")
	}
	var risk map[string]json.RawMessage
	if json.Unmarshal(in.RiskSignals, &risk) != nil || risk == nil {
		add("riskSignals", "must be an object (Automatic Payments v2 riskSignals)")
	}
	return out
}

// hash fingerprints the request: the same externalId with the same request
// is the same transfer.
func (in *TransferRequest) hash() string {
	b, _ := json.Marshal(struct {
		S, A, D, R string
		C          CreditorAccount
		K, T       string
	}{in.SessionID, in.Amount, in.Document, in.RemittanceInformation, in.CreditorAccount, compact(in.RiskSignals), compact(in.Tags)})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func compact(raw json.RawMessage) string {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}

// SessionReader reads an application's journey sessions.
type SessionReader interface {
	Session(ctx context.Context, applicationID, id string) (*itp.Session, error)
}

// Transfers creates sweeping transfers under journey sessions' recurring
// consents: each is recorded PENDING with its endToEndId and created at the
// brand by the payments' durable jobs.
type Transfers struct {
	Flow     *Flow
	Payments *Payments
	Sessions SessionReader
}

// sweepingConsent is what a transfer takes from its recurring consent.
type sweepingConsent struct {
	RecurringConsentID string `json:"recurringConsentId"`
	Creditors          []struct {
		CPFCNPJ string `json:"cpfCnpj"`
	} `json:"creditors"`
}

// Create records a transfer and queues its creation at the brand. The same
// externalId with the same request returns the transfer already recorded
// (created false); with another request it is ErrExternalIDConflict. A
// session of another application is itp.ErrNotFound; one whose consent the
// user has not authorised, an *itp.ValidationError.
func (t *Transfers) Create(ctx context.Context, in TransferRequest) (*Payment, bool, error) {
	if fields := in.validate(); len(fields) > 0 {
		return nil, false, &itp.ValidationError{Fields: fields}
	}
	hash := in.hash()
	if p, err := t.byExternalID(ctx, in.ApplicationID, in.ExternalID); err == nil {
		if p.RequestHash != hash {
			return nil, false, ErrExternalIDConflict
		}
		return p, false, nil
	} else if !errors.Is(err, ErrTransferNotFound) {
		return nil, false, err
	}
	sess, err := t.Sessions.Session(ctx, in.ApplicationID, in.SessionID)
	if err != nil {
		return nil, false, err
	}
	notAuthorised := &itp.ValidationError{Fields: []itp.FieldError{{Field: "journeySessionId",
		Message: "the journey session's recurring consent is not authorised (status " + string(sess.Status) + ")"}}}
	if sess.Status != itp.StatusFinished && sess.Status != itp.StatusAuthorised {
		return nil, false, notAuthorised
	}
	a, err := t.Flow.ForSession(ctx, sess.ID)
	if errors.Is(err, ErrNotFound) || (err == nil && a.Status != StatusAuthorised) {
		return nil, false, notAuthorised
	}
	if err != nil {
		return nil, false, err
	}
	g, err := readGrant(ctx, t.Payments.DB.Read(), a.ID)
	if errors.Is(err, ErrNoGrant) {
		return nil, false, notAuthorised
	}
	if err != nil {
		return nil, false, err
	}
	var consent sweepingConsent
	_ = json.Unmarshal(g.consentData, &consent)
	if consent.RecurringConsentID == "" {
		consent.RecurringConsentID = a.ConsentID
	}
	document := in.Document
	if document == "" && len(consent.Creditors) > 0 {
		document = consent.Creditors[0].CPFCNPJ
	}
	if !slices.ContainsFunc(consent.Creditors, func(c struct {
		CPFCNPJ string `json:"cpfCnpj"`
	}) bool {
		return c.CPFCNPJ == document
	}) {
		return nil, false, &itp.ValidationError{Fields: []itp.FieldError{{Field: "document", Message: "must be one of the recurring consent's creditors"}}}
	}
	if t.Payments.Initiator.CNPJ == "" {
		return nil, false, ErrInitiatorNotConfigured
	}
	now := t.Payments.now()
	e2e, err := newEndToEndID(t.Payments.Initiator.ISPB, now)
	if err != nil {
		return nil, false, err
	}
	rel := "CPF"
	if len(document) == 14 {
		rel = "CNPJ"
	}
	data := map[string]any{
		"recurringConsentId": consent.RecurringConsentID, "endToEndId": e2e, "date": now.In(brt).Format("2006-01-02"),
		"payment": map[string]string{"amount": in.Amount, "currency": "BRL"}, "creditorAccount": in.CreditorAccount,
		"cnpjInitiator": t.Payments.Initiator.CNPJ, "localInstrument": "MANU", "authorisationFlow": "HYBRID_FLOW",
		"document": map[string]string{"identification": document, "rel": rel}, "riskSignals": in.RiskSignals,
	}
	if in.RemittanceInformation != "" {
		data["remittanceInformation"] = in.RemittanceInformation
	}
	request, err := json.Marshal(data)
	if err != nil {
		return nil, false, err
	}
	// Time-ordered ids: the list's order within one millisecond.
	v7, err := uuid.NewV7()
	if err != nil {
		return nil, false, err
	}
	id := v7.String()
	p := &Payment{ID: id, ApplicationID: in.ApplicationID, AuthorizationID: a.ID, Kind: PaymentKindSweeping, BatchID: id,
		SessionID: sess.ID, BrandID: a.BrandID, ConsentID: consent.RecurringConsentID, ExternalID: in.ExternalID, RequestHash: hash,
		Request: request, Tags: in.Tags, EndToEndID: e2e, IdempotencyKey: uuid.NewString(), Status: PaymentPending,
		CreatedAt: now, UpdatedAt: now}
	err = t.Payments.DB.Write(ctx, func(tx *sql.Tx) error {
		if err := insertPayment(ctx, tx, p); err != nil {
			return err
		}
		if err := t.Payments.changed(ctx, tx, p); err != nil {
			return err
		}
		return t.Payments.enqueueCreate(ctx, tx, p.BatchID, now)
	})
	if err != nil {
		// A concurrent request with the same externalId won the insert.
		if again, rerr := t.byExternalID(ctx, in.ApplicationID, in.ExternalID); rerr == nil {
			if again.RequestHash != hash {
				return nil, false, ErrExternalIDConflict
			}
			return again, false, nil
		}
		return nil, false, err
	}
	return p, true, nil
}

func (t *Transfers) byExternalID(ctx context.Context, applicationID, externalID string) (*Payment, error) {
	p, err := scanPayment(t.Payments.DB.Read().QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM itp_payments
		WHERE application_id = $1 AND external_id = $2`, applicationID, externalID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrTransferNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("itpflow: read the transfer: %w", err)
	}
	return p, nil
}

// Transfer returns one of the application's transfers.
func (t *Transfers) Transfer(ctx context.Context, applicationID, id string) (*Payment, error) {
	p, err := paymentByID(ctx, t.Payments.DB.Read(), id)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (p.ApplicationID != applicationID || p.Kind != PaymentKindSweeping)) {
		return nil, ErrTransferNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("itpflow: read the transfer: %w", err)
	}
	return p, nil
}

// TransferFilter narrows List. Zero fields do not filter.
type TransferFilter struct {
	SessionID  string
	ExternalID string
	Statuses   []string
	Limit      int    // 1…itp.MaxListLimit; 0: itp.DefaultListLimit
	Cursor     string // from a previous page
}

// ErrBadCursor is a cursor List did not issue (the cursors are itp's).
var ErrBadCursor = itp.ErrBadCursor

// List returns the application's transfers matching f, newest first, and
// the cursor of the next page ("" on the last).
func (t *Transfers) List(ctx context.Context, applicationID string, f TransferFilter) ([]*Payment, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = itp.DefaultListLimit
	}
	limit = min(limit, itp.MaxListLimit)
	p := store.NewParams(t.Payments.DB.Engine())
	where := `application_id = ` + p.Add(applicationID) + ` AND kind = ` + p.Add(PaymentKindSweeping)
	if f.SessionID != "" {
		where += ` AND session_id = ` + p.Add(f.SessionID)
	}
	if f.ExternalID != "" {
		where += ` AND external_id = ` + p.Add(f.ExternalID)
	}
	if len(f.Statuses) > 0 {
		vs := make([]any, len(f.Statuses))
		for i, s := range f.Statuses {
			vs[i] = s
		}
		where += ` AND status IN (` + p.List(vs...) + `)`
	}
	if f.Cursor != "" {
		at, id, err := itp.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where += ` AND (created_at < ` + p.Add(at) + ` OR (created_at = ` + p.Add(at) + ` AND id < ` + p.Add(id) + `))`
	}
	q := `SELECT ` + paymentColumns + ` FROM itp_payments WHERE ` + where + ` ORDER BY created_at DESC, id DESC LIMIT ` + p.Add(limit+1)
	rows, err := t.Payments.DB.Read().QueryContext(ctx, q, p.Args()...)
	if err != nil {
		return nil, "", fmt.Errorf("itpflow: list transfers: %w", err)
	}
	defer rows.Close()
	out := []*Payment{}
	for rows.Next() {
		pay, err := scanPayment(rows)
		if err != nil {
			return nil, "", fmt.Errorf("itpflow: list transfers: %w", err)
		}
		out = append(out, pay)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("itpflow: list transfers: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = itp.EncodeCursor(last.CreatedAt.UnixMilli(), last.ID)
	}
	return out, next, nil
}
