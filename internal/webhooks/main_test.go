package webhooks

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// server, job worker and database a test starts must be stopped and joined.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// pgx closes a connection whose query was cancelled in a goroutine
		// of its own (a cancel request, then a bounded wait for the server):
		// the driver's cleanup, not ours.
		goleak.IgnoreAnyFunction("github.com/jackc/pgx/v5/pgconn.(*PgConn).asyncClose.func1"),
	)
}
