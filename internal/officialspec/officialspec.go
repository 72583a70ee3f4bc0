// Package officialspec finds the official Open Finance Brasil OpenAPI files
// that contract tests check Ponte's exchanges against.
//
// The files are not part of the repository: they are published by Open
// Finance Brasil and come in through the PONTE_SPECS_DIR environment
// variable. When it is unset, the contract checks skip (one log line per
// test) and the rest of each test still runs; when it is set, a file that is
// missing or does not load fails the test.
package officialspec

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// EnvVar names the directory holding the official OpenAPI files. A relative
// value is taken from the module root (the directory with go.mod), so the
// same value works from every package's tests.
const EnvVar = "PONTE_SPECS_DIR"

// Published is where Open Finance Brasil publishes the files.
const Published = "https://github.com/OpenBanking-Brasil/openapi (swagger-apis/)"

// cache holds each file's parse result for the test binary's lifetime:
// loading a specification takes longer than most tests.
var cache = struct {
	sync.Mutex
	docs map[string]result
}{docs: map[string]result{}}

type result struct {
	doc *openapi3.T
	err error
}

// told remembers which tests already logged the skip line.
var told sync.Map

// Dir returns the directory PONTE_SPECS_DIR names, resolved against the
// module root when relative, and false when the variable is unset. When it
// is unset, it logs once per test that the contract checks are skipped.
func Dir(t testing.TB) (string, bool) {
	t.Helper()
	dir := os.Getenv(EnvVar)
	if dir == "" {
		if _, seen := told.LoadOrStore(t.Name(), true); !seen {
			t.Logf("%s is unset: checks against the official OpenAPI files are skipped (published at %s)", EnvVar, Published)
		}
		return "", false
	}
	if !filepath.IsAbs(dir) {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("%s=%s is relative and the module root is not found: %v", EnvVar, dir, err)
		}
		dir = filepath.Join(root, dir)
	}
	return dir, true
}

// Path returns the path of the named file in the specifications directory,
// and false when PONTE_SPECS_DIR is unset. A missing file fails the test.
func Path(t testing.TB, name string) (string, bool) {
	t.Helper()
	dir, ok := Dir(t)
	if !ok {
		return "", false
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("official specification %s (%s=%s): %v", name, EnvVar, os.Getenv(EnvVar), err)
	}
	return path, true
}

// Load parses the named file, or returns nil when PONTE_SPECS_DIR is unset.
// A file that is missing or fails to parse fails the test. The document is
// shared by every caller in the test binary: callers must not modify it
// (use LoadCopy for that).
func Load(t testing.TB, name string) *openapi3.T {
	t.Helper()
	path, ok := Path(t, name)
	if !ok {
		return nil
	}
	cache.Lock()
	defer cache.Unlock()
	r, ok := cache.docs[path]
	if !ok {
		r.doc, r.err = openapi3.NewLoader().LoadFromFile(path)
		cache.docs[path] = r
	}
	if r.err != nil {
		t.Fatalf("load the official specification %s: %v", path, r.err)
	}
	return r.doc
}

// LoadCopy parses the named file afresh, for a caller that changes the
// document (its servers, say); nil when PONTE_SPECS_DIR is unset.
func LoadCopy(t testing.TB, name string) *openapi3.T {
	t.Helper()
	path, ok := Path(t, name)
	if !ok {
		return nil
	}
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		t.Fatalf("load the official specification %s: %v", path, err)
	}
	return doc
}

// moduleRoot walks up from the working directory (a package directory
// under go test) to the directory holding go.mod.
func moduleRoot() (string, error) {
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
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// API is one official specification, routed with its servers replaced by a
// stand-in host and the path prefix its operations live under at Ponte.
type API struct {
	Prefix string
	Router routers.Router
}

// Routers loads each file of files (path prefix → file name) with its
// servers replaced by host+prefix, and returns a router per file; nil when
// PONTE_SPECS_DIR is unset. The official servers are the banks' own, so a
// request sent to Ponte is matched by rewriting its host to host.
func Routers(t testing.TB, host string, files map[string]string) []API {
	t.Helper()
	if _, ok := Dir(t); !ok {
		return nil
	}
	apis := make([]API, 0, len(files))
	for prefix, name := range files {
		doc := LoadCopy(t, name)
		doc.Servers = openapi3.Servers{{URL: host + prefix}}
		router, err := gorillamux.NewRouter(doc)
		if err != nil {
			t.Fatalf("route the official specification %s: %v", name, err)
		}
		apis = append(apis, API{Prefix: prefix, Router: router})
	}
	return apis
}
