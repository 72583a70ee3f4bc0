package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/cluster"
)

// builtBinary is the ponte binary, built once per test binary by the first
// test that needs it, in a directory TestMain removes.
type builtBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

var built builtBinary

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// binary builds ./cmd/ponte (once) and returns its path.
func binary(t *testing.T, root string) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "ponte-cluster-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.dir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		built.path = filepath.Join(dir, "ponte")
		start := time.Now()
		built.err = cluster.Build(ctx, root, built.path)
		t.Logf("built %s in %s", built.path, time.Since(start).Round(time.Millisecond))
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// newCluster starts n instances with extra serve flags behind HAProxy on a
// fresh PostgreSQL schema; it skips without PostgreSQL or haproxy. On
// failure the end of every log is printed.
func newCluster(t *testing.T, n int, args ...string) *cluster.Cluster {
	t.Helper()
	base := os.Getenv("PONTE_TEST_DATABASE_URL")
	if base == "" {
		t.Skip("PONTE_TEST_DATABASE_URL is not set: the scale-out tests need PostgreSQL")
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy is not on PATH (apt-get install haproxy)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH: cannot build the ponte binary")
	}
	root, err := cluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := binary(t, root)
	dbURL, drop, err := cluster.NewSchema(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = drop() })
	start := time.Now()
	c, err := cluster.Start(t.Context(), cluster.Options{Bin: bin, Root: root, DatabaseURL: dbURL, Instances: n,
		Dir: t.TempDir(), Args: args})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d instances up behind HAProxy at %s in %s (started concurrently on one database)", n, c.URL,
		time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			for _, in := range c.Instances {
				t.Logf("--- %s (%s) ---\n%s", in.Name, in.URL, lastLines(in.Log(), 40))
			}
			t.Logf("--- haproxy ---\n%s", lastLines(c.HAProxyLog(), 20))
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// client is a partner's HTTP client of the cluster; it never follows redirects.
func newClient(workers int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2 * workers
	return &http.Client{Transport: tr, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// token gets an access token with client_secret_basic at base.
func token(ctx context.Context, client *http.Client, base, clientID, secret, scope string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	status, body, err := do(client, req)
	if err != nil {
		return "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("POST /oauth/token: %d %s", status, body)
	}
	return tok.AccessToken, nil
}

// do sends req and reads the whole answer.
func do(client *http.Client, req *http.Request) (int, []byte, error) {
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, nil, fmt.Errorf("read the answer (status %d): %w", res.StatusCode, err)
	}
	return res.StatusCode, body, nil
}

// send makes one request with a bearer token, JSON body and headers.
func send(ctx context.Context, client *http.Client, method, target, tok string, body []byte, header map[string]string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(client, req)
}
