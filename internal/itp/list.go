package itp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ListFilter narrows ListSessions. Zero fields do not filter; the time bounds
// are pointers because the zero time is a bound a client may send.
type ListFilter struct {
	Statuses    []Status
	ExternalID  string
	BrandID     string
	TagKey      string // with TagValue: sessions whose top-level tag TagKey is TagValue
	TagValue    string
	CreatedFrom *time.Time // inclusive; nil: no lower bound
	CreatedTo   *time.Time // exclusive; nil: no upper bound
	Limit       int        // 1…MaxListLimit; 0: DefaultListLimit
	Cursor      string     // from a previous page's next cursor
}

// List page sizes.
const (
	DefaultListLimit = 25
	MaxListLimit     = 100
)

// ErrBadCursor is a cursor ListSessions did not issue.
var ErrBadCursor = errors.New("itp: invalid cursor")

// ListSessions returns application applicationID's sessions matching f,
// newest first, and the cursor of the next page ("" on the last page).
func (s *Service) ListSessions(ctx context.Context, applicationID string, f ListFilter) ([]*Session, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	q, args, err := listSessionsQuery(s.DB.Engine(), applicationID, f, limit)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.DB.Read().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("itp: list journey sessions: %w", err)
	}
	defer rows.Close()
	out := []*Session{}
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("itp: list journey sessions: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = EncodeCursor(last.CreatedAt.UnixMilli(), last.ID)
	}
	return out, next, nil
}

// EncodeCursor is the opaque list cursor after an item created at (Unix
// milliseconds) with id: lists ordered newest first, ties by id, continue
// from it (sessions here, itpflow's transfers).
func EncodeCursor(at int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at, 10) + "." + id))
}

// DecodeCursor reads a cursor EncodeCursor wrote; anything else is ErrBadCursor.
func DecodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", ErrBadCursor
	}
	at, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || id == "" {
		return 0, "", ErrBadCursor
	}
	return n, id, nil
}
