package custody

import (
	"bytes"
	"context"
	"crypto"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/store"
)

// Options configure a Core.
type Options struct {
	// DefaultAlias names the passphrase alias new keys are wrapped under
	// ("default" when empty). Records of the embedded custodian of earlier
	// releases are opened with its passphrase and migrated under it.
	DefaultAlias string
	// Passphrase returns the passphrase of an alias, or nil when it is not
	// configured.
	Passphrase func(alias string) []byte
	// Algorithm is the algorithm of new keys whose Spec names none, and of
	// Create's (AlgorithmECDSA when empty).
	Algorithm string
	// Token, when set, is the PKCS#11 token new keys are created in (ECDSA
	// only). The default alias then needs a passphrase only if keys under
	// it are used, or keys are imported.
	Token Token
	// Logger receives warnings (aliases in use without a passphrase, keys
	// in a token not configured, records that could not be migrated).
	Logger *slog.Logger
	// Now is the clock (creation and retirement times).
	Now func() time.Time
	// RecheckAfter is how long a key held in memory signs before its record
	// is read again, so that a key retired or deleted by another process
	// stops signing here too (DefaultRecheck when zero).
	RecheckAfter time.Duration
	// InsecureAliasKDF, for tests only, names a cheaper key derivation for
	// new aliases ("scrypt-n1024-r8-p1"); it weakens what a passphrase
	// protects. Empty: scrypt N=2^15, r=8, p=1. The derivation is stored
	// with each alias, so existing aliases keep theirs.
	InsecureAliasKDF string
}

// DefaultRecheck is Options.RecheckAfter's default.
const DefaultRecheck = 30 * time.Second

// maxCached bounds the decrypted keys kept in memory.
const maxCached = 4096

// Core is the custody core over a Storage. It is safe for concurrent use.
type Core struct {
	st           Storage
	log          *slog.Logger
	now          func() time.Time
	recheck      time.Duration
	defaultAlias string
	passphrase   func(string) []byte
	algorithm    string
	token        Token
	aliasKDF     string

	kekMu  sync.Mutex
	keks   map[string]cipher.AEAD // aliases opened with a checked passphrase
	legacy cipher.AEAD            // the key-encryption key of FormatLegacy records, while some remain

	mu    sync.Mutex
	cache map[string]heldKey
}

var _ Custodian = (*Core)(nil)

// heldKey is a key in memory: its record (without seal bytes), public half
// and signer, and when its record was last read.
type heldKey struct {
	rec     Record
	pub     *keys.PublicKey
	signer  crypto.Signer
	checked time.Time
}

// New opens the custody core over st. It checks the passphrases: every
// alias in use that has one must be opened by it (aliases in use without
// one are logged; their keys fail with ErrNoPassphrase until it is
// configured), and the default alias must have one (its salt and check
// value are created on first use) unless a Token makes new keys. Records of
// the embedded custodian of earlier releases are then re-sealed in the
// current format, one compare-and-swap each: idempotent, safe beside other
// processes doing the same, and resumed by the next start after a crash.
func New(ctx context.Context, st Storage, opts Options) (*Core, error) {
	if opts.DefaultAlias == "" {
		opts.DefaultAlias = "default"
	}
	if !ValidAlias(opts.DefaultAlias) {
		return nil, fmt.Errorf("custody: default alias %q: use 1 to 64 lowercase letters, digits or underscores", opts.DefaultAlias)
	}
	if opts.Algorithm == "" {
		opts.Algorithm = AlgorithmECDSA
	}
	if opts.Algorithm != AlgorithmECDSA && opts.Algorithm != AlgorithmED25519 {
		return nil, fmt.Errorf("custody: unsupported key algorithm %q (use ecdsa or ed25519)", opts.Algorithm)
	}
	if opts.Passphrase == nil {
		opts.Passphrase = func(string) []byte { return nil }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RecheckAfter <= 0 {
		opts.RecheckAfter = DefaultRecheck
	}
	if opts.InsecureAliasKDF == "" {
		opts.InsecureAliasKDF = kdfScrypt
	}
	if _, _, _, err := parseKDF(opts.InsecureAliasKDF); err != nil {
		return nil, err
	}
	c := &Core{
		st: st, log: opts.Logger, now: opts.Now, recheck: opts.RecheckAfter, defaultAlias: opts.DefaultAlias,
		passphrase: opts.Passphrase, algorithm: opts.Algorithm, token: opts.Token, aliasKDF: opts.InsecureAliasKDF,
		keks: map[string]cipher.AEAD{}, cache: map[string]heldKey{},
	}
	usage, err := st.Usage(ctx)
	if err != nil {
		return nil, fmt.Errorf("custody: %w", err)
	}
	aliases, tokens, legacyKeys := map[string]int{}, map[string]int{}, 0
	for _, u := range usage {
		switch {
		case u.Token != "":
			tokens[u.Token] += u.Keys
		case u.Format == FormatLegacy:
			legacyKeys += u.Keys
		default:
			aliases[u.Alias] += u.Keys
		}
	}
	for _, alias := range slices.Sorted(mapKeys(aliases)) {
		_, err := c.kek(ctx, alias, false)
		switch {
		case errors.Is(err, ErrNoPassphrase):
			c.log.WarnContext(ctx, "passphrase alias in use but not configured: its keys cannot sign until it is",
				slog.String("alias", alias), slog.Int("keys", aliases[alias]))
		case err != nil:
			return nil, err
		}
	}
	for _, tok := range slices.Sorted(mapKeys(tokens)) {
		switch {
		case c.token == nil:
			c.log.WarnContext(ctx, "keys held in a PKCS#11 token, and no token configured: they cannot sign until one is (--pkcs11)",
				slog.String("token", tok), slog.Int("keys", tokens[tok]))
		case tok != c.token.Name():
			c.log.WarnContext(ctx, "keys held in another PKCS#11 token than the one configured: they cannot sign from this one",
				slog.String("token", tok), slog.String("configured", c.token.Name()), slog.Int("keys", tokens[tok]))
		}
	}
	if err := c.openLegacy(ctx, legacyKeys); err != nil {
		return nil, err
	}
	// The default alias last, so a start refused above stores nothing.
	// With a token, new keys do not need it.
	if c.token != nil && len(c.passphrase(c.defaultAlias)) == 0 {
		return c, nil
	}
	if _, err := c.kek(ctx, c.defaultAlias, true); err != nil {
		return nil, err
	}
	return c, nil
}

func mapKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// kek returns the key-encryption key of an alias, deriving it on first use
// (create: storing a new salt and check value if the alias is new).
func (c *Core) kek(ctx context.Context, alias string, create bool) (cipher.AEAD, error) {
	c.kekMu.Lock()
	defer c.kekMu.Unlock()
	if a, ok := c.keks[alias]; ok {
		return a, nil
	}
	pass := c.passphrase(alias)
	if len(pass) == 0 {
		return nil, fmt.Errorf("%w %q", ErrNoPassphrase, alias)
	}
	rec, err := c.st.GetAlias(ctx, alias)
	if errors.Is(err, store.ErrNotFound) {
		if !create {
			return nil, fmt.Errorf("custody: alias %q is not in the store", alias)
		}
		if rec, err = c.addAlias(ctx, alias, c.aliasKDF, random(saltSize), nil, pass); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("custody: read alias %s: %w", alias, err)
	}
	aead, err := deriveKEK(pass, rec.Salt, rec.KDF)
	if err != nil {
		return nil, err
	}
	if err := checkAlias(aead, rec); err != nil {
		return nil, err
	}
	c.keks[alias] = aead
	return aead, nil
}

// addAlias stores a new alias with salt (and aead, its key when already
// derived) and returns what is stored: another process may have stored the
// alias first.
func (c *Core) addAlias(ctx context.Context, alias, kdf string, salt []byte, aead cipher.AEAD, pass []byte) (Alias, error) {
	if aead == nil {
		var err error
		if aead, err = deriveKEK(pass, salt, kdf); err != nil {
			return Alias{}, err
		}
	}
	a := Alias{Name: alias, KDF: kdf, Salt: salt, Check: seal(aead, []byte(checkPlain), checkAD(alias)), CreatedAt: c.now().UTC()}
	if err := c.st.AddAlias(ctx, a); err != nil {
		return Alias{}, fmt.Errorf("custody: store alias %s: %w", alias, err)
	}
	stored, err := c.st.GetAlias(ctx, alias)
	if err != nil {
		return Alias{}, fmt.Errorf("custody: read alias %s: %w", alias, err)
	}
	return stored, nil
}

func checkAlias(aead cipher.AEAD, a Alias) error {
	if plain, err := open(aead, a.Check, checkAD(a.Name)); err != nil || string(plain) != checkPlain {
		return fmt.Errorf("%w (alias %q)", ErrWrongPassphrase, a.Name)
	}
	return nil
}

// Create makes a key for an online TUF role of gun (see Custodian).
func (c *Core) Create(ctx context.Context, gun, role string) (*keys.PublicKey, error) {
	purpose, ok := PurposeForRole(role)
	if !ok {
		return nil, fmt.Errorf("%w: role %q has no online key (use timestamp, snapshot or targets/<signer>)", ErrInvalid, role)
	}
	k, err := c.CreateKey(ctx, Spec{GUN: gun, Role: role, Purpose: purpose, Owner: OwnerServer})
	if err != nil {
		return nil, err
	}
	return k.Public, nil
}

// Keys lists the active keys of gun and role, newest first.
func (c *Core) Keys(ctx context.Context, gun, role string) ([]*keys.PublicKey, error) {
	ks, err := c.ListKeys(ctx, Filter{GUN: gun, Role: role})
	if err != nil {
		return nil, err
	}
	out := make([]*keys.PublicKey, len(ks))
	for i, k := range ks {
		out[i] = k.Public
	}
	return out, nil
}

// CreateKey makes a new key as spec says: inside the Token when one is
// configured (ECDSA only; the audit log's Ed25519 checkpoint key is the
// one exception, sealed under the default alias), else sealed under the
// default alias.
func (c *Core) CreateKey(ctx context.Context, spec Spec) (Key, error) {
	if err := spec.Validate(); err != nil {
		return Key{}, err
	}
	if spec.Algorithm == "" {
		spec.Algorithm = c.algorithm
	}
	if c.token != nil {
		if spec.Algorithm == AlgorithmECDSA || spec.Purpose != PurposeAuditCheckpoint {
			return c.createInToken(ctx, spec)
		}
		// The token makes ECDSA keys only (internal/keys/pkcs11), and
		// signed notes need Ed25519: the audit log's checkpoint key alone
		// is sealed in software under the default alias, and its record
		// says so (no token reference). Every other key stays in the
		// token or is refused.
		if len(c.passphrase(c.defaultAlias)) == 0 {
			return Key{}, fmt.Errorf("%w: algorithm %q: the PKCS#11 token creates ecdsa keys only, and the audit log's checkpoint key is then sealed under the passphrase alias %q, which is not configured", ErrInvalid, spec.Algorithm, c.defaultAlias)
		}
		c.log.WarnContext(ctx, "the PKCS#11 token cannot make Ed25519 keys: the audit log's checkpoint key is sealed in software under the default passphrase alias",
			slog.String("token", c.token.Name()), slog.String("alias", c.defaultAlias))
	}
	var priv crypto.Signer
	var err error
	switch spec.Algorithm {
	case AlgorithmED25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return Key{}, fmt.Errorf("custody: generate: %w", err)
	}
	return c.store(ctx, spec, priv)
}

// ImportKey seals an existing private key (see Custodian). It is sealed
// under the default alias even when a Token is configured.
func (c *Core) ImportKey(ctx context.Context, spec Spec, priv crypto.Signer) (Key, error) {
	if err := spec.Validate(); err != nil {
		return Key{}, err
	}
	var alg string
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return Key{}, fmt.Errorf("%w: only P-256 ECDSA keys are held", ErrInvalid)
		}
		alg = AlgorithmECDSA
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return Key{}, fmt.Errorf("%w: malformed ed25519 key", ErrInvalid)
		}
		alg = AlgorithmED25519
	default:
		return Key{}, fmt.Errorf("%w: cannot import a %T (import an *ecdsa.PrivateKey or an ed25519.PrivateKey)", ErrInvalid, priv)
	}
	if spec.Algorithm != "" && spec.Algorithm != alg {
		return Key{}, fmt.Errorf("%w: the key is %s, the spec says %s", ErrInvalid, alg, spec.Algorithm)
	}
	spec.Algorithm = alg
	// Hold a copy of our own, not the caller's value.
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return c.store(ctx, spec, parsed.(crypto.Signer))
}

// store seals priv under the default alias and records it as spec says.
func (c *Core) store(ctx context.Context, spec Spec, priv crypto.Signer) (Key, error) {
	pub, err := keys.FromCrypto(priv.Public())
	if err != nil {
		return Key{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return Key{}, fmt.Errorf("custody: encode: %w", err)
	}
	rec := Record{
		ID: pub.ID(), GUN: spec.GUN, Role: spec.Role, Algorithm: pub.Type(), Public: pub.Public(),
		Purpose: spec.Purpose, Owner: spec.Owner, CreatedAt: c.now().UTC().Truncate(time.Microsecond),
	}
	if rec.Seal, err = c.sealNew(ctx, rec, der); err != nil {
		return Key{}, err
	}
	if err := c.st.PutKey(ctx, rec); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Key{}, fmt.Errorf("%w: %s", ErrExists, rec.ID)
		}
		return Key{}, fmt.Errorf("custody: store key: %w", err)
	}
	c.remember(rec, pub, priv)
	return describe(rec, pub), nil
}

// sealNew seals der in the current format under the default alias.
func (c *Core) sealNew(ctx context.Context, rec Record, der []byte) (Seal, error) {
	kek, err := c.kek(ctx, c.defaultAlias, true)
	if err != nil {
		return Seal{}, err
	}
	dek := random(dekSize)
	aead, err := newGCM(dek)
	if err != nil {
		return Seal{}, err
	}
	return Seal{
		Format: FormatV2, Alias: c.defaultAlias,
		Sealed:     seal(aead, der, keyAD(FormatV2, rec)),
		WrappedDEK: seal(kek, dek, dekAD(FormatV2, c.defaultAlias, rec)),
	}, nil
}

// RotateKey makes a new key like id (see Custodian).
func (c *Core) RotateKey(ctx context.Context, id string) (Key, error) {
	old, err := c.Key(ctx, id)
	if err != nil {
		return Key{}, err
	}
	return c.CreateKey(ctx, old.Spec())
}

// Key describes a key, active or retired.
func (c *Core) Key(ctx context.Context, id string) (Key, error) {
	rec, err := c.record(ctx, id)
	if err != nil {
		return Key{}, err
	}
	return publicKey(rec)
}

// ListKeys lists the keys f selects, newest first.
func (c *Core) ListKeys(ctx context.Context, f Filter) ([]Key, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if f.Limit <= 0 || f.Limit > MaxList {
		f.Limit = MaxList
	}
	recs, err := c.st.ListKeys(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("custody: list keys: %w", err)
	}
	out := make([]Key, 0, len(recs))
	for _, r := range recs { // sealed and token-held alike
		k, err := publicKey(r)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// RetireKey stops a key from signing (see Custodian).
func (c *Core) RetireKey(ctx context.Context, id string) (Key, error) {
	if err := CheckKeyID(id); err != nil {
		return Key{}, err
	}
	if err := c.st.RetireKey(ctx, id, c.now().UTC()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Key{}, fmt.Errorf("%w: %s", ErrNotHeld, id)
		}
		return Key{}, fmt.Errorf("custody: retire key %s: %w", id, err)
	}
	c.forget(id)
	return c.Key(ctx, id)
}

// DeleteKey destroys a retired key (see Custodian).
func (c *Core) DeleteKey(ctx context.Context, id string) error {
	rec, err := c.record(ctx, id)
	if err != nil {
		return err
	}
	if rec.RetiredAt.IsZero() {
		return fmt.Errorf("%w: %s", ErrActive, id)
	}
	if rec.Token.Token != "" {
		if err := c.deleteFromToken(ctx, rec); err != nil {
			return err
		}
	}
	c.forget(id)
	if err := c.st.DeleteKey(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrNotHeld, id)
		}
		return fmt.Errorf("custody: delete key %s: %w", id, err)
	}
	return nil
}

// record reads the record of id; ErrNotHeld when there is none.
func (c *Core) record(ctx context.Context, id string) (Record, error) {
	if err := CheckKeyID(id); err != nil {
		return Record{}, err
	}
	rec, err := c.st.GetKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Record{}, fmt.Errorf("%w: %s", ErrNotHeld, id)
	}
	if err != nil {
		return Record{}, fmt.Errorf("custody: read key %s: %w", id, err)
	}
	return rec, nil
}

// publicKey describes rec, checking that its public key is the one its ID
// names.
func publicKey(rec Record) (Key, error) {
	pub, err := keys.New(rec.Algorithm, rec.Public)
	if err != nil {
		return Key{}, fmt.Errorf("custody: stored key %s: %w", rec.ID, err)
	}
	if pub.ID() != rec.ID {
		return Key{}, fmt.Errorf("%w: key %s does not match its record", ErrTampered, rec.ID)
	}
	return describe(rec, pub), nil
}

func describe(rec Record, pub *keys.PublicKey) Key {
	if rec.Seal.Format == FormatLegacy && rec.Token.Token == "" {
		// Not migrated yet: what the migration will record.
		rec.Purpose, _ = PurposeForRole(rec.Role)
		rec.Owner = OwnerServer
	}
	return Key{
		Public: pub, GUN: rec.GUN, Role: rec.Role, Purpose: rec.Purpose, Owner: rec.Owner,
		Alias: rec.Seal.Alias, Token: rec.Token.Token, CreatedAt: rec.CreatedAt, RetiredAt: rec.RetiredAt,
	}
}

// Signer lends the signer of an active key held for gun (see Custodian).
func (c *Core) Signer(ctx context.Context, gun, id string) (crypto.Signer, error) {
	if err := CheckKeyID(id); err != nil {
		return nil, err
	}
	h, err := c.held(ctx, id)
	if err != nil {
		return nil, err
	}
	if h.rec.GUN != gun {
		return nil, fmt.Errorf("%w: %s for %q", ErrNotHeld, id, gun)
	}
	return lentSigner{pub: h.pub, s: h.signer}, nil
}

// held returns the decrypted key id, from memory (reading its record again
// after RecheckAfter) or from the store.
func (c *Core) held(ctx context.Context, id string) (heldKey, error) {
	c.mu.Lock()
	h, ok := c.cache[id]
	c.mu.Unlock()
	if ok && c.now().Sub(h.checked) < c.recheck {
		return h, nil
	}
	rec, err := c.record(ctx, id)
	if err != nil {
		c.forget(id)
		return heldKey{}, err
	}
	if !rec.RetiredAt.IsZero() {
		c.forget(id)
		return heldKey{}, fmt.Errorf("%w: %s", ErrRetired, id)
	}
	if ok && sameKey(h.rec, rec) {
		h.checked = c.now()
		c.mu.Lock()
		if _, still := c.cache[id]; still {
			c.cache[id] = h
		}
		c.mu.Unlock()
		return h, nil
	}
	var signer crypto.Signer
	var pub *keys.PublicKey
	if rec.Token.Token != "" {
		signer, pub, err = c.findInToken(ctx, rec)
	} else {
		signer, pub, err = c.unseal(ctx, rec)
	}
	if err != nil {
		return heldKey{}, err
	}
	return c.remember(rec, pub, signer), nil
}

// sameKey reports whether a record read again still describes the key in
// memory (anything else is loaded, and so checked, anew).
func sameKey(a, b Record) bool {
	return a.ID == b.ID && a.GUN == b.GUN && a.Role == b.Role && a.Algorithm == b.Algorithm &&
		a.Purpose == b.Purpose && a.Owner == b.Owner && bytes.Equal(a.Public, b.Public) &&
		a.Token.Token == b.Token.Token
}

// unseal unwraps the data key of rec and decrypts the private key,
// checking that it is the key the record names.
func (c *Core) unseal(ctx context.Context, rec Record) (crypto.Signer, *keys.PublicKey, error) {
	var der []byte
	switch rec.Seal.Format {
	case FormatLegacy:
		c.kekMu.Lock()
		legacy := c.legacy
		c.kekMu.Unlock()
		if legacy == nil {
			return nil, nil, fmt.Errorf("custody: key %s is sealed in the format of an earlier release and was not migrated; restart to migrate it", rec.ID)
		}
		plain, err := open(legacy, rec.Seal.Sealed, legacyKeyAD(rec))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: key %s", err, rec.ID)
		}
		der = plain
	case FormatV1, FormatV2:
		if rec.Seal.Format == FormatV1 {
			// V1 seals do not bind purpose and owner: they must be the ones
			// that format implies.
			if p, _ := PurposeForRole(rec.Role); rec.Purpose != p || rec.Owner != OwnerServer {
				return nil, nil, fmt.Errorf("%w: key %s: purpose or owner changed", ErrTampered, rec.ID)
			}
		}
		dek, err := c.unwrap(ctx, rec)
		if err != nil {
			return nil, nil, err
		}
		aead, err := newGCM(dek)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: key %s: data key: %v", ErrTampered, rec.ID, err)
		}
		if der, err = open(aead, rec.Seal.Sealed, keyAD(rec.Seal.Format, rec)); err != nil {
			return nil, nil, fmt.Errorf("%w: key %s", err, rec.ID)
		}
	default:
		return nil, nil, fmt.Errorf("%w: key %s: unknown seal format %d", ErrTampered, rec.ID, rec.Seal.Format)
	}
	return parseSealed(rec, der)
}

// parseSealed parses a decrypted PKCS#8 key and checks it against rec.
func parseSealed(rec Record, der []byte) (crypto.Signer, *keys.PublicKey, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, nil, fmt.Errorf("custody: key %s: %w", rec.ID, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("custody: key %s is a %T", rec.ID, parsed)
	}
	pub, err := keys.FromCrypto(signer.Public())
	if err != nil || !matches(pub, rec) {
		return nil, nil, fmt.Errorf("%w: key %s does not match its record", ErrTampered, rec.ID)
	}
	return signer, pub, nil
}

// matches reports whether pub is the key rec describes: its ID, type and
// public bytes.
func matches(pub *keys.PublicKey, rec Record) bool {
	return pub.ID() == rec.ID && pub.Type() == rec.Algorithm && bytes.Equal(pub.Public(), rec.Public)
}

func (c *Core) unwrap(ctx context.Context, rec Record) ([]byte, error) {
	kek, err := c.kek(ctx, rec.Seal.Alias, false)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", rec.ID, err)
	}
	dek, err := open(kek, rec.Seal.WrappedDEK, dekAD(rec.Seal.Format, rec.Seal.Alias, rec))
	if err != nil {
		return nil, fmt.Errorf("%w: data key of %s", err, rec.ID)
	}
	if len(dek) != dekSize {
		return nil, fmt.Errorf("%w: data key of %s", ErrTampered, rec.ID)
	}
	return dek, nil
}

func (c *Core) remember(rec Record, pub *keys.PublicKey, s crypto.Signer) heldKey {
	rec.Seal = Seal{Format: rec.Seal.Format, Alias: rec.Seal.Alias}
	h := heldKey{rec: rec, pub: pub, signer: s, checked: c.now()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cache[rec.ID]; !ok && len(c.cache) >= maxCached {
		for k := range c.cache { // drop an arbitrary entry; keys reload on demand
			delete(c.cache, k)
			break
		}
	}
	c.cache[rec.ID] = h
	return h
}

func (c *Core) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cache, id)
}

// Check reports whether the core can serve: its storage answers.
func (c *Core) Check(ctx context.Context) error { return c.st.Ping(ctx) }

// lentSigner is what Signer lends: Public and Sign, nothing else (a
// caller cannot type-assert its way to the private key). Sign follows
// crypto.Signer: ECDSA keys sign a digest of opts.HashFunc(), Ed25519 keys
// the whole message with opts.HashFunc() == 0.
type lentSigner struct {
	pub *keys.PublicKey
	s   crypto.Signer
}

func (l lentSigner) Public() crypto.PublicKey { return l.pub.CryptoKey() }

func (l lentSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	hash := opts.HashFunc()
	switch l.pub.CryptoKey().(type) {
	case ed25519.PublicKey:
		if hash != 0 {
			return nil, fmt.Errorf("%w: ed25519 key %s signs the whole message (no hash), got %v", ErrInvalid, l.pub.ID(), hash)
		}
		if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
			return nil, fmt.Errorf("%w: ed25519 contexts are not supported", ErrInvalid)
		}
		opts = crypto.Hash(0)
	case *ecdsa.PublicKey:
		if hash == 0 || !hash.Available() || len(digest) != hash.Size() {
			return nil, fmt.Errorf("%w: ecdsa key %s signs a digest; got %d bytes for %v", ErrInvalid, l.pub.ID(), len(digest), hash)
		}
		opts = hash
	default:
		return nil, fmt.Errorf("custody: key %s has unsupported type %s", l.pub.ID(), l.pub.Type())
	}
	sig, err := l.s.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("custody: sign with %s: %w", l.pub.ID(), err)
	}
	return sig, nil
}
