package pcm

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// The SQLite settle must find each outcome's row by primary key: a scan of
// pcm_outbox per batch would grow with the table's whole history.
func TestSettleSQLitePlan(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, "sqlite:"+filepath.Join(t.TempDir(), "ponte.db"))
	const n = 3
	args := []any{int64(1), int64(1)}
	for i := range n {
		args = append(args, "event-"+string(rune('a'+i)), "ACCEPTED", "r", "")
	}
	if got, want := strings.Count(settleSQLite(n), "?"), len(args); got != want {
		t.Fatalf("settleSQLite(%d) has %d parameters, settle binds %d", n, got, want)
	}
	rows, err := db.Read().QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+settleSQLite(n), args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(plan, "\n")
	if !strings.Contains(joined, "SEARCH pcm_outbox USING INDEX sqlite_autoindex_pcm_outbox_1 (event_id=?)") ||
		strings.Contains(joined, "SCAN pcm_outbox") {
		t.Errorf("settle plan does not search pcm_outbox by primary key:\n%s", joined)
	}
}
