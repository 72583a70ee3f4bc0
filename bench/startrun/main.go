// Command startrun measures how long `ponte serve` takes to become ready on
// an empty data directory (keys, migrations and the sandbox are made first)
// against a second start on the same directory (everything exists), in the
// same run:
//
//	go run ./bench/startrun [-rounds 5]
//
// It builds ./cmd/ponte into a temporary directory and, each round, starts it
// twice on 127.0.0.1:0 with one fresh data directory: the first start makes
// everything, the second finds it. Each start is timed from exec to the
// first 200 from /readyz, and the process's CPU time (user + system) up to
// then is printed beside it. The target (issue 13 §4) is a first start under
// 1 s to ready; the second start is the same-run baseline, so the ratio says
// what making the material costs on this machine at this moment. It reports;
// it never fails on a figure.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	rounds := flag.Int("rounds", 5, "rounds of first and second start")
	flag.Parse()
	if err := run(context.Background(), *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "startrun:", err)
		os.Exit(1)
	}
}

type start struct {
	ready time.Duration // exec to the first 200 from /readyz
	cpu   time.Duration // the process's user + system time by then
}

func run(ctx context.Context, rounds int) error {
	tmp, err := os.MkdirTemp("", "startrun-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "ponte")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ponte")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build ponte (run from the repository root): %w", err)
	}
	var first, second []start
	for i := range rounds {
		dir := filepath.Join(tmp, fmt.Sprintf("data-%d", i))
		f, err := serveUntilReady(ctx, bin, dir)
		if err != nil {
			return fmt.Errorf("round %d, first start: %w", i+1, err)
		}
		s, err := serveUntilReady(ctx, bin, dir)
		if err != nil {
			return fmt.Errorf("round %d, second start: %w", i+1, err)
		}
		fmt.Printf("round %d: first %6.0f ms (cpu %5.0f ms)   second %6.0f ms (cpu %5.0f ms)   ratio %.1f\n",
			i+1, ms(f.ready), ms(f.cpu), ms(s.ready), ms(s.cpu), float64(f.ready)/float64(s.ready))
		first, second = append(first, f), append(second, s)
	}
	fr, sr := readies(first), readies(second)
	fmt.Printf("first start to ready:  %.0f–%.0f ms (median %.0f ms); target < 1000 ms: %s\n",
		ms(fr[0]), ms(fr[len(fr)-1]), ms(fr[len(fr)/2]), verdict(fr[len(fr)/2] < time.Second))
	fmt.Printf("second start to ready: %.0f–%.0f ms (median %.0f ms)\n", ms(sr[0]), ms(sr[len(sr)-1]), ms(sr[len(sr)/2]))
	return nil
}

// addrLine is the banner line that names the address Ponte listens on.
var addrLine = regexp.MustCompile(`running in \w+ mode on (http://[0-9.:]+)`)

// serveUntilReady starts ponte serve on dir, waits for /readyz to answer
// 200, reads the process's CPU time, and stops it.
func serveUntilReady(ctx context.Context, bin, dir string) (start, error) {
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return start{}, err
	}
	cmd.Stderr = io.Discard
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return start{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	base := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := addrLine.FindStringSubmatch(sc.Text()); m != nil {
				base <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	deadline := time.After(time.Minute)
	var url string
	select {
	case url = <-base:
	case <-deadline:
		return start{}, errors.New("no address in the banner within a minute")
	}
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-deadline:
			return start{}, errors.New("not ready within a minute")
		case <-time.After(5 * time.Millisecond):
		}
	}
	ready := time.Since(t0)
	cpu, err := processCPU(cmd.Process.Pid)
	if err != nil {
		return start{}, err
	}
	return start{ready: ready, cpu: cpu}, nil
}

// processCPU reads a running process's user + system time from /proc.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read the server's CPU time (Linux /proc): %w", err)
	}
	// The command name may hold spaces: fields start after its closing ')'.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

func readies(ss []start) []time.Duration {
	d := make([]time.Duration, len(ss))
	for i, s := range ss {
		d[i] = s.ready
	}
	slices.Sort(d)
	return d
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
