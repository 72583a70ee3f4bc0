package jobs

import (
	"context"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestEnqueueQuery: the statement inserts the row Enqueue would (read back
// through Get), once per row of from, and nothing when from has no row or
// the unique key is taken.
func TestEnqueueQuery(t *testing.T) {
	t.Parallel()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	db := storetest.Open(t, storetest.FreshSchema(t, base))
	ctx := context.Background()
	run := func(j Job, from string, open bool) int64 {
		t.Helper()
		var args []any
		arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
		q, err := EnqueueQuery(epoch, j, from, arg)
		if err != nil {
			t.Fatal(err)
		}
		tag, err := db.Pool().Exec(ctx, `WITH gate AS (SELECT 1 AS one WHERE `+arg(open)+`) `+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return tag.RowsAffected()
	}
	job := Job{Kind: testKind, Payload: map[string]int{"n": 1}, RunAt: epoch.Add(time.Minute), UniqueKey: "u1"}
	if n := run(job, "gate", true); n != 1 {
		t.Fatalf("inserted %d jobs, want 1", n)
	}
	if n := run(job, "gate", true); n != 0 {
		t.Errorf("a taken unique key: inserted %d jobs, want 0", n)
	}
	if n := run(Job{Kind: testKind, UniqueKey: "u2"}, "gate", false); n != 0 {
		t.Errorf("from without a row: inserted %d jobs, want 0", n)
	}
	if n := run(Job{Kind: testKind, UniqueKey: "u3"}, "", false); n != 1 {
		t.Errorf("no from: inserted %d jobs, want 1", n)
	}
	if _, err := EnqueueQuery(epoch, Job{}, "", func(any) string { return "$1" }); err == nil {
		t.Error("a job without a kind was accepted")
	}

	// The row is the one Enqueue writes.
	var id string
	if err := db.Read().QueryRow(`SELECT id FROM jobs WHERE unique_key = 'u1'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	got, err := Get(ctx, db.Read(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := enqueue(t, db, epoch, Job{Kind: testKind, Payload: map[string]int{"n": 1}, RunAt: epoch.Add(time.Minute), UniqueKey: "u4"})
	w, err := Get(ctx, db.Read(), want)
	if err != nil {
		t.Fatal(err)
	}
	got.ID, got.UniqueKey, w.ID, w.UniqueKey = "", "", "", ""
	if string(got.Payload) != string(w.Payload) {
		t.Errorf("payload %s, Enqueue's %s", got.Payload, w.Payload)
	}
	got.Payload, w.Payload = nil, nil
	if !reflect.DeepEqual(got, w) {
		t.Errorf("EnqueueQuery's row %+v, Enqueue's %+v", *got, *w)
	}
}
