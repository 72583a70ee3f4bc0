package pcm

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: a
// started Forwarder must be stopped and joined, and leave no connection.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
