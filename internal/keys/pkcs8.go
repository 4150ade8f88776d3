package keys

// PKCS#8 as Notary 0.7 writes and reads it (tuf/utils/pkcs8.go, a fork of
// youmark/pkcs8): PrivateKeyInfo (RFC 5208) and EncryptedPrivateKeyInfo with
// PBES2 (RFC 8018). Everything here works on DER; the PEM layer is keyfile.go.

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Object identifiers of the algorithms in key files.
var (
	oidPublicKeyRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidPublicKeyECDSA = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidPublicKeyEd    = asn1.ObjectIdentifier{1, 3, 101, 112} // RFC 8410
	oidNotaryEd25519  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 15, 1}
	oidNamedCurveP224 = asn1.ObjectIdentifier{1, 3, 132, 0, 33}
	oidNamedCurveP256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidNamedCurveP384 = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidNamedCurveP521 = asn1.ObjectIdentifier{1, 3, 132, 0, 35}
	oidPBES2          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC     = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
)

// What Notary writes: an 8-byte salt and 2048 PBKDF2 iterations.
const (
	notaryPBKDF2Salt   = 8
	notaryPBKDF2Rounds = 2048
)

// maxPBKDF2Iterations bounds the work a key file can demand. Notary writes
// 2048, OpenSSL 3 writes 2048, current guidance for interactive use is in
// the hundreds of thousands.
const maxPBKDF2Iterations = 1 << 20

// notaryEd25519Size is the length of Notary's Ed25519 private encoding: the
// 32-byte public key followed by Go's 64-byte private key (seed ‖ public).
const notaryEd25519Size = ed25519.PublicKeySize + ed25519.PrivateKeySize

// privateKeyInfoOut is PrivateKeyInfo the way Notary marshals it: the
// AlgorithmIdentifier is a SEQUENCE of OIDs (the ECDSA curve is the second
// OID, and RSA has no NULL parameter).
type privateKeyInfoOut struct {
	Version    int
	Algorithm  []asn1.ObjectIdentifier
	PrivateKey []byte
}

// privateKeyInfoIn is PrivateKeyInfo / OneAsymmetricKey (RFC 5958) for
// parsing; the optional trailing fields are accepted and ignored.
type privateKeyInfoIn struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
	Attributes asn1.RawValue `asn1:"optional,tag:0"`
	PublicKey  asn1.RawValue `asn1:"optional,tag:1"`
}

type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

type pbkdf2ParamsIn struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                      `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
}

// pbkdf2ParamsOut is what Notary writes: no key length, default PRF.
type pbkdf2ParamsOut struct {
	Salt           []byte
	IterationCount int
}

// marshalPKCS8 encodes key as the PrivateKeyInfo Notary writes: ECDSA with
// version 1, id-ecPublicKey and the curve OID, and the SEC1 ECPrivateKey
// (with curve and public key) as Go's MarshalECPrivateKey makes it; RSA with
// version 0, rsaEncryption without parameters, and PKCS#1; Ed25519 with
// version 0, OID 1.3.6.1.4.1.11591.15.1 and the 96-byte public ‖ private.
func marshalPKCS8(key crypto.Signer) ([]byte, error) {
	var info privateKeyInfoOut
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		curve, ok := curveOID(k.Curve)
		if !ok {
			return nil, fmt.Errorf("%w: ecdsa curve %s", ErrUnsupportedKey, k.Curve.Params().Name)
		}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		info = privateKeyInfoOut{Version: 1, Algorithm: []asn1.ObjectIdentifier{oidPublicKeyECDSA, curve}, PrivateKey: der}
	case *rsa.PrivateKey:
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		info = privateKeyInfoOut{Version: 0, Algorithm: []asn1.ObjectIdentifier{oidPublicKeyRSA}, PrivateKey: x509.MarshalPKCS1PrivateKey(k)}
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("%w: ed25519 private key is %d bytes", ErrInvalidKey, len(k))
		}
		b := make([]byte, 0, notaryEd25519Size)
		b = append(b, k[ed25519.SeedSize:]...)
		b = append(b, k...)
		info = privateKeyInfoOut{Version: 0, Algorithm: []asn1.ObjectIdentifier{oidNotaryEd25519}, PrivateKey: b}
	default:
		return nil, fmt.Errorf("%w: cannot write a key file for a %T", ErrUnsupportedKey, key)
	}
	return asn1.Marshal(info)
}

func curveOID(c elliptic.Curve) (asn1.ObjectIdentifier, bool) {
	switch c {
	case elliptic.P224():
		return oidNamedCurveP224, true
	case elliptic.P256():
		return oidNamedCurveP256, true
	case elliptic.P384():
		return oidNamedCurveP384, true
	case elliptic.P521():
		return oidNamedCurveP521, true
	}
	return nil, false
}

// errNotPKCS8 marks bytes that are not a PrivateKeyInfo at all; after a
// decryption it means the passphrase was wrong.
var errNotPKCS8 = errors.New("not a PKCS#8 PrivateKeyInfo")

// parsePKCS8 parses an unencrypted PrivateKeyInfo: Notary's forms (above),
// the RFC 5208/5958 forms Go and OpenSSL write, and RFC 8410 Ed25519.
func parsePKCS8(der []byte) (crypto.Signer, error) {
	var info privateKeyInfoIn
	rest, err := asn1.Unmarshal(der, &info)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKeyFile, errNotPKCS8)
	}
	if info.Version != 0 && info.Version != 1 {
		return nil, fmt.Errorf("%w: PKCS#8 version %d", ErrInvalidKeyFile, info.Version)
	}
	alg := info.Algorithm.Algorithm
	switch {
	case alg.Equal(oidNotaryEd25519):
		return parseNotaryEd25519(info.PrivateKey)
	case alg.Equal(oidPublicKeyECDSA), alg.Equal(oidPublicKeyRSA), alg.Equal(oidPublicKeyEd):
	default:
		return nil, fmt.Errorf("%w: private key algorithm %v", ErrUnsupportedKey, alg)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKeyFile, err)
	}
	return asSigner(key)
}

// parseNotaryEd25519 checks the 96-byte encoding is self-consistent (the
// leading public key and the one inside the private key both derive from the
// seed) and returns the Go private key.
func parseNotaryEd25519(b []byte) (crypto.Signer, error) {
	if len(b) != notaryEd25519Size {
		return nil, fmt.Errorf("%w: notary ed25519 key is %d bytes, want %d", ErrInvalidKeyFile, len(b), notaryEd25519Size)
	}
	pub, priv := b[:ed25519.PublicKeySize], b[ed25519.PublicKeySize:]
	k := ed25519.NewKeyFromSeed(priv[:ed25519.SeedSize])
	if subtle.ConstantTimeCompare(k, priv) != 1 || subtle.ConstantTimeCompare(k[ed25519.SeedSize:], pub) != 1 {
		return nil, fmt.Errorf("%w: notary ed25519 key: public and private parts do not match", ErrInvalidKeyFile)
	}
	return k, nil
}

// asSigner accepts the key types Notary can sign with.
func asSigner(key any) (crypto.Signer, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if _, ok := curveOID(k.Curve); !ok {
			return nil, fmt.Errorf("%w: ecdsa curve %s", ErrUnsupportedKey, k.Curve.Params().Name)
		}
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	default:
		return nil, fmt.Errorf("%w: private key of type %T", ErrUnsupportedKey, key)
	}
}

// encryptPKCS8 wraps a PrivateKeyInfo the way Notary does: PBES2 with
// PBKDF2-HMAC-SHA1 (8-byte salt, 2048 iterations, no key length, default
// PRF) and AES-256-CBC with a 16-byte IV and PKCS#7 padding. The salt and
// then the IV are read from random.
func encryptPKCS8(random io.Reader, plain, passphrase []byte) ([]byte, error) {
	salt := make([]byte, notaryPBKDF2Salt)
	iv := make([]byte, aes.BlockSize)
	if _, err := io.ReadFull(random, salt); err != nil {
		return nil, fmt.Errorf("keys: key file salt: %w", err)
	}
	if _, err := io.ReadFull(random, iv); err != nil {
		return nil, fmt.Errorf("keys: key file IV: %w", err)
	}
	key, err := pbkdf2.Key(sha1.New, string(passphrase), salt, notaryPBKDF2Rounds, 32)
	if err != nil {
		return nil, fmt.Errorf("keys: key file encryption key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keys: key file cipher: %w", err)
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	data := make([]byte, len(plain)+pad)
	copy(data, plain)
	for i := len(plain); i < len(data); i++ {
		data[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(data, data)

	kdf, err := asn1.Marshal(pbkdf2ParamsOut{Salt: salt, IterationCount: notaryPBKDF2Rounds})
	if err != nil {
		return nil, err
	}
	ivDER, err := asn1.Marshal(iv)
	if err != nil {
		return nil, err
	}
	params, err := asn1.Marshal(pbes2Params{
		KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdf}},
		EncryptionScheme:  pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivDER}},
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm:     pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}},
		EncryptedData: data,
	})
}

// pbes2 is a parsed PBES2 parameter set, ready to decrypt with a passphrase.
type pbes2 struct {
	prf       func() hash.Hash
	salt      []byte
	iter      int
	keyLen    int
	newCipher func(key []byte) (cipher.Block, error)
	iv        []byte
	data      []byte
}

// parseEncryptedPKCS8 checks an EncryptedPrivateKeyInfo is PBES2 with
// PBKDF2 and a CBC cipher it knows, without needing the passphrase.
func parseEncryptedPKCS8(der []byte) (*pbes2, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: not a PKCS#8 EncryptedPrivateKeyInfo", ErrInvalidKeyFile)
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("%w: %w: encryption %v, only PBES2 is supported", ErrInvalidKeyFile, ErrUnsupportedKey, info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if rest, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: malformed PBES2 parameters", ErrInvalidKeyFile)
	}
	if !params.KeyDerivationFunc.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("%w: %w: key derivation %v, only PBKDF2 is supported", ErrInvalidKeyFile, ErrUnsupportedKey, params.KeyDerivationFunc.Algorithm)
	}
	var kdf pbkdf2ParamsIn
	if rest, err := asn1.Unmarshal(params.KeyDerivationFunc.Parameters.FullBytes, &kdf); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: malformed PBKDF2 parameters", ErrInvalidKeyFile)
	}
	p := &pbes2{salt: kdf.Salt, iter: kdf.IterationCount, data: info.EncryptedData}
	if p.iter < 1 || p.iter > maxPBKDF2Iterations {
		return nil, fmt.Errorf("%w: PBKDF2 iteration count %d outside 1..%d", ErrInvalidKeyFile, p.iter, maxPBKDF2Iterations)
	}
	switch prf := kdf.PRF.Algorithm; {
	case len(prf) == 0, prf.Equal(oidHMACWithSHA1):
		p.prf = sha1.New
	case prf.Equal(oidHMACWithSHA224):
		p.prf = sha256.New224
	case prf.Equal(oidHMACWithSHA256):
		p.prf = sha256.New
	case prf.Equal(oidHMACWithSHA384):
		p.prf = sha512.New384
	case prf.Equal(oidHMACWithSHA512):
		p.prf = sha512.New
	default:
		return nil, fmt.Errorf("%w: %w: PBKDF2 PRF %v", ErrInvalidKeyFile, ErrUnsupportedKey, prf)
	}
	blockSize := aes.BlockSize
	switch enc := params.EncryptionScheme.Algorithm; {
	case enc.Equal(oidAES128CBC):
		p.keyLen, p.newCipher = 16, aes.NewCipher
	case enc.Equal(oidAES192CBC):
		p.keyLen, p.newCipher = 24, aes.NewCipher
	case enc.Equal(oidAES256CBC):
		p.keyLen, p.newCipher = 32, aes.NewCipher
	case enc.Equal(oidDESEDE3CBC):
		p.keyLen, p.newCipher, blockSize = 24, des.NewTripleDESCipher, des.BlockSize
	default:
		return nil, fmt.Errorf("%w: %w: cipher %v", ErrInvalidKeyFile, ErrUnsupportedKey, enc)
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != p.keyLen {
		return nil, fmt.Errorf("%w: PBKDF2 key length %d does not fit the cipher", ErrInvalidKeyFile, kdf.KeyLength)
	}
	if rest, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &p.iv); err != nil || len(rest) != 0 || len(p.iv) != blockSize {
		return nil, fmt.Errorf("%w: cipher IV must be a %d-byte OCTET STRING", ErrInvalidKeyFile, blockSize)
	}
	if len(p.data) == 0 || len(p.data)%blockSize != 0 {
		return nil, fmt.Errorf("%w: encrypted key is %d bytes, not a multiple of the %d-byte block", ErrInvalidKeyFile, len(p.data), blockSize)
	}
	return p, nil
}

// decrypt returns the PrivateKeyInfo bytes, or ErrWrongPassphrase when the
// padding is not PKCS#7 or the plaintext is not one DER SEQUENCE: with a
// wrong passphrase CBC decryption yields noise, and these are the checks
// noise fails (Notary reports any failure here as "incorrect password").
func (p *pbes2) decrypt(passphrase []byte) ([]byte, error) {
	key, err := pbkdf2.Key(p.prf, string(passphrase), p.salt, p.iter, p.keyLen)
	if err != nil {
		return nil, fmt.Errorf("%w: PBKDF2: %v", ErrInvalidKeyFile, err)
	}
	block, err := p.newCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKeyFile, err)
	}
	out := make([]byte, len(p.data))
	cipher.NewCBCDecrypter(block, p.iv).CryptBlocks(out, p.data)
	n := int(out[len(out)-1])
	if n == 0 || n > block.BlockSize() {
		return nil, ErrWrongPassphrase
	}
	for _, b := range out[len(out)-n:] {
		if int(b) != n {
			return nil, ErrWrongPassphrase
		}
	}
	out = out[:len(out)-n]
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(out, &seq); err != nil || len(rest) != 0 ||
		seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return nil, ErrWrongPassphrase
	}
	return out, nil
}
