//go:build pkcs11

package hsm

import (
	"context"
	"errors"
	"fmt"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/keys/pkcs11"
)

// Sessions is how many sessions Open allows on the token: how many
// signatures it makes at once.
const Sessions = 16

// Token is a logged-in PKCS#11 token; it implements custody.Token. Close it
// when done.
type Token struct {
	tok  *pkcs11.Token
	name string
}

var _ custody.Token = (*Token)(nil)

// Open loads the module of uri (module-path=), finds its token (token= or
// serial=) and logs in with pin. The URI names a token, not a key: object=
// and id= are refused. Errors say what to fix (module missing, token not
// present and which are, PIN refused).
func Open(ctx context.Context, uri pkcs11.URI, pin string) (*Token, error) {
	if uri.Object != "" || len(uri.ID) > 0 {
		return nil, fmt.Errorf("%w: the signer's URI names a token, not a key (drop object= and id=)", pkcs11.ErrInvalidURI)
	}
	cfg := pkcs11.ConfigFromURI(uri, pin)
	cfg.Sessions = Sessions
	t, err := pkcs11.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Token{tok: t, name: pkcs11.URI{Token: uri.Token, Serial: uri.Serial}.String()}, nil
}

// Close logs out and releases the module.
func (t *Token) Close() error { return t.tok.Close() }

// Name is the token's URI without module path or PIN, e.g.
// "pkcs11:token=signet-signer".
func (t *Token) Name() string { return t.name }

// GenerateECDSA creates a sensitive, non-extractable ECDSA P-256 key in
// the token.
func (t *Token) GenerateECDSA(ctx context.Context, label string) (custody.TokenKey, error) {
	return t.tok.GenerateECDSA(ctx, label)
}

// Find returns the key with this label and object ID; a key not in the
// token is an error wrapping both custody.ErrNotHeld and
// pkcs11.ErrKeyNotFound.
func (t *Token) Find(ctx context.Context, label string, id []byte) (custody.TokenKey, error) {
	k, err := t.tok.Find(ctx, label, id)
	if errors.Is(err, pkcs11.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %w", custody.ErrNotHeld, err)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// Delete removes a key made by GenerateECDSA.
func (t *Token) Delete(ctx context.Context, k custody.TokenKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pk, ok := k.(*pkcs11.Key)
	if !ok {
		return errors.New("hsm: not a key of this token")
	}
	return t.tok.Delete(pk)
}
