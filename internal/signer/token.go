package signer

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/signet-trust/signet/internal/keys"
)

// Token is a PKCS#11 token (an HSM) that creates keys inside itself and
// signs with them; their private halves never leave it. The signer records
// each token-held key (label, object ID, public key) in its database and
// finds it again on demand. Package signer/hsm implements it with
// internal/keys/pkcs11 when built with -tags pkcs11.
type Token interface {
	// Name identifies the token (its label or serial, no module path and
	// no PIN); it is recorded with each key made in it.
	Name() string
	// GenerateECDSA creates a non-extractable ECDSA P-256 key labelled
	// label inside the token.
	GenerateECDSA(ctx context.Context, label string) (TokenKey, error)
	// Find returns the key with this label and object ID.
	Find(ctx context.Context, label string, id []byte) (TokenKey, error)
	// Delete removes a key from the token (a key whose record could not
	// be stored).
	Delete(ctx context.Context, k TokenKey) error
}

// TokenKey is a key inside a Token: a crypto.Signer whose private half
// stays in the token, with the label and object ID that find it again.
type TokenKey interface {
	crypto.Signer
	Label() string
	ID() []byte
}

// ErrTokenNotConfigured reports a key held in a PKCS#11 token while the
// signer runs without one.
var ErrTokenNotConfigured = errors.New("signer: key is held in a PKCS#11 token, and no token is configured (start signet-signer with --pkcs11)")

// tokenLabel is the CKA_LABEL of a new token key: readable (GUN and role)
// and unique (a random suffix), since a label names one key.
func tokenLabel(gun, role string) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic("signer: no randomness: " + err.Error())
	}
	return "signet-signer " + gun + " " + role + " " + hex.EncodeToString(b)
}

// createInToken makes a key for gun and role inside the token and records
// it.
func (s *Service) createInToken(ctx context.Context, gun, role, algorithm string) (*keys.PublicKey, error) {
	if algorithm != AlgorithmECDSA {
		return nil, fmt.Errorf("%w: algorithm %q: the PKCS#11 token creates ecdsa keys only", ErrInvalid, algorithm)
	}
	k, err := s.token.GenerateECDSA(ctx, tokenLabel(gun, role))
	if err != nil {
		return nil, fmt.Errorf("signer: create key in %s: %w", s.token.Name(), err)
	}
	pub, err := keys.FromCrypto(k.Public())
	if err == nil {
		err = s.db.putTokenKey(ctx, tokenKeyRecord{
			id: pub.ID(), gun: gun, role: role, algorithm: pub.Type(), public: pub.Public(),
			token: s.token.Name(), label: k.Label(), objectID: k.ID(), createdAt: s.now().UTC(),
		})
	}
	if err != nil {
		// An unrecorded key would sit in the token unused: remove it.
		if derr := s.token.Delete(context.WithoutCancel(ctx), k); derr != nil {
			s.log.ErrorContext(ctx, "could not remove an unrecorded key from the token",
				slog.String("token", s.token.Name()), slog.String("label", k.Label()), slog.String("error", derr.Error()))
		}
		return nil, err
	}
	s.remember(pub.ID(), heldKey{gun: gun, role: role, pub: pub, signer: k})
	return pub, nil
}

// findInToken finds a recorded token key and checks that it is the key the
// record names.
func (s *Service) findInToken(ctx context.Context, rec tokenKeyRecord) (heldKey, error) {
	if s.token == nil {
		return heldKey{}, fmt.Errorf("%w: key %s is in %s", ErrTokenNotConfigured, rec.id, rec.token)
	}
	k, err := s.token.Find(ctx, rec.label, rec.objectID)
	if err != nil {
		return heldKey{}, fmt.Errorf("signer: key %s (recorded in %s, label %q): %w", rec.id, rec.token, rec.label, err)
	}
	pub, err := keys.FromCrypto(k.Public())
	if err != nil || pub.ID() != rec.id || pub.Type() != rec.algorithm {
		return heldKey{}, fmt.Errorf("%w: token key %q in %s is not key %s", ErrTampered, rec.label, s.token.Name(), rec.id)
	}
	return heldKey{gun: rec.gun, role: rec.role, pub: pub, signer: k}, nil
}
