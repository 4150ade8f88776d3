//go:build !pkcs11

package cli

import (
	"context"
	"crypto"
	"errors"

	"github.com/signet-trust/signet/internal/trustdir"
)

// errNoPKCS11 explains a token key in a build without PKCS#11.
var errNoPKCS11 = errors.New("this signet was built without PKCS#11 support; build it with `go build -tags pkcs11 ./cmd/signet` (cgo) to use keys on tokens")

// tokenSessions is empty: this build opens no tokens.
type tokenSessions struct{}

func (tokenSessions) close() {}

func (a *app) openTokenKey(context.Context, trustdir.TokenRef) (crypto.Signer, error) {
	return nil, errNoPKCS11
}

// needPKCS11 reports that this build has no PKCS#11, before any prompt.
func needPKCS11(flag string) error { return usageError("%s: %v", flag, errNoPKCS11) }

// tokenRootKey refuses: this build cannot reach a token.
func (a *app) tokenRootKey(_ context.Context, _ *repo, _, _ string) (crypto.Signer, error) {
	return nil, usageError("--root-pkcs11: %v", errNoPKCS11)
}
