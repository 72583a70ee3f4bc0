// Package benchproc starts and watches the server processes of the bench
// runs that measure Ponte from outside (loadrun, pgrun): build a binary,
// start it and read its banner, wait for /readyz, read a process's CPU time
// and the machine's load from /proc. One copy, so the runs measure alike.
package benchproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ModuleRoot is the directory of the go.mod that encloses the working directory.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the bench from inside the Ponte module (go run ./bench/...)")
	}
	return filepath.Dir(mod), nil
}

// Build compiles pkg (relative to root) into out.
func Build(ctx context.Context, root, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, stderr.String())
	}
	return nil
}

// Child is a server process started by a bench run.
type Child struct {
	Name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when the process has exited
	waitErr error
}

// Start runs bin with args, standard error going to logPath, and calls onLine
// for each standard output line until onLine returns true (the banner is
// complete) or the process exits, whichever comes first, within timeout.
// Standard output keeps being drained afterwards, so the child never blocks.
func Start(ctx context.Context, name, bin string, args, env []string, logPath string, timeout time.Duration, onLine func(string) (bool, error)) (*Child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = pw, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	pw.Close()
	logf.Close()
	c := &Child{Name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()

	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		done := false
		for sc.Scan() {
			if done {
				continue
			}
			ok, err := onLine(sc.Text())
			if err != nil || ok {
				done = true
				ready <- err
			}
		}
		if !done {
			ready <- fmt.Errorf("%s exited before it was ready", name)
		}
		pr.Close()
	}()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err = <-ready:
	case <-timer.C:
		err = fmt.Errorf("%s printed no banner within %s", name, timeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		c.Stop()
		return nil, fmt.Errorf("%w%s", err, c.LogTail())
	}
	return c, nil
}

// Pid is the process id, for its CPU time (ProcCPU).
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Err is how the process ended (after Running turned false).
func (c *Child) Err() error {
	<-c.exited
	return c.waitErr
}

// Running reports whether the process is still alive.
func (c *Child) Running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// Stop asks the process to shut down gracefully (SIGINT), and kills it if it
// has not exited after 15 s. It is safe to call more than once.
func (c *Child) Stop() {
	if c == nil || !c.Running() {
		return
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// LogTail returns the last lines of the child's standard error, for error messages.
func (c *Child) LogTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\n--- last lines of " + c.Name + "'s log ---\n" + strings.Join(lines, "\n")
}

var ponteBanner = regexp.MustCompile(`^Ponte is running in \S+ mode on (http://127\.0\.0\.1:\d+) `)

// PonteInfo is what a run learns from Ponte's banner: its URL and the
// sandbox demo application's credentials.
type PonteInfo struct {
	URL, ClientID, ClientSecret string
}

// PonteBannerParser returns an onLine function that fills info from the banner.
func PonteBannerParser(info *PonteInfo) func(string) (bool, error) {
	first := true
	return func(line string) (bool, error) {
		if first {
			first = false
			m := ponteBanner.FindStringSubmatch(line)
			if m == nil {
				return false, fmt.Errorf("unexpected first line from ponte: %q", line)
			}
			info.URL = m[1]
			return false, nil
		}
		if v, ok := strings.CutPrefix(line, "  client_id:"); ok {
			info.ClientID = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "  client_secret:"); ok {
			info.ClientSecret = strings.TrimSpace(v)
		}
		return info.ClientID != "" && info.ClientSecret != "", nil
	}
}

// BaselineParser reads the baseline's URL from its first line.
func BaselineParser(url *string) func(string) (bool, error) {
	return func(line string) (bool, error) {
		if !strings.HasPrefix(line, "http://127.0.0.1:") {
			return false, fmt.Errorf("unexpected first line from baseline: %q", line)
		}
		*url = strings.TrimSpace(line)
		return true, nil
	}
}

// WaitReady polls GET url until it answers 200, for at most timeout.
func WaitReady(ctx context.Context, client *http.Client, url string, c *Child, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !c.Running() {
			return fmt.Errorf("%s exited while starting%s", c.Name, c.LogTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s%s", c.Name, url, timeout, c.LogTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ProcCPU is the CPU time (user + system, all threads) process pid has used
// so far, from /proc (Linux; 0 elsewhere). Its resolution is the clock tick.
func ProcCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // the command name may hold spaces
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// ProcWakeups is how many times process pid's main thread has blocked and
// been woken (voluntary context switches, from /proc; 0 elsewhere): all of
// a single-threaded process such as a PostgreSQL backend, which blocks for a
// client message not there yet, a WAL flush, a lock — so fewer round trips
// and commits show as fewer wake-ups.
func ProcWakeups(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	return parseWakeups(string(b))
}

// parseWakeups reads voluntary_ctxt_switches from a /proc status file.
func parseWakeups(status string) int64 {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// mainstream Linux architecture.
const clockTicks = 100

// LoadAvg is the 1-minute load average (Linux; 0 elsewhere).
func LoadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// FSType names the file system holding path (Linux; "unknown" elsewhere), so
// the report says whether Ponte's fsync reached a disk or a tmpfs.
func FSType(path string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown"
	}
	best, typ := "", "unknown"
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mnt := f[1]
		if (path == mnt || strings.HasPrefix(path, strings.TrimSuffix(mnt, "/")+"/")) && len(mnt) > len(best) {
			best, typ = mnt, f[2]
		}
	}
	return typ
}
