package pcm

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// started Forwarder must be stopped and joined, and leave no connection.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// pgx closes a connection whose query was cancelled (a stopped
		// worker's poll) in a goroutine of its own: a cancel request, then a
		// bounded wait for the server. The driver's cleanup, not ours.
		goleak.IgnoreAnyFunction("github.com/jackc/pgx/v5/pgconn.(*PgConn).asyncClose.func1"),
	)
}
