package itpflow

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/jobs"
)

// Open Finance webhooks, initiator side (API Webhook 1.2.0): a brand
// notifies Ponte that a payment or a consent Ponte initiated there changed;
// the notification carries only the event's time, so Ponte reads the
// payment at the brand at once instead of waiting for its next scheduled
// read.
const (
	WebhookPixPaymentPath       = "/open-banking/webhook/v1/payments/{versionApi}/pix/payments/{paymentId}"
	WebhookConsentPath          = "/open-banking/webhook/v1/payments/{versionApi}/consents/{consentId...}"
	WebhookRecurringConsentPath = "/open-banking/webhook/v1/automatic-payments/{versionApi}/recurring-consents/{recurringConsentId...}"
	WebhookRecurringPaymentPath = "/open-banking/webhook/v1/automatic-payments/{versionApi}/pix/recurring-payments/{recurringPaymentId}"
)

// HeaderWebhookInteractionID names one notification attempt; the 202 echoes it.
const HeaderWebhookInteractionID = "x-webhook-interaction-id"

// Patterns of the official file (webhook 1.2.0).
var (
	webhookVersionPattern   = regexp.MustCompile(`^v([1-9][0-9]?|10)$`)
	webhookIDPattern        = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9\-]{0,99}$`)
	webhookConsentIDPattern = regexp.MustCompile(`^urn:[a-zA-Z0-9][a-zA-Z0-9\-]{0,31}:[a-zA-Z0-9()+,\-.:=@;$_!*'%\/?#]+$`)
	webhookTimePattern      = regexp.MustCompile(`^(\d{4})-(1[0-2]|0?[1-9])-(3[01]|[12][0-9]|0?[1-9])T(?:[01]\d|2[0123]):(?:[012345]\d):(?:[012345]\d)Z$`)
)

// maxWebhookBody bounds a notification body: the official one is about 40 bytes.
const maxWebhookBody = 4 << 10

// webhookReadAttempts bounds a notified read's retries; the scheduled reads
// and the sweep remain the safety net.
const webhookReadAttempts = 5

// webhookTarget says what a notification route names.
type webhookTarget struct {
	param     string // the path parameter holding the id
	kind      string // PaymentKindPix or PaymentKindSweeping
	byConsent bool   // the id is a consent's: read its payments
}

// WebhookHandler serves the Open Finance webhook routes Ponte registers
// at brands as its webhook_uris. Under mutual TLS the /open-banking/
// routes take only requests with a verified client certificate
// (internal/app's certificate policy), as the convention asks; the
// notification carries no data, and all it can cause is a read of a
// payment Ponte initiated from the brand Ponte initiated it at.
type WebhookHandler struct {
	Payments *Payments
	Logger   *slog.Logger
	Clock    clock.Clock
}

// Register adds the four receiving routes to mux.
func (h *WebhookHandler) Register(mux *http.ServeMux) {
	mux.Handle("POST "+WebhookPixPaymentPath, h.route(webhookTarget{param: "paymentId", kind: PaymentKindPix}))
	mux.Handle("POST "+WebhookConsentPath, h.route(webhookTarget{param: "consentId", kind: PaymentKindPix, byConsent: true}))
	mux.Handle("POST "+WebhookRecurringConsentPath, h.route(webhookTarget{param: "recurringConsentId", kind: PaymentKindSweeping, byConsent: true}))
	mux.Handle("POST "+WebhookRecurringPaymentPath, h.route(webhookTarget{param: "recurringPaymentId", kind: PaymentKindSweeping}))
}

func (h *WebhookHandler) errors() httpx.ErrorWriter {
	return httpx.OpenFinance{Now: func() time.Time { return h.clock().Now() }}
}

func (h *WebhookHandler) clock() clock.Clock {
	if h.Clock == nil {
		return clock.System{}
	}
	return h.Clock
}

func (h *WebhookHandler) route(t webhookTarget) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		errs := h.errors()
		id := r.PathValue(t.param)
		var fields []httpx.FieldError
		if v := r.PathValue("versionApi"); len(v) > 256 || !webhookVersionPattern.MatchString(v) {
			fields = append(fields, httpx.FieldError{Field: "versionApi", Message: "must match ^v([1-9][0-9]?|10)$"})
		}
		if t.byConsent {
			if len(id) > 256 || !webhookConsentIDPattern.MatchString(id) {
				fields = append(fields, httpx.FieldError{Field: t.param, Message: "must be a URN (urn:namespace:id) of at most 256 characters"})
			}
		} else if !webhookIDPattern.MatchString(id) {
			fields = append(fields, httpx.FieldError{Field: t.param, Message: "must be 1–100 letters, digits or '-', starting with a letter or digit"})
		}
		interaction := r.Header.Get(HeaderWebhookInteractionID)
		if !webhookIDPattern.MatchString(interaction) {
			fields = append(fields, httpx.FieldError{Field: HeaderWebhookInteractionID,
				Message: "is required: 1–100 letters, digits or '-', starting with a letter or digit"})
		}
		if len(fields) > 0 {
			errs.WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: "invalid notification", Fields: fields})
			return
		}
		at, herr := readWebhookBody(w, r)
		if herr != nil {
			errs.WriteError(w, r, herr)
			return
		}
		n, err := h.Payments.ReadNotified(r.Context(), t.kind, t.byConsent, id, at)
		if err != nil {
			h.logger().ErrorContext(r.Context(), "Open Finance webhook: could not queue the read", "err", err)
			errs.WriteError(w, r, httpx.Internal())
			return
		}
		// The same answer whether or not the id is one of Ponte's payments:
		// a notification never tells the caller which ids exist.
		h.logger().InfoContext(r.Context(), "Open Finance webhook received", "kind", t.kind, "by_consent", t.byConsent,
			"interaction_id", interaction, "reads_queued", n)
		w.Header().Set(HeaderWebhookInteractionID, interaction)
		w.WriteHeader(http.StatusAccepted)
	})
}

func (h *WebhookHandler) logger() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}

// webhookBody is RequestBodyWebhook; eventType is webhook 1.3.0's addition
// (recurring consents and enrollments), accepted so a brand on 1.3.0 is not
// refused.
type webhookBody struct {
	Data *struct {
		Timestamp *string `json:"timestamp"`
		EventType *string `json:"eventType"`
	} `json:"data"`
}

// readWebhookBody reads and checks a notification body strictly: JSON, an
// object with data.timestamp as the official pattern says and nothing else
// (besides 1.3.0's eventType). It returns the timestamp.
func readWebhookBody(w http.ResponseWriter, r *http.Request) (string, *httpx.Error) {
	if ct := r.Header.Get("Content-Type"); ct == "" {
		return "", &httpx.Error{Status: http.StatusUnsupportedMediaType, Message: "Content-Type must be application/json"}
	}
	raw, herr := httpx.ReadBody(w, r)
	if herr != nil {
		return "", herr
	}
	bad := func(field, msg string) *httpx.Error {
		return &httpx.Error{Status: http.StatusBadRequest, Message: "invalid notification body", Fields: []httpx.FieldError{{Field: field, Message: msg}}}
	}
	if len(raw) > maxWebhookBody {
		return "", bad("body", fmt.Sprintf("exceeds %d bytes", maxWebhookBody))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var b webhookBody
	if err := dec.Decode(&b); err != nil {
		return "", bad("body", "must be {\"data\":{\"timestamp\":\"YYYY-MM-DDThh:mm:ssZ\"}} with no other field")
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", bad("body", "has data after the JSON object")
	}
	switch {
	case b.Data == nil:
		return "", bad("data", "is required")
	case b.Data.Timestamp == nil:
		return "", bad("data.timestamp", "is required")
	case len(*b.Data.Timestamp) > 20 || !webhookTimePattern.MatchString(*b.Data.Timestamp):
		return "", bad("data.timestamp", "must be a UTC date-time YYYY-MM-DDThh:mm:ssZ")
	case b.Data.EventType != nil && *b.Data.EventType != "STATE_CHANGED" && *b.Data.EventType != "DATA_CHANGED":
		return "", bad("data.eventType", "must be STATE_CHANGED or DATA_CHANGED")
	}
	return *b.Data.Timestamp, nil
}

// ReadNotified queues an immediate read at the brand of each payment of
// kind that id names and that is not final yet: the payment whose
// paymentId (recurringPaymentId) at the brand is id, or, byConsent, every
// payment under the consent id. One read per payment and notified event
// time (at): a retried notification queues nothing more. It returns how
// many payments it queued reads for (0 for an id that is none of Ponte's).
func (p *Payments) ReadNotified(ctx context.Context, kind string, byConsent bool, id, at string) (int, error) {
	col := "payment_id"
	if byConsent {
		col = "consent_id"
	}
	now := p.now()
	n := 0
	err := p.DB.Write(ctx, func(tx *sql.Tx) error {
		n = 0
		rows, err := tx.QueryContext(ctx, `SELECT id FROM itp_payments WHERE `+col+` = $1 AND kind = $2
			AND payment_id IS NOT NULL AND status NOT IN ('ACSC', 'RJCT', 'CANC', 'FAILED') LIMIT 500`, id, kind)
		if err != nil {
			return fmt.Errorf("itpflow: find notified payments: %w", err)
		}
		var ids []string
		for rows.Next() {
			var pid string
			if err := rows.Scan(&pid); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, pid)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, pid := range ids {
			if _, err := jobs.Enqueue(ctx, tx, now, jobs.Job{Kind: JobPaymentPoll, Payload: pollPayload{ID: pid, Webhook: true},
				UniqueKey: fmt.Sprintf("%s:webhook:%s:%s", JobPaymentPoll, pid, at), MaxAttempts: webhookReadAttempts}); err != nil {
				return fmt.Errorf("itpflow: queue the notified read: %w", err)
			}
		}
		n = len(ids)
		return nil
	})
	return n, err
}

// pollPayload is the payload of a JobPaymentPoll job.
type pollPayload struct {
	ID string `json:"id"`
	// Webhook marks a read a brand's notification asked for: it records
	// what it finds but leaves the scheduled reads (and their count) alone.
	Webhook bool `json:"webhook,omitempty"`
}

// updateNotifiedPayment is updatePayment for a notified read: the status
// only, so the scheduled reads' count (their jobs' keys) stays theirs.
func updateNotifiedPayment(ctx context.Context, tx *sql.Tx, p *Payment, from string) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE itp_payments SET status = $1, rejection_code = $2, rejection_detail = $3, updated_at = $4
		WHERE id = $5 AND status = $6`,
		p.Status, nullable(p.RejectionCode), nullable(p.RejectionDetail), p.UpdatedAt.UnixMilli(), p.ID, from)
	if err != nil {
		return false, fmt.Errorf("itpflow: record the payment's status: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
