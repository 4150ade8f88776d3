//go:build unix

package e2etest

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on name (created if need be), waiting
// for another process that holds it.
func lockFile(name string) (unlock func(), err error) {
	return flock(name, syscall.LOCK_EX)
}

// tryLockFile takes the lock only if no one holds it.
func tryLockFile(name string) (unlock func(), err error) {
	return flock(name, syscall.LOCK_EX|syscall.LOCK_NB)
}

func flock(name string, how int) (func(), error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
