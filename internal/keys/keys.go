// Package keys holds the public-key formats of Notary metadata, their key
// IDs, the signature methods that verify against them, and signing through a
// crypto.Signer.
//
// Invariants: a *PublicKey is immutable once made and always parsed (New
// refuses bytes it cannot use); key IDs are computed exactly as Notary does;
// no function here takes or returns private-key bytes, and nothing reads the
// clock: certificate checks take the time as an argument.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/signet-trust/signet/internal/tuf/cjson"
)

// Key types as they appear in "keytype".
const (
	TypeECDSA     = "ecdsa"
	TypeECDSAX509 = "ecdsa-x509"
	TypeED25519   = "ed25519"
	TypeRSA       = "rsa"
	TypeRSAX509   = "rsa-x509"
)

// Errors callers branch on.
var (
	ErrUnsupportedKey = errors.New("keys: unsupported key")
	ErrInvalidKey     = errors.New("keys: invalid key")
	// ErrKeyNotHeld is what a key custodian (embedded or remote) reports for
	// a key it does not hold for the repository asked about.
	ErrKeyNotHeld = errors.New("keys: key not held")
	// ErrInvalidRequest is what a key custodian reports for a request it
	// refuses as malformed: a name it cannot hold a key under, a digest or
	// message the key's algorithm does not sign. Retrying it unchanged
	// cannot succeed.
	ErrInvalidRequest = errors.New("keys: invalid request")
)

// PublicKey is a public key as Notary metadata carries it: a key type and
// the bytes of keyval.public (DER SubjectPublicKeyInfo for ecdsa and rsa, a
// PEM certificate chain for the x509 types, 32 raw bytes for ed25519).
type PublicKey struct {
	typ       string
	public    []byte
	id        string
	canonical string // CanonicalID
	key       crypto.PublicKey
	certs     []*x509.Certificate // x509 types only: leaf first
}

// New parses a key of the given type. It fails for unknown types and for
// bytes that do not hold a key of that type.
func New(keytype string, public []byte) (*PublicKey, error) {
	k := &PublicKey{typ: keytype, public: append([]byte(nil), public...)}
	var err error
	switch keytype {
	case TypeECDSA, TypeRSA:
		k.key, err = x509.ParsePKIXPublicKey(public)
		if err != nil {
			return nil, fmt.Errorf("%w: %s key: %v", ErrInvalidKey, keytype, err)
		}
	case TypeECDSAX509, TypeRSAX509:
		k.certs, err = parseCertChain(public)
		if err != nil {
			return nil, fmt.Errorf("%w: %s key: %v", ErrInvalidKey, keytype, err)
		}
		k.key = k.certs[0].PublicKey
	case TypeED25519:
		if len(public) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: ed25519 key is %d bytes, want %d", ErrInvalidKey, len(public), ed25519.PublicKeySize)
		}
		k.key = ed25519.PublicKey(k.public)
	default:
		return nil, fmt.Errorf("%w: key type %q", ErrUnsupportedKey, keytype)
	}
	switch keytype {
	case TypeECDSA, TypeECDSAX509:
		if _, ok := k.key.(*ecdsa.PublicKey); !ok {
			return nil, fmt.Errorf("%w: %s key holds a %T", ErrInvalidKey, keytype, k.key)
		}
	case TypeRSA, TypeRSAX509:
		if _, ok := k.key.(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("%w: %s key holds a %T", ErrInvalidKey, keytype, k.key)
		}
	}
	k.id = computeID(keytype, k.public)
	k.canonical = k.id
	if len(k.certs) > 0 {
		der, err := x509.MarshalPKIXPublicKey(k.key)
		if err != nil {
			return nil, fmt.Errorf("%w: %s key: %v", ErrInvalidKey, keytype, err)
		}
		plain := TypeECDSA
		if keytype == TypeRSAX509 {
			plain = TypeRSA
		}
		k.canonical = computeID(plain, der)
	}
	return k, nil
}

func parseCertChain(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}

// FromCrypto makes a plain (not x509) key from an ECDSA, RSA or Ed25519
// public key.
func FromCrypto(pub crypto.PublicKey) (*PublicKey, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return New(TypeED25519, p)
	case *ecdsa.PublicKey, *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		t := TypeECDSA
		if _, ok := p.(*rsa.PublicKey); ok {
			t = TypeRSA
		}
		return New(t, der)
	default:
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
}

// FromCertificate makes an x509 key (ecdsa-x509 or rsa-x509) from a
// certificate, PEM-encoded exactly as Go (and so Notary) encodes it.
func FromCertificate(certs ...*x509.Certificate) (*PublicKey, error) {
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no certificate", ErrInvalidKey)
	}
	var t string
	switch certs[0].PublicKey.(type) {
	case *ecdsa.PublicKey:
		t = TypeECDSAX509
	case *rsa.PublicKey:
		t = TypeRSAX509
	default:
		return nil, fmt.Errorf("%w: certificate key %T", ErrUnsupportedKey, certs[0].PublicKey)
	}
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return New(t, b)
}

// Type returns the key type.
func (k *PublicKey) Type() string { return k.typ }

// Public returns a copy of the keyval.public bytes.
func (k *PublicKey) Public() []byte { return append([]byte(nil), k.public...) }

// ID returns the TUF key ID: the hex SHA-256 of the key's canonical JSON.
func (k *PublicKey) ID() string { return k.id }

// CanonicalID returns the ID Notary names private-key files by: for an x509
// key, the ID of the plain key inside the leaf certificate; for any other
// key, its ID. Two keys with the same CanonicalID are one private key,
// however they are written.
func (k *PublicKey) CanonicalID() string { return k.canonical }

// CryptoKey returns the parsed public key.
func (k *PublicKey) CryptoKey() crypto.PublicKey { return k.key }

// Certificates returns the certificate chain of an x509 key, leaf first, or
// nil for other types.
func (k *PublicKey) Certificates() []*x509.Certificate { return k.certs }

func computeID(keytype string, public []byte) string {
	var b []byte
	b = append(b, `{"keytype":`...)
	b = cjson.AppendString(b, keytype)
	b = append(b, `,"keyval":{"private":null,"public":"`...)
	b = base64.StdEncoding.AppendEncode(b, public)
	b = append(b, `"}}`...)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type keyJSON struct {
	Type  string `json:"keytype"`
	Value struct {
		Private []byte `json:"private"`
		Public  []byte `json:"public"`
	} `json:"keyval"`
}

// MarshalJSON encodes the key as Notary does, with a null private part.
func (k *PublicKey) MarshalJSON() ([]byte, error) {
	var j keyJSON
	j.Type = k.typ
	j.Value.Public = k.public
	return json.Marshal(j)
}

// UnmarshalJSON parses a key object; private parts are refused.
func (k *PublicKey) UnmarshalJSON(data []byte) error {
	var j keyJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	if len(j.Value.Private) != 0 {
		return fmt.Errorf("%w: metadata key carries private bytes", ErrInvalidKey)
	}
	parsed, err := New(j.Type, j.Value.Public)
	if err != nil {
		return err
	}
	*k = *parsed
	return nil
}
