package server

import (
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/store"
)

func cacheFile(role string, version int, sum string) store.File {
	return store.File{Role: role, Version: version, SHA256: sum, Data: []byte(role)}
}

// TestReplaceKeepsUntouchedRoles: a write replaces the cached files of the
// roles it wrote and keeps the others (the same cached file, so a stored
// root is parsed once per version, not once per publish), unless another
// process wrote meanwhile; files by checksum stay until retention removes
// some (dropFixed) or the bound is reached.
func TestReplaceKeepsUntouchedRoles(t *testing.T) {
	now := func() time.Time { return time.Unix(1000, 0) }
	c := newMetaCache(10, 4, 0, now)
	const gun = "example.com/cache"
	sum := func(c byte) string {
		b := make([]byte, 64)
		for i := range b {
			b[i] = c
		}
		return string(b)
	}

	c.replace(c.remoteGeneration(), gun, []store.File{cacheFile("root", 1, sum('a')), cacheFile("targets", 1, sum('b'))}, now())
	root := c.getCurrent(gun, "root")
	if root == nil {
		t.Fatal("root not cached after the first write")
	}
	c.replace(c.remoteGeneration(), gun, []store.File{cacheFile("targets", 2, sum('c'))}, now())
	if got := c.getCurrent(gun, "root"); got != root {
		t.Fatalf("the root's cached file changed with a write of targets: %p → %p", root, got)
	}
	if got := c.getCurrent(gun, "targets"); got == nil || got.file.Version != 2 {
		t.Fatalf("targets after the write: %+v", got)
	}
	if c.getFixed(gun, fixedKey{role: "targets", sha256: sum('b')}) == nil {
		t.Fatal("targets v1 by checksum was dropped by a later write")
	}

	// Retention removed files: nothing by checksum is served from memory.
	c.dropFixed()
	if c.getFixed(gun, fixedKey{role: "targets", sha256: sum('b')}) != nil {
		t.Fatal("a file by checksum survived dropFixed")
	}
	if c.getCurrent(gun, "root") != root {
		t.Fatal("dropFixed dropped a current file")
	}

	// The bound on files by checksum: a write that would pass it starts over.
	for v := 3; v <= 8; v++ {
		c.replace(c.remoteGeneration(), gun, []store.File{cacheFile("targets", v, sum(byte('0'+v)))}, now())
		if n := len(c.gun[gun].fixed); n > 4 {
			t.Fatalf("%d files by checksum cached, bound 4", n)
		}
		if c.getFixed(gun, fixedKey{role: "targets", sha256: sum(byte('0' + v))}) == nil {
			t.Fatalf("targets v%d not cached by checksum", v)
		}
	}

	// Another process wrote meanwhile: nothing of the GUN is kept.
	gen := c.remoteGeneration()
	c.invalidateRemote("example.com/other")
	c.replace(gen, gun, []store.File{cacheFile("targets", 9, sum('z'))}, now())
	if c.getCurrent(gun, "root") != nil || c.getCurrent(gun, "targets") != nil {
		t.Fatal("a write that raced another process's left files cached")
	}
}
