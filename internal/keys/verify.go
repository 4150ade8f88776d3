package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Signature methods as they appear in a signature's "method".
const (
	MethodECDSA       = "ecdsa"
	MethodEdDSA       = "eddsa"
	MethodRSAPSS      = "rsapss"
	MethodRSAPKCS1v15 = "rsapkcs1v15"
)

// minRSABits is the smallest RSA modulus Notary accepts.
const minRSABits = 2048

// ErrBadSignature reports a signature that does not verify.
var ErrBadSignature = errors.New("keys: signature does not verify")

// Verify checks sig over msg with the key, using the named method (compared
// case-insensitively, as Notary does). msg is the canonical JSON of the
// signed object.
func (k *PublicKey) Verify(method string, msg, sig []byte) error {
	switch strings.ToLower(method) {
	case MethodECDSA:
		pub, ok := k.key.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: method ecdsa with a %s key", ErrBadSignature, k.typ)
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return fmt.Errorf("%w: ecdsa signature is %d bytes, want %d", ErrBadSignature, len(sig), 2*size)
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		digest := sha256.Sum256(msg)
		if !ecdsa.Verify(pub, digest[:], r, s) {
			return ErrBadSignature
		}
		return nil
	case MethodEdDSA:
		pub, ok := k.key.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("%w: method eddsa with a %s key", ErrBadSignature, k.typ)
		}
		if !ed25519.Verify(pub, msg, sig) {
			return ErrBadSignature
		}
		return nil
	case MethodRSAPSS, MethodRSAPKCS1v15:
		pub, ok := k.key.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: method %s with a %s key", ErrBadSignature, method, k.typ)
		}
		if pub.N.BitLen() < minRSABits {
			return fmt.Errorf("%w: rsa key of %d bits, need %d", ErrBadSignature, pub.N.BitLen(), minRSABits)
		}
		digest := sha256.Sum256(msg)
		var err error
		if strings.ToLower(method) == MethodRSAPSS {
			err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
		}
		if err != nil {
			return ErrBadSignature
		}
		return nil
	default:
		return fmt.Errorf("%w: unsupported signature method %q", ErrBadSignature, method)
	}
}

// Sign signs msg (the canonical JSON of a signed object) with signer the way
// Notary does, returning the method name and the signature bytes: raw r‖s
// for ECDSA, RSASSA-PSS with SHA-256 for RSA, plain Ed25519 for Ed25519.
func Sign(signer crypto.Signer, msg []byte) (method string, sig []byte, err error) {
	switch pub := signer.Public().(type) {
	case *ecdsa.PublicKey:
		digest := sha256.Sum256(msg)
		der, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return "", nil, fmt.Errorf("keys: sign: %w", err)
		}
		raw, err := ecdsaDERToRaw(der, (pub.Curve.Params().BitSize+7)/8)
		if err != nil {
			return "", nil, err
		}
		return MethodECDSA, raw, nil
	case ed25519.PublicKey:
		sig, err := signer.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil {
			return "", nil, fmt.Errorf("keys: sign: %w", err)
		}
		return MethodEdDSA, sig, nil
	case *rsa.PublicKey:
		digest := sha256.Sum256(msg)
		sig, err := signer.Sign(rand.Reader, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
		if err != nil {
			return "", nil, fmt.Errorf("keys: sign: %w", err)
		}
		return MethodRSAPSS, sig, nil
	default:
		return "", nil, fmt.Errorf("%w: signer with a %T key", ErrUnsupportedKey, pub)
	}
}

func ecdsaDERToRaw(der []byte, size int) ([]byte, error) {
	var s struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &s)
	if err != nil || len(rest) != 0 || s.R == nil || s.S == nil {
		return nil, fmt.Errorf("keys: signer returned a malformed ECDSA signature")
	}
	raw := make([]byte, 2*size)
	s.R.FillBytes(raw[:size])
	s.S.FillBytes(raw[size:])
	return raw, nil
}

// ErrBadCertificate reports a certificate that Notary's rules refuse.
var ErrBadCertificate = errors.New("keys: certificate not acceptable")

// CheckCertificate applies Notary's certificate rules at time now: valid
// dates (NotBefore at most a day ahead, not expired), not signed with SHA-1,
// and RSA keys of at least 2048 bits.
func CheckCertificate(c *x509.Certificate, now time.Time) error {
	if c.NotBefore.After(c.NotAfter) {
		return fmt.Errorf("%w: %q: NotBefore is after NotAfter", ErrBadCertificate, c.Subject.CommonName)
	}
	if now.Add(24 * time.Hour).Before(c.NotBefore) {
		return fmt.Errorf("%w: %q is not valid before %s", ErrBadCertificate, c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return fmt.Errorf("%w: %q expired at %s", ErrBadCertificate, c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
	}
	switch c.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return fmt.Errorf("%w: %q is signed with SHA-1", ErrBadCertificate, c.Subject.CommonName)
	}
	if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.N.BitLen() < minRSABits {
		return fmt.Errorf("%w: %q has a %d-bit RSA key", ErrBadCertificate, c.Subject.CommonName, pub.N.BitLen())
	}
	return nil
}
