package app_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
)

// TestDataDirPrivate: after a first start in a data directory made
// beforehand with mode 0755, every file Ponte wrote there (database, -wal,
// -shm, keys, sandbox secrets) is 0600, and the start logs one warning that
// names the directory and the chmod that closes it; a 0700 directory gets no
// warning.
func TestDataDirPrivate(t *testing.T) {
	t.Parallel()
	const warning = "data directory is readable or writable by other users"
	tests := []struct {
		mode fs.FileMode
		warn bool
	}{
		{0o755, true},
		{0o750, true},
		{0o700, false},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.mode); err != nil { // whatever the umask
				t.Fatal(err)
			}
			s := apptest.Start(t, apptest.Options{DataDir: dir})
			if r := s.Do(t, "GET", "/readyz", nil, ""); r.Status != 200 {
				t.Fatalf("readyz %d %s", r.Status, r.Body)
			}
			// Every file but public certificates holds a secret or personal data.
			public := map[string]bool{"sandbox-apple-root.pem": true}
			modes := map[string]fs.FileMode{}
			err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				modes[d.Name()] = info.Mode().Perm()
				if perm := info.Mode().Perm(); perm != 0o600 && !public[d.Name()] {
					t.Errorf("%s: mode %04o, want 0600", path, perm)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"ponte.db", "ponte.db-wal", "ponte.db-shm", "signing-key.pem", "data.key"} {
				if _, ok := modes[want]; !ok {
					t.Errorf("no %s in the data directory (files %v)", want, modes)
				}
			}
			var warned []map[string]any
			for _, l := range s.Logs.Lines() {
				if msg, _ := l["msg"].(string); strings.HasPrefix(msg, warning) {
					warned = append(warned, l)
				}
			}
			switch {
			case !tt.warn && len(warned) > 0:
				t.Errorf("warned about a private directory: %v", warned)
			case tt.warn && len(warned) != 1:
				t.Errorf("%d warnings, want 1: %s", len(warned), s.Logs.String())
			case tt.warn:
				l := warned[0]
				if l["level"] != "WARN" || l["dir"] != dir || !strings.HasSuffix(l["msg"].(string), "chmod 700 "+dir) {
					t.Errorf("warning %v, want level WARN, dir %s and the chmod to run", l, dir)
				}
			}
		})
	}
}
