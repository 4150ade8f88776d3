package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"fmt"
	"math/big"
)

// hashFor is the digest of an asymmetric JWS algorithm; ok is false for
// anything else ("none", HS256, unknown names). EdDSA signs the message
// itself (hash 0).
func hashFor(alg string) (h crypto.Hash, ok bool) {
	switch alg {
	case "ES256", "RS256", "PS256":
		return crypto.SHA256, true
	case "ES384", "RS384", "PS384":
		return crypto.SHA384, true
	case "ES512", "RS512", "PS512":
		return crypto.SHA512, true
	case "EdDSA":
		return 0, true
	}
	return 0, false
}

// Asymmetric reports whether alg is an algorithm Verify accepts at all.
func Asymmetric(alg string) bool {
	_, ok := hashFor(alg)
	return ok
}

// Verify checks the JWS signature sig over signed with key under alg. The
// algorithm must be asymmetric and fit the key: ES256/384/512 a P-256/384/521
// ECDSA key (raw r‖s signature of the curve's size), RS*/PS* an RSA key,
// EdDSA an Ed25519 key.
func Verify(alg string, key crypto.PublicKey, signed, sig []byte) error {
	h, ok := hashFor(alg)
	if !ok {
		return fmt.Errorf("%w: %q (only asymmetric algorithms are accepted; never none or HMAC)", ErrAlgorithm, alg)
	}
	var digest []byte
	if h != 0 {
		d := h.New()
		d.Write(signed)
		digest = d.Sum(nil)
	}
	valid := false
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		want := map[string]int{"ES256": 256, "ES384": 384, "ES512": 521}[alg]
		if want == 0 || k.Curve.Params().BitSize != want {
			return fmt.Errorf("%w: %s does not fit a %s key", ErrAlgorithm, alg, k.Curve.Params().Name)
		}
		size := (want + 7) / 8
		if len(sig) == 2*size {
			r := new(big.Int).SetBytes(sig[:size])
			s := new(big.Int).SetBytes(sig[size:])
			valid = ecdsa.Verify(k, digest, r, s)
		}
	case *rsa.PublicKey:
		switch alg[:2] {
		case "RS":
			valid = rsa.VerifyPKCS1v15(k, h, digest, sig) == nil
		case "PS":
			valid = rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		default:
			return fmt.Errorf("%w: %s does not fit an RSA key", ErrAlgorithm, alg)
		}
	case ed25519.PublicKey:
		if alg != "EdDSA" {
			return fmt.Errorf("%w: %s does not fit an Ed25519 key", ErrAlgorithm, alg)
		}
		valid = ed25519.Verify(k, signed, sig)
	default:
		return fmt.Errorf("%w: unsupported key type %T", ErrSignature, key)
	}
	if !valid {
		return fmt.Errorf("%w: the %s signature does not verify", ErrSignature, alg)
	}
	return nil
}

// AlgorithmFor is the JWS algorithm signet signs with for a key: ES256/384/512
// by curve, RS256 for RSA, EdDSA for Ed25519.
func AlgorithmFor(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return "ES256", nil
		case 384:
			return "ES384", nil
		case 521:
			return "ES512", nil
		}
	case *rsa.PublicKey:
		return "RS256", nil
	case ed25519.PublicKey:
		return "EdDSA", nil
	}
	return "", fmt.Errorf("jose: unsupported signing key type %T", pub)
}

// Sign signs signed through s under alg and returns the JWS signature bytes
// (raw r‖s for ECDSA). It makes only asymmetric signatures.
func Sign(s crypto.Signer, alg string, signed []byte) ([]byte, error) {
	h, ok := hashFor(alg)
	if !ok {
		return nil, fmt.Errorf("jose: cannot sign with %q", alg)
	}
	if alg == "EdDSA" {
		return s.Sign(rand.Reader, signed, crypto.Hash(0))
	}
	d := h.New()
	d.Write(signed)
	var opts crypto.SignerOpts = h
	if alg[:2] == "PS" {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
	}
	sig, err := s.Sign(rand.Reader, d.Sum(nil), opts)
	if err != nil || alg[:2] != "ES" {
		return sig, err
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("jose: ECDSA signature is not DER: %v", err)
	}
	pub, ok := s.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("jose: %s needs an ECDSA key, not %T", alg, s.Public())
	}
	size := (pub.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}
