// Package atomicfile writes files so that a crash leaves either the old
// file or the new one, never a mix: the bytes go to a temporary file in the
// same directory, created exclusively with the final permissions, are
// synced, and the temporary file is renamed over the target. The rename
// replaces whatever was at the name — a symbolic link is replaced, never
// followed, and an existing file's permissions are not kept — so a private
// key written here has exactly the mode asked for.
//
// ReadFile is the other half for the small files signet keeps
// (configuration, key files, cached metadata, changelists): it reads at
// most a given number of bytes, so a file that is not what it should be (a
// link to /dev/zero, a runaway file) fails instead of exhausting memory.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write writes data to name with permissions perm, creating missing parent
// directories with mode 0700.
func Write(name string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// ErrTooLarge reports a file larger than ReadFile's limit.
var ErrTooLarge = errors.New("atomicfile: file too large")

// ReadFile returns the contents of name, or an error wrapping ErrTooLarge
// if it holds more than limit bytes (only limit+1 bytes are ever read).
func ReadFile(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Read into a buffer of the file's size (as os.ReadFile does), not one
	// grown and copied as the bytes arrive; the limit still bounds it.
	size := int64(512)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() < limit {
		size = fi.Size() + 1 // +1: EOF is read without growing
	}
	b := make([]byte, 0, size)
	lr := io.LimitReader(f, limit+1)
	for {
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s holds more than %d bytes", ErrTooLarge, name, limit)
	}
	return b, nil
}
