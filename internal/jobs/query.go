package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// insertColumns are the columns Enqueue and EnqueueQuery write, in the order
// of enqueueValues.
const insertColumns = `id, kind, payload, unique_key, state, attempt, max_attempts, run_at, created_at, updated_at`

// enqueueValues is the new row of j: its id and the values of insertColumns.
func enqueueValues(now time.Time, j Job) (string, []any, error) {
	if j.Kind == "" {
		return "", nil, errors.New("jobs: enqueue: empty kind")
	}
	payload, err := json.Marshal(j.Payload)
	if err != nil {
		return "", nil, fmt.Errorf("jobs: enqueue %s: encode payload: %w", j.Kind, err)
	}
	if j.MaxAttempts <= 0 {
		j.MaxAttempts = DefaultMaxAttempts
	}
	runAt := j.RunAt
	if runAt.IsZero() {
		runAt = now
	}
	var unique any
	if j.UniqueKey != "" {
		unique = j.UniqueKey
	}
	id := uuid.NewString()
	return id, []any{id, j.Kind, string(payload), unique, StateAvailable, 0, j.MaxAttempts,
		runAt.UnixMilli(), now.UnixMilli(), now.UnixMilli()}, nil
}

// EnqueueQuery is Enqueue as one PostgreSQL statement for a caller that
// sends it among its own, so that a hot write path takes one round trip (a
// data-modifying CTE or a pgx batch, atomic either way). arg turns a value
// into a placeholder of the caller's statement ("$n"). The job is inserted
// once per row of from, a table expression of the caller's (a CTE that
// returns one row when its write happened; "" : once, unconditionally), and
// not at all when j's unique key is taken.
func EnqueueQuery(now time.Time, j Job, from string, arg func(v any) string) (string, error) {
	_, values, err := enqueueValues(now, j)
	if err != nil {
		return "", err
	}
	q := `INSERT INTO jobs (` + insertColumns + `) SELECT `
	for i, v := range values {
		if i > 0 {
			q += ", "
		}
		q += arg(v)
	}
	if from != "" {
		q += " FROM " + from
	}
	return q + ` ON CONFLICT (unique_key) DO NOTHING`, nil
}
