package app_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: Serve
// and Close must stop and join every background worker they start.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// pgx closes a connection whose query was cancelled in a goroutine
		// of its own (a cancel request, then a bounded wait for the server):
		// the driver's cleanup, not ours.
		goleak.IgnoreAnyFunction("github.com/jackc/pgx/v5/pgconn.(*PgConn).asyncClose.func1"),
	)
}
