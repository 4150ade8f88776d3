//go:build !linux

package cli

import (
	"os"
	"testing"
)

// openPTY is Linux's only (the tests that need a terminal skip elsewhere).
func openPTY(t *testing.T) (*os.File, func() string) {
	t.Skip("pseudo-terminals are opened on Linux only")
	return nil, nil
}
