// Package custody holds the server's online private keys (timestamp, and
// snapshot when the server manages it) and lends them out only as
// crypto.Signer values.
//
// The embedded custodian keeps each key in the store sealed with AES-256-GCM
// under a key-encryption key derived from a passphrase with scrypt. The
// sealed blob is bound to its key ID, GUN and role (additional data), so a
// blob moved to another record or altered in any byte is refused. A wrong
// passphrase is detected at open time through a sealed check value, before
// any key is used.
package custody

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/scrypt"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/store"
)

// Errors callers branch on.
var (
	ErrWrongPassphrase = errors.New("custody: the key passphrase does not open this key store")
	ErrTampered        = errors.New("custody: sealed key failed authentication (tampered, truncated or moved)")
	ErrNotHeld         = keys.ErrKeyNotHeld
)

// Key algorithms the custodian creates.
const (
	AlgorithmECDSA   = keys.TypeECDSA
	AlgorithmED25519 = keys.TypeED25519
)

const (
	// settingKEK holds the scrypt salt (32 bytes) followed by the sealed
	// check value, in one setting so that a first start that dies midway
	// leaves either nothing or both.
	settingKEK = "kek.scrypt.v1"
	saltSize   = 32
	checkPlain = "signet key-encryption key check v1"
	// scrypt cost: N=2^15, r=8, p=1 (about 32 MiB and tens of milliseconds),
	// paid once per process start.
	scryptN = 1 << 15
	scryptR = 8
	scryptP = 1
	// maxCached bounds the decrypted signers kept in memory.
	maxCached = 4096
)

// Embedded is the custodian that seals keys into the server's own store.
type Embedded struct {
	ks        store.KeyStore
	aead      cipher.AEAD
	algorithm string
	now       func() time.Time

	mu    sync.Mutex
	cache map[string]heldSigner
}

type heldSigner struct {
	gun    string
	signer crypto.Signer
}

// Open derives the key-encryption key from passphrase (creating the salt on
// first use) and checks it against the store. algorithm is the type of new
// keys: AlgorithmECDSA (P-256) or AlgorithmED25519.
func Open(ctx context.Context, ks store.KeyStore, passphrase []byte, algorithm string, now func() time.Time) (*Embedded, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("custody: empty passphrase")
	}
	if algorithm != AlgorithmECDSA && algorithm != AlgorithmED25519 {
		return nil, fmt.Errorf("custody: unsupported key algorithm %q (use ecdsa or ed25519)", algorithm)
	}
	stored, err := ks.GetSetting(ctx, settingKEK)
	fresh := errors.Is(err, store.ErrNotFound)
	var salt, check []byte
	switch {
	case fresh:
		salt = make([]byte, saltSize)
		if _, err := rand.Read(salt); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("custody: read key-encryption settings: %w", err)
	case len(stored) <= saltSize:
		return nil, fmt.Errorf("%w: key-encryption settings are truncated", ErrTampered)
	default:
		salt, check = stored[:saltSize], stored[saltSize:]
	}
	kek, err := scrypt.Key(passphrase, salt, scryptN, scryptR, scryptP, 32)
	if err != nil {
		return nil, fmt.Errorf("custody: derive key: %w", err)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	e := &Embedded{ks: ks, aead: aead, algorithm: algorithm, now: now, cache: map[string]heldSigner{}}
	if fresh {
		sealed := e.seal([]byte(checkPlain), []byte(settingKEK))
		if err := ks.PutSetting(ctx, settingKEK, append(append([]byte(nil), salt...), sealed...)); err != nil {
			if errors.Is(err, store.ErrConflict) {
				// Another process sharing the database (a replica starting
				// at the same time) stored its settings first: use those.
				return Open(ctx, ks, passphrase, algorithm, now)
			}
			return nil, fmt.Errorf("custody: store key-encryption settings: %w", err)
		}
		return e, nil
	}
	if plain, err := e.open(check, []byte(settingKEK)); err != nil || string(plain) != checkPlain {
		return nil, ErrWrongPassphrase
	}
	return e, nil
}

// Initialized reports whether a key store already has a key-encryption key
// (and so needs the passphrase it was made with).
func Initialized(ctx context.Context, ks store.KeyStore) (bool, error) {
	_, err := ks.GetSetting(ctx, settingKEK)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (e *Embedded) seal(plain, ad []byte) []byte {
	nonce := make([]byte, e.aead.NonceSize(), e.aead.NonceSize()+len(plain)+e.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("custody: no randomness: " + err.Error())
	}
	return e.aead.Seal(nonce, nonce, plain, ad)
}

func (e *Embedded) open(sealed, ad []byte) ([]byte, error) {
	n := e.aead.NonceSize()
	if len(sealed) < n+e.aead.Overhead() {
		return nil, ErrTampered
	}
	plain, err := e.aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrTampered
	}
	return plain, nil
}

func additionalData(id, gun, role string) []byte {
	return []byte("signet-key\x00" + id + "\x00" + gun + "\x00" + role)
}

// Create makes a new key for gun and role, stores it sealed, and returns
// its public key.
func (e *Embedded) Create(ctx context.Context, gun, role string) (*keys.PublicKey, error) {
	var priv crypto.Signer
	var err error
	switch e.algorithm {
	case AlgorithmED25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("custody: generate: %w", err)
	}
	pub, err := keys.FromCrypto(priv.Public())
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("custody: encode: %w", err)
	}
	rec := store.KeyRecord{
		ID: pub.ID(), GUN: gun, Role: role, Algorithm: pub.Type(), Public: pub.Public(),
		Sealed: e.seal(der, additionalData(pub.ID(), gun, role)), CreatedAt: e.now(),
	}
	if err := e.ks.PutKey(ctx, rec); err != nil {
		return nil, fmt.Errorf("custody: store key: %w", err)
	}
	e.remember(pub.ID(), gun, priv)
	return pub, nil
}

// Keys lists the public keys held for gun and role, newest first.
func (e *Embedded) Keys(ctx context.Context, gun, role string) ([]*keys.PublicKey, error) {
	recs, err := e.ks.ListKeys(ctx, gun, role)
	if err != nil {
		return nil, fmt.Errorf("custody: list keys: %w", err)
	}
	out := make([]*keys.PublicKey, 0, len(recs))
	for _, r := range recs {
		k, err := keys.New(r.Algorithm, r.Public)
		if err != nil {
			return nil, fmt.Errorf("custody: stored key %s: %w", r.ID, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// Signer returns the signer of a key held for gun; ErrNotHeld if the
// custodian holds no such key for that repository (a key of another
// repository is never lent out, whatever a root lists).
func (e *Embedded) Signer(ctx context.Context, gun, id string) (crypto.Signer, error) {
	e.mu.Lock()
	h, ok := e.cache[id]
	e.mu.Unlock()
	if ok {
		if h.gun != gun {
			return nil, fmt.Errorf("%w: %s for %s", ErrNotHeld, id, gun)
		}
		return h.signer, nil
	}
	rec, err := e.ks.GetKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotHeld, id)
	}
	if err != nil {
		return nil, fmt.Errorf("custody: read key: %w", err)
	}
	if rec.GUN != gun {
		return nil, fmt.Errorf("%w: %s for %s", ErrNotHeld, id, gun)
	}
	der, err := e.open(rec.Sealed, additionalData(rec.ID, rec.GUN, rec.Role))
	if err != nil {
		return nil, fmt.Errorf("%w: key %s", err, id)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("custody: key %s: %w", id, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("custody: key %s is a %T", id, parsed)
	}
	pub, err := keys.FromCrypto(signer.Public())
	if err != nil || pub.ID() != id {
		return nil, fmt.Errorf("%w: key %s does not match its record", ErrTampered, id)
	}
	e.remember(id, rec.GUN, signer)
	return signer, nil
}

func (e *Embedded) remember(id, gun string, s crypto.Signer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.cache) >= maxCached {
		for k := range e.cache { // drop an arbitrary entry; keys reload on demand
			delete(e.cache, k)
			break
		}
	}
	e.cache[id] = heldSigner{gun: gun, signer: s}
}
