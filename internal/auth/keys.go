package auth

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/signet-trust/signet/internal/jose"
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
	tp, err := jose.Thumbprint(pub)
	if err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	return tp, nil
}

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
		k, err := jose.ParseJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS key %d: %w", i, err)
		}
		id := k.KeyID
		if id == "" {
			if id, err = Thumbprint(k.Key); err != nil {
				return nil, fmt.Errorf("auth: JWKS key %d: %w", i, err)
			}
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("auth: JWKS key %d: duplicate kid %q", i, id)
		}
		out[id] = k.Key
	}
	return out, nil
}
