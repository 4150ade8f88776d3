package keys

// Private and public key files as the notary 0.7 client and `docker trust`
// read and write them (notary-v1.md §6.3–6.5, §7.3–7.4).

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
)

// PEM block types of key files.
const (
	PEMEncryptedPrivateKey = "ENCRYPTED PRIVATE KEY" // PKCS#8 EncryptedPrivateKeyInfo; what Notary writes
	PEMPrivateKey          = "PRIVATE KEY"           // unencrypted PKCS#8
	PEMPublicKey           = "PUBLIC KEY"            // DER SubjectPublicKeyInfo
	PEMCertificate         = "CERTIFICATE"
)

// PEM headers of Notary key files.
const (
	HeaderRole = "role" // the TUF role (or Docker signer name) the key is for
	HeaderGUN  = "gun"  // the repository, written only for targets and snapshot keys
)

// MaxPassphraseAttempts is how many passphrases ParsePrivateKeyPEM asks for
// before giving up; Notary stops after about as many.
const MaxPassphraseAttempts = 10

// Errors of key files, besides ErrUnsupportedKey and ErrInvalidKey.
var (
	// ErrInvalidKeyFile reports bytes that are not a key file this package
	// reads, or a key file whose contents are malformed.
	ErrInvalidKeyFile = errors.New("keys: invalid key file")
	// ErrWrongPassphrase reports that an encrypted key file did not decrypt
	// with the passphrase given; another passphrase may work.
	ErrWrongPassphrase = errors.New("keys: wrong passphrase")
	// ErrPassphraseRequired reports an encrypted key file parsed without a
	// PassphraseFunc.
	ErrPassphraseRequired = errors.New("keys: key file is encrypted and no passphrase was given")
)

// PassphraseFunc returns the passphrase to decrypt a key file with. attempt
// counts from 0; a call with attempt > 0 means the previous passphrase was
// wrong. An error stops ParsePrivateKeyPEM, which returns it wrapped (or as
// is, if it is ErrWrongPassphrase).
type PassphraseFunc func(attempt int) ([]byte, error)

// Passphrase returns a PassphraseFunc that offers p once and then reports
// ErrWrongPassphrase: for passphrases from the environment or a flag.
func Passphrase(p []byte) PassphraseFunc {
	return func(attempt int) ([]byte, error) {
		if attempt > 0 {
			return nil, ErrWrongPassphrase
		}
		return p, nil
	}
}

// PrivateKey is a private key read from a key file. It is a crypto.Signer;
// its private bytes never leave it (MarshalPrivateKeyPEM can write it to a
// new key file). Its String and GoString show the role and key ID only.
type PrivateKey struct {
	signer crypto.Signer
	pub    *PublicKey
	role   string
	gun    string
}

// Public returns the crypto public key (crypto.Signer).
func (k *PrivateKey) Public() crypto.PublicKey { return k.signer.Public() }

// Sign signs digest with the key (crypto.Signer). Use the package's Sign
// for Notary signatures.
func (k *PrivateKey) Sign(random io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.signer.Sign(random, digest, opts)
}

// PublicKey returns the plain (ecdsa, rsa or ed25519) public key.
func (k *PrivateKey) PublicKey() *PublicKey { return k.pub }

// Key returns the standard library key inside (an *ecdsa.PrivateKey,
// *rsa.PrivateKey or ed25519.PrivateKey), to hand the key over to custody
// (custody.Custodian.ImportKey), which seals it.
func (k *PrivateKey) Key() crypto.Signer { return k.signer }

// ID returns the canonical key ID, which Notary names the key file by.
func (k *PrivateKey) ID() string { return k.pub.ID() }

// Role returns the file's role header ("" if it had none).
func (k *PrivateKey) Role() string { return k.role }

// GUN returns the file's gun header ("" if it had none).
func (k *PrivateKey) GUN() string { return k.gun }

// String describes the key without its secret.
func (k *PrivateKey) String() string {
	return fmt.Sprintf("keys.PrivateKey{%s %s role=%q}", k.pub.Type(), k.pub.ID(), k.role)
}

// GoString describes the key without its secret.
func (k *PrivateKey) GoString() string { return k.String() }

// KeyFileInfo is what a key file says about itself without decrypting it.
type KeyFileInfo struct {
	Role      string // role header
	GUN       string // gun header
	Encrypted bool   // needs a passphrase
}

// InspectPrivateKeyPEM reads a key file's headers, as `notary key list`
// does, without a passphrase.
func InspectPrivateKeyPEM(data []byte) (KeyFileInfo, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return KeyFileInfo{}, fmt.Errorf("%w: no PEM block", ErrInvalidKeyFile)
	}
	info := KeyFileInfo{Role: block.Headers[HeaderRole], GUN: block.Headers[HeaderGUN]}
	switch block.Type {
	case PEMEncryptedPrivateKey:
		info.Encrypted = true
	case PEMPrivateKey:
	case "EC PRIVATE KEY", "RSA PRIVATE KEY", "ED25519 PRIVATE KEY":
		info.Encrypted = isLegacyEncrypted(block)
	default:
		return KeyFileInfo{}, fmt.Errorf("%w: PEM type %q", ErrInvalidKeyFile, block.Type)
	}
	return info, nil
}

// ParsePrivateKeyPEM reads the first PEM block of a key file: PKCS#8
// "ENCRYPTED PRIVATE KEY" (PBES2 with PBKDF2 over HMAC-SHA1/224/256/384/512
// and AES-128/192/256-CBC or 3DES-CBC, as Notary and `openssl pkcs8` write),
// "PRIVATE KEY", and the legacy "EC PRIVATE KEY", "RSA PRIVATE KEY" and
// "ED25519 PRIVATE KEY", plain or RFC 1423 (DEK-Info) encrypted. Ed25519 is
// read both in Notary's form (OID 1.3.6.1.4.1.11591.15.1, 96 bytes) and in
// RFC 8410's.
//
// For an encrypted file it calls passphrase until a passphrase decrypts it,
// passphrase returns an error, or MaxPassphraseAttempts passphrases failed;
// the last ends in an error wrapping ErrWrongPassphrase. Files that are not
// key files, or are malformed, give ErrInvalidKeyFile; keys of other types
// or curves give ErrUnsupportedKey.
func ParsePrivateKeyPEM(data []byte, passphrase PassphraseFunc) (*PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrInvalidKeyFile)
	}
	var (
		signer crypto.Signer
		err    error
	)
	switch block.Type {
	case PEMEncryptedPrivateKey:
		var p *pbes2
		if p, err = parseEncryptedPKCS8(block.Bytes); err != nil {
			return nil, err
		}
		signer, err = withPassphrase(passphrase, func(pass []byte) (crypto.Signer, error) {
			der, err := p.decrypt(pass)
			if err != nil {
				return nil, err
			}
			s, err := parsePKCS8(der)
			if errors.Is(err, errNotPKCS8) {
				return nil, ErrWrongPassphrase
			}
			return s, err
		})
	case PEMPrivateKey:
		signer, err = parsePKCS8(block.Bytes)
	case "EC PRIVATE KEY", "RSA PRIVATE KEY", "ED25519 PRIVATE KEY":
		if !isLegacyEncrypted(block) {
			signer, err = parseLegacy(block.Type, block.Bytes)
			break
		}
		signer, err = withPassphrase(passphrase, func(pass []byte) (crypto.Signer, error) {
			der, err := decryptLegacy(block, pass)
			if err != nil {
				return nil, err
			}
			s, err := parseLegacy(block.Type, der)
			if errors.Is(err, ErrInvalidKeyFile) {
				// Padding can survive a wrong passphrase; the key cannot.
				return nil, ErrWrongPassphrase
			}
			return s, err
		})
	default:
		return nil, fmt.Errorf("%w: PEM type %q", ErrInvalidKeyFile, block.Type)
	}
	if err != nil {
		return nil, err
	}
	pub, err := FromCrypto(signer.Public())
	if err != nil {
		return nil, err
	}
	return &PrivateKey{signer: signer, pub: pub, role: block.Headers[HeaderRole], gun: block.Headers[HeaderGUN]}, nil
}

func withPassphrase(passphrase PassphraseFunc, try func([]byte) (crypto.Signer, error)) (crypto.Signer, error) {
	if passphrase == nil {
		return nil, ErrPassphraseRequired
	}
	for attempt := 0; attempt < MaxPassphraseAttempts; attempt++ {
		pass, err := passphrase(attempt)
		if errors.Is(err, ErrWrongPassphrase) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("keys: key file passphrase: %w", err)
		}
		s, err := try(pass)
		if !errors.Is(err, ErrWrongPassphrase) {
			return s, err
		}
	}
	return nil, fmt.Errorf("%w (%d attempts)", ErrWrongPassphrase, MaxPassphraseAttempts)
}

func isLegacyEncrypted(block *pem.Block) bool {
	_, ok := block.Headers["DEK-Info"]
	return ok
}

// decryptLegacy undoes RFC 1423 PEM encryption, which Notary still reads.
// x509.DecryptPEMBlock is deprecated because the scheme is unauthenticated;
// reading old key files is the one thing it remains for.
func decryptLegacy(block *pem.Block, pass []byte) ([]byte, error) {
	//lint:ignore SA1019 reading legacy key files is what it remains for
	der, err := x509.DecryptPEMBlock(block, pass)
	switch {
	case errors.Is(err, x509.IncorrectPasswordError):
		return nil, ErrWrongPassphrase
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrInvalidKeyFile, err)
	}
	return der, nil
}

func parseLegacy(pemType string, der []byte) (crypto.Signer, error) {
	var (
		key any
		err error
	)
	switch pemType {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	case "ED25519 PRIVATE KEY":
		return parseNotaryEd25519(der)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKeyFile, err)
	}
	return asSigner(key)
}

// MarshalPrivateKeyPEM writes signer's key as Notary writes key files: PEM
// "ENCRYPTED PRIVATE KEY" holding a PKCS#8 EncryptedPrivateKeyInfo (PBES2,
// PBKDF2-HMAC-SHA1 with an 8-byte salt and 2048 iterations, AES-256-CBC with
// a 16-byte IV) of the PrivateKeyInfo Notary makes, or, for an empty
// passphrase, an unencrypted "PRIVATE KEY". Headers are "gun" if gun is not
// empty (Notary sets it only for targets and snapshot keys; the caller
// decides) and "role" if role is not empty (always, in Notary's files).
//
// signer must be an *ecdsa.PrivateKey (P-224 to P-521), *rsa.PrivateKey,
// ed25519.PrivateKey or a *PrivateKey; other signers (hardware) fail with
// ErrUnsupportedKey. Name the file after the key's canonical ID.
func MarshalPrivateKeyPEM(signer crypto.Signer, role, gun string, passphrase []byte) ([]byte, error) {
	return marshalPrivateKeyPEM(rand.Reader, signer, role, gun, passphrase)
}

func marshalPrivateKeyPEM(random io.Reader, signer crypto.Signer, role, gun string, passphrase []byte) ([]byte, error) {
	if k, ok := signer.(*PrivateKey); ok {
		signer = k.signer
	}
	headers, err := keyFileHeaders(role, gun)
	if err != nil {
		return nil, err
	}
	der, err := marshalPKCS8(signer)
	if err != nil {
		return nil, err
	}
	typ := PEMPrivateKey
	if len(passphrase) != 0 {
		typ = PEMEncryptedPrivateKey
		if der, err = encryptPKCS8(random, der, passphrase); err != nil {
			return nil, err
		}
	}
	out := pem.EncodeToMemory(&pem.Block{Type: typ, Headers: headers, Bytes: der})
	if out == nil {
		return nil, fmt.Errorf("keys: cannot encode key file headers %v", headers)
	}
	return out, nil
}

func keyFileHeaders(role, gun string) (map[string]string, error) {
	h := map[string]string{}
	for name, v := range map[string]string{HeaderRole: role, HeaderGUN: gun} {
		if strings.ContainsAny(v, "\r\n") || strings.TrimSpace(v) != v {
			return nil, fmt.Errorf("keys: key file %s header %q must be one line without surrounding spaces", name, v)
		}
		if v != "" {
			h[name] = v
		}
	}
	return h, nil
}

// MarshalPublicKeyPEM writes pub as `docker trust key generate` writes
// NAME.pub: PEM "PUBLIC KEY" with a "role" header (omitted if role is
// empty) and the DER SubjectPublicKeyInfo. For an x509 key it writes the
// certificate's key; for ed25519, the RFC 8410 SubjectPublicKeyInfo. It
// returns nil if role is not a single line without surrounding spaces.
func MarshalPublicKeyPEM(pub *PublicKey, role string) []byte {
	headers, err := keyFileHeaders(role, "")
	if err != nil {
		return nil
	}
	var der []byte
	switch {
	case len(pub.certs) > 0:
		der = pub.certs[0].RawSubjectPublicKeyInfo
	case pub.typ == TypeED25519:
		if der, err = x509.MarshalPKIXPublicKey(pub.key); err != nil {
			return nil
		}
	default:
		der = pub.Public()
	}
	return pem.EncodeToMemory(&pem.Block{Type: PEMPublicKey, Headers: headers, Bytes: der})
}

// ParsePublicKeyPEM reads a public key file as `docker trust signer add`
// does (notary's ParsePEMPublicKey), from its first PEM block: "PUBLIC KEY"
// gives an ecdsa, rsa or ed25519 key whose bytes are the file's DER (so its
// ID is what Docker computes); "CERTIFICATE" gives an ecdsa-x509 or rsa-x509
// key of that one certificate. Unlike Docker it does not check the
// certificate's dates; callers do that with CheckCertificate and their
// clock.
func ParsePublicKeyPEM(data []byte) (*PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrInvalidKey)
	}
	switch block.Type {
	case PEMPublicKey:
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		switch p := pub.(type) {
		case *ecdsa.PublicKey:
			return New(TypeECDSA, block.Bytes)
		case *rsa.PublicKey:
			return New(TypeRSA, block.Bytes)
		case ed25519.PublicKey:
			return New(TypeED25519, p)
		default:
			return nil, fmt.Errorf("%w: public key of type %T", ErrUnsupportedKey, pub)
		}
	case PEMCertificate:
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		return FromCertificate(cert)
	default:
		return nil, fmt.Errorf("%w: PEM type %q, want %s or %s", ErrInvalidKey, block.Type, PEMPublicKey, PEMCertificate)
	}
}
