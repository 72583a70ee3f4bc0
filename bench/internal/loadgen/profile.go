package loadgen

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// Profiler writes CPU profiles of chosen phases only, so a profile shows the
// Ponte phase it is named after rather than the baseline's too. The profile
// covers the whole process (load generator included): filter it with pprof
// -focus.
type Profiler struct {
	Prefix string // file name prefix (typically a -cpuprofile flag); empty: no profiles
	Prog   string // program name, for error messages
}

// Start starts a CPU profile written to Prefix+"."+name and returns the
// function that stops it. Without a Prefix, or if the profile cannot be
// started (reported on stderr, the run goes on), both are no-ops.
func (p Profiler) Start(name string) (stop func()) {
	if p.Prefix == "" {
		return func() {}
	}
	f, err := os.Create(p.Prefix + "." + name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: profile: %v\n", p.Prog, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "%s: profile: %v\n", p.Prog, err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}
