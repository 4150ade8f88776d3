// Package signer is the core of signet-signer: it creates online keys,
// keeps them sealed in its own SQLite database, and signs with them. It has
// no network code; package signerapi serves it over mutual TLS.
//
// Invariants:
//   - A private key leaves this package only as the signatures it makes;
//     no method returns private key bytes.
//   - Every key is sealed with its own random data key (AES-256-GCM), and
//     that data key is wrapped under the key-encryption key of a named
//     passphrase alias (scrypt). Both seals are bound to the key's ID, GUN
//     and role, so a blob altered, truncated or moved to another record is
//     refused (ErrTampered); after decryption the key must also hash to its
//     ID.
//   - A key is used only for the GUN it was created for: asking for it
//     with another GUN is ErrNotHeld, exactly as for an unknown key.
//   - A wrong passphrase for an alias is detected by a sealed check value
//     before any key under it is used (ErrWrongPassphrase).
//   - Rekey changes only wrapped data keys, one key per statement, so it
//     can run beside a serving signer on the same database.
//   - With a Token configured, new keys are generated inside it and never
//     leave it: the database records only where to find them (label,
//     object ID) and their public keys, and a key found there must hash to
//     the ID recorded. Rekey does not concern them.
package signer

import (
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
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/keys"
)

// Errors callers branch on.
var (
	// ErrNotHeld reports a key the signer does not hold for the GUN asked
	// about; it wraps keys.ErrKeyNotHeld.
	ErrNotHeld = fmt.Errorf("signer: %w", keys.ErrKeyNotHeld)
	// ErrTampered reports a sealed key or wrapped data key that fails
	// authentication: altered, truncated or moved to another record.
	ErrTampered = errors.New("signer: sealed key failed authentication (tampered, truncated or moved)")
	// ErrWrongPassphrase reports a passphrase that does not open its alias.
	ErrWrongPassphrase = errors.New("signer: the passphrase does not open this alias")
	// ErrNoPassphrase reports an alias whose passphrase is not configured.
	ErrNoPassphrase = errors.New("signer: no passphrase configured for alias")
	// ErrInvalid reports a request the signer refuses as malformed; it
	// wraps keys.ErrInvalidRequest (the API answers 400).
	ErrInvalid = fmt.Errorf("signer: %w", keys.ErrInvalidRequest)
)

// Key algorithms the signer creates.
const (
	AlgorithmECDSA   = keys.TypeECDSA // P-256
	AlgorithmED25519 = keys.TypeED25519
)

// maxCached bounds the decrypted keys kept in memory.
const maxCached = 4096

var aliasPattern = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// ValidAlias reports whether name can name a passphrase alias: lowercase
// letters, digits and underscores, so that its environment variable
// (upper-cased) is unambiguous.
func ValidAlias(name string) bool { return aliasPattern.MatchString(name) }

// Options configure a Service.
type Options struct {
	// DefaultAlias names the passphrase alias new keys are wrapped under.
	DefaultAlias string
	// Passphrase returns the passphrase of an alias, or nil when it is not
	// configured.
	Passphrase func(alias string) []byte
	// Logger receives warnings (aliases in use without a passphrase).
	Logger *slog.Logger
	// Now returns the current time (creation times of keys).
	Now func() time.Time
	// Token, when set, is the PKCS#11 token new keys are created in
	// (ECDSA only). The default alias then needs a passphrase only if
	// keys under it are used; keys made before keep working as they are.
	Token Token
}

// Service is the custody service.
type Service struct {
	db           *DB
	log          *slog.Logger
	now          func() time.Time
	defaultAlias string
	passphrase   func(string) []byte
	token        Token

	kekMu sync.Mutex
	keks  map[string]cipher.AEAD // aliases opened with a checked passphrase

	mu    sync.Mutex
	cache map[string]heldKey
}

type heldKey struct {
	gun, role string
	pub       *keys.PublicKey
	signer    crypto.Signer
}

// Open checks the passphrases against db: the default alias must have one
// (its salt and check value are created on first use), and every alias in
// use that has one must be opened by it. Aliases in use without a
// passphrase are logged; their keys fail with ErrNoPassphrase until it is
// configured.
func Open(ctx context.Context, db *DB, opts Options) (*Service, error) {
	if !ValidAlias(opts.DefaultAlias) {
		return nil, fmt.Errorf("signer: default alias %q: use 1 to 64 lowercase letters, digits or underscores", opts.DefaultAlias)
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
	s := &Service{
		db: db, log: opts.Logger, now: opts.Now, defaultAlias: opts.DefaultAlias, passphrase: opts.Passphrase,
		token: opts.Token, keks: map[string]cipher.AEAD{}, cache: map[string]heldKey{},
	}
	inUse, err := db.aliasesInUse(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range inUse {
		_, err := s.kek(ctx, u.alias, false)
		switch {
		case errors.Is(err, ErrNoPassphrase):
			s.log.WarnContext(ctx, "passphrase alias in use but not configured: its keys cannot sign until it is",
				slog.String("alias", u.alias), slog.Int("keys", u.keys))
		case err != nil:
			return nil, err
		}
	}
	byToken, err := db.tokenKeyCount(ctx)
	if err != nil {
		return nil, err
	}
	for tok, n := range byToken {
		switch {
		case s.token == nil:
			s.log.WarnContext(ctx, "keys held in a PKCS#11 token, and no token configured: they cannot sign until one is (--pkcs11)",
				slog.String("token", tok), slog.Int("keys", n))
		case tok != s.token.Name():
			s.log.WarnContext(ctx, "keys held in another PKCS#11 token than the one configured: they cannot sign from this one",
				slog.String("token", tok), slog.String("configured", s.token.Name()), slog.Int("keys", n))
		}
	}
	// The default alias last, so a start refused above stores nothing.
	// With a token, new keys do not need it.
	if s.token != nil && len(s.passphrase(s.defaultAlias)) == 0 {
		return s, nil
	}
	if _, err := s.kek(ctx, s.defaultAlias, true); err != nil {
		return nil, err
	}
	return s, nil
}

// kek returns the key-encryption key of an alias, deriving it on first use
// (create: storing a new salt and check value if the alias is new).
func (s *Service) kek(ctx context.Context, alias string, create bool) (cipher.AEAD, error) {
	s.kekMu.Lock()
	defer s.kekMu.Unlock()
	if a, ok := s.keks[alias]; ok {
		return a, nil
	}
	pass := s.passphrase(alias)
	if len(pass) == 0 {
		return nil, fmt.Errorf("%w %q", ErrNoPassphrase, alias)
	}
	rec, ok, err := s.db.getAlias(ctx, alias)
	if err != nil {
		return nil, err
	}
	if !ok {
		if !create {
			return nil, fmt.Errorf("signer: alias %q is not in the database", alias)
		}
		rec = aliasRecord{alias: alias, kdf: newAliasKDF, salt: random(saltSize)}
		aead, err := deriveKEK(pass, rec.salt, rec.kdf)
		if err != nil {
			return nil, err
		}
		rec.check = seal(aead, []byte(checkPlain), checkAD(alias))
		if err := s.db.addAlias(ctx, rec, s.now()); err != nil {
			return nil, err
		}
		// Another process may have added the alias first: use what is stored.
		if rec, ok, err = s.db.getAlias(ctx, alias); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("signer: alias %q vanished", alias)
		}
	}
	aead, err := deriveKEK(pass, rec.salt, rec.kdf)
	if err != nil {
		return nil, err
	}
	if plain, err := open(aead, rec.check, checkAD(alias)); err != nil || string(plain) != checkPlain {
		return nil, fmt.Errorf("%w %q", ErrWrongPassphrase, alias)
	}
	s.keks[alias] = aead
	return aead, nil
}

// checkName refuses GUNs and roles that are empty, too long or hold control
// characters (the additional data separates fields with NUL).
func checkName(what, v string) error {
	if v == "" || len(v) > 255 {
		return fmt.Errorf("%w: %s must be 1 to 255 bytes", ErrInvalid, what)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s holds a control character", ErrInvalid, what)
		}
	}
	return nil
}

// Create makes a new key of algorithm (AlgorithmECDSA or AlgorithmED25519)
// for gun and role, stores it sealed under the default alias, and returns
// its public key. With a Token, the key (ECDSA only) is created inside the
// token instead, and only its public half and location are stored.
func (s *Service) Create(ctx context.Context, gun, role, algorithm string) (*keys.PublicKey, error) {
	if err := errors.Join(checkName("gun", gun), checkName("role", role)); err != nil {
		return nil, err
	}
	if s.token != nil {
		return s.createInToken(ctx, gun, role, algorithm)
	}
	var priv crypto.Signer
	var err error
	switch algorithm {
	case AlgorithmECDSA:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgorithmED25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("%w: algorithm %q not supported (use ecdsa or ed25519)", ErrInvalid, algorithm)
	}
	if err != nil {
		return nil, fmt.Errorf("signer: generate: %w", err)
	}
	pub, err := keys.FromCrypto(priv.Public())
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("signer: encode: %w", err)
	}
	kek, err := s.kek(ctx, s.defaultAlias, true)
	if err != nil {
		return nil, err
	}
	dek := random(dekSize)
	aead, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	id := pub.ID()
	rec := keyRecord{
		id: id, gun: gun, role: role, algorithm: pub.Type(), public: pub.Public(), alias: s.defaultAlias,
		sealed:     seal(aead, der, keyAD(id, gun, role, pub.Type())),
		wrappedDEK: seal(kek, dek, dekAD(s.defaultAlias, id, gun, role)),
		createdAt:  s.now().UTC(),
	}
	if err := s.db.putKey(ctx, rec); err != nil {
		return nil, err
	}
	s.remember(id, heldKey{gun: gun, role: role, pub: pub, signer: priv})
	return pub, nil
}

// Keys lists the public keys held for gun and role, newest first.
func (s *Service) Keys(ctx context.Context, gun, role string) ([]*keys.PublicKey, error) {
	recs, err := s.db.listKeys(ctx, gun, role)
	if err != nil {
		return nil, err
	}
	out := make([]*keys.PublicKey, 0, len(recs))
	for _, r := range recs { // sealed and token-held alike
		k, err := keys.New(r.algorithm, r.public)
		if err != nil {
			return nil, fmt.Errorf("signer: stored key %s: %w", r.id, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// Key returns the public key of a key held for gun; ErrNotHeld when there
// is none (also when the key belongs to another GUN).
func (s *Service) Key(ctx context.Context, gun, id string) (*keys.PublicKey, error) {
	if h, ok := s.cached(id); ok {
		if h.gun != gun {
			return nil, fmt.Errorf("%w: %s for %s", ErrNotHeld, id, gun)
		}
		return h.pub, nil
	}
	rec, ok, err := s.db.getKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		trec, tok, err := s.db.getTokenKey(ctx, id)
		if err != nil {
			return nil, err
		}
		ok = tok
		rec = keyRecord{id: trec.id, gun: trec.gun, algorithm: trec.algorithm, public: trec.public}
	}
	if !ok || rec.gun != gun {
		return nil, fmt.Errorf("%w: %s for %s", ErrNotHeld, id, gun)
	}
	k, err := keys.New(rec.algorithm, rec.public)
	if err != nil {
		return nil, fmt.Errorf("signer: stored key %s: %w", id, err)
	}
	if k.ID() != id {
		return nil, fmt.Errorf("%w: key %s does not match its record", ErrTampered, id)
	}
	return k, nil
}

// Sign signs with a key held for gun exactly as crypto.Signer.Sign does:
// for ECDSA keys digest is a digest made with opts.HashFunc() and the
// result ASN.1 DER; for Ed25519 keys opts.HashFunc() must be 0, digest is
// the whole message and the result the 64-byte signature.
func (s *Service) Sign(ctx context.Context, gun, id string, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	h, err := s.held(ctx, gun, id)
	if err != nil {
		return nil, err
	}
	hash := opts.HashFunc()
	switch h.signer.Public().(type) {
	case ed25519.PublicKey:
		if hash != 0 {
			return nil, fmt.Errorf("%w: ed25519 key %s signs the whole message (no hash), got %v", ErrInvalid, id, hash)
		}
		opts = crypto.Hash(0)
	case *ecdsa.PublicKey:
		if hash == 0 || !hash.Available() || len(digest) != hash.Size() {
			return nil, fmt.Errorf("%w: ecdsa key %s signs a digest; got %d bytes for %v", ErrInvalid, id, len(digest), hash)
		}
		opts = hash
	default:
		return nil, fmt.Errorf("signer: key %s has unsupported type %T", id, h.signer.Public())
	}
	sig, err := h.signer.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("signer: sign with %s: %w", id, err)
	}
	return sig, nil
}

// held returns the decrypted key id for gun, from memory or the database.
func (s *Service) held(ctx context.Context, gun, id string) (heldKey, error) {
	if h, ok := s.cached(id); ok {
		if h.gun != gun {
			return heldKey{}, fmt.Errorf("%w: %s for %s", ErrNotHeld, id, gun)
		}
		return h, nil
	}
	rec, ok, err := s.db.getKey(ctx, id)
	if err != nil {
		return heldKey{}, err
	}
	if !ok {
		return s.heldInToken(ctx, gun, id)
	}
	if rec.gun != gun {
		return heldKey{}, fmt.Errorf("%w: %s for %s", ErrNotHeld, id, gun)
	}
	h, err := s.unseal(ctx, rec)
	if err != nil {
		return heldKey{}, err
	}
	s.remember(id, h)
	return h, nil
}

// heldInToken returns the token-held key id for gun.
func (s *Service) heldInToken(ctx context.Context, gun, id string) (heldKey, error) {
	rec, ok, err := s.db.getTokenKey(ctx, id)
	if err != nil {
		return heldKey{}, err
	}
	if !ok || rec.gun != gun {
		return heldKey{}, fmt.Errorf("%w: %s for %s", ErrNotHeld, id, gun)
	}
	h, err := s.findInToken(ctx, rec)
	if err != nil {
		return heldKey{}, err
	}
	s.remember(id, h)
	return h, nil
}

// unseal unwraps the data key of rec and decrypts the private key,
// checking that it is the key the record names.
func (s *Service) unseal(ctx context.Context, rec keyRecord) (heldKey, error) {
	dek, err := s.unwrap(ctx, rec)
	if err != nil {
		return heldKey{}, err
	}
	aead, err := newGCM(dek)
	if err != nil {
		return heldKey{}, fmt.Errorf("%w: key %s: data key: %v", ErrTampered, rec.id, err)
	}
	der, err := open(aead, rec.sealed, keyAD(rec.id, rec.gun, rec.role, rec.algorithm))
	if err != nil {
		return heldKey{}, fmt.Errorf("%w: key %s", err, rec.id)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return heldKey{}, fmt.Errorf("signer: key %s: %w", rec.id, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return heldKey{}, fmt.Errorf("signer: key %s is a %T", rec.id, parsed)
	}
	pub, err := keys.FromCrypto(signer.Public())
	if err != nil || pub.ID() != rec.id || pub.Type() != rec.algorithm {
		return heldKey{}, fmt.Errorf("%w: key %s does not match its record", ErrTampered, rec.id)
	}
	return heldKey{gun: rec.gun, role: rec.role, pub: pub, signer: signer}, nil
}

func (s *Service) unwrap(ctx context.Context, rec keyRecord) ([]byte, error) {
	kek, err := s.kek(ctx, rec.alias, false)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", rec.id, err)
	}
	dek, err := open(kek, rec.wrappedDEK, dekAD(rec.alias, rec.id, rec.gun, rec.role))
	if err != nil {
		return nil, fmt.Errorf("%w: data key of %s", err, rec.id)
	}
	if len(dek) != dekSize {
		return nil, fmt.Errorf("%w: data key of %s", ErrTampered, rec.id)
	}
	return dek, nil
}

func (s *Service) cached(id string) (heldKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.cache[id]
	return h, ok
}

func (s *Service) remember(id string, h heldKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= maxCached {
		for k := range s.cache { // drop an arbitrary entry; keys reload on demand
			delete(s.cache, k)
			break
		}
	}
	s.cache[id] = h
}

// Check reports whether the service can serve: the database answers.
func (s *Service) Check(ctx context.Context) error { return s.db.Ping(ctx) }
