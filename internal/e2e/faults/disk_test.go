package faults

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/tufhttp"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it when the test ends (after the server that uses it has been killed).
// Mounting needs root (CAP_SYS_ADMIN): without it the test skips, and
// fails only when SIGNET_TEST_REQUIRE holds "diskfull", or "all" while the
// test runs as root (then a refused mount is a broken environment, not a
// missing privilege).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size))
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs to fill up (needs root or CAP_SYS_ADMIN; uid %d): %v", os.Getuid(), err)
		if e2etest.RequiredByName("diskfull") || e2etest.Required("all") && os.Getuid() == 0 {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			// A process still holding a file (it should not): detach.
			t.Errorf("unmount %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// fill writes name until the file system is full and returns how much it
// wrote.
func fill(t *testing.T, name string) int64 {
	t.Helper()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	var n int64
	for {
		m, err := f.Write(buf)
		n += int64(m)
		if errors.Is(err, syscall.ENOSPC) {
			return n
		}
		if err != nil {
			t.Fatalf("fill %s: %v", name, err)
		}
	}
}

// TestDiskFull runs the server on SQLite in a small tmpfs and fills it up:
// a publish fails with a 5xx error and leaves nothing behind, a new
// repository's key request fails likewise, earlier data stays intact and
// readable, and once space is freed the same process publishes again.
func TestDiskFull(t *testing.T) {
	dataDir := mountTmpfs(t, 8<<20)
	s := startServer(t, dataDir)
	a, b := newGUN("a"), newGUN("b")
	a.pad = 16 << 10 // about 16 KiB more per version
	for range 4 {
		a.mustPublish(t, s)
	}
	filler := filepath.Join(dataDir, "filler")
	filled := fill(t, filler)
	t.Logf("filled the tmpfs with %d KiB", filled>>10)

	// SQLite may still have room in pages it already owns (the WAL is
	// reused after a checkpoint), so publish until the disk-full error
	// shows; every answer must be 200 or a clean 5xx.
	var failure tufhttp.Response
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatalf("100 publishes of ~16 KiB succeeded on a full file system")
		}
		r, err := a.publish(t.Context(), s.Client, s.Base)
		if err != nil {
			t.Fatalf("publish on a full disk: %v", err)
		}
		if r.Status == 200 {
			continue
		}
		if r.Status != 500 && r.Status != 503 || r.Code() != "UPDATING" && r.Code() != "UNAVAILABLE" {
			t.Fatalf("publish on a full disk: %v, want 500 UPDATING or 503 UNAVAILABLE", r)
		}
		failure = r
		t.Logf("publish %d on a full disk: %d %s (after %d more succeeded)", a.pending.n, r.Status, r.Code(), i)
		break
	}
	s.alive()
	if a.reconcile(t, s) {
		t.Fatalf("%s: a publish answered %d was stored", a.gun, failure.Status)
	}
	// A second try fails the same way, and a new repository cannot get a
	// key (the custodian cannot store it).
	if r, err := a.publish(t.Context(), s.Client, s.Base); err != nil || r.Status < 500 {
		t.Fatalf("second publish on a full disk: %v %v", r, err)
	}
	if r, err := b.fetchKey(t, s.Client, s.Base); err != nil || r.Status < 500 {
		t.Errorf("GET timestamp.key of a new repository on a full disk: %v %v, want 5xx", r, err)
	} else {
		t.Logf("GET timestamp.key of a new repository on a full disk: %d %s", r.Status, r.Code())
	}
	// Reads go on, from memory and from the database.
	a.verify(t, s)
	if r := s.get("/_notary_server/health"); r.Status != 200 {
		t.Logf("health on a full disk: %v", r)
	}
	s.alive()

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if a.reconcile(t, s) {
		t.Fatalf("%s: a publish answered with an error was stored", a.gun)
	}
	a.mustPublish(t, s)
	b.mustPublish(t, s)
	a.mustPublish(t, s)
	t.Logf("after freeing space: three publishes in %v", time.Since(start).Round(time.Millisecond))
	a.verify(t, s)
	b.verify(t, s)

	// The data survives a restart too (nothing half-written on disk).
	s.stop()
	s = startServer(t, dataDir)
	a.verify(t, s)
	b.verify(t, s)
	if out, err := exec.Command("df", "-h", dataDir).CombinedOutput(); err == nil {
		t.Logf("%s", out)
	}
}
