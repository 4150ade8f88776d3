//go:build !pkcs11

package signercmd

import (
	"context"
	"errors"
	"io"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/keys/pkcs11"
)

// pkcs11Built reports whether this signet-signer can keep keys in a
// PKCS#11 token.
const pkcs11Built = false

func openToken(context.Context, pkcs11.URI, string) (custody.Token, io.Closer, error) {
	return nil, nil, errors.New(notBuiltPKCS11)
}
