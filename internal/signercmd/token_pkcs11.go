//go:build pkcs11

package signercmd

import (
	"context"
	"io"

	"github.com/signet-trust/signet/internal/keys/pkcs11"
	"github.com/signet-trust/signet/internal/signer"
	"github.com/signet-trust/signet/internal/signer/hsm"
)

// pkcs11Built reports whether this signet-signer can keep keys in a
// PKCS#11 token.
const pkcs11Built = true

// openToken logs in to the token uri names.
func openToken(ctx context.Context, uri pkcs11.URI, pin string) (signer.Token, io.Closer, error) {
	t, err := hsm.Open(ctx, uri, pin)
	if err != nil {
		return nil, nil, err
	}
	return t, t, nil
}
