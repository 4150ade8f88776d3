package custody

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/keys"
)

// Token is a PKCS#11 token (an HSM) that creates keys inside itself and
// signs with them; their private halves never leave it. The core records
// each token-held key (label, object ID, public key) and finds it again on
// demand. Package custody/hsm implements it over internal/keys/pkcs11 in
// builds with -tags pkcs11.
type Token interface {
	// Name identifies the token (its label or serial, no module path and
	// no PIN); it is recorded with each key made in it.
	Name() string
	// GenerateECDSA creates a non-extractable ECDSA P-256 key labelled
	// label inside the token.
	GenerateECDSA(ctx context.Context, label string) (TokenKey, error)
	// Find returns the key with this label and object ID; an error
	// wrapping ErrNotHeld when the token has none.
	Find(ctx context.Context, label string, id []byte) (TokenKey, error)
	// Delete destroys a key of the token.
	Delete(ctx context.Context, k TokenKey) error
}

// TokenKey is a key inside a Token: a crypto.Signer whose private half
// stays in the token, with the label and object ID that find it again.
type TokenKey interface {
	crypto.Signer
	Label() string
	ID() []byte
}

// tokenLabel is the CKA_LABEL of a new token key: readable (what the key
// is for) and unique (a random suffix), since a label names one key.
func tokenLabel(spec Spec) string {
	what := []string{"signet-signer"}
	for _, f := range []string{spec.GUN, spec.Role, string(spec.Purpose), spec.Owner} {
		if f != "" && !slices.Contains(what, f) {
			what = append(what, f)
		}
	}
	return strings.Join(append(what, hex.EncodeToString(random(8))), " ")
}

// createInToken makes a key as spec says inside the token and records it.
func (c *Core) createInToken(ctx context.Context, spec Spec) (Key, error) {
	if spec.Algorithm != AlgorithmECDSA {
		return Key{}, fmt.Errorf("%w: algorithm %q: the PKCS#11 token creates ecdsa keys only", ErrInvalid, spec.Algorithm)
	}
	k, err := c.token.GenerateECDSA(ctx, tokenLabel(spec))
	if err != nil {
		return Key{}, fmt.Errorf("custody: create key in %s: %w", c.token.Name(), err)
	}
	pub, err := keys.FromCrypto(k.Public())
	var rec Record
	if err == nil {
		rec = Record{
			ID: pub.ID(), GUN: spec.GUN, Role: spec.Role, Algorithm: pub.Type(), Public: pub.Public(),
			Purpose: spec.Purpose, Owner: spec.Owner, Seal: Seal{Format: FormatV2},
			Token:     TokenRef{Token: c.token.Name(), Label: k.Label(), ObjectID: k.ID()},
			CreatedAt: c.now().UTC().Truncate(time.Microsecond),
		}
		err = c.st.PutKey(ctx, rec)
	}
	if err != nil {
		// An unrecorded key would sit in the token unused: remove it.
		if derr := c.token.Delete(context.WithoutCancel(ctx), k); derr != nil {
			c.log.ErrorContext(ctx, "could not remove an unrecorded key from the token",
				slog.String("token", c.token.Name()), slog.String("label", k.Label()), slog.String("error", derr.Error()))
		}
		return Key{}, fmt.Errorf("custody: record token key: %w", err)
	}
	c.remember(rec, pub, k)
	return describe(rec, pub), nil
}

// findInToken finds a recorded token key and checks that it is the key the
// record names.
func (c *Core) findInToken(ctx context.Context, rec Record) (crypto.Signer, *keys.PublicKey, error) {
	if c.token == nil {
		return nil, nil, fmt.Errorf("%w: key %s is in %s", ErrTokenNotConfigured, rec.ID, rec.Token.Token)
	}
	if rec.Token.Token != c.token.Name() {
		return nil, nil, fmt.Errorf("%w: key %s is in %s, not in the configured %s", ErrTokenNotConfigured, rec.ID, rec.Token.Token, c.token.Name())
	}
	k, err := c.token.Find(ctx, rec.Token.Label, rec.Token.ObjectID)
	if err != nil {
		return nil, nil, fmt.Errorf("custody: key %s (recorded in %s, label %q): %w", rec.ID, rec.Token.Token, rec.Token.Label, err)
	}
	pub, err := keys.FromCrypto(k.Public())
	if err != nil || !matches(pub, rec) {
		return nil, nil, fmt.Errorf("%w: token key %q in %s is not key %s", ErrTampered, rec.Token.Label, c.token.Name(), rec.ID)
	}
	return k, pub, nil
}

// deleteFromToken destroys a recorded token key; one already gone from the
// token counts as destroyed.
func (c *Core) deleteFromToken(ctx context.Context, rec Record) error {
	k, _, err := c.findInToken(ctx, rec)
	switch {
	case errors.Is(err, ErrNotHeld):
		return nil
	case err != nil:
		return err
	}
	if err := c.token.Delete(ctx, k.(TokenKey)); err != nil {
		return fmt.Errorf("custody: delete key %s from %s: %w", rec.ID, rec.Token.Token, err)
	}
	return nil
}
