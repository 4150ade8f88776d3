package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// LibtrustKeyID returns the key ID docker/libtrust gives pub, which
// distribution 2.x registries match against a token's kid: the SHA-256 of
// the DER SubjectPublicKeyInfo, truncated to 240 bits, base32 (standard
// alphabet, no padding), in twelve groups of four joined by ':'.
func LibtrustKeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("auth: key ID: %w", err)
	}
	sum := sha256.Sum256(der)
	s := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:30])
	groups := make([]string, 0, len(s)/4)
	for len(s) > 0 {
		n := min(4, len(s))
		groups = append(groups, s[:n])
		s = s[n:]
	}
	return strings.Join(groups, ":"), nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of
// pub, which distribution 3 registries match against kid.
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
			b64(raw[1:1+size]), b64(raw[1+size:]))
	case *rsa.PublicKey:
		members = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, b64(big.NewInt(int64(k.E)).Bytes()), b64(k.N.Bytes()))
	case ed25519.PublicKey:
		members = fmt.Sprintf(`{"crv":"Ed25519","kty":"OKP","x":%q}`, b64(k))
	default:
		return "", fmt.Errorf("auth: thumbprint: unsupported key type %T", pub)
	}
	sum := sha256.Sum256([]byte(members))
	return b64(sum[:]), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// ParseCertBundle returns the certificates of a PEM bundle (other PEM
// blocks are skipped, as the reference does); it is an error if there are
// none.
func ParseCertBundle(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: certificate bundle: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("auth: certificate bundle holds no certificate")
	}
	return certs, nil
}

// jwk is one parsed JSON Web Key.
type jwk struct {
	kid string
	pub crypto.PublicKey
	x5c []string
}

type rawJWK struct {
	Kty string   `json:"kty"`
	Kid string   `json:"kid"`
	Use string   `json:"use"`
	Crv string   `json:"crv"`
	X   string   `json:"x"`
	Y   string   `json:"y"`
	N   string   `json:"n"`
	E   string   `json:"e"`
	D   string   `json:"d"`
	X5C []string `json:"x5c"`
}

// ParseJWKS returns the public keys of a JWK Set by key ID; a key without a
// kid is listed under its RFC 7638 thumbprint. Private members are refused:
// a verifier has no business holding them.
func ParseJWKS(b []byte) (map[string]crypto.PublicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("auth: JWKS: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("auth: JWKS holds no key")
	}
	out := make(map[string]crypto.PublicKey, len(set.Keys))
	for i, raw := range set.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS key %d: %w", i, err)
		}
		id := k.kid
		if id == "" {
			if id, err = Thumbprint(k.pub); err != nil {
				return nil, fmt.Errorf("auth: JWKS key %d: %w", i, err)
			}
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("auth: JWKS key %d: duplicate kid %q", i, id)
		}
		out[id] = k.pub
	}
	return out, nil
}

func parseJWK(b []byte) (*jwk, error) {
	var r rawJWK
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.D != "" {
		return nil, errors.New("holds a private key")
	}
	k := &jwk{kid: r.Kid, x5c: r.X5C}
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
			return nil, fmt.Errorf("unsupported curve %q", r.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err1 := b64url(r.X)
		y, err2 := b64url(r.Y)
		if err := errors.Join(err1, err2); err != nil || len(x) != size || len(y) != size {
			return nil, errors.New("bad EC coordinates")
		}
		// The parser checks that the point is on the curve.
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("bad EC point: %w", err)
		}
		k.pub = pub
	case "RSA":
		n, err1 := b64url(r.N)
		e, err2 := b64url(r.E)
		if err := errors.Join(err1, err2); err != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA parameters")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits is too small", pub.N.BitLen())
		}
		k.pub = pub
	case "OKP":
		x, err := b64url(r.X)
		if r.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad OKP key (only Ed25519 is supported)")
		}
		k.pub = ed25519.PublicKey(x)
	default:
		return nil, fmt.Errorf("unsupported key type %q", r.Kty)
	}
	return k, nil
}
