package server

import (
	"sync"

	"github.com/signet-trust/signet/internal/tuf"
)

// parsedRoot is the parse of a cached root file, made once per stored
// version: every publish to a repository checks its upload against the
// stored root, which would otherwise be parsed again (JSON, keys and their
// certificates) each time. The result is shared by every publish that
// reads it and never modified.
type parsedRoot struct {
	once sync.Once
	m    *tuf.Meta[tuf.Root]
	err  error
}

// root returns the parsed root of f, a cached root file.
func (f *cachedFile) root() (*tuf.Meta[tuf.Root], error) {
	f.parsed.once.Do(func() { f.parsed.m, f.parsed.err = tuf.ParseRoot(f.file.Data) })
	return f.parsed.m, f.parsed.err
}
