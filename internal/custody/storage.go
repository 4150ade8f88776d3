package custody

import (
	"context"
	"time"
)

// Formats of a key record's seal.
const (
	// FormatLegacy: the embedded custodian of releases up to de57e35; the
	// private key sealed directly under one key-encryption key (the
	// LegacyKEK), bound to ID, GUN and role. Core migrates these records
	// when it opens.
	FormatLegacy = 0
	// FormatV1: signet-signer's envelope of releases up to de57e35; bound to
	// ID, GUN, role and algorithm, not to purpose and owner (which must be
	// the ones PurposeForRole and OwnerServer give).
	FormatV1 = 1
	// FormatV2: the envelope, bound to purpose and owner as well.
	FormatV2 = 2
)

// Seal is how a software key is kept: the private key (PKCS#8) sealed under
// its data key, and the data key wrapped under an alias's key-encryption
// key.
type Seal struct {
	Format     int
	Alias      string // "" for FormatLegacy
	WrappedDEK []byte // empty for FormatLegacy
	Sealed     []byte
}

// TokenRef is where a key held in a PKCS#11 token is found again.
type TokenRef struct {
	Token    string // the token's URI without module path or PIN
	Label    string
	ObjectID []byte
}

// Record is one stored key: a software key (Seal) or a token-held key
// (Token.Token != "").
type Record struct {
	ID        string // TUF key ID
	GUN       string
	Role      string
	Algorithm string // TUF key type: ecdsa or ed25519
	Public    []byte // keyval.public
	Purpose   Purpose
	Owner     string
	Seal      Seal
	Token     TokenRef
	CreatedAt time.Time
	RetiredAt time.Time // zero while active
}

// Alias is a passphrase alias: the scrypt salt and cost of its
// key-encryption key, and a check value sealed under it.
type Alias struct {
	Name      string
	KDF       string // e.g. "scrypt-n32768-r8-p1"
	Salt      []byte
	Check     []byte
	CreatedAt time.Time
}

// Usage counts the stored keys of one kind: software keys of a format under
// an alias, or keys in a token.
type Usage struct {
	Alias  string
	Format int
	Token  string
	Keys   int
}

// Storage keeps the custodian's records. Package store/sqlstore implements
// it; storagetest is its conformance suite. Missing records are
// store.ErrNotFound, a duplicate ID store.ErrConflict. Every method is one
// statement or one transaction, so several processes may share a store.
type Storage interface {
	// PutKey stores a new record; store.ErrConflict if its ID is stored.
	PutKey(ctx context.Context, r Record) error
	// GetKey returns the record of a key ID.
	GetKey(ctx context.Context, id string) (Record, error)
	// ListKeys returns the records f selects, newest first (by CreatedAt,
	// then by insertion), at most f.Limit of them when it is positive.
	ListKeys(ctx context.Context, f Filter) ([]Record, error)
	// SealedKeys returns up to limit software-key records with IDs above
	// after, in ID order (rekey and migration walk the store with it).
	SealedKeys(ctx context.Context, after string, limit int) ([]Record, error)
	// Reseal replaces the seal, purpose and owner of key old.ID with those
	// of next if its seal is still old.Seal (compare and swap, one
	// statement), and reports whether it did.
	Reseal(ctx context.Context, old, next Record) (bool, error)
	// RetireKey sets the retirement time of a key that has none.
	RetireKey(ctx context.Context, id string, at time.Time) error
	// DeleteKey removes a record.
	DeleteKey(ctx context.Context, id string) error
	// GetAlias returns an alias.
	GetAlias(ctx context.Context, name string) (Alias, error)
	// AddAlias stores an alias unless one of that name exists (another
	// process may have stored it first: the caller reads it back).
	AddAlias(ctx context.Context, a Alias) error
	// Usage counts the stored keys by alias and format, and by token.
	Usage(ctx context.Context) ([]Usage, error)
	// LegacyKEK returns the key-encryption settings FormatLegacy records
	// are sealed under (a 32-byte salt and a sealed check value), or
	// store.ErrNotFound in a store that never had them.
	LegacyKEK(ctx context.Context) ([]byte, error)
	// Ping checks that the storage answers.
	Ping(ctx context.Context) error
}
