package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// JWK is one public JSON Web Key (RFC 7517).
type JWK struct {
	// KeyID is kid ("" when absent).
	KeyID string
	// Use is use ("sig", "enc" or ""), Algorithm alg ("" when absent).
	Use, Algorithm string
	// Key is an *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey.
	Key crypto.PublicKey
	// X5C is the key's certificate chain (standard base64 DER, leaf first).
	X5C []string
}

type rawJWK struct {
	Kty string   `json:"kty"`
	Kid string   `json:"kid,omitempty"`
	Use string   `json:"use,omitempty"`
	Alg string   `json:"alg,omitempty"`
	Crv string   `json:"crv,omitempty"`
	X   string   `json:"x,omitempty"`
	Y   string   `json:"y,omitempty"`
	N   string   `json:"n,omitempty"`
	E   string   `json:"e,omitempty"`
	D   string   `json:"d,omitempty"`
	P   string   `json:"p,omitempty"`
	K   string   `json:"k,omitempty"`
	X5C []string `json:"x5c,omitempty"`
}

// ParseJWK parses one public JWK: EC (P-256, P-384, P-521, point checked on
// the curve), RSA (at least 2048 bits) or OKP Ed25519. Symmetric keys ("oct")
// and keys carrying private members are refused; keys of other types or
// curves are refused with an error wrapping ErrUnsupportedKey.
func ParseJWK(b []byte) (JWK, error) {
	var r rawJWK
	if err := json.Unmarshal(b, &r); err != nil {
		return JWK{}, err
	}
	if r.D != "" || r.P != "" || r.K != "" {
		return JWK{}, errors.New("holds private or symmetric key material")
	}
	k := JWK{KeyID: r.Kid, Use: r.Use, Algorithm: r.Alg, X5C: r.X5C}
	switch r.Kty {
	case "EC":
		var curve elliptic.Curve
		switch r.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return JWK{}, fmt.Errorf("%w: curve %q", ErrUnsupportedKey, r.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err1 := B64Decode(r.X)
		y, err2 := B64Decode(r.Y)
		if err := errors.Join(err1, err2); err != nil || len(x) != size || len(y) != size {
			return JWK{}, errors.New("bad EC coordinates")
		}
		// The parser checks that the point is on the curve.
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return JWK{}, fmt.Errorf("bad EC point: %w", err)
		}
		k.Key = pub
	case "RSA":
		n, err1 := B64Decode(r.N)
		e, err2 := B64Decode(r.E)
		if err := errors.Join(err1, err2); err != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return JWK{}, errors.New("bad RSA parameters")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 {
			return JWK{}, fmt.Errorf("RSA key of %d bits is too small", pub.N.BitLen())
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return JWK{}, fmt.Errorf("RSA exponent %d is not usable", pub.E)
		}
		k.Key = pub
	case "OKP":
		if r.Crv != "Ed25519" {
			return JWK{}, fmt.Errorf("%w: OKP curve %q", ErrUnsupportedKey, r.Crv)
		}
		x, err := B64Decode(r.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return JWK{}, errors.New("bad Ed25519 key")
		}
		k.Key = ed25519.PublicKey(x)
	case "oct":
		return JWK{}, errors.New("is a symmetric key")
	default:
		return JWK{}, fmt.Errorf("%w: key type %q", ErrUnsupportedKey, r.Kty)
	}
	return k, nil
}

// ParseJWKSet returns the keys of a JWK Set in order. Any key that
// ParseJWK refuses makes the whole set an error, except keys of unsupported
// types or curves when skipUnsupported is set (an OIDC issuer may publish
// keys for algorithms signet does not verify with).
func ParseJWKSet(b []byte, skipUnsupported bool) ([]JWK, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("jose: JWKS: %w", err)
	}
	var out []JWK
	for i, raw := range set.Keys {
		k, err := ParseJWK(raw)
		if skipUnsupported && errors.Is(err, ErrUnsupportedKey) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("jose: JWKS key %d: %w", i, err)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("jose: JWKS holds no usable key")
	}
	return out, nil
}

// MarshalJSON writes the public members of k.
func (k JWK) MarshalJSON() ([]byte, error) {
	r := rawJWK{Kid: k.KeyID, Use: k.Use, Alg: k.Algorithm, X5C: k.X5C}
	switch pub := k.Key.(type) {
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes()
		if err != nil {
			return nil, err
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		r.Kty, r.Crv, r.X, r.Y = "EC", pub.Curve.Params().Name, B64Encode(raw[1:1+size]), B64Encode(raw[1+size:])
	case *rsa.PublicKey:
		r.Kty, r.N, r.E = "RSA", B64Encode(pub.N.Bytes()), B64Encode(big.NewInt(int64(pub.E)).Bytes())
	case ed25519.PublicKey:
		r.Kty, r.Crv, r.X = "OKP", "Ed25519", B64Encode(pub)
	default:
		return nil, fmt.Errorf("jose: unsupported key type %T", k.Key)
	}
	return json.Marshal(r)
}

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of
// pub.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	var members string
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		raw, err := k.Bytes() // 0x04 ‖ X ‖ Y, fixed width
		if err != nil {
			return "", err
		}
		members = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, k.Curve.Params().Name,
			B64Encode(raw[1:1+size]), B64Encode(raw[1+size:]))
	case *rsa.PublicKey:
		members = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, B64Encode(big.NewInt(int64(k.E)).Bytes()), B64Encode(k.N.Bytes()))
	case ed25519.PublicKey:
		members = fmt.Sprintf(`{"crv":"Ed25519","kty":"OKP","x":%q}`, B64Encode(k))
	default:
		return "", fmt.Errorf("jose: thumbprint: unsupported key type %T", pub)
	}
	sum := sha256.Sum256([]byte(members))
	return B64Encode(sum[:]), nil
}
