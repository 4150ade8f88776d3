// Package atomicfile writes files so that a crash leaves either the old
// file or the new one, never a mix: the bytes go to a temporary file in the
// same directory, are synced, and the temporary file is renamed over the
// target.
package atomicfile

import (
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
