package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver

	"github.com/ponte-ofb/ponte/bench/internal/benchdb"
	"github.com/ponte-ofb/ponte/bench/internal/benchproc"
)

// Engine names, as printed.
const (
	SQLite     = "SQLite"
	PostgreSQL = "PostgreSQL"
)

// server is one `ponte serve` of the run, on one engine, with a fresh
// database, and what the run needs to load it.
type server struct {
	engine  string
	bin     string
	child   *benchproc.Child
	url     string
	dataDir string
	dbURL   string // --database-url; empty on SQLite (DATA-DIR/ponte.db)
	// appName is the application_name of Ponte's PostgreSQL connections:
	// their backends' CPU time is read from /proc.
	appName string
	db      *sql.DB // the run's own connection, for setup outside the slices
	client  *http.Client
	demo    struct{ clientID, token, appID string }
	partner *partner
	drop    func() // drops the PostgreSQL schema
}

// startServer starts `ponte serve` on engine with a fresh data directory
// under tmp (and a fresh schema of pgBase on PostgreSQL), waits for
// /readyz, and takes the sandbox demo application's token.
func startServer(ctx context.Context, bin, tmp, name, engine, pgBase string) (_ *server, err error) {
	s := &server{engine: engine, bin: bin, dataDir: filepath.Join(tmp, name+"-"+strings.ToLower(engine)), drop: func() {}}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", s.dataDir, "--token-ttl", "1h"}
	if engine == PostgreSQL {
		u, drop, err := benchdb.FreshSchema(pgBase, "pgrun")
		if err != nil {
			return nil, err
		}
		s.drop = drop
		pu, err := url.Parse(u)
		if err != nil {
			return nil, err
		}
		q := pu.Query()
		s.appName = "ponte-" + q.Get("search_path") // the schema's name, unique to this server
		q.Set("application_name", s.appName)
		pu.RawQuery = q.Encode()
		s.dbURL = pu.String()
		args = append(args, "--database-url", s.dbURL)
		// The run's own connection has a name of its own, so that its
		// backend is not counted as Ponte's.
		q.Set("application_name", "pgrun")
		pu.RawQuery = q.Encode()
		if s.db, err = openPG(pu.String()); err != nil {
			return nil, err
		}
	} else {
		if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
			return nil, err
		}
	}
	var info benchproc.PonteInfo
	s.child, err = benchproc.Start(ctx, "ponte ("+engine+")", bin, args, nil, s.dataDir+".log", 120*time.Second, benchproc.PonteBannerParser(&info))
	if err != nil {
		return nil, err
	}
	s.url = info.URL
	s.client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}, Timeout: 30 * time.Second}
	if err := benchproc.WaitReady(ctx, s.client, s.url+"/readyz", s.child, 60*time.Second); err != nil {
		return nil, err
	}
	if engine == SQLite {
		// Another connection to the same file, as a second process would
		// open it (WAL; waits for Ponte's writer rather than failing).
		if s.db, err = sql.Open("sqlite", "file:"+filepath.Join(s.dataDir, "ponte.db")+"?_pragma=busy_timeout(10000)&_txlock=immediate"); err != nil {
			return nil, err
		}
	}
	s.demo.clientID = info.ClientID
	if s.demo.token, err = s.clientToken(ctx, info.ClientID, info.ClientSecret); err != nil {
		return nil, err
	}
	if err := s.db.QueryRowContext(ctx, `SELECT id FROM applications WHERE client_id = $1`, info.ClientID).Scan(&s.demo.appID); err != nil {
		return nil, fmt.Errorf("the demo application's id: %w", err)
	}
	return s, nil
}

// stop stops Ponte (gracefully), closes the run's connection and drops the
// schema. It is safe on a partly started server.
func (s *server) stop() {
	if s.child != nil {
		s.child.Stop()
	}
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
	if s.db != nil {
		s.db.Close()
	}
	s.drop()
}

// alive fails when Ponte exited during the run.
func (s *server) alive() error {
	if !s.child.Running() {
		return fmt.Errorf("%s exited during the run (%v)%s", s.child.Name, s.child.Err(), s.child.LogTail())
	}
	return nil
}

// clientToken takes a client_credentials token (client_secret_basic).
func (s *server) clientToken(ctx context.Context, clientID, secret string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &tok) != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("token request: %s: %s", resp.Status, b)
	}
	return tok.AccessToken, nil
}

// cli runs a ponte command against this server's database, as an operator
// would beside the running server, and returns its standard output.
func (s *server) cli(ctx context.Context, args ...string) (string, error) {
	args = append(args, "--data-dir", s.dataDir)
	if s.dbURL != "" {
		args = append(args, "--database-url", s.dbURL)
	}
	cmd := exec.CommandContext(ctx, s.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ponte %s: %v\n%s", strings.Join(args[:2], " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// backend is what /proc says of one PostgreSQL backend so far.
type backend struct {
	cpu     time.Duration
	wakeups int64 // voluntary context switches: about one per message it waited for
}

// pgBackends reads the backends serving Ponte's connections (by
// application_name) from /proc: the database server runs on the same
// machine in the setups this run is for. ok is false when they cannot be
// read (another machine, or no PostgreSQL).
func (s *server) pgBackends(ctx context.Context) (_ map[int]backend, ok bool) {
	if s.engine != PostgreSQL {
		return nil, false
	}
	rows, err := s.db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, s.appName)
	if err != nil {
		return nil, false
	}
	defer rows.Close()
	m := map[int]backend{}
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) != nil {
			return nil, false
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/stat", pid)); err != nil {
			continue // on another machine, or it has just exited
		}
		m[pid] = backend{cpu: benchproc.ProcCPU(pid), wakeups: benchproc.ProcWakeups(pid)}
	}
	return m, rows.Err() == nil && len(m) > 0
}

// backendsSince is what the backends used since before (a pgBackends
// reading): a backend that appeared since counts whole. One that exited in
// between is not counted (Ponte's pools keep their connections through a
// slice).
func backendsSince(before, after map[int]backend) backend {
	var d backend
	for pid, a := range after {
		d.cpu += a.cpu - before[pid].cpu
		d.wakeups += a.wakeups - before[pid].wakeups
	}
	return d
}

// openPG opens the PostgreSQL database at url (pgx's database/sql driver).
func openPG(url string) (*sql.DB, error) { return sql.Open("pgx", url) }
