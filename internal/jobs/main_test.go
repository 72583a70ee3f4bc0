package jobs

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// Client a test starts must be stopped and joined.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
