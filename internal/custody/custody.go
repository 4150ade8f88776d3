// Package custody is Signet's one key custody core. It creates, imports,
// lists, rotates, retires and deletes private keys, keeps them sealed at
// rest (or inside a PKCS#11 token), and lends them out only as
// crypto.Signer values. signet-server uses a Core in process (its keys
// sealed in the server's own database), and signet-signer serves a Core
// over mutual TLS (package signer/signerapi); both store their records
// through the Storage interface, which package store/sqlstore implements
// on SQLite and PostgreSQL (docs/adr/0008-one-custody-core.md).
//
// Invariants:
//   - A private key leaves this package only as the signatures it makes: no
//     method returns private key bytes, and the crypto.Signer values it lends
//     expose nothing but Public and Sign.
//   - Every software key is sealed with its own random data key
//     (AES-256-GCM), and that data key is wrapped under the key-encryption
//     key of a named passphrase alias (scrypt). Both seals are bound to the
//     key's ID, GUN, role, algorithm, purpose and owner, so a record
//     altered, truncated or moved is refused (ErrTampered); after
//     decryption the key must also hash to its ID.
//   - A key signs only for the GUN it was made for ("" for keys outside
//     TUF); asking with another GUN is ErrNotHeld, as for an unknown key.
//     A retired key signs no more (within RecheckAfter in other processes).
//   - A wrong passphrase is detected through a sealed check value of its
//     alias before any key under it is used (ErrWrongPassphrase).
//   - Rekey and the migration of records in earlier formats change one key
//     per statement (compare and swap), so they can run beside serving
//     processes on the same database and a crash leaves a store that starts.
//   - With a Token, new keys are generated inside it and never leave it;
//     the records hold only where to find them and their public halves, and
//     a key found there must hash to the ID recorded.
package custody

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/keys"
)

// Errors callers branch on.
var (
	// ErrNotHeld reports a key the custodian does not hold for the GUN asked
	// about (or at all); it wraps keys.ErrKeyNotHeld.
	ErrNotHeld = fmt.Errorf("custody: %w", keys.ErrKeyNotHeld)
	// ErrRetired reports a retired key asked to sign; it wraps ErrNotHeld.
	ErrRetired = fmt.Errorf("%w: the key is retired", ErrNotHeld)
	// ErrTampered reports a sealed key, wrapped data key or record that fails
	// authentication: altered, truncated or moved to another record.
	ErrTampered = errors.New("custody: sealed key failed authentication (tampered, truncated or moved)")
	// ErrWrongPassphrase reports a passphrase that does not open its alias.
	ErrWrongPassphrase = errors.New("custody: the passphrase does not open this key store")
	// ErrNoPassphrase reports an alias whose passphrase is not configured.
	ErrNoPassphrase = errors.New("custody: no passphrase configured for alias")
	// ErrInvalid reports a request the custodian refuses as malformed.
	ErrInvalid = errors.New("custody: invalid request")
	// ErrExists reports an imported key that is already held.
	ErrExists = errors.New("custody: key already held")
	// ErrActive reports the deletion of a key that is not retired.
	ErrActive = errors.New("custody: the key is active; retire it before deleting it")
	// ErrTokenNotConfigured reports a key held in a PKCS#11 token while the
	// custodian runs without one.
	ErrTokenNotConfigured = errors.New("custody: key is held in a PKCS#11 token, and no token is configured (start signet-signer with --pkcs11)")
)

// Key algorithms.
const (
	AlgorithmECDSA   = keys.TypeECDSA // P-256
	AlgorithmED25519 = keys.TypeED25519
)

// Purpose says what a key is for.
type Purpose string

// Purposes of keys.
const (
	// PurposeTimestamp and PurposeSnapshot are a repository's online TUF
	// keys (role "timestamp" or "snapshot"), signed by the server.
	PurposeTimestamp Purpose = "timestamp"
	PurposeSnapshot  Purpose = "snapshot"
	// PurposeDelegation is a delegated targets key the signing service
	// holds for a project (role "targets/<signer>").
	PurposeDelegation Purpose = "delegation"
	// PurposeCosign signs cosign signatures and attestations (no GUN).
	PurposeCosign Purpose = "cosign"
	// PurposeAuditCheckpoint signs the audit log's checkpoints (no GUN).
	PurposeAuditCheckpoint Purpose = "audit-checkpoint"
)

// OwnerServer owns the server's own keys (online TUF keys, the audit log's);
// a project's keys are owned by ProjectOwner(name).
const OwnerServer = "server"

// ProjectOwner is the owner of a project's keys: "project:<name>".
func ProjectOwner(name string) string { return "project:" + name }

var (
	aliasPattern = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	ownerPattern = regexp.MustCompile(`^(server|project:[A-Za-z0-9][A-Za-z0-9._/-]{0,127})$`)
)

// ValidAlias reports whether name can name a passphrase alias: lowercase
// letters, digits and underscores, so that an environment variable named
// after it (upper-cased) is unambiguous.
func ValidAlias(name string) bool { return aliasPattern.MatchString(name) }

// PurposeForRole is the purpose of an online TUF key of role, as created by
// the Create shorthand (and as records of earlier releases are read):
// timestamp and snapshot keys, and delegation keys for "targets/…".
func PurposeForRole(role string) (Purpose, bool) {
	switch {
	case role == "timestamp":
		return PurposeTimestamp, true
	case role == "snapshot":
		return PurposeSnapshot, true
	case strings.HasPrefix(role, "targets/") && len(role) > len("targets/"):
		return PurposeDelegation, true
	}
	return "", false
}

// Spec says what key to make.
type Spec struct {
	// GUN is the repository the key signs for; "" for cosign and
	// audit-checkpoint keys, which sign outside TUF.
	GUN string
	// Role is the key's TUF role: "timestamp", "snapshot" or
	// "targets/<signer>"; "" outside TUF.
	Role    string
	Purpose Purpose
	// Owner is OwnerServer or ProjectOwner(name).
	Owner string
	// Algorithm is AlgorithmECDSA or AlgorithmED25519; "" for the
	// custodian's default.
	Algorithm string
}

// Validate checks that the spec describes a key the custodian makes: the
// role fits the purpose, the owner is well formed, the names hold no
// control characters. Errors wrap ErrInvalid.
func (s Spec) Validate() error {
	var errs []error
	switch s.Purpose {
	case PurposeTimestamp, PurposeSnapshot:
		if s.Role != string(s.Purpose) {
			errs = append(errs, fmt.Errorf("a %s key has role %q, not %q", s.Purpose, s.Purpose, s.Role))
		}
		errs = append(errs, checkName("gun", s.GUN, true))
	case PurposeDelegation:
		if p, _ := PurposeForRole(s.Role); p != PurposeDelegation {
			errs = append(errs, fmt.Errorf("a delegation key has a role targets/<signer>, not %q", s.Role))
		}
		errs = append(errs, checkName("gun", s.GUN, true), checkName("role", s.Role, true))
	case PurposeCosign, PurposeAuditCheckpoint:
		if s.GUN != "" || s.Role != "" {
			errs = append(errs, fmt.Errorf("a %s key signs outside TUF: no gun or role", s.Purpose))
		}
	default:
		errs = append(errs, fmt.Errorf("purpose %q (use timestamp, snapshot, delegation, cosign or audit-checkpoint)", s.Purpose))
	}
	if !ownerPattern.MatchString(s.Owner) {
		errs = append(errs, fmt.Errorf("owner %q (use %q or project:<name>)", s.Owner, OwnerServer))
	}
	switch s.Algorithm {
	case "", AlgorithmECDSA, AlgorithmED25519:
	default:
		errs = append(errs, fmt.Errorf("algorithm %q not supported (use ecdsa or ed25519)", s.Algorithm))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// CheckKeyID refuses what cannot be a key ID: anything but 64 lowercase
// hexadecimal digits (the SHA-256 the Notary dialect names keys by). Such
// an ID is the caller's mistake, so the error wraps ErrInvalid; no key is
// held under it, so it wraps ErrNotHeld too.
func CheckKeyID(id string) error {
	ok := len(id) == 64
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
	}
	if !ok {
		return badKeyID(fmt.Sprintf("%v: key ID %.80q is not 64 lowercase hexadecimal digits", ErrInvalid, id))
	}
	return nil
}

// badKeyID is the error of CheckKeyID: ErrInvalid and ErrNotHeld at once.
type badKeyID string

func (e badKeyID) Error() string   { return string(e) }
func (e badKeyID) Unwrap() []error { return []error{ErrInvalid, ErrNotHeld} }

// Validate checks a listing's filter: names as Spec.Validate wants them,
// a known purpose and a well-formed owner, each when given. Errors wrap
// ErrInvalid.
func (f Filter) Validate() error {
	errs := []error{checkName("gun", f.GUN, false), checkName("role", f.Role, false)}
	switch f.Purpose {
	case "", PurposeTimestamp, PurposeSnapshot, PurposeDelegation, PurposeCosign, PurposeAuditCheckpoint:
	default:
		errs = append(errs, fmt.Errorf("purpose %.80q (use timestamp, snapshot, delegation, cosign or audit-checkpoint)", f.Purpose))
	}
	if f.Owner != "" && !ownerPattern.MatchString(f.Owner) {
		errs = append(errs, fmt.Errorf("owner %.80q (use %q or project:<name>)", f.Owner, OwnerServer))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// checkName refuses names that are too long or hold control characters
// (the additional data of the seals separates fields with NUL), and empty
// ones when required.
func checkName(what, v string, required bool) error {
	if v == "" && !required {
		return nil
	}
	if v == "" || len(v) > 255 {
		return fmt.Errorf("%s must be 1 to 255 bytes", what)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s holds a control character", what)
		}
	}
	return nil
}

// Key describes a key the custodian holds; it carries no private material.
type Key struct {
	Public    *keys.PublicKey
	GUN, Role string
	Purpose   Purpose
	Owner     string
	// Alias is the passphrase alias a sealed key is wrapped under; Token the
	// PKCS#11 token (URI without module or PIN) a token-held key is in.
	Alias, Token string
	CreatedAt    time.Time
	// RetiredAt is when the key was retired; zero while it is active.
	RetiredAt time.Time
}

// ID is the key's TUF key ID.
func (k Key) ID() string { return k.Public.ID() }

// Spec is what a rotation of k makes.
func (k Key) Spec() Spec {
	return Spec{GUN: k.GUN, Role: k.Role, Purpose: k.Purpose, Owner: k.Owner, Algorithm: k.Public.Type()}
}

// Filter selects keys to list. Empty fields match everything.
type Filter struct {
	GUN, Role string
	Purpose   Purpose
	Owner     string
	// IncludeRetired lists retired keys too.
	IncludeRetired bool
	// Limit bounds the answer (0 or more than MaxList: MaxList).
	Limit int
}

// MaxList is the most keys one listing returns.
const MaxList = 1000

// Custodian is what holds keys: the Core in process, and signet-signer's
// client over mutual TLS. custodiantest checks that every implementation
// behaves the same.
type Custodian interface {
	// Create makes a key for an online TUF role of gun ("timestamp" or
	// "snapshot": owner OwnerServer, the custodian's default algorithm)
	// and returns its public half. It is signet-server's shorthand for
	// CreateKey.
	Create(ctx context.Context, gun, role string) (*keys.PublicKey, error)
	// Keys lists the active keys of gun and role, newest first.
	Keys(ctx context.Context, gun, role string) ([]*keys.PublicKey, error)
	// Signer lends the signer of an active key held for gun ("" for keys
	// outside TUF); an error wrapping ErrNotHeld when there is none.
	Signer(ctx context.Context, gun, id string) (crypto.Signer, error)

	// CreateKey makes a new key as spec says.
	CreateKey(ctx context.Context, spec Spec) (Key, error)
	// ImportKey seals an existing private key (*ecdsa.PrivateKey on P-256,
	// or ed25519.PrivateKey) as spec says; ErrExists if it is held already.
	ImportKey(ctx context.Context, spec Spec, priv crypto.Signer) (Key, error)
	// RotateKey makes a new key like id (same GUN, role, purpose, owner and
	// algorithm). The old key stays active until it is retired.
	RotateKey(ctx context.Context, id string) (Key, error)
	// Key describes a key, active or retired.
	Key(ctx context.Context, id string) (Key, error)
	// ListKeys lists the keys f selects, newest first.
	ListKeys(ctx context.Context, f Filter) ([]Key, error)
	// RetireKey stops a key from signing; it stays listed (as retired) until
	// deleted. Retiring a retired key changes nothing.
	RetireKey(ctx context.Context, id string) (Key, error)
	// DeleteKey destroys a retired key (ErrActive for an active one),
	// removing it from its token too.
	DeleteKey(ctx context.Context, id string) error
}
