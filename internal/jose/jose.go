// Package jose holds signet's one implementation of the JSON Web Signature
// pieces its verifiers share (RFC 7515, 7517, 7518, 7519, 7638): splitting
// and decoding a compact JWS, checking a signature under an algorithm that
// must fit the key, JSON Web Keys and key sets, thumbprints, and the aud
// and NumericDate claim encodings. Registry bearer tokens (internal/auth)
// and CI OIDC ID tokens (internal/oidc) are both checked through it.
//
// Invariants: only asymmetric algorithms verify (ES256/384/512, RS256/384/512,
// PS256/384/512, EdDSA); "none" and every HMAC algorithm are refused whatever
// the key, and the algorithm must match the key's type and curve, so a public
// key can never be used as an HMAC secret. RSA keys under 2048 bits and JWKs
// carrying private members are refused. The package is pure: no I/O, no
// clock, no logging; time checks belong to the callers, which take now as an
// argument.
package jose

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Errors. Every error of Parse wraps ErrMalformed; every error of Verify
// wraps ErrSignature (ErrAlgorithm too when the algorithm is the reason).
var (
	ErrMalformed = errors.New("jose: malformed token")
	ErrSignature = errors.New("jose: bad signature")
	ErrAlgorithm = fmt.Errorf("%w: algorithm not accepted", ErrSignature)
	// ErrUnsupportedKey marks a JWK of a type or curve this package does
	// not verify with (a key set may hold such keys beside usable ones).
	ErrUnsupportedKey = errors.New("jose: unsupported key")
)

// Header is the JOSE header of a compact JWS.
type Header struct {
	Type      string          `json:"typ,omitempty"`
	Algorithm string          `json:"alg"`
	KeyID     string          `json:"kid,omitempty"`
	X5C       []string        `json:"x5c,omitempty"`
	JWK       json.RawMessage `json:"jwk,omitempty"`
	// Critical lists extensions the verifier must understand (RFC 7515
	// §4.1.11); this package understands none.
	Critical []string `json:"crit,omitempty"`
}

// Compact is a compact JWS split into its parts; nothing in it has been
// verified.
type Compact struct {
	Header Header
	// Payload is the decoded payload (the claims of a JWT).
	Payload []byte
	// SigningInput is BASE64URL(header) "." BASE64URL(payload), the bytes
	// the signature covers.
	SigningInput []byte
	// Signature is the decoded signature (empty for an unsigned token).
	Signature []byte
}

// Parse splits and decodes the compact JWS raw, refusing anything longer
// than maxBytes before decoding a byte of it. It checks the shape only: three
// base64url parts, a JSON header with a string alg and no crit.
func Parse(raw string, maxBytes int) (*Compact, error) {
	if len(raw) > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d accepted", ErrMalformed, len(raw), maxBytes)
	}
	if n := strings.Count(raw, "."); n != 2 {
		return nil, fmt.Errorf("%w: %d parts, want 3 (header.payload.signature)", ErrMalformed, n+1)
	}
	h, rest, _ := strings.Cut(raw, ".")
	p, s, _ := strings.Cut(rest, ".")
	hb, err1 := B64Decode(h)
	pb, err2 := B64Decode(p)
	sig, err3 := B64Decode(s)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("%w: not base64url: %v", ErrMalformed, err)
	}
	c := &Compact{Payload: pb, SigningInput: []byte(raw[:len(h)+1+len(p)]), Signature: sig}
	if err := json.Unmarshal(hb, &c.Header); err != nil {
		return nil, fmt.Errorf("%w: header is not a JSON object with a string alg: %v", ErrMalformed, err)
	}
	if c.Header.Algorithm == "" {
		return nil, fmt.Errorf("%w: header has no alg", ErrMalformed)
	}
	if len(c.Header.Critical) > 0 {
		return nil, fmt.Errorf("%w: header lists critical extensions %q, none of which is supported", ErrMalformed, c.Header.Critical)
	}
	return c, nil
}

// B64Decode decodes unpadded base64url, tolerating trailing padding as
// libtrust-era issuers emit it.
func B64Decode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// B64Encode encodes unpadded base64url.
func B64Encode(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Audience is the aud claim: one string or an array of strings on the
// wire. It is written as a string when it holds exactly one value, the
// form every registry version accepts.
type Audience []string

// UnmarshalJSON accepts a string, an array of strings, or null.
func (a *Audience) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*a = nil
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}

// MarshalJSON writes a single audience as a string.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// NumericDate is a JWT time: seconds since the epoch, integer or not.
// Zero means absent.
type NumericDate int64

// UnmarshalJSON accepts any JSON number (fractions are truncated) or null;
// a number in a string is refused.
func (d *NumericDate) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*d = 0
		return nil
	}
	var n json.Number
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '"' {
		return errors.New("time claim is a string, not a number")
	}
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("time claim is not a number")
	}
	if i, err := n.Int64(); err == nil {
		*d = NumericDate(i)
		return nil
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f >= math.MaxInt64 || f <= math.MinInt64 {
		return errors.New("time claim is not a usable number")
	}
	*d = NumericDate(int64(f))
	return nil
}

// Time returns d as a time.Time.
func (d NumericDate) Time() time.Time { return time.Unix(int64(d), 0) }
