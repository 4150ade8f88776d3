package keys

// cosign's private key files (`cosign generate-key-pair` writes cosign.key):
// PEM "ENCRYPTED SIGSTORE PRIVATE KEY" (cosign ≥ 2; older files say
// "ENCRYPTED COSIGN PRIVATE KEY") whose bytes are a JSON document
//
//	{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"<b64>"},
//	 "cipher":{"name":"nacl/secretbox","nonce":"<b64>"},
//	 "ciphertext":"<b64>"}
//
// The secretbox key is scrypt(passphrase, salt, N, r, p, 32 bytes); the box
// holds the PKCS#8 DER of the private key. Readers accept only three
// scrypt parameter sets (N = 2^15, 2^16 or 2^17 with r = 8, p = 1), so a
// file cannot make a reader spend unbounded memory or time. cosign reads an
// empty passphrase as a valid one.

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/scrypt"
)

// PEM block types of cosign key files.
const (
	PEMCosignPrivateKey   = "ENCRYPTED SIGSTORE PRIVATE KEY" // what cosign writes
	PEMCosignPrivateKeyV1 = "ENCRYPTED COSIGN PRIVATE KEY"   // cosign before 2.0
)

// The only scrypt parameters a cosign key file may name.
var cosignScryptParams = []cosignScrypt{
	{N: 1 << 15, R: 8, P: 1}, // "legacy"
	{N: 1 << 16, R: 8, P: 1}, // "standard", what cosign writes
	{N: 1 << 17, R: 8, P: 1}, // "OWASP"
}

const (
	cosignSaltSize  = 32
	cosignNonceSize = 24
	cosignBoxKey    = 32
	// maxCosignKeyFile bounds what is decoded: a P-521 or RSA-4096 key is
	// under 4 KiB of ciphertext.
	maxCosignKeyFile = 64 << 10
)

type cosignScrypt struct {
	N int `json:"N"`
	R int `json:"r"`
	P int `json:"p"`
}

type cosignKeyFile struct {
	KDF struct {
		Name   string       `json:"name"`
		Params cosignScrypt `json:"params"`
		Salt   []byte       `json:"salt"`
	} `json:"kdf"`
	Cipher struct {
		Name  string `json:"name"`
		Nonce []byte `json:"nonce"`
	} `json:"cipher"`
	Ciphertext []byte `json:"ciphertext"`
}

// MarshalJSON writes the file's JSON (field order as cosign writes it; the
// bytes are encrypted, never signed or hashed).
func (f *cosignKeyFile) MarshalJSON() ([]byte, error) {
	type plain cosignKeyFile
	return json.Marshal((*plain)(f))
}

// IsCosignPrivateKeyPEM reports whether data starts with a cosign private
// key block (either PEM type).
func IsCosignPrivateKeyPEM(data []byte) bool {
	block, _ := pem.Decode(data)
	return block != nil && (block.Type == PEMCosignPrivateKey || block.Type == PEMCosignPrivateKeyV1)
}

// ParseCosignPrivateKeyPEM reads a cosign private key file. passphrase is
// asked as for ParsePrivateKeyPEM (cosign takes it from COSIGN_PASSWORD);
// a wrong one gives an error wrapping ErrWrongPassphrase. Files that are not
// cosign key files, name other algorithms or scrypt parameters, or are
// malformed give ErrInvalidKeyFile; keys of types Notary cannot use give
// ErrUnsupportedKey.
func ParseCosignPrivateKeyPEM(data []byte, passphrase PassphraseFunc) (*PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrInvalidKeyFile)
	}
	if block.Type != PEMCosignPrivateKey && block.Type != PEMCosignPrivateKeyV1 {
		return nil, fmt.Errorf("%w: PEM type %q, want %q", ErrInvalidKeyFile, block.Type, PEMCosignPrivateKey)
	}
	f, err := parseCosignKeyFile(block.Bytes)
	if err != nil {
		return nil, err
	}
	signer, err := withPassphrase(passphrase, func(pass []byte) (crypto.Signer, error) {
		der, err := f.open(pass)
		if err != nil {
			return nil, err
		}
		return parsePKCS8(der)
	})
	if err != nil {
		return nil, err
	}
	pub, err := FromCrypto(signer.Public())
	if err != nil {
		return nil, err
	}
	return &PrivateKey{signer: signer, pub: pub}, nil
}

// parseCosignKeyFile decodes and checks the JSON of a cosign key file,
// before any passphrase is tried.
func parseCosignKeyFile(b []byte) (*cosignKeyFile, error) {
	if len(b) > maxCosignKeyFile {
		return nil, fmt.Errorf("%w: cosign key file of %d bytes", ErrInvalidKeyFile, len(b))
	}
	var f cosignKeyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: cosign key file: %v", ErrInvalidKeyFile, err)
	}
	switch {
	case f.KDF.Name != "scrypt":
		return nil, fmt.Errorf("%w: cosign key file: key derivation %q, want scrypt", ErrInvalidKeyFile, f.KDF.Name)
	case f.Cipher.Name != "nacl/secretbox":
		return nil, fmt.Errorf("%w: cosign key file: cipher %q, want nacl/secretbox", ErrInvalidKeyFile, f.Cipher.Name)
	case len(f.Cipher.Nonce) != cosignNonceSize:
		return nil, fmt.Errorf("%w: cosign key file: nonce of %d bytes, want %d", ErrInvalidKeyFile, len(f.Cipher.Nonce), cosignNonceSize)
	case len(f.KDF.Salt) == 0:
		return nil, fmt.Errorf("%w: cosign key file: no salt", ErrInvalidKeyFile)
	case len(f.Ciphertext) < secretbox.Overhead:
		return nil, fmt.Errorf("%w: cosign key file: ciphertext of %d bytes", ErrInvalidKeyFile, len(f.Ciphertext))
	}
	for _, p := range cosignScryptParams {
		if f.KDF.Params == p {
			return &f, nil
		}
	}
	return nil, fmt.Errorf("%w: cosign key file: scrypt parameters N=%d r=%d p=%d are not one of cosign's", ErrInvalidKeyFile, f.KDF.Params.N, f.KDF.Params.R, f.KDF.Params.P)
}

// open decrypts the box; a box that does not open means a wrong passphrase.
func (f *cosignKeyFile) open(pass []byte) ([]byte, error) {
	k, err := scrypt.Key(pass, f.KDF.Salt, f.KDF.Params.N, f.KDF.Params.R, f.KDF.Params.P, cosignBoxKey)
	if err != nil {
		return nil, fmt.Errorf("%w: cosign key file: %v", ErrInvalidKeyFile, err)
	}
	var key [cosignBoxKey]byte
	var nonce [cosignNonceSize]byte
	copy(key[:], k)
	copy(nonce[:], f.Cipher.Nonce)
	der, ok := secretbox.Open(nil, f.Ciphertext, &nonce, &key)
	if !ok {
		return nil, ErrWrongPassphrase
	}
	return der, nil
}

// MarshalCosignPrivateKeyPEM writes signer's key as `cosign
// generate-key-pair` does: PEM "ENCRYPTED SIGSTORE PRIVATE KEY", scrypt with
// N = 2^16, r = 8, p = 1 and a 32-byte salt, nacl/secretbox over the PKCS#8
// DER. cosign accepts an empty passphrase, and so does this. signer must be
// a key MarshalPrivateKeyPEM can write.
func MarshalCosignPrivateKeyPEM(signer crypto.Signer, passphrase []byte) ([]byte, error) {
	return marshalCosignPrivateKeyPEM(rand.Reader, signer, passphrase)
}

func marshalCosignPrivateKeyPEM(random io.Reader, signer crypto.Signer, passphrase []byte) ([]byte, error) {
	if k, ok := signer.(*PrivateKey); ok {
		signer = k.signer
	}
	key, err := asSigner(signer)
	if err != nil {
		return nil, fmt.Errorf("%w (%w)", errNotCosignKey, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	var f cosignKeyFile
	f.KDF.Name = "scrypt"
	f.KDF.Params = cosignScryptParams[1]
	f.KDF.Salt = make([]byte, cosignSaltSize)
	f.Cipher.Name = "nacl/secretbox"
	f.Cipher.Nonce = make([]byte, cosignNonceSize)
	if _, err := io.ReadFull(random, f.KDF.Salt); err != nil {
		return nil, fmt.Errorf("keys: random salt: %w", err)
	}
	if _, err := io.ReadFull(random, f.Cipher.Nonce); err != nil {
		return nil, fmt.Errorf("keys: random nonce: %w", err)
	}
	k, err := scrypt.Key(passphrase, f.KDF.Salt, f.KDF.Params.N, f.KDF.Params.R, f.KDF.Params.P, cosignBoxKey)
	if err != nil {
		return nil, err
	}
	var boxKey [cosignBoxKey]byte
	var nonce [cosignNonceSize]byte
	copy(boxKey[:], k)
	copy(nonce[:], f.Cipher.Nonce)
	f.Ciphertext = secretbox.Seal(nil, der, &nonce, &boxKey)
	b, err := f.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: PEMCosignPrivateKey, Bytes: b}), nil
}

// errNotCosignKey is returned by marshalling for keys held elsewhere.
var errNotCosignKey = errors.New("keys: only in-memory ECDSA, RSA and Ed25519 keys can be written to a cosign key file")

// ParseCosignPublicKeyPEM reads a cosign public key (cosign.pub, a PEM
// PUBLIC KEY) or a PEM certificate and returns its public key; name is
// the file's name for the errors.
func ParseCosignPublicKeyPEM(data []byte, name string) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block", name)
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	}
	return nil, fmt.Errorf("%s holds a %q, want a PUBLIC KEY (cosign.pub)", name, block.Type)
}
