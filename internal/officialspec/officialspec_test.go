package officialspec

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that records what a helper says and stops the
// way t.Fatal does, so the helper's failures can be asserted.
type recorder struct {
	testing.TB
	name   string
	logs   []string
	failed bool
}

func (r *recorder) Name() string { return r.name }
func (r *recorder) Helper()      {}
func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
	r.failed = true
	runtime.Goexit()
}

// run calls fn with a recorder in its own goroutine, as Fatalf ends it.
func run(name string, fn func(tb testing.TB)) *recorder {
	r := &recorder{name: name}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fn(r)
	}()
	wg.Wait()
	return r
}

const minimal = `openapi: 3.0.0
info: {title: t, version: "1"}
paths:
  /things:
    get:
      responses:
        "200": {description: ok}
components:
  schemas:
    Thing: {type: object, required: [id], properties: {id: {type: string}}}
`

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "good.yml"), []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.yml"), []byte("openapi: [unclosed"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, env, file string
		wantDoc         bool
		wantFail        bool
		wantLog         string
	}{
		{"unset skips with one line", "", "good.yml", false, false, EnvVar + " is unset"},
		{"set loads", dir, "good.yml", true, false, ""},
		{"set but missing fails", dir, "absent.yml", false, true, "absent.yml"},
		{"set but unparsable fails", dir, "bad.yml", false, true, "bad.yml"},
		{"missing directory fails", filepath.Join(dir, "nowhere"), "good.yml", false, true, "nowhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvVar, tc.env)
			var got bool
			r := run(t.Name(), func(tb testing.TB) {
				got = Load(tb, tc.file) != nil
				Load(tb, tc.file) // a second call in the same test says nothing more
			})
			if got != tc.wantDoc || r.failed != tc.wantFail {
				t.Fatalf("doc %v failed %v, want %v %v; logs %q", got, r.failed, tc.wantDoc, tc.wantFail, r.logs)
			}
			if tc.wantLog == "" {
				if len(r.logs) != 0 {
					t.Errorf("logs %q, want none", r.logs)
				}
				return
			}
			if len(r.logs) != 1 || !strings.Contains(r.logs[0], tc.wantLog) {
				t.Errorf("logs %q, want one line with %q", r.logs, tc.wantLog)
			}
		})
	}
}

// TestRelativeToModuleRoot: a relative PONTE_SPECS_DIR names the same
// directory from every package's tests: it is taken from the module root.
func TestRelativeToModuleRoot(t *testing.T) {
	t.Setenv(EnvVar, "some/specs")
	dir, ok := Dir(t)
	if !ok {
		t.Fatal("set variable reported unset")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "some", "specs"); dir != want {
		t.Errorf("Dir = %s, want %s", dir, want)
	}
}

func TestRouters(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "good.yml"), []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvVar, dir)
	apis := Routers(t, "http://ponte.test", map[string]string{"/api/v1": "good.yml"})
	if len(apis) != 1 || apis[0].Prefix != "/api/v1" {
		t.Fatalf("apis %+v", apis)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://ponte.test/api/v1/things", nil)
	if _, _, err := apis[0].Router.FindRoute(req); err != nil {
		t.Errorf("route under the prefix: %v", err)
	}
	t.Setenv(EnvVar, "")
	if apis := Routers(t, "http://ponte.test", map[string]string{"/api/v1": "good.yml"}); apis != nil {
		t.Errorf("unset: %+v, want nil", apis)
	}
}
