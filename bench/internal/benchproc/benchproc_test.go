package benchproc

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// TestProcReadings checks the /proc readers: this process's CPU time grows
// with work, a thread's wake-ups with blocking, and an absent process reads
// as zero.
func TestProcReadings(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	pid := os.Getpid()
	cpu0 := ProcCPU(pid)
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
		runtime.Gosched()
	}
	if cpu1 := ProcCPU(pid); cpu1 <= cpu0 {
		t.Errorf("CPU time did not grow over 100 ms of work: %s → %s", cpu0, cpu1)
	}
	if ProcWakeups(pid) <= 0 {
		t.Error("no voluntary context switches read for this process")
	}
	// The main thread's count is the process's; this goroutine's own thread
	// is read through /proc/thread-self, with the same parsing.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := func() int64 {
		b, err := os.ReadFile("/proc/thread-self/status")
		if err != nil {
			t.Skip("no /proc/thread-self")
		}
		return parseWakeups(string(b))
	}
	w0 := self()
	for range 5 {
		time.Sleep(2 * time.Millisecond)
	}
	if w1 := self(); w1 < w0+5 {
		t.Errorf("5 sleeps gave %d voluntary context switches, want at least 5", w1-w0)
	}
	if ProcCPU(-1) != 0 || ProcWakeups(-1) != 0 {
		t.Error("an absent process should read as zero")
	}
	if LoadAvg() < 0 {
		t.Error("negative load average")
	}
}
