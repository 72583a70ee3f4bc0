package docs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A runnable example is a ```sh block right after a line <!-- runnable -->.
// The blocks of one document run in order as one bash script (set -euo
// pipefail), so later blocks use what earlier ones set (TOKEN, ids); the
// script runs twice, in fresh directories, so every example can be rerun. A
// comment line "# → TEXT" inside a block states output the reader will see:
// each TEXT must appear in the script's output, after the previous one.
// The script gets the variables the documents tell the reader to set from
// the banner of `ponte serve` (PONTE, CLIENT_ID, CLIENT_SECRET,
// ADMIN_TOKEN), `ponte` on PATH and PONTE_DATA_DIR naming the server's data
// directory, so CLI examples act on the running server's database.
const runnableMarker = "<!-- runnable -->"

// afterBrowserMarker marks a runnable block that follows the README's one
// manual step, approving the journey session at $JOURNEY_URL in a browser:
// the test does that step first with testdata/browser-step.sh, which goes
// through the same pages and calls a browser does, with curl.
const afterBrowserMarker = "<!-- runnable after the browser step -->"

var expectLine = regexp.MustCompile(`^\s*# → (.+)$`)

// block is one runnable example.
type block struct {
	line   int // of the opening fence, 1-based
	script string
	expect []string
	// afterBrowser: the block needs the browser step done (afterBrowserMarker).
	afterBrowser bool
}

// runnableBlocks returns the runnable blocks of a Markdown document.
func runnableBlocks(doc string) ([]block, error) {
	var (
		out          []block
		lines        = strings.Split(doc, "\n")
		marked       bool
		afterBrowser bool
	)
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		switch {
		case l == runnableMarker || l == afterBrowserMarker:
			marked, afterBrowser = true, l == afterBrowserMarker
			continue
		case marked && l == "":
			continue
		case marked && l == "```sh":
			b := block{line: i + 1, afterBrowser: afterBrowser}
			var body []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				body = append(body, lines[i])
				if m := expectLine.FindStringSubmatch(lines[i]); m != nil {
					b.expect = append(b.expect, strings.TrimSpace(m[1]))
				}
			}
			if i == len(lines) {
				return nil, fmt.Errorf("line %d: unterminated runnable block", b.line)
			}
			b.script = strings.Join(body, "\n")
			out = append(out, b)
		case marked:
			return nil, fmt.Errorf("line %d: %s is not followed by a ```sh block", i, runnableMarker)
		}
		marked = false
	}
	return out, nil
}

func TestRunnableBlocks(t *testing.T) {
	doc := "# T\n\n<!-- runnable -->\n```sh\necho hi\n# → hi\n```\n\n```sh\nnot run\n```\n<!-- runnable -->\n\n```sh\nexit 0\n```\n" +
		"<!-- runnable after the browser step -->\n```sh\necho approved\n```\n"
	got, err := runnableBlocks(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].line != 4 || got[0].script != "echo hi\n# → hi" || len(got[0].expect) != 1 || got[0].expect[0] != "hi" ||
		got[1].script != "exit 0" || len(got[1].expect) != 0 || got[0].afterBrowser || got[1].afterBrowser ||
		got[2].script != "echo approved" || !got[2].afterBrowser {
		t.Errorf("runnableBlocks = %+v", got)
	}
	for _, bad := range []string{"<!-- runnable -->\ntext\n", "<!-- runnable -->\n```sh\necho\n"} {
		if _, err := runnableBlocks(bad); err == nil {
			t.Errorf("runnableBlocks(%q): no error", bad)
		}
	}
}

// TestCheckExpectations holds the ordered match: a missing or out-of-order
// expectation fails.
func TestCheckExpectations(t *testing.T) {
	out := "a 201 b\nHTTP/1.1 410 Gone\n"
	if err := checkExpectations(out, []string{"201", "410 Gone"}); err != nil {
		t.Error(err)
	}
	for _, bad := range [][]string{{"410 Gone", "201"}, {"404"}} {
		if err := checkExpectations(out, bad); err == nil {
			t.Errorf("checkExpectations(%q): no error", bad)
		}
	}
}

func checkExpectations(out string, expect []string) error {
	rest := out
	for _, e := range expect {
		i := strings.Index(rest, e)
		if i < 0 {
			return fmt.Errorf("output lacks %q (after the previous expectation)", e)
		}
		rest = rest[i+len(e):]
	}
	return nil
}

// TestExamples runs the runnable examples of README.md and docs/*.md
// against one `ponte serve` on a fresh data directory.
func TestExamples(t *testing.T) {
	// What the examples use besides ponte; each is on any Linux or macOS
	// developer machine except, at times, curl and openssl.
	for _, tool := range []string{"bash", "curl", "sed", "grep", "awk", "openssl", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("documentation examples not run: %s is not on PATH", tool)
		}
	}
	docs := []string{filepath.Join("..", "README.md")}
	more, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(more)
	docs = append(docs, more...)

	type doc struct {
		name   string
		blocks []block
	}
	var todo []doc
	for _, name := range docs {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := runnableBlocks(string(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(blocks) > 0 {
			todo = append(todo, doc{filepath.Base(name), blocks})
		}
	}
	if len(todo) == 0 {
		t.Fatal("no runnable examples found")
	}

	browserStep, err := filepath.Abs(filepath.Join("testdata", "browser-step.sh"))
	if err != nil {
		t.Fatal(err)
	}
	srv := startPonte(t)
	for _, d := range todo {
		t.Run(d.name, func(t *testing.T) {
			var script strings.Builder
			script.WriteString("set -euo pipefail\n")
			var expect []string
			for _, b := range d.blocks {
				if b.afterBrowser {
					fmt.Fprintf(&script, "echo '>>> the browser step, for %s:%d' >&2\nbash %q \"$JOURNEY_URL\"\n", d.name, b.line, browserStep)
				}
				fmt.Fprintf(&script, "echo '>>> %s:%d' >&2\n%s\n", d.name, b.line, b.script)
				expect = append(expect, b.expect...)
			}
			// Twice: a reader runs an example again, and it must work again
			// (fresh ids and keys, nothing left behind that refuses a rerun).
			for run := 1; run <= 2; run++ {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
				cmd.Dir = t.TempDir()
				cmd.Env = srv.env
				var stdout bytes.Buffer // one writer for both streams: one copier, in order
				cmd.Stdout, cmd.Stderr = &stdout, &stdout
				err := cmd.Run()
				cancel()
				if err != nil {
					t.Fatalf("%s, run %d: the examples failed (%v); the last block started is the last '>>>' line:\n%s", d.name, run, err, stdout.String())
				}
				if err := checkExpectations(stdout.String(), expect); err != nil {
					t.Fatalf("%s, run %d: %v; output:\n%s", d.name, run, err, stdout.String())
				}
			}
		})
	}
}

// server is a running `ponte serve` and the environment the examples see.
type server struct {
	env []string
}

var bannerURL = regexp.MustCompile(`^Ponte is running in sandbox mode on (\S+)`)

// startPonte builds ponte, starts `ponte serve` on a free loopback port
// with a fresh data directory, and waits until it is ready.
func startPonte(t *testing.T) *server {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("documentation examples not run: go is not on PATH")
	}
	binDir := t.TempDir()
	build := exec.Command(goTool, "build", "-o", filepath.Join(binDir, "ponte"), "./cmd/ponte")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ponte: %v\n%s", err, out)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(filepath.Join(binDir, "ponte"), "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir)
	cmd.Env = cleanEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("ponte serve log (tail):\n%s", tail(logs.String(), 4000))
		}
	})

	// The banner names the URL and the demo credentials.
	vars := map[string]string{}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(2 * time.Minute)
	for vars["PONTE"] == "" || vars["CLIENT_ID"] == "" || vars["CLIENT_SECRET"] == "" || vars["ADMIN_TOKEN"] == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("ponte serve ended before printing its banner; log:\n%s", tail(logs.String(), 4000))
			}
			if m := bannerURL.FindStringSubmatch(l); m != nil {
				vars["PONTE"] = m[1]
			}
			f := strings.Fields(l)
			switch {
			case len(f) == 2 && f[0] == "client_id:":
				vars["CLIENT_ID"] = f[1]
			case len(f) == 2 && f[0] == "client_secret:":
				vars["CLIENT_SECRET"] = f[1]
			case len(f) >= 3 && f[0] == "admin" && f[1] == "token:":
				vars["ADMIN_TOKEN"] = f[2]
			}
		case err := <-exited:
			t.Fatalf("ponte serve exited: %v; log:\n%s", err, tail(logs.String(), 4000))
		case <-deadline:
			t.Fatalf("no banner from ponte serve; got %v", vars)
		}
	}
	go func() { // keep reading so the server never blocks on a full pipe
		for range lines {
		}
	}()
	for {
		resp, err := http.Get(vars["PONTE"] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("ponte serve exited: %v", err)
		case <-deadline:
			t.Fatal("ponte serve never became ready")
		case <-time.After(50 * time.Millisecond):
		}
	}
	env := append(cleanEnv(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"), "PONTE_DATA_DIR="+dataDir)
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return &server{env: env}
}

// cleanEnv is the test's environment without PONTE_* settings, so neither
// the server nor a CLI example picks up a developer's own configuration.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PONTE_") && !strings.HasPrefix(kv, "PONTE=") {
			out = append(out, kv)
		}
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// syncBuffer is a bytes.Buffer safe for the process's writer and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
