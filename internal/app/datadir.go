package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ponte-ofb/ponte/internal/store"
)

// warnSharedDataDirs logs a warning for each directory holding Ponte's
// secrets (the data directory: keys, secrets, the SQLite database; and the
// SQLite database's own directory when it lies elsewhere) that group or other
// users may read or write. Ponte creates its files 0600, but a directory made
// beforehand with the usual 0755 lets others list it, and write access lets
// them replace keys; the operator decides, so this warns rather than chmods.
func warnSharedDataDirs(ctx context.Context, logger *slog.Logger, dataDir string, db *store.DB) {
	dirs := []string{dataDir}
	if db.Engine() == store.SQLite {
		if d := filepath.Dir(db.Where()); filepath.Clean(d) != filepath.Clean(dataDir) {
			dirs = append(dirs, d)
		}
	}
	for _, dir := range dirs {
		info, err := os.Stat(dir)
		if err != nil {
			continue // not created (PostgreSQL without file keys): nothing to expose
		}
		if perm := info.Mode().Perm(); perm&0o066 != 0 {
			logger.WarnContext(ctx, "data directory is readable or writable by other users; it holds keys and personal data: run chmod 700 "+dir,
				"dir", dir, "mode", fmt.Sprintf("%04o", perm))
		}
	}
}
