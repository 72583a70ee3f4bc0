// Package cluster runs several `ponte serve` processes on one PostgreSQL
// behind HAProxy, the scale-out deployment of issue 17 §3, for tests and
// bench runs: it builds the binary, generates one key set (`ponte keys
// init`), starts the instances with it, each with its own data directory,
// and with one public URL (HAProxy's frontend), writes HAProxy's configuration
// from deploy/haproxy.cfg and runs it in the foreground, and kills,
// terminates and restarts instances on demand.
package cluster

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for NewSchema
)

// HealthCheck is HAProxy's health check timing (default-server inter, fall, rise).
type HealthCheck struct {
	Inter      time.Duration
	Fall, Rise int
}

// FastCheck is the timing tests use: an instance is out of rotation 200 ms
// after it turns unready, back 100 ms after it is ready.
var FastCheck = HealthCheck{Inter: 100 * time.Millisecond, Fall: 2, Rise: 1}

// Options describe a cluster.
type Options struct {
	// Bin is the ponte binary (Build makes one).
	Bin string
	// Root is the module root, where deploy/haproxy.cfg is read.
	Root string
	// DatabaseURL is the PostgreSQL database every instance uses.
	DatabaseURL string
	// Instances is how many `ponte serve` to run (default 2).
	Instances int
	// Dir holds the data directories, the logs and haproxy.cfg.
	Dir string
	// KeysDir is the key set every instance is started with (--keys-dir),
	// each with a data directory of its own. Empty: Start generates one
	// with `ponte keys init --sandbox` into Dir/keys, as an operator does.
	KeysDir string
	// Args are extra `ponte serve` flags of every instance.
	Args []string
	// Check is HAProxy's health check timing (zero: FastCheck).
	Check HealthCheck
	// HAProxy is the haproxy binary (default: haproxy on PATH).
	HAProxy string
	// StartTimeout bounds one instance's start (default 120 s: a loaded machine).
	StartTimeout time.Duration
}

// Cluster is the running processes.
type Cluster struct {
	// URL is HAProxy's frontend, every instance's --public-url.
	URL string
	// StatsURL is HAProxy's stats page.
	StatsURL  string
	Instances []*Instance
	// ClientID and ClientSecret are the sandbox demo application's.
	ClientID, ClientSecret string

	opts    Options
	haproxy *process
}

// Instance is one `ponte serve`.
type Instance struct {
	// Name is its HAProxy server name and --instance.
	Name string
	// URL addresses the instance directly, bypassing HAProxy.
	URL     string
	addr    string
	dataDir string
	log     string
	proc    *process
	bin     string
	args    []string
}

// process is a started command and its end.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once reaped
	waitErr error
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits until the process is reaped.
func (p *process) kill() error {
	if !p.running() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGKILL pid %d: %w", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("pid %d still running 10 s after SIGKILL", p.cmd.Process.Pid)
	}
}

// ModuleRoot is the directory holding go.mod, from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cluster: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Build builds root's ./cmd/ponte into out.
func Build(ctx context.Context, root, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/ponte")
	cmd.Dir = root
	cmd.WaitDelay = 10 * time.Second
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cluster: go build ./cmd/ponte: %w\n%s", err, b)
	}
	return nil
}

// KeysInit generates a sandbox key set into dir with `ponte keys init`.
func KeysInit(ctx context.Context, bin, dir string) error {
	cmd := exec.CommandContext(ctx, bin, "keys", "init", "--dir", dir, "--sandbox")
	cmd.Env = envWithoutPonte()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cluster: ponte keys init --dir %s --sandbox: %w\n%s", dir, err, b)
	}
	return nil
}

// NewSchema creates a schema of its own in the PostgreSQL database at base
// and returns a URL whose search_path points at it, and a function dropping it.
func NewSchema(ctx context.Context, base string) (string, func() error, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	schema := "ponte_cluster_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, fmt.Errorf("cluster: open %s: %w", base, err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("cluster: create schema: %w", err)
	}
	drop := func() error {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return err
		}
		defer admin.Close()
		_, err = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		return err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, errors.Join(err, drop())
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// freePort is a loopback port nothing listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Start starts the instances concurrently (their sandbox seeding races on
// one database, as in a real rollout), then HAProxy, and returns once
// HAProxy sees every instance up. On error everything started is killed.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.Instances <= 0 {
		opts.Instances = 2
	}
	if opts.Check == (HealthCheck{}) {
		opts.Check = FastCheck
	}
	if opts.HAProxy == "" {
		opts.HAProxy = "haproxy"
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 120 * time.Second
	}
	front, err := freePort()
	if err != nil {
		return nil, err
	}
	stats, err := freePort()
	if err != nil {
		return nil, err
	}
	c := &Cluster{URL: fmt.Sprintf("http://127.0.0.1:%d", front), StatsURL: fmt.Sprintf("http://127.0.0.1:%d/stats", stats), opts: opts}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if opts.KeysDir == "" {
		opts.KeysDir = filepath.Join(opts.Dir, "keys")
		c.opts.KeysDir = opts.KeysDir
		if err := KeysInit(ctx, opts.Bin, opts.KeysDir); err != nil {
			return nil, err
		}
	}
	for i := range opts.Instances {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("ponte%d", i+1)
		in := &Instance{Name: name, addr: fmt.Sprintf("127.0.0.1:%d", port), bin: opts.Bin,
			log: filepath.Join(opts.Dir, name+".log"), dataDir: filepath.Join(opts.Dir, "data-"+name)}
		in.URL = "http://" + in.addr
		in.args = append([]string{"serve", "--addr", in.addr, "--public-url", c.URL, "--database-url", opts.DatabaseURL,
			"--keys-dir", opts.KeysDir, "--data-dir", in.dataDir, "--log-format", "json", "--instance", name}, opts.Args...)
		c.Instances = append(c.Instances, in)
	}
	errs := make([]error, len(c.Instances))
	var wg sync.WaitGroup
	for i, in := range c.Instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = in.start(ctx, opts.StartTimeout)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	creds, err := readBanner(c.Instances[0].log)
	if err != nil {
		return nil, err
	}
	c.ClientID, c.ClientSecret = creds[0], creds[1]
	for _, in := range c.Instances[1:] {
		other, err := readBanner(in.log)
		if err != nil {
			return nil, err
		}
		if other != creds {
			return nil, fmt.Errorf("cluster: %s prints the demo client %s, %s prints %s: the instances disagree",
				c.Instances[0].Name, creds[0], in.Name, other[0])
		}
	}
	cfg, err := c.haproxyConfig(front, stats)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(opts.Dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(opts.Dir, "haproxy.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(opts.HAProxy, "-f", path, "-db")
	cmd.Stdout, cmd.Stderr = logf, logf
	c.haproxy, err = startProcess(cmd)
	logf.Close() // the child holds its own descriptor
	if err != nil {
		return nil, fmt.Errorf("cluster: start haproxy: %w", err)
	}
	for _, in := range c.Instances {
		if err := c.WaitServer(ctx, in.Name, "UP", opts.StartTimeout); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// start runs `ponte serve` and waits until its /readyz answers 200.
func (in *Instance) start(ctx context.Context, timeout time.Duration) error {
	logf, err := os.OpenFile(in.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== cluster: %s %s\n", in.bin, strings.Join(in.args, " "))
	cmd := exec.Command(in.bin, in.args...)
	cmd.Env = envWithoutPonte()
	cmd.Stdout, cmd.Stderr = logf, logf
	if in.proc, err = startProcess(cmd); err != nil {
		return fmt.Errorf("cluster: start %s: %w", in.Name, err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		res, err := client.Get(in.URL + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-in.proc.exited:
			return fmt.Errorf("cluster: %s exited while starting (%v); log %s:\n%s", in.Name, in.proc.waitErr, in.log, tail(in.log))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: %s not ready after %s; log %s:\n%s", in.Name, timeout, in.log, tail(in.log))
		}
	}
}

// readBanner returns the demo client id and secret an instance printed.
func readBanner(log string) ([2]string, error) {
	var out [2]string
	f, err := os.Open(log)
	if err != nil {
		return out, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "client_id:"); ok {
			out[0] = strings.TrimSpace(v)
		} else if v, ok := strings.CutPrefix(line, "client_secret:"); ok {
			out[1] = strings.TrimSpace(v)
		}
	}
	if out[0] == "" || out[1] == "" {
		return out, fmt.Errorf("cluster: no demo client in the banner of %s", log)
	}
	return out, sc.Err()
}

// haproxyConfig is deploy/haproxy.cfg with this cluster's addresses and
// check timing: the frontend's and the stats page's bind lines, the
// backend's default-server line and its server lines are replaced.
func (c *Cluster) haproxyConfig(front, stats int) (string, error) {
	tmpl, err := os.ReadFile(filepath.Join(c.opts.Root, "deploy", "haproxy.cfg"))
	if err != nil {
		return "", fmt.Errorf("cluster: the HAProxy template: %w", err)
	}
	var out strings.Builder
	section := ""
	replaced := map[string]bool{}
	for _, line := range strings.Split(string(tmpl), "\n") {
		trimmed := strings.TrimSpace(line)
		if line != "" && line[0] != ' ' && line[0] != '\t' && line[0] != '#' {
			section = trimmed
		}
		switch {
		case section == "frontend ponte" && strings.HasPrefix(trimmed, "bind "):
			line = fmt.Sprintf("    bind 127.0.0.1:%d", front)
			replaced["frontend bind"] = true
		case section == "listen stats" && strings.HasPrefix(trimmed, "bind "):
			line = fmt.Sprintf("    bind 127.0.0.1:%d", stats)
			replaced["stats bind"] = true
		case section == "backend ponte" && strings.HasPrefix(trimmed, "server "):
			continue
		case section == "backend ponte" && strings.HasPrefix(trimmed, "default-server "):
			ck := c.opts.Check
			line = fmt.Sprintf("    default-server check inter %dms fall %d rise %d", ck.Inter.Milliseconds(), ck.Fall, ck.Rise)
			for _, in := range c.Instances {
				line += fmt.Sprintf("\n    server %s %s", in.Name, in.addr)
			}
			replaced["default-server"] = true
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	for _, want := range []string{"frontend bind", "stats bind", "default-server"} {
		if !replaced[want] {
			return "", fmt.Errorf("cluster: deploy/haproxy.cfg has no %s line to replace", want)
		}
	}
	return strings.TrimRight(out.String(), "\n") + "\n", nil
}

// ServerStatus is HAProxy's status of each server of the backend ("UP",
// "DOWN", "MAINT", "UP 1/2", …), from its stats page.
func (c *Cluster) ServerStatus(ctx context.Context) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.StatsURL+";csv", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(body), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "# ") {
		return nil, fmt.Errorf("cluster: unexpected stats page: %.200s", body)
	}
	header := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	out := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) < len(header) || f[col["pxname"]] != "ponte" || f[col["svname"]] == "BACKEND" {
			continue
		}
		out[f[col["svname"]]] = f[col["status"]]
	}
	return out, nil
}

// WaitServer waits until HAProxy reports server name in a status starting
// with want ("UP" or "DOWN").
func (c *Cluster) WaitServer(ctx context.Context, name, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last map[string]string
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = c.ServerStatus(ctx)
		if lastErr == nil && strings.HasPrefix(last[name], want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("cluster: HAProxy does not see %s %s after %s (last: %v, %v)", name, want, timeout, last, lastErr)
}

// Kill sends SIGKILL to instance i and waits until it is gone.
func (c *Cluster) Kill(i int) error {
	return c.Instances[i].proc.kill()
}

// Terminate sends SIGTERM to instance i and waits up to timeout for it to
// exit; it returns the exit code.
func (c *Cluster) Terminate(i int, timeout time.Duration) (int, error) {
	p := c.Instances[i].proc
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return -1, fmt.Errorf("SIGTERM %s: %w", c.Instances[i].Name, err)
	}
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("cluster: %s still running %s after SIGTERM", c.Instances[i].Name, timeout)
	}
}

// Restart starts instance i again (after Kill or Terminate) on the same
// address and waits until HAProxy sends it traffic.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	in := c.Instances[i]
	if in.proc.running() {
		return fmt.Errorf("cluster: %s is still running", in.Name)
	}
	if err := in.start(ctx, c.opts.StartTimeout); err != nil {
		return err
	}
	return c.WaitServer(ctx, in.Name, "UP", c.opts.StartTimeout)
}

// CLI runs a `ponte` command against the cluster's database and key set
// (--database-url and --keys-dir are added) and returns its output.
func (c *Cluster) CLI(ctx context.Context, args ...string) ([]byte, error) {
	args = append(args, "--database-url", c.opts.DatabaseURL, "--keys-dir", c.opts.KeysDir)
	cmd := exec.CommandContext(ctx, c.opts.Bin, args...)
	cmd.Env = envWithoutPonte()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("cluster: ponte %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// DatabaseURL is the database every instance uses.
func (c *Cluster) DatabaseURL() string { return c.opts.DatabaseURL }

// Pid is the instance's current process id.
func (in *Instance) Pid() int { return in.proc.cmd.Process.Pid }

// Running reports whether the instance's process is alive.
func (in *Instance) Running() bool { return in.proc.running() }

// Log is the instance's standard output and error, every start appended.
func (in *Instance) Log() string {
	b, _ := os.ReadFile(in.log)
	return string(b)
}

// LogPath is the file Log reads.
func (in *Instance) LogPath() string { return in.log }

// CPU is the CPU time (user and system) the instance's current process has used.
func (in *Instance) CPU() (time.Duration, error) { return processCPU(in.Pid()) }

// HAProxyCPU is the CPU time HAProxy has used.
func (c *Cluster) HAProxyCPU() (time.Duration, error) { return processCPU(c.haproxy.cmd.Process.Pid) }

// processCPU reads utime and stime from /proc/PID/stat (Linux).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("cluster: /proc/%d/stat: %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// Close kills HAProxy and every instance still running.
func (c *Cluster) Close() error {
	var errs []error
	if c.haproxy != nil {
		errs = append(errs, c.haproxy.kill())
	}
	for _, in := range c.Instances {
		if in.proc != nil {
			errs = append(errs, in.proc.kill())
		}
	}
	return errors.Join(errs...)
}

// HAProxyLog is HAProxy's output.
func (c *Cluster) HAProxyLog() string {
	b, _ := os.ReadFile(filepath.Join(c.opts.Dir, "haproxy.log"))
	return string(b)
}

// tail is the end of a log file, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const n = 4 << 10
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// envWithoutPonte is this process's environment without PONTE_* variables,
// so a developer's settings cannot change what runs.
func envWithoutPonte() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PONTE_") {
			env = append(env, kv)
		}
	}
	return env
}
