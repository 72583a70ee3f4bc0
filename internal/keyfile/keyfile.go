// Package keyfile writes key and secret files safely: atomically (readers see
// the old file or the new one, never a partial one) and, for keys created on
// first start, exclusively (when several instances start at once on one data
// directory, the first key written wins and every instance loads that one).
package keyfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteAtomic replaces path with data via a synced temporary file and a
// rename, so readers see the old file or the new one, never a partial one.
func WriteAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename into place: %w", err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// WriteExclusive creates path with data only if it does not exist yet,
// atomically: the complete temporary file is hard-linked into place, which
// fails with fs.ErrExist when another writer got there first.
func WriteExclusive(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return fmt.Errorf("link into place: %w", err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// writeTemp writes data to a new file beside path (same file system, so
// rename and link work) with the final permissions already set.
func writeTemp(path string, data []byte, perm fs.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("create temporary file: %w", err)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", err
	}
	if err := f.Chmod(perm); err != nil {
		return fail(fmt.Errorf("chmod temporary file: %w", err))
	}
	if _, err := f.Write(data); err != nil {
		return fail(fmt.Errorf("write temporary file: %w", err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("sync temporary file: %w", err))
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("close temporary file: %w", err)
	}
	return name, nil
}

// syncDir makes a rename or link durable; best effort, since not every
// platform can sync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// LoadOrCreate returns the contents of path, creating it first with the
// bytes create returns (mode 0600) if it does not exist. If another process
// creates it at the same moment, its file is the one returned.
func LoadOrCreate(path string, create func() ([]byte, error)) (data []byte, created bool, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		data, err = os.ReadFile(path)
		if err == nil {
			return data, false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, false, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, err
		}
		fresh, err := create()
		if err != nil {
			return nil, false, err
		}
		err = WriteExclusive(path, fresh, 0o600)
		if err == nil {
			return fresh, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, false, err
		}
		// Another process won the race: read its file.
	}
	return nil, false, fmt.Errorf("keyfile: %s keeps appearing and disappearing", path)
}
