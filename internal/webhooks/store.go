package webhooks

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/store"
)

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type scanner interface{ Scan(dest ...any) error }

const subscriptionColumns = `id, application_id, url, events, disabled, disabled_reason, previous_secret_expires_at, created_at, updated_at`

func scanSubscription(row scanner) (*Subscription, error) {
	var (
		s                Subscription
		events           string
		disabled         int
		prevExpires      sql.NullInt64
		created, updated int64
	)
	if err := row.Scan(&s.ID, &s.ApplicationID, &s.URL, &events, &disabled, &s.DisabledReason, &prevExpires, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(events), &s.Events); err != nil {
		return nil, fmt.Errorf("webhooks: subscription %s: events column: %w", s.ID, err)
	}
	s.Disabled = disabled != 0
	if prevExpires.Valid {
		s.PreviousSecretExpiresAt = ms(prevExpires.Int64)
	}
	s.CreatedAt, s.UpdatedAt = ms(created), ms(updated)
	return &s, nil
}

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func insertSubscription(ctx context.Context, tx *sql.Tx, s *Subscription, sealed string) error {
	events, err := json.Marshal(s.Events)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO webhook_subscriptions (id, application_id, url, events, secret_sealed, disabled,
			disabled_reason, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, 0, '', $6, $6)`,
		s.ID, s.ApplicationID, s.URL, string(events), sealed, s.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("webhooks: insert subscription: %w", err)
	}
	return nil
}

// getSubscription returns a live (not deleted) subscription of the application.
func getSubscription(ctx context.Context, q querier, applicationID, id string) (*Subscription, error) {
	s, err := scanSubscription(q.QueryRowContext(ctx, `SELECT `+subscriptionColumns+` FROM webhook_subscriptions
		WHERE id = $1 AND application_id = $2 AND deleted_at IS NULL`, id, applicationID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: read subscription: %w", err)
	}
	return s, nil
}

func querySubscriptions(ctx context.Context, q querier, where string, args ...any) ([]*Subscription, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+subscriptionColumns+` FROM webhook_subscriptions WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list subscriptions: %w", err)
	}
	defer rows.Close()
	var out []*Subscription
	for rows.Next() {
		s, err := scanSubscription(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// listSubscriptions returns the application's live subscriptions, oldest first.
func listSubscriptions(ctx context.Context, q querier, applicationID string) ([]*Subscription, error) {
	return querySubscriptions(ctx, q, `application_id = $1 AND deleted_at IS NULL`, applicationID)
}

// enabledSubscriptions returns the subscriptions that receive the application's events.
func enabledSubscriptions(ctx context.Context, q querier, applicationID string) ([]*Subscription, error) {
	return querySubscriptions(ctx, q, `application_id = $1 AND deleted_at IS NULL AND disabled = 0`, applicationID)
}

// sendState is everything one delivery attempt needs.
type sendState struct {
	DeliveryID, ApplicationID, SubscriptionID, EventID, Status string
	URL                                                        string
	Disabled, Deleted                                          bool
	Secret, PreviousSecret                                     string // sealed
	PreviousExpires                                            time.Time
	Body                                                       []byte
}

func loadSendState(ctx context.Context, q querier, deliveryID string) (*sendState, error) {
	var (
		st       sendState
		disabled int
		deleted  sql.NullInt64
		prev     sql.NullString
		prevExp  sql.NullInt64
		body     string
	)
	err := q.QueryRowContext(ctx, `SELECT d.id, d.application_id, d.subscription_id, d.event_id, d.status,
			s.url, s.disabled, s.deleted_at, s.secret_sealed, s.previous_secret_sealed, s.previous_secret_expires_at, e.body
		FROM webhook_deliveries d
		JOIN webhook_subscriptions s ON s.id = d.subscription_id
		JOIN webhook_events e ON e.id = d.event_id
		WHERE d.id = $1`, deliveryID).Scan(&st.DeliveryID, &st.ApplicationID, &st.SubscriptionID, &st.EventID, &st.Status,
		&st.URL, &disabled, &deleted, &st.Secret, &prev, &prevExp, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: read delivery: %w", err)
	}
	st.Disabled, st.Deleted, st.PreviousSecret, st.Body = disabled != 0, deleted.Valid, prev.String, []byte(body)
	if prevExp.Valid {
		st.PreviousExpires = ms(prevExp.Int64)
	}
	return &st, nil
}

const deliveryColumns = `d.id, d.application_id, d.subscription_id, d.event_id, e.name, d.job_id, d.status, d.attempts,
	d.last_status_code, d.last_error, d.next_attempt_at, d.delivered_at, d.created_at, d.updated_at`

const deliveryFrom = ` FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id`

func scanDelivery(row scanner) (*Delivery, error) {
	var (
		d                Delivery
		code             sql.NullInt64
		next, delivered  sql.NullInt64
		created, updated int64
	)
	if err := row.Scan(&d.ID, &d.ApplicationID, &d.SubscriptionID, &d.EventID, &d.EventName, &d.JobID, &d.Status, &d.Attempts,
		&code, &d.LastError, &next, &delivered, &created, &updated); err != nil {
		return nil, err
	}
	d.LastStatusCode = int(code.Int64)
	if next.Valid {
		d.NextAttemptAt = ms(next.Int64)
	}
	if delivered.Valid {
		d.DeliveredAt = ms(delivered.Int64)
	}
	d.CreatedAt, d.UpdatedAt = ms(created), ms(updated)
	return &d, nil
}

func getDelivery(ctx context.Context, q querier, e store.Engine, applicationID, id string) (*Delivery, error) {
	d, err := scanDelivery(q.QueryRowContext(ctx, `SELECT `+deliveryColumns+deliveryFrom+` WHERE d.id = $1 AND d.application_id = $2`, id, applicationID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: read delivery: %w", err)
	}
	if err := attachAttempts(ctx, q, e, []*Delivery{d}); err != nil {
		return nil, err
	}
	return d, nil
}

// listDeliveries returns one page of the application's deliveries, newest
// first (keyset pagination on created_at, id).
func listDeliveries(ctx context.Context, q querier, e store.Engine, applicationID string, f DeliveryFilter) (*DeliveryPage, error) {
	p := store.NewParams(e)
	where := []string{"d.application_id = " + p.Add(applicationID)}
	if f.SubscriptionID != "" {
		where = append(where, "d.subscription_id = "+p.Add(f.SubscriptionID))
	}
	if f.EventID != "" {
		where = append(where, "d.event_id = "+p.Add(f.EventID))
	}
	if f.Status != "" {
		where = append(where, "d.status = "+p.Add(f.Status))
	}
	if f.Cursor != "" {
		created, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		where = append(where, "(d.created_at < "+p.Add(created)+" OR (d.created_at = "+p.Add(created)+" AND d.id < "+p.Add(id)+"))")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultPageLimit
	}
	query := `SELECT ` + deliveryColumns + deliveryFrom + ` WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY d.created_at DESC, d.id DESC LIMIT ` + p.Add(limit+1)
	rows, err := q.QueryContext(ctx, query, p.Args()...)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list deliveries: %w", err)
	}
	defer rows.Close()
	page := &DeliveryPage{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		page.Deliveries = append(page.Deliveries, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if len(page.Deliveries) > limit {
		page.Deliveries = page.Deliveries[:limit]
		last := page.Deliveries[limit-1]
		page.NextCursor = encodeCursor(last.CreatedAt.UnixMilli(), last.ID)
	}
	if err := attachAttempts(ctx, q, e, page.Deliveries); err != nil {
		return nil, err
	}
	return page, nil
}

// attachAttempts loads the attempt log of each delivery.
func attachAttempts(ctx context.Context, q querier, e store.Engine, ds []*Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	byID := make(map[string]*Delivery, len(ds))
	ids := make([]any, len(ds))
	for i, d := range ds {
		byID[d.ID] = d
		ids[i] = d.ID
	}
	p := store.NewParams(e)
	in := p.List(ids...)
	rows, err := q.QueryContext(ctx, `SELECT delivery_id, attempt, status_code, error, duration_ms, attempted_at
		FROM webhook_delivery_attempts WHERE delivery_id IN (`+in+`) ORDER BY delivery_id, attempt`, p.Args()...)
	if err != nil {
		return fmt.Errorf("webhooks: read attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id        string
			a         Attempt
			code      sql.NullInt64
			durMS, at int64
		)
		if err := rows.Scan(&id, &a.Attempt, &code, &a.Error, &durMS, &at); err != nil {
			return err
		}
		a.StatusCode, a.Duration, a.AttemptedAt = int(code.Int64), time.Duration(durMS)*time.Millisecond, ms(at)
		byID[id].Log = append(byID[id].Log, a)
	}
	return rows.Err()
}

var errBadCursor = errors.New("webhooks: invalid cursor")

func encodeCursor(createdMS int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(createdMS, 10) + ":" + id))
}

func decodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", errBadCursor
	}
	ts, id, ok := strings.Cut(string(b), ":")
	if !ok || id == "" {
		return 0, "", errBadCursor
	}
	v, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, "", errBadCursor
	}
	return v, id, nil
}
