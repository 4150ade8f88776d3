//go:build pkcs11

package signercmd

import (
	"context"
	"io"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/custody/hsm"
	"github.com/signet-trust/signet/internal/keys/pkcs11"
)

// pkcs11Built reports whether this signet-signer can keep keys in a
// PKCS#11 token.
const pkcs11Built = true

// openToken logs in to the token uri names.
func openToken(ctx context.Context, uri pkcs11.URI, pin string) (custody.Token, io.Closer, error) {
	t, err := hsm.Open(ctx, uri, pin)
	if err != nil {
		return nil, nil, err
	}
	return t, t, nil
}
