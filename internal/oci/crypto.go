package oci

// Signatures as `cosign verify --key` checks them by default: SHA-256 for
// ECDSA (ASN.1 DER) and RSA (PKCS#1 v1.5) whatever the curve or size, pure
// Ed25519 over the message. No algorithm is named anywhere in the formats;
// the key decides.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
)

// ErrSignature reports a signature that does not verify.
var ErrSignature = errors.New("oci: signature does not verify")

// ErrUnsupportedKey reports a key of a type the cosign formats cannot use.
var ErrUnsupportedKey = errors.New("oci: unsupported key type")

// checkKey accepts the public keys cosign verifies with by default.
func checkKey(pub crypto.PublicKey) error {
	switch pub.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("%w: %T (want ECDSA, RSA or Ed25519)", ErrUnsupportedKey, pub)
}

// sign signs msg with key and checks the signature against the key's public
// half before returning it, so a faulty signer never writes a signature.
func sign(key crypto.Signer, msg []byte) ([]byte, error) {
	pub := key.Public()
	if err := checkKey(pub); err != nil {
		return nil, err
	}
	var (
		sig []byte
		err error
	)
	if _, ok := pub.(ed25519.PublicKey); ok {
		sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	} else {
		sum := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, sum[:], crypto.SHA256)
	}
	if err != nil {
		return nil, fmt.Errorf("oci: signing: %w", err)
	}
	if err := verifySig(pub, msg, sig); err != nil {
		return nil, fmt.Errorf("oci: the key produced a signature its public key does not verify: %w", err)
	}
	return sig, nil
}

// verifySig checks sig over msg with pub.
func verifySig(pub crypto.PublicKey, msg, sig []byte) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(msg)
		if ecdsa.VerifyASN1(k, sum[:], sig) {
			return nil
		}
	case *rsa.PublicKey:
		sum := sha256.Sum256(msg)
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig) == nil {
			return nil
		}
	case ed25519.PublicKey:
		if ed25519.Verify(k, msg, sig) {
			return nil
		}
	default:
		return checkKey(pub)
	}
	return ErrSignature
}

// KeyHint is the public-key hint sigstore-go writes into bundles: base64
// of the SHA-256 of the key's DER SubjectPublicKeyInfo. It also names the
// key in verification results.
func KeyHint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	sum := sha256.Sum256(der)
	return keyHintEncoding.EncodeToString(sum[:]), nil
}

// samePublicKey reports whether two public keys are the same key.
func samePublicKey(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}
