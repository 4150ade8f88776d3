package auth

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/jose"
)

// Leeway is the clock skew allowed on exp and nbf, as the reference's
// token verification (distribution registry/auth/token) allows.
const Leeway = 60 * time.Second

// Errors of token verification. Every error Verify returns wraps
// ErrInvalidToken, and one of the more specific ones where it applies.
var (
	ErrInvalidToken   = errors.New("auth: invalid token")
	ErrMalformedToken = fmt.Errorf("%w: malformed", ErrInvalidToken)
	ErrIssuer         = fmt.Errorf("%w: untrusted issuer", ErrInvalidToken)
	ErrAudience       = fmt.Errorf("%w: intended for another audience", ErrInvalidToken)
	ErrExpired        = fmt.Errorf("%w: expired", ErrInvalidToken)
	ErrNotYetValid    = fmt.Errorf("%w: not yet valid", ErrInvalidToken)
	ErrUntrustedKey   = fmt.Errorf("%w: untrusted signing key", ErrInvalidToken)
	ErrSignature      = fmt.Errorf("%w: bad signature", ErrInvalidToken)
)

// maxTokenBytes bounds what Verify parses; real tokens with an x5c chain
// are a few KiB.
const maxTokenBytes = 64 << 10

// Header is the JOSE header of a token.
type Header = jose.Header

// Claims are the claims of a registry token.
type Claims struct {
	Issuer    string            `json:"iss"`
	Subject   string            `json:"sub"`
	Audience  Audience          `json:"aud"`
	Expiry    NumericDate       `json:"exp"`
	NotBefore NumericDate       `json:"nbf"`
	IssuedAt  NumericDate       `json:"iat"`
	ID        string            `json:"jti,omitempty"`
	Access    []ResourceActions `json:"access"`
}

// ResourceActions is one entry of the access claim: actions granted on a
// typed, named resource ("repository", "<GUN>"; "registry", "catalog").
type ResourceActions struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Allows reports whether the claims grant action on the resource: the
// action itself or "*" listed for it.
func (c *Claims) Allows(typ, name, action string) bool {
	for _, ra := range c.Access {
		if ra.Type == typ && ra.Name == name && (slices.Contains(ra.Actions, action) || slices.Contains(ra.Actions, "*")) {
			return true
		}
	}
	return false
}

// Audience is the aud claim: one string or an array of strings on the
// wire, written as a string when it holds exactly one value.
type Audience = jose.Audience

// NumericDate is a JWT time: seconds since the epoch. Zero means absent.
type NumericDate = jose.NumericDate

// Verifier checks tokens the way the reference's registry token access
// controller does.
type Verifier struct {
	// Issuer is the only accepted iss; Audience must be in aud (the
	// service name of this server).
	Issuer, Audience string
	// Keys are the trusted signing keys and certificate roots.
	Keys *TrustedKeys
}

// Verify parses the JWS compact token raw and checks, in this order: the
// issuer, the audience, exp and nbf (each with Leeway), that a signature is
// present, that the signing key is trusted (x5c chain to a root, embedded
// jwk, or kid of a trusted key), and the signature. It returns the claims of
// a valid token.
func (v *Verifier) Verify(raw string, now time.Time) (*Claims, error) {
	hdr, claims, signed, sig, err := parse(raw)
	if err != nil {
		return nil, err
	}
	if claims.Issuer != v.Issuer {
		return nil, fmt.Errorf("%w: %q", ErrIssuer, claims.Issuer)
	}
	if !slices.Contains(claims.Audience, v.Audience) {
		return nil, fmt.Errorf("%w: %q", ErrAudience, []string(claims.Audience))
	}
	if exp := claims.Expiry.Time().Add(Leeway); now.After(exp) {
		return nil, fmt.Errorf("%w: not to be used after %s (with leeway), now %s", ErrExpired, exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if nbf := claims.NotBefore.Time().Add(-Leeway); now.Before(nbf) {
		return nil, fmt.Errorf("%w: not to be used before %s (with leeway), now %s", ErrNotYetValid, nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if len(sig) == 0 {
		return nil, fmt.Errorf("%w: no signature", ErrSignature)
	}
	key, err := v.Keys.signingKey(hdr, now)
	if err != nil {
		return nil, err
	}
	if err := verifySignature(hdr.Algorithm, key, signed, sig); err != nil {
		return nil, err
	}
	return claims, nil
}

// parse splits and decodes a compact JWS without checking anything but
// its shape.
func parse(raw string) (hdr *Header, claims *Claims, signed []byte, sig []byte, err error) {
	c, err := jose.Parse(raw, maxTokenBytes)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: %v", ErrMalformedToken, strings.TrimPrefix(err.Error(), "jose: malformed token: "))
	}
	claims = new(Claims)
	if err := json.Unmarshal(c.Payload, claims); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: claims: %v", ErrMalformedToken, err)
	}
	return &c.Header, claims, c.SigningInput, c.Signature, nil
}

// TrustedKeys are the keys tokens may be signed with: the certificates of
// a root bundle (as x5c chain roots, and by key ID for kid lookups) and
// keys from a JWKS by their kid.
type TrustedKeys struct {
	roots *x509.CertPool
	byID  map[string]crypto.PublicKey
}

// NewTrustedKeys returns an empty set.
func NewTrustedKeys() *TrustedKeys {
	return &TrustedKeys{roots: x509.NewCertPool(), byID: map[string]crypto.PublicKey{}}
}

// Len is the number of trusted keys (by ID, counting each once per ID).
func (k *TrustedKeys) Len() int { return len(k.byID) }

// AddCertificate trusts c as a root of x5c chains, and its public key
// under its libtrust key ID (distribution 2.x) and its RFC 7638 thumbprint
// (distribution 3).
func (k *TrustedKeys) AddCertificate(c *x509.Certificate) error {
	id, err := LibtrustKeyID(c.PublicKey)
	if err != nil {
		return err
	}
	k.roots.AddCert(c)
	k.byID[id] = c.PublicKey
	if tp, err := Thumbprint(c.PublicKey); err == nil {
		k.byID[tp] = c.PublicKey
	}
	return nil
}

// AddKey trusts pub under the key ID id (a JWKS kid).
func (k *TrustedKeys) AddKey(id string, pub crypto.PublicKey) error {
	if id == "" {
		return errors.New("auth: trusted key without an ID")
	}
	if _, err := x509.MarshalPKIXPublicKey(pub); err != nil {
		return fmt.Errorf("auth: key %q: %w", id, err)
	}
	k.byID[id] = pub
	return nil
}

// signingKey finds the key a token says it was signed with, in the
// reference's order of preference: x5c, jwk, kid.
func (k *TrustedKeys) signingKey(h *Header, now time.Time) (crypto.PublicKey, error) {
	switch {
	case len(h.X5C) > 0:
		return k.verifyChain(h.X5C, now)
	case len(h.JWK) > 0:
		jwk, err := jose.ParseJWK(h.JWK)
		if err != nil {
			return nil, fmt.Errorf("%w: header jwk: %v", ErrUntrustedKey, err)
		}
		if len(jwk.X5C) > 0 {
			leaf, err := k.verifyChain(jwk.X5C, now)
			if err != nil {
				return nil, err
			}
			if !sameKey(leaf, jwk.Key) {
				return nil, fmt.Errorf("%w: header jwk differs from its certificate's key", ErrUntrustedKey)
			}
			return jwk.Key, nil
		}
		for _, t := range k.byID {
			if sameKey(t, jwk.Key) {
				return jwk.Key, nil
			}
		}
		return nil, fmt.Errorf("%w: header jwk is not a trusted key and has no certificate chain", ErrUntrustedKey)
	case h.KeyID != "":
		if pub, ok := k.byID[h.KeyID]; ok {
			return pub, nil
		}
		return nil, fmt.Errorf("%w: kid %q", ErrUntrustedKey, h.KeyID)
	}
	return nil, fmt.Errorf("%w: header names no key (x5c, jwk or kid)", ErrUntrustedKey)
}

// verifyChain checks that x5c (standard base64 DER, leaf first) chains to
// a trusted root at now, and returns the leaf's key.
func (k *TrustedKeys) verifyChain(x5c []string, now time.Time) (crypto.PublicKey, error) {
	var certs []*x509.Certificate
	for i, s := range x5c {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: x5c[%d]: %v", ErrUntrustedKey, i, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: x5c[%d]: %v", ErrUntrustedKey, i, err)
		}
		certs = append(certs, c)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{
		Roots: k.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("%w: x5c chain: %v", ErrUntrustedKey, err)
	}
	return certs[0].PublicKey, nil
}

func sameKey(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// verifySignature checks sig over signed with key under the JWS algorithm
// alg; the algorithm must fit the key (no "none", no HMAC).
func verifySignature(alg string, key crypto.PublicKey, signed, sig []byte) error {
	if err := jose.Verify(alg, key, signed, sig); err != nil {
		return fmt.Errorf("%w: %v", ErrSignature, strings.TrimPrefix(err.Error(), "jose: bad signature: "))
	}
	return nil
}
