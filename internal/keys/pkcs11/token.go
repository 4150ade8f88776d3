//go:build pkcs11

package pkcs11

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"
)

// Errors callers branch on.
var (
	// ErrTokenNotFound reports that no token with the label or serial asked
	// for is present.
	ErrTokenNotFound = errors.New("pkcs11: token not found")
	// ErrPINIncorrect reports a PIN the token refused.
	ErrPINIncorrect = errors.New("pkcs11: PIN incorrect")
	// ErrKeyNotFound reports that the token holds no key with the label or
	// ID asked for.
	ErrKeyNotFound = errors.New("pkcs11: key not found")
	// ErrKeyExists reports an attempt to create a key under a label the
	// token already uses.
	ErrKeyExists = errors.New("pkcs11: a key with this label already exists")
)

// Config selects a token: the module to load and the token's label or
// serial, and the user PIN to log in with.
type Config struct {
	ModulePath string
	Token      string // token label
	Serial     string // token serial number (instead of Token)
	PIN        string
	// Sessions bounds the sessions opened on the token, which is how many
	// signatures it makes at once (default 2, enough for a CLI; at least 2).
	Sessions int
}

// ConfigFromURI is the Config of a URI, with the PIN given apart.
func ConfigFromURI(u URI, pin string) Config {
	return Config{ModulePath: u.ModulePath, Token: u.Token, Serial: u.Serial, PIN: pin}
}

// Token is a logged-in session with one token. It is safe for concurrent
// use; Close it when done.
type Token struct {
	cfg  Config
	ctx  *crypto11.Context
	once sync.Once
}

// Open loads the module, finds the token and logs in. The module must pass
// CheckModule (which allow-list applies is the caller's business). Each
// failure names what to fix: a missing or refused module file, a token that is not present (with the
// labels of those that are), a wrong PIN.
//
// PKCS#11 login state belongs to the process: while one Token of a module
// is open, another Open of the same token is already logged in.
func Open(ctx context.Context, cfg Config) (*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := CheckModule(cfg.ModulePath); err != nil {
		return nil, err
	}
	if cfg.Token == "" && cfg.Serial == "" {
		return nil, fmt.Errorf("%w: no token given (token= or serial= in the pkcs11: URI)", ErrTokenNotFound)
	}
	if cfg.PIN == "" {
		return nil, fmt.Errorf("pkcs11: no PIN given for %s", tokenName(cfg))
	}
	sessions := max(cfg.Sessions, 2) // a CLI signs a few times per run; crypto11 needs 2
	c, err := crypto11.Configure(&crypto11.Config{
		Path:        cfg.ModulePath,
		TokenLabel:  cfg.Token,
		TokenSerial: cfg.Serial,
		Pin:         cfg.PIN,
		MaxSessions: sessions,
	})
	if err != nil {
		return nil, explainOpen(cfg, err)
	}
	return &Token{cfg: cfg, ctx: c}, nil
}

func tokenName(cfg Config) string {
	return URI{Token: cfg.Token, Serial: cfg.Serial}.TokenName()
}

// explainOpen turns crypto11's errors into ones that say what to do.
func explainOpen(cfg Config, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "could not find PKCS#11 token"):
		present := presentTokens(cfg.ModulePath)
		if len(present) == 0 {
			return fmt.Errorf("%w: %s is not present in %s, which shows no initialised token", ErrTokenNotFound, tokenName(cfg), cfg.ModulePath)
		}
		return fmt.Errorf("%w: %s is not present in %s; present: %s", ErrTokenNotFound, tokenName(cfg), cfg.ModulePath, strings.Join(present, ", "))
	case strings.Contains(msg, "CKR_PIN_INCORRECT"):
		return fmt.Errorf("%w for %s", ErrPINIncorrect, tokenName(cfg))
	case strings.Contains(msg, "CKR_PIN_LOCKED"):
		return fmt.Errorf("%w: the PIN of %s is locked (too many wrong PINs); unlock it with the SO PIN", ErrPINIncorrect, tokenName(cfg))
	case strings.Contains(msg, "failed to create module context"):
		return fmt.Errorf("%w: %s: %v", ErrModule, cfg.ModulePath, err)
	}
	return fmt.Errorf("pkcs11: opening %s in %s: %w", tokenName(cfg), cfg.ModulePath, err)
}

// presentTokens lists the labels (and serials) of the initialised tokens a
// module shows, for the message of a token that is not found.
func presentTokens(module string) []string {
	m := p11.New(module)
	if m == nil {
		return nil
	}
	defer m.Destroy()
	switch err := m.Initialize(); {
	case err == nil:
		defer m.Finalize()
	case errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)):
		// Another Token of this process has the module open; share it.
	default:
		return nil
	}
	slots, err := m.GetSlotList(true)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range slots {
		ti, err := m.GetTokenInfo(s)
		if err != nil || ti.Flags&p11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%q (serial %s)", strings.TrimSpace(ti.Label), strings.TrimSpace(ti.SerialNumber)))
	}
	return out
}

// Close logs out and releases the module (when no other Token uses it).
func (t *Token) Close() error {
	var err error
	t.once.Do(func() { err = t.ctx.Close() })
	return err
}

// Key is a private key on the token. It is a crypto.Signer; its private
// part stays in the token.
type Key struct {
	signer crypto11.Signer
	label  string
	id     []byte
	uri    URI
}

// Public returns the public key (crypto.Signer).
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }

// Sign signs digest inside the token (crypto.Signer). ECDSA signatures are
// ASN.1 DER, as crypto/ecdsa's.
func (k *Key) Sign(random io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := k.signer.Sign(random, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: signing with %q: %w", k.label, err)
	}
	return sig, nil
}

// Label returns the key's CKA_LABEL.
func (k *Key) Label() string { return k.label }

// ID returns the key's CKA_ID.
func (k *Key) ID() []byte { return append([]byte(nil), k.id...) }

// URI returns a URI that finds the key again: module, token, label and ID,
// without any PIN source.
func (k *Key) URI() URI { return k.uri }

// String describes the key without secrets.
func (k *Key) String() string { return "pkcs11.Key{" + k.uri.String() + "}" }

func (t *Token) keyURI(label string, id []byte) URI {
	return URI{ModulePath: t.cfg.ModulePath, Token: t.cfg.Token, Serial: t.cfg.Serial, Object: label, ID: append([]byte(nil), id...)}
}

// GenerateECDSA creates an ECDSA P-256 key pair inside the token, labelled
// label, with a random 16-byte CKA_ID. The private key is created with
// CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and CKA_EXTRACTABLE=false: it can
// sign and nothing else, and it never leaves the token. A label already in
// use is refused (ErrKeyExists), so a label always names one key.
func (t *Token) GenerateECDSA(ctx context.Context, label string) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if label == "" {
		return nil, errors.New("pkcs11: a new key needs a label")
	}
	if existing, err := t.ctx.FindKeyPairs(nil, []byte(label)); err != nil {
		return nil, fmt.Errorf("pkcs11: looking for %q: %w", label, err)
	} else if len(existing) > 0 {
		return nil, fmt.Errorf("%w: %q on %s", ErrKeyExists, label, tokenName(t.cfg))
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	public, err := crypto11.NewAttributeSetWithIDAndLabel(id, []byte(label))
	if err != nil {
		return nil, err
	}
	private := public.Copy()
	for _, a := range []struct {
		typ crypto11.AttributeType
		v   bool
	}{
		{p11.CKA_TOKEN, true}, {p11.CKA_PRIVATE, true}, {p11.CKA_SENSITIVE, true},
		{p11.CKA_EXTRACTABLE, false}, {p11.CKA_SIGN, true}, {p11.CKA_DECRYPT, false}, {p11.CKA_DERIVE, false},
	} {
		if err := private.Set(a.typ, a.v); err != nil {
			return nil, err
		}
	}
	s, err := t.ctx.GenerateECDSAKeyPairWithAttributes(public, private, elliptic.P256())
	if err != nil {
		return nil, fmt.Errorf("pkcs11: generating an ECDSA P-256 key on %s: %w", tokenName(t.cfg), err)
	}
	return &Key{signer: s, label: label, id: id, uri: t.keyURI(label, id)}, nil
}

// Find returns the key pair with the given label and/or ID (at least one).
// No match is ErrKeyNotFound; more than one (a label used twice, with no ID
// to tell them apart) is an error too.
func (t *Token) Find(ctx context.Context, label string, id []byte) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if label == "" && len(id) == 0 {
		return nil, errors.New("pkcs11: a key is found by label (object=) or ID (id=); neither was given")
	}
	var l, i []byte
	if label != "" {
		l = []byte(label)
	}
	if len(id) > 0 {
		i = id
	}
	found, err := t.ctx.FindKeyPairs(i, l)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: looking for %s: %w", describe(label, id), err)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: no key pair %s on %s", ErrKeyNotFound, describe(label, id), tokenName(t.cfg))
	case 1:
	default:
		return nil, fmt.Errorf("pkcs11: %d key pairs %s on %s; add id= to the URI to pick one", len(found), describe(label, id), tokenName(t.cfg))
	}
	s := found[0]
	gotLabel, gotID := label, id
	if a, err := t.ctx.GetAttribute(s, p11.CKA_LABEL); err == nil && a != nil {
		gotLabel = string(a.Value)
	}
	if a, err := t.ctx.GetAttribute(s, p11.CKA_ID); err == nil && a != nil {
		gotID = a.Value
	}
	return &Key{signer: s, label: gotLabel, id: gotID, uri: t.keyURI(gotLabel, gotID)}, nil
}

// FindURI finds the key a URI names (object= and/or id=).
func (t *Token) FindURI(ctx context.Context, u URI) (*Key, error) {
	return t.Find(ctx, u.Object, u.ID)
}

// Attributes reads boolean attributes of a key's private object, so
// callers and tests can check that it is sensitive and not extractable.
func (t *Token) Attributes(k *Key, types ...crypto11.AttributeType) (map[crypto11.AttributeType]bool, error) {
	set, err := t.ctx.GetAttributes(k.signer, types)
	if err != nil {
		return nil, err
	}
	out := map[crypto11.AttributeType]bool{}
	for typ, a := range set {
		out[typ] = len(a.Value) == 1 && a.Value[0] != 0
	}
	return out, nil
}

// Delete removes a key pair from the token.
func (t *Token) Delete(k *Key) error {
	return k.signer.Delete()
}

func describe(label string, id []byte) string {
	switch {
	case label != "" && len(id) > 0:
		return fmt.Sprintf("labelled %q with ID %x", label, id)
	case label != "":
		return fmt.Sprintf("labelled %q", label)
	}
	return fmt.Sprintf("with ID %x", id)
}
